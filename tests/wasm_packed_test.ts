/**
 * The wasm backend packs a dds weight once per update and reuses the packed
 * copy: every way of changing the weight between calls (an optimizer step, a
 * write, an in-place kernel, a free and a new buffer at the same address, a
 * different layout) must give the result of the new weight, checked against
 * the js reference; forward and backward of one weight keep separate copies;
 * threads agree bit for bit with one thread.
 */
import { JsBackend } from "../src/backends/js.ts";
import type { Backend, BackendBuffer, BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { flatBlockButterfly, randomMask } from "../src/masks/patterns.ts";
import { Rng } from "../src/random.ts";
import { assertClose, assertEquals } from "./_assert.ts";

const rng = new Rng(5);
const rnd = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() - 0.5);

function ddsOn(be: Backend, x: Float32Array, w: Float32Array, l: BlockLayout, M: number, transW: boolean) {
  const xb = be.upload(x), wb = be.upload(w), y = be.alloc(M * (transW ? l.rows : l.cols) * l.block);
  be.dds(xb, wb, y, { M, layout: l, transW, accumulate: false });
  return be.read(y);
}

async function check(
  wasm: WasmBackend,
  wb: BackendBuffer,
  w: Float32Array,
  l: BlockLayout,
  M: number,
  label: string,
): Promise<void> {
  const js = new JsBackend();
  for (const transW of [true, false]) {
    const x = rnd(M * (transW ? l.cols : l.rows) * l.block);
    const y = wasm.alloc(M * (transW ? l.rows : l.cols) * l.block);
    wasm.dds(wasm.upload(x), wb, y, { M, layout: l, transW, accumulate: false });
    assertClose(await wasm.read(y), await ddsOn(js, x, w, l, M, transW), {
      atol: 1e-4,
      rtol: 1e-4,
      label: `${label} transW ${transW}`,
    });
  }
}

Deno.test("wasm dds: the packed weight follows every change of the weight", async () => {
  const be = await createWasmBackend();
  using _dispose = { [Symbol.dispose]: () => be.dispose() }; // no Worker outlives the test
  const l = flatBlockButterfly({ outFeatures: 128, inFeatures: 64, block: 16, butterflySize: 4, nFactors: 1 })
    .toBSR();
  const n = l.nnz * l.block * l.block, M = 13;
  let w: Float32Array = rnd(n);
  const wb = be.upload(w);
  await check(be, wb, w, l, M, "first use");
  await check(be, wb, w, l, M, "unchanged");
  // an in-place kernel: w = 2w + 0.25
  be.scale(wb, wb, { size: n, alpha: 2, beta: 0.25, accumulate: false });
  w = w.map((v) => Math.fround(2 * v + 0.25));
  await check(be, wb, w, l, M, "after scale");
  // an optimizer step
  const g = rnd(n), m = be.alloc(n), v = be.alloc(n);
  be.sgd(wb, be.upload(g), m, {
    size: n,
    lr: 0.5,
    momentum: 0,
    dampening: 0,
    nesterov: false,
    weightDecay: 0,
    first: true,
  });
  w = w.map((x, i) => Math.fround(x - Math.fround(0.5 * g[i])));
  await check(be, wb, w, l, M, "after sgd");
  be.adamw(wb, be.upload(g), m, v, {
    size: n,
    lr: 0.1,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0,
    step: 1,
  });
  w = await be.read(wb);
  await check(be, wb, w, l, M, "after adamw");
  // a write from the host
  w = rnd(n);
  be.write(wb, w);
  await check(be, wb, w, l, M, "after write");
  // another layout of the same shape on the same buffer
  const l2 = randomMask({
    outFeatures: 128,
    inFeatures: 64,
    block: 16,
    density: l.nnz / (l.rows * l.cols),
    seed: 3,
  })
    .toBSR();
  assertEquals(l2.nnz, l.nnz);
  await check(be, wb, w, l2, M, "other layout");
  // freed, then a new buffer (likely at the same address) with other values
  be.free(wb);
  w = rnd(n);
  const wb2 = be.upload(w);
  await check(be, wb2, w, l2, M, "new buffer");
});

