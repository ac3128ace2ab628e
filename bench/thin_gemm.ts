/**
 * Where the wasm backend's thin products (asm/thin.ts: gemmDot, gemmRows, gemmCols) beat the packed GEMM:
 * each shape with a small dimension, one thread, both paths interleaved, timed by this process's CPU time
 * (steadier on a shared machine). The limits in src/backends/wasm.ts (THIN_*) come from this table.
 *
 * Run: `deno run bench/thin_gemm.ts [--rounds 9]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { interleave, repsFor, threadCpuClock } from "./_interleave.ts";

const { values } = parseArgs({ args: Deno.args, options: { rounds: { type: "string", default: "9" } } });
const be = await createWasmBackend({ threads: 1 });
// [M, N, K, transA, transB]: the training steps' thin products (gate, head, low rank) and the limits' edges
const shapes: [number, number, number, boolean, boolean][] = [];
for (const d of [1, 4, 10, 16, 24, 32]) {
  shapes.push([128, d, 2048, false, true]); // gate / head forward: x·aᵀ
  shapes.push([2048, d, 512, false, true]);
  shapes.push([128, 2048, d, false, false]); // their dx: dz·a
  shapes.push([2048, 512, d, false, false]);
  shapes.push([d, 2048, 128, true, false]); // their weight gradient: dzᵀ·x
  shapes.push([d, 512, 2048, true, false]);
  shapes.push([2048, d, 512, false, false]); // low rank: x·V with V (K, r)
  shapes.push([2048, d, 128, false, true]); // low rank: h = x·Vᵀ with V (r, K)
  shapes.push([128, d, 784, false, true]);
}
const rnd = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
const cases = [];
for (const [M, N, K, transA, transB] of shapes) {
  const a = be.upload(rnd(M * K)), b = be.upload(rnd(K * N)), c = be.alloc(M * N);
  const p = { M, N, K, transA, transB, accumulate: false };
  const key = `${M}x${N}x${K}${transA ? " tA" : ""}${transB ? " tB" : ""}`;
  for (const thin of [true, false]) {
    const fn = () => {
      be.thinProducts = thin;
      be.gemm(a, b, c, p);
    };
    cases.push({ name: `${key}|${thin ? "thin" : "packed"}`, fn, reps: repsFor(fn, 5) });
  }
}
const res = interleave(cases, { rounds: Number(values.rounds), clock: threadCpuClock() });
console.log("| M x N x K | packed ms | thin ms | packed / thin |\n|---|---:|---:|---:|");
for (let i = 0; i < cases.length; i += 2) {
  const key = cases[i].name.split("|")[0];
  const t = res.get(`${key}|thin`)!.median, g = res.get(`${key}|packed`)!.median;
  console.log(`| ${key} | ${g.toFixed(3)} | ${t.toFixed(3)} | ${(g / t).toFixed(2)}x |`);
}
be.dispose();
