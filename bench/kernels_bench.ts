/**
 * Kernel benches of the wasm backend: dense gemm against tfjs-backend-wasm
 * (XNNPACK), and dds forward / dds backward / sdd against dense gemm of the
 * same shape, so `deno bench` prints the ratios. `bench/gflops.ts` turns the
 * same run into GFLOP/s.
 *
 * Run: `deno bench --allow-read --allow-env bench/kernels_bench.ts`
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- deno.json "imports" is the lead's file; pinned here instead
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { UNARY_OPS } from "../src/backends/op_table.ts";
// deno-lint-ignore no-import-prefix
import "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import type { BackendBuffer, BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { Rng } from "../src/random.ts";
import { pixelflyStep, pixelflyStepBuffers } from "./pixelfly_step.ts";
import {
  butterflyLayout,
  densityOf,
  PIXELFLY,
  randomLayout,
  type Shape,
  shapeName,
  SHAPES,
  SPARSE,
} from "./_shapes.ts";

const be = await createWasmBackend();
const be128 = await createWasmBackend({ variant: "simd128" });
// tfjs-backend-wasm reads its .wasm file from node_modules: it needs --allow-read (`deno task bench`
// grants it). Under a plain `deno bench` the peer is skipped, and said so.
let tfReady = false;
if ((await Deno.permissions.query({ name: "read" })).state === "granted") {
  try {
    await tf.setBackend("wasm");
    await tf.ready();
    tfReady = tf.getBackend() === "wasm";
  } catch {
    tfReady = false;
  }
} else {
  console.log("kernels_bench: no read permission, so no tfjs-backend-wasm baseline (run `deno task bench`)");
}

const rng = new Rng(1);
function rnd(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform() - 0.5);
}
function buf(b: typeof be, n: number): BackendBuffer {
  return b.upload(rnd(n));
}

// ---------------------------------------------------------------- dense gemm
for (const s of SHAPES) {
  const group = `gemm ${shapeName(s)}`;
  for (const [label, b] of [["wasm", be], ["wasm simd128 (no FMA)", be128]] as const) {
    const a = buf(b, s.M * s.K), w = buf(b, s.K * s.N), c = b.alloc(s.M * s.N);
    Deno.bench({ group, name: label, baseline: b === be }, () => {
      b.gemm(a, w, c, { M: s.M, N: s.N, K: s.K, transA: false, transB: false, accumulate: false });
    });
  }
  if (tfReady) {
    const a = tf.tensor2d(rnd(s.M * s.K), [s.M, s.K]), w = tf.tensor2d(rnd(s.K * s.N), [s.K, s.N]);
    Deno.bench({ group, name: "tfjs-backend-wasm" }, () => {
      const c = tf.matMul(a, w);
      c.dataSync();
      c.dispose();
    });
  }
}

// ------------------------------------------------------- block-sparse trio
function sparseGroups(s: Shape, layouts: { name: string; l: BlockLayout }[], d: number): void {
  const { M, K, N } = s;
  const x = buf(be, M * K), dy = buf(be, M * N), y = be.alloc(M * N), dx = be.alloc(M * K);
  const wDense = buf(be, N * K), dwDense = be.alloc(N * K);
  const tag = `${shapeName(s)} b${SPARSE.block} d=${d}`;
  const ws = layouts.map(({ l }) => ({
    w: buf(be, l.nnz * l.block * l.block),
    dw: be.alloc(l.nnz * l.block * l.block),
  }));
  Deno.bench({ group: `dds fwd ${tag}`, name: "dense gemm", baseline: true }, () => {
    be.gemm(x, wDense, y, { M, N, K, transA: false, transB: true, accumulate: false });
  });
  layouts.forEach(({ name, l }, i) => {
    Deno.bench({ group: `dds fwd ${tag}`, name: `${name} (d=${densityOf(l).toFixed(4)})` }, () => {
      be.dds(x, ws[i].w, y, { M, layout: l, transW: true, accumulate: false });
    });
  });
  Deno.bench({ group: `dds bwd ${tag}`, name: "dense gemm", baseline: true }, () => {
    be.gemm(dy, wDense, dx, { M, N: K, K: N, transA: false, transB: false, accumulate: false });
  });
  layouts.forEach(({ name, l }, i) => {
    Deno.bench({ group: `dds bwd ${tag}`, name: `${name} (d=${densityOf(l).toFixed(4)})` }, () => {
      be.dds(dy, ws[i].w, dx, { M, layout: l, transW: false, accumulate: false });
    });
  });
  Deno.bench({ group: `sdd ${tag}`, name: "dense gemm", baseline: true }, () => {
    be.gemm(dy, x, dwDense, { M: N, N: K, K: M, transA: true, transB: false, accumulate: false });
  });
  layouts.forEach(({ name, l }, i) => {
    Deno.bench({ group: `sdd ${tag}`, name: `${name} (d=${densityOf(l).toFixed(4)})` }, () => {
      be.sdd(dy, x, ws[i].dw, { layout: l, K: M, transA: true, transB: false, accumulate: false });
    });
  });
}

for (const { d, butterflySize, nFactors } of SPARSE.densities) {
  const s = SPARSE.shape;
  sparseGroups(s, [
    {
      name: `butterfly B${butterflySize} f${nFactors}`,
      l: butterflyLayout(s, SPARSE.block, butterflySize, nFactors),
    },
    { name: "random", l: randomLayout(s, SPARSE.block, d) },
  ], d);
}

// ------------------------------------------- PixelflyLinear forward+backward
{
  const s = PIXELFLY.shape, { M, K, N } = s, r = PIXELFLY.rank;
  const l = butterflyLayout(s, PIXELFLY.block, PIXELFLY.butterflySize, PIXELFLY.nFactors);
  const group = `pixelfly fwd+bwd ${shapeName(s)}`;
  const x = buf(be, M * K), dy = buf(be, M * N), y = be.alloc(M * N), dx = be.alloc(M * K);
  const wD = buf(be, N * K), dwD = be.alloc(N * K);
  Deno.bench({ group, name: "dense linear", baseline: true }, () => {
    be.gemm(x, wD, y, { M, N, K, transA: false, transB: true, accumulate: false });
    be.gemm(dy, wD, dx, { M, N: K, K: N, transA: false, transB: false, accumulate: false });
    be.gemm(dy, x, dwD, { M: N, N: K, K: M, transA: true, transB: false, accumulate: false });
  });
  const sizes = { M, K, N, rank: r, layout: l };
  const bufs = { ...pixelflyStepBuffers(be, sizes, (n) => new Float32Array(n)), x, dy, y, dx };
  for (const b of [bufs.w, bufs.u, bufs.v]) {
    be.write(
      b,
      Float32Array.from({ length: b.size }, (_, i) => Math.sin(i)),
    );
  }
  const name = `pixelfly B${PIXELFLY.butterflySize} f${PIXELFLY.nFactors} + rank ${r} (d=${
    densityOf(l).toFixed(4)
  })`;
  Deno.bench({ group, name }, () => pixelflyStep(be, bufs, sizes));
}

// ------------------------------------------------ two threads against one
{
  const be2 = await createWasmBackend({ threads: 2 });
  for (const s of SHAPES) {
    const group = `threads gemm ${shapeName(s)} (${be2.threads} threads)`;
    for (const [label, b] of [["1 thread", be], ["2 threads", be2]] as const) {
      const a = buf(b, s.M * s.K), w = buf(b, s.K * s.N), c = b.alloc(s.M * s.N);
      Deno.bench({ group, name: label, baseline: b === be }, () => {
        b.gemm(a, w, c, { M: s.M, N: s.N, K: s.K, transA: false, transB: false, accumulate: false });
      });
    }
  }
  const s = SPARSE.shape, { M, K, N } = s;
  const { butterflySize, nFactors } = SPARSE.densities[0];
  const l = butterflyLayout(s, SPARSE.block, butterflySize, nFactors);
  const tag = `${shapeName(s)} b${SPARSE.block} butterfly d=${densityOf(l).toFixed(4)}`;
  for (const transW of [true, false]) {
    const group = `threads dds ${transW ? "fwd" : "bwd"} ${tag}`;
    for (const [label, b] of [["1 thread", be], ["2 threads", be2]] as const) {
      const x = buf(b, M * (transW ? K : N)), y = b.alloc(M * (transW ? N : K));
      const w = buf(b, l.nnz * l.block * l.block);
      Deno.bench({ group, name: label, baseline: b === be }, () => {
        b.dds(x, w, y, { M, layout: l, transW, accumulate: false });
      });
    }
  }
}

// ------------------------------------------- elementwise (128x1024 = 131072)
{
  const n = 128 * 1024;
  const x = buf(be, n), y = be.alloc(n), dy = buf(be, n), dx = be.alloc(n), m = be.alloc(n), v = be.alloc(n);
  const group = "elementwise 131072 elements";
  Deno.bench(
    { group, name: "copy", baseline: true },
    () => be.copy(x, y, { size: n, srcOffset: 0, dstOffset: 0 }),
  );
  for (const op of UNARY_OPS) {
    Deno.bench({ group, name: `unary ${op}` }, () => be.unary(op, x, y, { size: n }));
    Deno.bench({ group, name: `unaryGrad ${op}` }, () => {
      be.unaryGrad(op, x, y, dy, dx, { size: n, accumulate: false });
    });
  }
  Deno.bench(
    { group, name: "binary add row" },
    () => be.binary("add", x, dy, y, { M: 128, N: 1024, bcast: "row" }),
  );
  Deno.bench(
    { group, name: "scale" },
    () => be.scale(x, y, { size: n, alpha: 2, beta: 1, accumulate: true }),
  );
  Deno.bench({ group, name: "sumRows" }, () => be.sumRows(x, y, { M: 128, N: 1024, accumulate: false }));
  Deno.bench({ group, name: "adamw" }, () => {
    be.adamw(y, dy, m, v, {
      size: n,
      lr: 1e-9,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0.01,
      step: 3,
    });
  });
  Deno.bench({ group, name: "sgd momentum" }, () => {
    be.sgd(y, dy, m, {
      size: n,
      lr: 1e-9,
      momentum: 0.9,
      dampening: 0,
      nesterov: false,
      weightDecay: 0.01,
      first: false,
    });
  });
}