Deno.test("wasm dds: packed weights on 2 and 3 threads agree bit for bit with one thread", async () => {
  const one = await createWasmBackend({ threads: 1 });
  const l = randomMask({ outFeatures: 96, inFeatures: 160, block: 8, density: 0.3, seed: 9 }).toBSR();
  const M = 37, w = rnd(l.nnz * 64);
  for (const threads of [2, 3]) {
    const many = await createWasmBackend({ threads, minSplitWork: 0 });
    try {
      for (const transW of [true, false]) {
        const x = rnd(M * (transW ? l.cols : l.rows) * 8);
        const ys: Float32Array[] = [];
        for (const be of [one, many]) {
          const wb = be.upload(w), xb = be.upload(x), y = be.alloc(M * (transW ? l.rows : l.cols) * 8);
          for (let r = 0; r < 2; r++) be.dds(xb, wb, y, { M, layout: l, transW, accumulate: r > 0 });
          ys.push(await be.read(y));
        }
        assertEquals(ys[1], ys[0]);
      }
    } finally {
      many.dispose();
    }
  }
});

// W (+)= op(A)·op(B) on the kept blocks, in float64: a is (R,K) or (K,R), b is (K,C) or (C,K).
function sdd64(
  a: Float32Array,
  b: Float32Array,
  w0: Float32Array,
  l: BlockLayout,
  K: number,
  transA: boolean,
  transB: boolean,
  accumulate: boolean,
): Float64Array {
  const bs = l.block, R = l.rows * bs, C = l.cols * bs, out = new Float64Array(l.nnz * bs * bs);
  for (let i = 0; i < l.rows; i++) {
    for (let e = l.rowPtr[i]; e < l.rowPtr[i + 1]; e++) {
      const j = l.colIdx[e];
      for (let r = 0; r < bs; r++) {
        for (let c = 0; c < bs; c++) {
          const row = i * bs + r, col = j * bs + c, o = (e * bs + r) * bs + c;
          let s = accumulate ? w0[o] : 0;
          for (let k = 0; k < K; k++) {
            s += (transA ? a[k * R + row] : a[row * K + k]) * (transB ? b[col * K + k] : b[k * C + col]);
          }
          out[o] = s;
        }
      }
    }
  }
  return out;
}

Deno.test("wasm sdd: K over several passes (of 256) matches float64 and agrees bit for bit on 1 to 4 threads", async () => {
  const bes = [await createWasmBackend({ threads: 1 })];
  for (const threads of [2, 3, 4]) bes.push(await createWasmBackend({ threads, minSplitWork: 0 }));
  try {
    for (const [block, K] of [[16, 600], [32, 517], [8, 259]]) {
      const l = randomMask({ outFeatures: 6 * block, inFeatures: 5 * block, block, density: 0.4, seed: K })
        .toBSR();
      const R = l.rows * block, C = l.cols * block;
      for (
        const [transA, transB, accumulate] of [[true, false, false], [true, false, true], [false, true, true]]
      ) {
        const a = rnd(R * K), b = rnd(K * C), w0 = rnd(l.nnz * block * block);
        const label = `b=${block} K=${K} transA=${transA} transB=${transB} acc=${accumulate}`;
        const outs: Float32Array[] = [];
        for (const be of bes) {
          const w = be.upload(w0);
          be.sdd(be.upload(a), be.upload(b), w, { layout: l, K, transA, transB, accumulate });
          outs.push(await be.read(w));
        }
        assertClose(outs[0], sdd64(a, b, w0, l, K, transA, transB, accumulate), {
          atol: 1e-4,
          rtol: 1e-4,
          label,
        });
        for (let t = 1; t < outs.length; t++) assertEquals(outs[t], outs[0], `${label} threads ${t + 1}`);
      }
    }
  } finally {
    for (const be of bes) be.dispose();
  }
});
