/**
 * The bulk draws of src/random.ts (issue 12's cold start): `Rng.fillUniform` and `uniformBlocks` give,
 * value for value, what per-call `Rng.uniform` gives, on the WebAssembly path and on the JS path (a child
 * with WebAssembly switched off), and BlockSparseLinear's weights are the masked dense draw's values.
 */
import { BlockSparseLinear, flatBlockButterfly, globalMask, Rng, union } from "../mod.ts";
import { uniformBlocks } from "../src/random.ts";
import { JsBackend } from "../src/backends/js.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import { assertEquals, assertOk, assertThrows } from "./_assert.ts";

/** Per-call reference: value q of the walk's stream at its element, rounded to float32. */
function reference(
  seed: number,
  size: number,
  walk: { rows: number; rowStride: number; cols: number; colStride: number; len: number },
  lo: number,
  hi: number,
  scale: number,
): Float32Array {
  const rng = new Rng(seed), out = new Float32Array(size);
  for (let r = 0; r < walk.rows; r++) {
    for (let e = 0; e < walk.cols; e++) {
      for (let k = 0; k < walk.len; k++) {
        out[r * walk.rowStride + e * walk.colStride + k] = rng.uniform(lo, hi) * scale;
      }
    }
  }
  return out;
}

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) return `index ${i}: ${a[i]} vs ${b[i]}`;
  }
  return "";
}

// walks: tile-major (a BSR block row), row-major, strided with gaps, runs longer than a chunk, rows wider than one
const WALKS = [
  {
    name: "tile-major 32x6 tiles of 32",
    size: 6 * 1024,
    walk: { rows: 32, rowStride: 32, cols: 6, colStride: 1024, len: 32 },
  },
  { name: "row-major", size: 7 * 5 * 9, walk: { rows: 7, rowStride: 45, cols: 5, colStride: 9, len: 9 } },
  {
    name: "strided with gaps",
    size: 3 * 1000,
    walk: { rows: 3, rowStride: 1000, cols: 4, colStride: 200, len: 150 },
  },
  {
    name: "one run longer than a chunk",
    size: 200_001,
    walk: { rows: 1, rowStride: 0, cols: 1, colStride: 0, len: 200_001 },
  },
  {
    name: "rows wider than a chunk",
    size: 2 * 3 * 30_000,
    walk: { rows: 2, rowStride: 30_000, cols: 3, colStride: 60_000, len: 30_000 },
  },
  {
    name: "row-major, longer than a chunk",
    size: 300 * 2 * 64,
    walk: { rows: 300, rowStride: 128, cols: 2, colStride: 64, len: 64 },
  },
  {
    name: "many small rows",
    size: 5000 * 3,
    walk: { rows: 5000, rowStride: 3, cols: 1, colStride: 0, len: 3 },
  },
  {
    name: "below the WebAssembly threshold",
    size: 40,
    walk: { rows: 2, rowStride: 20, cols: 2, colStride: 10, len: 10 },
  },
];

Deno.test("uniformBlocks: every walk gives the per-call uniform() values, and the generator continues the same", () => {
  for (const { name, size, walk } of WALKS) {
    const want = reference(9, size, walk, -0.3, 0.7, 1.7);
    const got = new Float32Array(size), rng = new Rng(9);
    uniformBlocks(rng, (v, at) => got.set(v, at), { ...walk, lo: -0.3, hi: 0.7, scale: 1.7 });
    const diff = firstDifference(got, want);
    assertOk(diff === "", `${name}: ${diff}`);
    const after = new Rng(9);
    for (let i = 0; i < walk.rows * walk.cols * walk.len; i++) after.uniform();
    assertEquals(rng.nextUint32(), after.nextUint32(), `${name}: the state after the draw`);
  }
});

