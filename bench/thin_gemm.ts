/**
 * The wasm backend's thin products (one of M, N, K small) against the routing before asm/thin.ts's
 * register-tiled kernels, interleaved in one run: "tiled" is the default (gemmThin's 6x8 tiles reading
 * both operands in place for C = Aᵀ·B with N of 5 to 16 (to 32 for K >= 512), or M of 3 to 32 with
 * K >= 1024 and N <= 256; the other shapes as "old"), "old" the routing before them
 * (`thinProducts = "legacy"`: the unpacked gemmDot / gemmRows / gemmCols for a dimension under 4 to 10, the
 * packed GEMM above), with the packed GEMM alone as a third column. Each figure is a median ms per call,
 * with GFLOP/s as a fraction of this machine's WASM FMA ceiling measured in the same run (bench/_peak.ts).
 * On one thread the clock is this process's CPU time (steadier on a shared machine); with `--threads n`
 * it is the wall clock and the ceiling is n times the one-thread one. Shapes whose "tiled" and "old" take
 * the same path show the run's noise. The shapes are the training steps' low-rank and gate products
 * (the demo's Pixelfly Mixer shapes at rank 16 - the demo itself now uses rank 8; PixelflyLinear
 * 1024->4096 rank 32 at batch 256; the Pixelfly MLP 784-2048-2048-10's at batch 128 with its head's 10
 * classes; a gate's single column) and the limits' edges. B is written before every call (a new version,
 * as an activation or an updated weight in a training step), so the packed GEMM packs it every time.
 *
 * Run: `deno run bench/thin_gemm.ts [--rounds 9] [--threads 1] [--only 512x16]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { type Case, interleave, repsFor, threadCpuClock } from "./_interleave.ts";
import { peakCases } from "./_peak.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "9" },
    threads: { type: "string", default: "1" },
    only: { type: "string", default: "" },
  },
});
const threads = Number(values.threads);
const be = await createWasmBackend({ threads });
// [M, N, K, transA, transB]
const shapes: [number, number, number, boolean, boolean][] = [
  // the Pixelfly Mixer step's shapes at rank 16 (the demo now uses rank 8; 2048 rows of tokens x channels,
  // 512 and 128 wide)
  [512, 16, 2048, true, false],
  [16, 512, 2048, true, false],
  [2048, 512, 16, false, false],
  [2048, 512, 16, false, true],
  [2048, 16, 512, false, false],
  [2048, 16, 512, false, true],
  [128, 16, 2048, true, false],
  [16, 128, 2048, true, false],
  [2048, 16, 128, false, false],
  [2048, 128, 16, false, false],
  // its dense token-mixing layer (16 -> 64 over 16384 rows)
  [16, 64, 16384, true, false],
  [64, 16, 16384, true, false],
  // a gate: one column (its logit, its dx, its weight gradient)
  [2048, 1, 512, false, true],
  [2048, 512, 1, false, false],
  [1, 512, 2048, true, false],
  // PixelflyLinear 1024->4096 rank 32 at batch 256
  [256, 32, 1024, false, true],
  [256, 4096, 32, false, false],
  [32, 4096, 256, true, false],
  [256, 32, 4096, false, false],
  [256, 1024, 32, false, false],
  [32, 1024, 256, true, false],
  [4096, 32, 256, true, false],
  [1, 1024, 256, true, false],
  [256, 1, 1024, false, true],
  // the Pixelfly MLP 784-2048-2048-10 step's (batch 128, rank 32, a gated layer's 33 = rank + gate, the head's
  // 10 classes)
  [2048, 32, 128, true, false],
  [128, 2048, 32, false, true],
  [33, 2048, 128, false, false],
  [32, 128, 2048, true, true],
  [128, 32, 2048, false, false],
  [128, 10, 2048, false, true],
  [10, 2048, 128, true, false],
  [128, 2048, 10, false, false],
  [128, 1, 2048, false, true],
  // edges: odd sizes, a head's 10 classes, dimension 33 (the old paths)
  [127, 10, 784, false, true],
  [10, 784, 127, true, false],
  [127, 784, 10, false, false],
  [999, 17, 333, false, false],
  [333, 31, 999, true, false],
  [2048, 33, 512, false, true],
];
const rnd = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
const paths = [["tiled", true], ["old", "legacy"], ["packed", false]] as const;
const cases: Case[] = await peakCases();
const keys: string[] = [];
const only = values.only;
// Cases are grouped by path, not by shape: a case right after another on the same operands would find
// them in cache, so each case follows the previous shape's case of the same path (and all start cold).
const made = shapes.map(([M, N, K, transA, transB]) => {
  const key = `${M}x${N}x${K}${transA ? " tA" : ""}${transB ? " tB" : ""}`;
  if (only && !key.includes(only)) return undefined;
  keys.push(key);
  const bv = rnd(K * N);
  const a = be.upload(rnd(M * K)), b = be.upload(bv), c = be.alloc(M * N);
  return { key, a, b, b0: bv.subarray(0, 1), c, p: { M, N, K, transA, transB, accumulate: false } };
});
for (const [name, mode] of paths) {
  for (const m of made) {
    if (m === undefined) continue;
    const { a, b, b0, c, p } = m;
    const fn = () => {
      be.thinProducts = mode;
      // B written first: a new version each call, as in a training step (an activation, or a weight
      // updated since), so the packed GEMM packs it each call instead of reusing its packed copy
      be.write(b, b0);
      be.gemm(a, b, c, p);
    };
    cases.push({ name: `${m.key}|${name}`, fn, reps: repsFor(fn, 5), flops: 2 * p.M * p.N * p.K });
  }
}
const clock = threads === 1 ? threadCpuClock() : undefined;
const res = interleave(cases, { rounds: Number(values.rounds), clock });
const peak = cases[0].flops! / (res.get(cases[0].name)!.median * 1e6);
console.log(
  `wasm ${be.variant}, ${be.threads} thread(s); FMA ceiling ${peak.toFixed(1)} GFLOP/s per thread (median)\n`,
);
console.log(
  "| M x N x K | tiled ms | GFLOP/s (of ceiling) | old ms | GFLOP/s (of ceiling) | packed ms | old / tiled |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|");
const ceil = peak * be.threads;
for (const key of keys) {
  const t = (n: string) => res.get(`${key}|${n}`)!.median;
  const gf = (n: string) => {
    const g = cases.find((c) => c.name === `${key}|${n}`)!.flops! / (t(n) * 1e6);
    return `${g.toFixed(1)} (${(g / ceil).toFixed(2)})`;
  };
  console.log(
    `| ${key} | ${t("tiled").toFixed(3)} | ${gf("tiled")} | ${t("old").toFixed(3)} | ${gf("old")} | ${
      t("packed").toFixed(3)
    } | ${(t("old") / t("tiled")).toFixed(2)}x |`,
  );
}
be.dispose();
