/**
 * dds' forward on a few rows reads the weight in place (asm/dds_rows.ts, no packed copy): checked against
 * a float64 reference at every small M, block size and layout edge (an empty block row, one block, full
 * density), with and without accumulation, on both builds; bit for bit equal to the packed kernel (a
 * row's output does not depend on the batch it is in or the kernel that ran it) and to one thread; and
 * bad input still fails in the op, before any kernel.
 */
import type { BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import { flatBlockButterfly, randomMask } from "../src/masks/patterns.ts";
import { Rng } from "../src/random.ts";
import { dds } from "../src/ops.ts";
import { tensor } from "../src/tensor.ts";
import { assertEquals, assertOk, assertThrows } from "./_assert.ts";

const rng = new Rng(12);
const rnd = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() - 0.5);

// Y = X·Wᵀ (+ Y0) in float64 over the BSR walk
function reference(x: Float32Array, w: Float32Array, l: BlockLayout, M: number, y0?: Float32Array) {
  const b = l.block, K = l.cols * b, N = l.rows * b;
  const y = Float64Array.from(y0 ?? new Float32Array(M * N));
  for (let m = 0; m < M; m++) {
    for (let i = 0; i < l.rows; i++) {
      for (let e = l.rowPtr[i]; e < l.rowPtr[i + 1]; e++) {
        const j = l.colIdx[e];
        for (let r = 0; r < b; r++) {
          let s = 0;
          for (let c = 0; c < b; c++) s += x[m * K + j * b + c] * w[(e * b + r) * b + c];
          y[m * N + i * b + r] += s;
        }
      }
    }
  }
  return y;
}

function layouts(): [string, BlockLayout][] {
  const empty = new Uint8Array(5 * 3).fill(1);
  empty.fill(0, 3, 6); // block row 1 keeps nothing
  return [
    [
      "butterfly b32",
      flatBlockButterfly({ outFeatures: 256, inFeatures: 128, block: 32, butterflySize: 4, nFactors: 1 })
        .toBSR(),
    ],
    [
      "random b16",
      randomMask({ outFeatures: 96, inFeatures: 160, block: 16, density: 0.3, seed: 4 }).toBSR(),
    ],
    // b20: a row of X runs sixteen columns at a time, then the last four (rows1x16, then rows1)
    [
      "random b20",
      randomMask({ outFeatures: 60, inFeatures: 100, block: 20, density: 0.4, seed: 5 }).toBSR(),
    ],
    ["empty block row b8", new BlockMask(5, 3, 8, empty).toBSR()],
    ["one block b4", new BlockMask(1, 1, 4, [1]).toBSR()],
    ["full b12", new BlockMask(2, 3, 12, new Uint8Array(6).fill(1)).toBSR()],
  ];
}

// One small-M forward on a fresh weight buffer (no packed copy yet): the in-place kernel
function inPlace(
  be: WasmBackend,
  x: Float32Array,
  w: Float32Array,
  l: BlockLayout,
  M: number,
  y0?: Float32Array,
) {
  const wb = be.upload(w), xb = be.upload(x), N = l.rows * l.block;
  const y = y0 ? be.upload(y0) : be.alloc(M * N);
  be.dds(xb, wb, y, { M, layout: l, transW: true, accumulate: y0 !== undefined });
  const out = be.readSync(y);
  for (const t of [wb, xb, y]) be.free(t);
  return out;
}

// The same product through the packed kernel: a forward on 9 rows packs the weight, then M rows reuse it
function packed(
  be: WasmBackend,
  x: Float32Array,
  w: Float32Array,
  l: BlockLayout,
  M: number,
  y0?: Float32Array,
) {
  const K = l.cols * l.block, N = l.rows * l.block;
  const wb = be.upload(w), big = be.alloc(9 * K), ybig = be.alloc(9 * N);
  be.dds(big, wb, ybig, { M: 9, layout: l, transW: true, accumulate: false });
  const xb = be.upload(x), y = y0 ? be.upload(y0) : be.alloc(M * N);
  be.dds(xb, wb, y, { M, layout: l, transW: true, accumulate: y0 !== undefined });
  const out = be.readSync(y);
  for (const t of [wb, big, ybig, xb, y]) be.free(t);
  return out;
}

for (const variant of ["relaxed", "simd128"] as const) {
  Deno.test(`dds rows (${variant}): against float64, bit for bit with the packed kernel`, async () => {
    const be = await createWasmBackend({ variant, threads: 1 });
    for (const [name, l] of layouts()) {
      const K = l.cols * l.block, N = l.rows * l.block, n = l.nnz * l.block * l.block;
      for (const M of [1, 2, 3, 4, 5, 7, 8]) {
        for (const acc of [false, true]) {
          const x = rnd(M * K), w = rnd(n), y0 = acc ? rnd(M * N) : undefined;
          const got = inPlace(be, x, w, l, M, y0);
          const ref = reference(x, w, l, M, y0);
          for (let i = 0; i < ref.length; i++) {
            const tol = 1e-5 + 1e-5 * Math.abs(ref[i]);
            if (!(Math.abs(got[i] - ref[i]) <= tol)) {
              throw new Error(`${name} M ${M} acc ${acc}: y[${i}] = ${got[i]}, float64 reference ${ref[i]}`);
            }
          }
          assertEquals(
            got,
            packed(be, x, w, l, M, y0),
            `${name} M ${M} acc ${acc}: differs from the packed kernel`,
          );
        }
      }
    }
    be.dispose();
  });
}