Deno.test("Rng.fillUniform: float32 as uniform() rounded, float64 exactly uniform(), a range only", () => {
  for (const n of [1, 255, 256, 70_000]) {
    const a = new Rng(5), b = new Rng(5), out = new Float32Array(n + 3).fill(9);
    a.fillUniform(out, { lo: -2, hi: 3, start: 2, count: n, scale: 0.5 });
    assertEquals(out[0], 9);
    assertEquals(out[1], 9);
    assertEquals(out[n + 2], 9);
    for (let i = 0; i < n; i++) {
      const v = Math.fround(b.uniform(-2, 3) * 0.5);
      assertOk(out[2 + i] === v, `n ${n}, value ${i}: ${out[2 + i]} vs ${v}`);
    }
    const c = new Rng(5), d = new Rng(5), o64 = new Float64Array(n);
    c.fillUniform(o64);
    for (let i = 0; i < n; i++) assertOk(o64[i] === d.uniform(), `float64 n ${n}, value ${i}`);
  }
  const out = new Float32Array(4);
  assertThrows(() => new Rng(1).fillUniform(out, { start: 2, count: 3 }), RangeError, "past the end");
  assertThrows(() => new Rng(1).fillUniform(out, { start: -1, count: 2 }), RangeError, "integers >= 0");
  assertThrows(
    () => uniformBlocks(new Rng(1), () => {}, { rows: 1.5, rowStride: 0, cols: 1, colStride: 0, len: 1 }),
    RangeError,
    "integers >= 0",
  );
});

Deno.test("uniformBlocks: the JS path (no WebAssembly) draws the same values", async () => {
  const url = new URL("../src/random.ts", import.meta.url).href;
  const code = `
    if (typeof WebAssembly !== "undefined") throw new Error("WebAssembly is still there");
    const { Rng, uniformBlocks } = await import(${JSON.stringify(url)});
    const out = [];
    for (const { size, walk } of ${JSON.stringify(WALKS)}) {
      const got = new Float32Array(size), rng = new Rng(9);
      uniformBlocks(rng, (v, at) => got.set(v, at), { ...walk, lo: -0.3, hi: 0.7, scale: 1.7 });
      out.push(Array.from(got.subarray(0, 64)), Array.from(got.subarray(size - 64)), rng.nextUint32());
    }
    console.log(JSON.stringify(out));
  `;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--jitless", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertOk(res.success, new TextDecoder().decode(res.stderr));
  const child = JSON.parse(new TextDecoder().decode(res.stdout));
  const here: unknown[] = [];
  for (const { size, walk } of WALKS) {
    const got = new Float32Array(size), rng = new Rng(9);
    uniformBlocks(rng, (v, at) => got.set(v, at), { ...walk, lo: -0.3, hi: 0.7, scale: 1.7 });
    here.push(Array.from(got.subarray(0, 64)), Array.from(got.subarray(size - 64)), rng.nextUint32());
  }
  assertEquals(child, here);
});

Deno.test("BlockSparseLinear draws only the kept tiles, the values of a masked dense draw, on js and wasm", async () => {
  const be = await createWasmBackend();
  const butterfly = flatBlockButterfly({
    outFeatures: 96,
    inFeatures: 160,
    block: 16,
    butterflySize: 2,
    nFactors: 1,
  });
  const bits = butterfly.bits();
  bits.fill(0, 2 * butterfly.cols, 3 * butterfly.cols); // block row 2 keeps nothing
  const masks = [
    flatBlockButterfly({ outFeatures: 256, inFeatures: 512, block: 32, butterflySize: 8, nFactors: 2 }),
    union(butterfly, globalMask({ outFeatures: 96, inFeatures: 160, block: 16, globalSize: 16 })),
    new BlockMask(butterfly.rows, butterfly.cols, 16, bits),
  ];
  for (const mask of masks) {
    const L = mask.toBSR(), b = mask.block, bb = b * b, K = mask.inFeatures;
    // the reference: row r of block row i walks its kept tiles left to right, one uniform() per value
    const rng = new Rng(11), want = new Float32Array(L.nnz * bb), bound = 1 / Math.sqrt(K);
    for (let i = 0; i < mask.rows; i++) {
      const kept = L.rowPtr[i + 1] - L.rowPtr[i], scale = kept > 0 ? Math.sqrt(mask.cols / kept) : 0;
      for (let r = 0; r < b; r++) {
        for (let e = L.rowPtr[i]; e < L.rowPtr[i + 1]; e++) {
          for (let c = 0; c < b; c++) want[e * bb + r * b + c] = rng.uniform(-bound, bound) * scale;
        }
      }
    }
    for (const backend of [new JsBackend(), be]) {
      const layer = new BlockSparseLinear(mask.inFeatures, mask.outFeatures, { mask, seed: 11, backend });
      const diff = firstDifference(await layer.weight.data(), want);
      assertOk(diff === "", `${backend.name}, ${mask.rows}x${mask.cols} mask: ${diff}`);
    }
  }
});
