/**
 * The bulk draws of src/random.ts (issue 12's cold start): `Rng.fillUniform` and `uniformBlocks` give,
 * value for value, what per-call `Rng.uniform` gives, on the WebAssembly path and on the JS path (a child
 * with WebAssembly switched off), and BlockSparseLinear's weights are the masked dense draw's values.
 */
import { BlockSparseLinear, flatBlockButterfly, globalMask, Rng, union } from "../mod.ts";
import { fnv1a, uniformBlocks, uniformBsr } from "../src/random.ts";
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

// BSR weights: kept tiles per block row (rowPtr), tile edge, with empty rows, uneven rows, odd edges
const BSR_CASES = [
  { name: "1024 -> 4096 butterfly (32 rows of 6 tiles of 32)", block: 32, kept: Array(32).fill(6) },
  { name: "uneven rows, empty rows, odd edge 7", block: 7, kept: [3, 0, 1, 5, 0, 2, 9] },
  { name: "edge 1 (below the WebAssembly threshold)", block: 1, kept: [2, 0, 3] },
  { name: "leading and trailing empty rows, edge 16", block: 16, kept: [0, 0, 4, 1, 0] },
  { name: "no kept tile", block: 8, kept: [0, 0] },
  { name: "a row larger than the module's stage (one 2049 x 2049 tile)", block: 2049, kept: [0, 1] },
];

/** uniformBsr's reference: uniformBlocks block row by block row (the draw a layer made before uniformBsr). */
function bsrByRows(
  seed: number,
  block: number,
  rowPtr: Int32Array,
  rowScale: Float64Array,
): [Float32Array, Rng] {
  const rng = new Rng(seed), bb = block * block, out = new Float32Array(rowPtr[rowPtr.length - 1] * bb);
  for (let i = 0; i + 1 < rowPtr.length; i++) {
    const e0 = rowPtr[i], kept = rowPtr[i + 1] - e0;
    if (kept === 0) continue;
    const walk = { rows: block, rowStride: block, cols: kept, colStride: bb, len: block };
    uniformBlocks(rng, (v, at) => out.set(v, e0 * bb + at), {
      ...walk,
      lo: -0.2,
      hi: 0.3,
      scale: rowScale[i],
    });
  }
  return [out, rng];
}

function rowPtrOf(kept: number[]): Int32Array {
  const p = new Int32Array(kept.length + 1);
  kept.forEach((k, i) => p[i + 1] = p[i] + k);
  return p;
}

Deno.test("uniformBsr: the values of uniformBlocks block row by block row, and the generator continues the same", () => {
  for (const { name, block, kept } of BSR_CASES) {
    const rowPtr = rowPtrOf(kept), rowScale = Float64Array.from(kept, (_, i) => 1 + i / 3);
    const [want, after] = bsrByRows(3, block, rowPtr, rowScale);
    const got = new Float32Array(want.length).fill(NaN), rng = new Rng(3);
    uniformBsr(rng, (v, at) => got.set(v, at), { block, rowPtr, rowScale, lo: -0.2, hi: 0.3 });
    const diff = firstDifference(got, want);
    assertOk(diff === "", `${name}: ${diff}`);
    assertEquals(rng.nextUint32(), after.nextUint32(), `${name}: the state after the draw`);
  }
  // no rowScale: every row's factor is 1
  const rowPtr = rowPtrOf([2, 3]), ones = new Float64Array(2).fill(1);
  const [want] = bsrByRows(4, 8, rowPtr, ones), got = new Float32Array(want.length);
  uniformBsr(new Rng(4), (v, at) => got.set(v, at), { block: 8, rowPtr, lo: -0.2, hi: 0.3 });
  assertEquals(firstDifference(got, want), "");
  const sink = () => {};
  assertThrows(() => uniformBsr(new Rng(1), sink, { block: 0, rowPtr }), RangeError, "uniformBsr: block");
  assertThrows(
    () => uniformBsr(new Rng(1), sink, { block: 2, rowPtr: new Int32Array([0, 2, 1]) }),
    RangeError,
    "must not decrease",
  );
  assertThrows(
    () => uniformBsr(new Rng(1), sink, { block: 2, rowPtr: [0, 1] as unknown as Int32Array }),
    TypeError,
    "rowPtr",
  );
  assertThrows(
    () => uniformBsr(new Rng(1), sink, { block: 2, rowPtr, rowScale: new Float64Array(3) }),
    TypeError,
    "rowScale",
  );
});