Deno.test("dds rows: up to 8 rows on an unpacked weight make no packed copy; 9 rows, or a second forward, do", async () => {
  const l = flatBlockButterfly({
    outFeatures: 256,
    inFeatures: 256,
    block: 32,
    butterflySize: 8,
    nFactors: 2,
  })
    .toBSR();
  const K = l.cols * l.block, N = l.rows * l.block, packedBytes = l.nnz * l.block * l.block * 4;
  for (const M of [1, 8, 9]) {
    // a fresh backend (no free holes): anything dds reserves moves the heap's top
    const be = await createWasmBackend({ threads: 1 });
    const wb = be.upload(rnd(l.nnz * l.block * l.block)), xb = be.upload(rnd(M * K)), y = be.alloc(M * N);
    // sdd copies the layout's indices into memory first, so dds reserves nothing for them
    const a = be.alloc(l.rows * l.block), c = be.alloc(l.cols * l.block), g = be.alloc(l.nnz * l.block ** 2);
    be.sdd(a, c, g, { layout: l, K: 1, transA: true, transB: false, accumulate: false });
    const top = be.heapTop;
    be.dds(xb, wb, y, { M, layout: l, transW: true, accumulate: false });
    const grew = be.heapTop - top;
    if (M <= 8) assertEquals(grew, 0, `M ${M}: dds reserved ${grew} bytes`);
    else assertOk(grew >= packedBytes, `M ${M}: dds reserved ${grew} bytes, less than a packed copy`);
    // a second forward on the same weight packs it (the packed kernel is faster on repeated calls)
    const top2 = be.heapTop;
    be.dds(xb, wb, y, { M, layout: l, transW: true, accumulate: false });
    if (M <= 8) assertOk(be.heapTop - top2 >= packedBytes, `M ${M}: the second call did not pack`);
    // and after a change of the weight, the first few-row forward reads it in place again
    if (M <= 8) {
      be.scale(wb, wb, { size: l.nnz * l.block ** 2, alpha: 2, beta: 0, accumulate: false });
      const y1 = be.readSync(y);
      be.dds(xb, wb, y, { M, layout: l, transW: true, accumulate: false });
      const y2 = be.readSync(y);
      assertEquals(y2, y1.map((v) => 2 * v), `M ${M}: after scaling the weight by 2`);
    }
    be.dispose();
  }
});

Deno.test("dds rows: 2 and 3 threads agree bit for bit with one thread", async () => {
  const one = await createWasmBackend({ threads: 1 });
  const l = randomMask({ outFeatures: 192, inFeatures: 128, block: 16, density: 0.4, seed: 2 }).toBSR();
  const M = 5, x = rnd(M * 128), w = rnd(l.nnz * 256);
  const want = inPlace(one, x, w, l, M);
  for (const threads of [2, 3]) {
    const many = await createWasmBackend({ threads, minSplitWork: 0 });
    try {
      assertEquals(inPlace(many, x, w, l, M), want, `${threads} threads`);
      assertOk(many.threadStats.parts > 1, `${threads} threads: the product was not split`);
    } finally {
      many.dispose();
    }
  }
  one.dispose();
});

Deno.test("dds rows: a first forward on the default backend starts no Worker to split it", async () => {
  // "auto" threads start their Workers when a kernel first splits; even with every kernel splitting
  // (minSplitWork 0), the in-place few-row forward stays on the calling thread while no Worker runs
  const be = await createWasmBackend({ minSplitWork: 0 });
  try {
    const l = randomMask({ outFeatures: 192, inFeatures: 128, block: 16, density: 0.4, seed: 2 }).toBSR();
    const x = rnd(8 * 128), w = rnd(l.nnz * 256);
    const one = await createWasmBackend({ threads: 1 });
    assertEquals(inPlace(be, x, w, l, 8), inPlace(one, x, w, l, 8));
    one.dispose();
    assertEquals(be.threadStats.parts, 0, "the forward was split (a Worker was started for it)");
  } finally {
    be.dispose();
  }
});

Deno.test("dds rows: bad input fails in the op before any kernel", async () => {
  const { disposeBackend, setBackend } = await import("../src/backends/select.ts");
  await setBackend("wasm");
  const mask = flatBlockButterfly({
    outFeatures: 64,
    inFeatures: 64,
    block: 16,
    butterflySize: 4,
    nFactors: 1,
  });
  const w = tensor(rnd(mask.nnz * 256), [mask.nnz, 16, 16]);
  assertThrows(() => dds(tensor(rnd(60), [1, 60]), w, mask), RangeError, "64");
  assertThrows(() => dds(tensor(rnd(64), [1, 64]), tensor(rnd(256), [1, 16, 16]), mask), RangeError);
  await setBackend("js");
  disposeBackend("wasm");
});
