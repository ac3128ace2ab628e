/**
 * The 10,000-step memory check of the wasm backend at PixelflyLinear size
 * (1024 -> 4096, flat butterfly B=16 f=2 at block 32, rank 32): every step
 * allocates its activations and gradients and frees them, as an autograd tape
 * does; linear memory must stay flat after the first steps.
 *
 * Run: `deno run bench/wasm_memory.ts [steps=10000] [batch=32]`
 *
 * @module
 */
import { createWasmBackend } from "../src/backends/wasm.ts";
import { Rng } from "../src/random.ts";
import { butterflyLayout, PIXELFLY } from "./_shapes.ts";

const steps = Number(Deno.args[0] ?? 10000), M = Number(Deno.args[1] ?? 32);
const { K, N } = PIXELFLY.shape, r = PIXELFLY.rank;
const l = butterflyLayout(PIXELFLY.shape, PIXELFLY.block, PIXELFLY.butterflySize, PIXELFLY.nFactors);
const be = await createWasmBackend();
const rng = new Rng(1);
const rnd = (n: number) => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * 0.02);
const w = be.upload(rnd(l.nnz * l.block * l.block)), u = be.upload(rnd(N * r)), v = be.upload(rnd(r * K));
const x0 = rnd(M * K);
let mem10 = 0, top10 = 0;
const t0 = performance.now();
for (let step = 0; step < steps; step++) {
  const x = be.upload(x0), y = be.alloc(M * N), h = be.alloc(M * r);
  be.dds(x, w, y, { M, layout: l, transW: true, accumulate: false });
  be.gemm(x, v, h, { M, N: r, K, transA: false, transB: true, accumulate: false });
  be.gemm(h, u, y, { M, N, K: r, transA: false, transB: true, accumulate: true });
  const dy = be.alloc(M * N);
  be.scale(y, dy, { size: M * N, alpha: 1e-3, beta: 0, accumulate: false });
  const dx = be.alloc(M * K), dw = be.alloc(l.nnz * l.block * l.block);
  be.dds(dy, w, dx, { M, layout: l, transW: false, accumulate: false });
  be.sdd(dy, x, dw, { layout: l, K: M, transA: true, transB: false, accumulate: false });
  const dh = be.alloc(M * r), du = be.alloc(N * r), dv = be.alloc(r * K);
  be.gemm(dy, u, dh, { M, N: r, K: N, transA: false, transB: false, accumulate: false });
  be.gemm(dy, h, du, { M: N, N: r, K: M, transA: true, transB: false, accumulate: false });
  be.gemm(dh, x, dv, { M: r, N: K, K: M, transA: true, transB: false, accumulate: false });
  be.gemm(dh, v, dx, { M, N: K, K: r, transA: false, transB: false, accumulate: true });
  be.scale(dw, w, { size: dw.size, alpha: -1e-3, beta: 0, accumulate: true });
  be.scale(du, u, { size: du.size, alpha: -1e-3, beta: 0, accumulate: true });
  be.scale(dv, v, { size: dv.size, alpha: -1e-3, beta: 0, accumulate: true });
  for (const b of [x, y, h, dy, dx, dw, dh, du, dv]) be.free(b);
  if (step === 9) {
    mem10 = be.memoryBytes;
    top10 = be.heapTop;
  }
}
const s = (performance.now() - t0) / 1000;
console.log(
  `${steps} steps (batch ${M}, ${K}->${N}, nnz ${l.nnz}, rank ${r}) in ${s.toFixed(1)} s: ` +
    `linear memory ${mem10} bytes after 10 steps, ${be.memoryBytes} after ${steps}; ` +
    `heap top ${top10} -> ${be.heapTop}; live buffers ${be.liveBuffers}`,
);
if (be.memoryBytes !== mem10 || be.heapTop !== top10) Deno.exit(1);