Deno.test("uniformBsr: the JS path (no WebAssembly) draws the same values", async () => {
  const url = new URL("../src/random.ts", import.meta.url).href;
  const cases = BSR_CASES.slice(0, 5);
  const code = `
    if (typeof WebAssembly !== "undefined") throw new Error("WebAssembly is still there");
    const { Rng, uniformBsr } = await import(${JSON.stringify(url)});
    const out = [];
    for (const { block, kept } of ${JSON.stringify(cases)}) {
      const rowPtr = new Int32Array(kept.length + 1);
      kept.forEach((k, i) => rowPtr[i + 1] = rowPtr[i] + k);
      const rowScale = Float64Array.from(kept, (_, i) => 1 + i / 3), rng = new Rng(3);
      const got = new Float32Array(rowPtr[kept.length] * block * block);
      uniformBsr(rng, (v, at) => got.set(v, at), { block, rowPtr, rowScale, lo: -0.2, hi: 0.3 });
      out.push(Array.from(got), rng.nextUint32());
    }
    console.log(JSON.stringify(out));
  `;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--jitless", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertOk(res.success, new TextDecoder().decode(res.stderr));
  const here: unknown[] = [];
  for (const { block, kept } of cases) {
    const rowPtr = rowPtrOf(kept),
      [want, after] = bsrByRows(3, block, rowPtr, Float64Array.from(kept, (_, i) => 1 + i / 3));
    here.push(Array.from(want), after.nextUint32());
  }
  assertEquals(JSON.parse(new TextDecoder().decode(res.stdout)), here);
});

Deno.test("BlockSparseLinear draws only the kept tiles, the values of a masked dense draw, on js and wasm", async () => {
  const be = await createWasmBackend();
  using _dispose = { [Symbol.dispose]: () => be.dispose() }; // no Worker outlives the test
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

Deno.test("fnv1a: the plain FNV-1a loop's value on every length (WebAssembly path, chunked, and JS below it)", async () => {
  const lengths = [0, 1, 63, 64, 65, 1000, (1 << 14) - 1, 1 << 14, (1 << 14) + 5, 100_003];
  const rng = new Rng(8);
  const arrays = lengths.map((n) => Int32Array.from({ length: n }, () => rng.nextUint32() | 0));
  const plain = (h: number, a: Int32Array) => {
    for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i], 0x01000193);
    return h >>> 0;
  };
  for (const a of arrays) {
    for (const h of [0x811c9dc5, 0, -1, 123456789]) {
      assertEquals(fnv1a(h, a), plain(h, a), `length ${a.length}, h ${h}`);
    }
  }
  // one changed word anywhere changes the hash
  const a = arrays.at(-1)!, h0 = fnv1a(7, a);
  for (const i of [0, 64, 1 << 14, a.length - 1]) {
    const b = a.slice();
    b[i] ^= 1 << (i % 31);
    assertOk(fnv1a(7, b) !== h0, `a change at ${i} went unseen`);
  }
  // with WebAssembly off (the JS path): the same values
  const url = new URL("../src/random.ts", import.meta.url).href;
  const code = `
    if (typeof WebAssembly !== "undefined") throw new Error("WebAssembly is still there");
    const { fnv1a, Rng } = await import(${JSON.stringify(url)});
    const rng = new Rng(8);
    const arrays = ${
    JSON.stringify(lengths)
  }.map((n) => Int32Array.from({ length: n }, () => rng.nextUint32() | 0));
    console.log(JSON.stringify(arrays.map((x) => fnv1a(0x811c9dc5, x))));
  `;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--jitless", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertOk(res.success, new TextDecoder().decode(res.stderr));
  assertEquals(JSON.parse(new TextDecoder().decode(res.stdout)), arrays.map((x) => plain(0x811c9dc5, x)));
});
