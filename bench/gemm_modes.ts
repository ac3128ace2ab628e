/**
 * The dense gemm's fraction of the ceiling round by round: each round runs the
 * gemm (about 10 ms), then the register-only `relaxed_madd` probe
 * (bench/_peak.ts) right after it. Prints the distribution of the rounds'
 * gemm GFLOP/s over the probe's median (min, median, 90th percentile, max) and
 * the probe's own spread, for the issue's three shapes on one thread, relaxed
 * build.
 *
 *   deno run bench/gemm_modes.ts [--rounds 60]
 *
 * Why: on the 2-vCPU Zen 3 VM the same gemm on the same buffers in one
 * process swings between about 0.45 and 0.9 of the ceiling over a few hundred
 * milliseconds while the register-only probe stays within a few percent (a
 * machine state outside the process: the probe touches no memory, the gemm
 * does). A median over a run then says more about the machine than about the
 * kernel; the upper percentiles show what the kernel does when the memory
 * system is not contended.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { peakProbe } from "./_peak.ts";
import { shapeName, SHAPES } from "./_shapes.ts";

const { values } = parseArgs({ args: Deno.args, options: { rounds: { type: "string", default: "60" } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 2) {
  throw new RangeError(`gemm_modes: --rounds ${rounds} must be >= 2`);
}

let seed = 1;
const rnd = (n: number) =>
  Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5);
const be = await createWasmBackend({ threads: 1 });
const probe = await peakProbe();
for (let i = 0; i < 50; i++) probe.fma(100_000, 0.999, 1e-3);
const PROBE_N = 300_000; // about 2.5 ms at the ceiling
const q = (xs: number[], f: number) =>
  [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(f * xs.length))];

console.log(`gemm fraction of the ceiling per round (gemm, then the probe), 1 thread, ${rounds} rounds`);
console.log("| shape | min | median | p90 | max | ceiling GFLOP/s: median (min-max) |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const s of SHAPES) {
  const { M, K, N } = s;
  const a = be.upload(rnd(M * K)), w = be.upload(rnd(K * N)), c = be.alloc(M * N);
  const run = () => be.gemm(a, w, c, { M, N, K, transA: false, transB: false, accumulate: false });
  // enough calls per round for about 10 ms of work
  const reps = Math.max(1, Math.round(10e-3 * 35e9 / (2 * M * N * K)));
  for (let i = 0; i < 3; i++) run();
  const frac: number[] = [], peak: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    for (let q = 0; q < reps; q++) run();
    const g = (reps * 2 * M * N * K) / (performance.now() - t0) / 1e6;
    t0 = performance.now();
    probe.fma(PROBE_N, 0.999, 1e-3);
    const p = (PROBE_N * probe.fmaFlops) / (performance.now() - t0) / 1e6;
    frac.push(g);
    peak.push(p);
  }
  const ceiling = q(peak, 0.5);
  for (let i = 0; i < frac.length; i++) frac[i] /= ceiling;
  be.free(a), be.free(w), be.free(c);
  const f2 = (x: number) => x.toFixed(2);
  console.log(
    `| ${shapeName(s)} | ${f2(q(frac, 0))} | ${f2(q(frac, 0.5))} | ${f2(q(frac, 0.9))} | ${
      f2(q(frac, 1))
    } | ${ceiling.toFixed(1)} (${q(peak, 0).toFixed(1)}-${q(peak, 1).toFixed(1)}) |`,
  );
}
