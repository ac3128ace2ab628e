/**
 * How small a kernel may be and still gain from a second thread: the measurement behind the wasm
 * backend's default `minSplitWork` (src/backends/wasm.ts).
 *
 * 1. Hand-off cost: a job of two parts that do (almost) nothing, against the same call on one thread, back
 *    to back (the worker polling, as between the kernels of a step) and after a 2 ms pause (the worker
 *    asleep in Atomics.wait).
 * 2. The micro-kernel's rate on this machine (multiply-adds per microsecond, one thread, gemm 128x512x128).
 * 3. Splitting work of T microseconds between two threads pays when T / 2 + hand-off < T, that is when
 *    T > 2 x hand-off; the suggested threshold is that many microseconds of multiply-adds.
 * 4. A sweep of gemm sizes around it, one thread against two, interleaved (the check).
 *
 * On a machine shared with other work the two-thread figures are unreliable (the worker may wait for a
 * core): rerun on an idle machine. Run: `deno run bench/split_threshold.ts [--rounds 15]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { interleave, median } from "./_interleave.ts";

const { values } = parseArgs({ args: Deno.args, options: { rounds: { type: "string", default: "15" } } });
const ROUNDS = Number(values.rounds);
const one = await createWasmBackend({ threads: 1 });
const two = await createWasmBackend({ threads: 2, minSplitWork: 0 });
const spin = (ms: number) => {
  const t = performance.now() + ms;
  while (performance.now() < t) { /* keep the core, as JS between kernels does */ }
};

// 1. hand-off: fill 8 floats, split in two parts of 4 on `two`
function handoff(pauseMs: number): number[] {
  const x1 = one.alloc(8), x2 = two.alloc(8);
  const f1 = () => one.fill(x1, { size: 8, value: 1 }), f2 = () => two.fill(x2, { size: 8, value: 1 });
  const reps = 200, d1: number[] = [], d2: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [f, d] of [[f1, d1], [f2, d2]] as const) {
      let s = 0;
      for (let i = 0; i < reps; i++) {
        if (pauseMs > 0) spin(pauseMs);
        const t0 = performance.now();
        f();
        s += performance.now() - t0;
      }
      d.push((s / reps) * 1000);
    }
  }
  return [median(d1), median(d2)];
}
const [hot1, hot2] = handoff(0);
const [cold1, cold2] = handoff(0.05);
const [sleep1, sleep2] = handoff(2);
const hot = hot2 - hot1, warm = cold2 - cold1, asleep = sleep2 - sleep1;
console.log(
  `hand-off of a 2-part job (median over ${ROUNDS} rounds of 200): back to back ${hot.toFixed(1)} us, ` +
    `after 50 us of JS ${warm.toFixed(1)} us, after a 2 ms pause ${asleep.toFixed(1)} us`,
);

// 2. the micro-kernel's rate
const [M, N, K] = [128, 512, 128];
const a = one.alloc(M * K), b = one.alloc(K * N), c = one.alloc(M * N);
const g = () => one.gemm(a, b, c, { M, N, K, transA: false, transB: false, accumulate: false });
const rate = (M * N * K) / (median(Array.from({ length: 31 }, () => {
  const t0 = performance.now();
  g();
  return performance.now() - t0;
})) * 1000);
console.log(`gemm ${M}x${N}x${K} on 1 thread: ${(rate / 1000).toFixed(1)} G multiply-adds/s`);

// 3. break-even
const cost = Math.max(hot, warm);
console.log(
  `break-even: work of 2 x ${cost.toFixed(1)} us = ${(2 * cost * rate / 1e6).toFixed(2)} M multiply-adds ` +
    `(2^${Math.log2(2 * cost * rate).toFixed(1)}); the default minSplitWork is 2^21 = 2.1 M`,
);

// 4. the check: gemm M x 256 x 128 around the threshold, 1 thread vs 2 (with 50 us of JS between calls)
const cases = [];
for (const m of [2, 4, 8, 16, 32, 64]) {
  for (const [name, be] of [["1", one], ["2", two]] as const) {
    const x = be.alloc(m * 128), w = be.alloc(128 * 256), y = be.alloc(m * 256);
    cases.push({
      name: `${m}|${name}`,
      fn: () => {
        spin(0.05);
        be.gemm(x, w, y, { M: m, N: 256, K: 128, transA: false, transB: false, accumulate: false });
      },
      reps: 50,
    });
  }
}
const res = interleave(cases, { rounds: ROUNDS });
console.log(
  "\n| gemm M x 256 x 128 | M multiply-adds | 1 thread us | 2 threads us | speed-up |\n|---|---:|---:|---:|---:|",
);
for (const m of [2, 4, 8, 16, 32, 64]) {
  const t1 = (res.get(`${m}|1`)!.median - 0.05) * 1000, t2 = (res.get(`${m}|2`)!.median - 0.05) * 1000;
  console.log(
    `| M = ${m} | ${(m * 256 * 128 / 1e6).toFixed(3)} | ${t1.toFixed(1)} | ${t2.toFixed(1)} | ${
      (t1 / t2).toFixed(2)
    }x |`,
  );
}
one.dispose();
two.dispose();
