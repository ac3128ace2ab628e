/**
 * Masks against independent references: the element-level flat block
 * butterfly is materialised here by brute force straight from the rules of
 * issue 3 (grid, shuffle, stretch, global rows/columns, pooling), then
 * compared with the library's tile masks; BSR layouts against a brute-force
 * walk of the bits; the budget allocation against its promises.
 */
import { BlockMask, validateLayout } from "../src/masks/block_mask.ts";
import {
  blockDiagonal,
  butterflyFactor,
  flatBlockButterfly,
  globalMask,
  randomMask,
  union,
} from "../src/masks/patterns.ts";
import { allocateBudget, type LayerSchema, pixelflyBudget } from "../src/masks/budget.ts";
import { Rng } from "../src/random.ts";
import { assertEquals, assertOk, assertThrows } from "./_assert.ts";

// ---------------------------------------------------------------- reference

interface RefOptions {
  out: number;
  inn: number;
  block: number;
  size: number;
  nFactors: number;
  globalSize?: number;
  shuffle?: boolean;
}

/** The grid as a 0/1 matrix: cell (i, j) kept when i XOR j is 0 or one of 1, 2, ..., 2^(f-1). */
function refGrid(size: number, nFactors: number, shuffle: boolean): Uint8Array[] {
  const powers: number[] = [];
  for (let k = 0, p = 1; k < nFactors; k++, p *= 2) powers.push(p);
  const grid = Array.from({ length: size }, (_, i) => {
    const row = new Uint8Array(size);
    for (let j = 0; j < size; j++) row[j] = i === j || powers.includes(i ^ j) ? 1 : 0;
    return row;
  });
  if (!shuffle) return grid;
  // Channel shuffle: G = 2^(log2 size - f) groups of C = size / G columns; column (g, c) moves to (c, g).
  const G = Math.round(size / 2 ** nFactors), C = size / G;
  return grid.map((row) => {
    const moved = new Uint8Array(size);
    for (let old = 0; old < size; old++) {
      const g = Math.floor(old / C), c = old % C;
      moved[c * G + g] = row[old];
    }
    return moved;
  });
}

/** The padded element mask (outP x inP, row-major) of the rules, built element by element. */
function refElements(o: RefOptions): { outP: number; inP: number; el: Uint8Array } {
  const outP = Math.ceil(o.out / o.block) * o.block, inP = Math.ceil(o.inn / o.block) * o.block;
  const grid = refGrid(o.size, o.nFactors, o.shuffle ?? false);
  const gs = o.globalSize ?? 0;
  const el = new Uint8Array(outP * inP);
  const cellRows = outP / o.size, cellCols = inP / o.size;
  for (let r = 0; r < outP; r++) {
    const gridRow = grid[Math.floor(r / cellRows)];
    for (let c = 0; c < inP; c++) {
      el[r * inP + c] = r < gs || c < gs || gridRow[Math.floor(c / cellCols)] ? 1 : 0;
    }
  }
  return { outP, inP, el };
}

/** Pool an element mask to block tiles: a tile is kept when any element in it is. */
function refPool(el: Uint8Array, outP: number, inP: number, block: number): Uint8Array {
  const rows = outP / block, cols = inP / block;
  const tiles = new Uint8Array(rows * cols);
  for (let r = 0; r < outP; r++) {
    for (let c = 0; c < inP; c++) {
      if (el[r * inP + c]) tiles[Math.floor(r / block) * cols + Math.floor(c / block)] = 1;
    }
  }
  return tiles;
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

// ---------------------------------------------------------------- flat block butterfly

const SHAPES: [number, number][] = [[3072, 768], [768, 3072], [1536, 384], [512, 512], [100, 200]];
const CONFIGS: [number, number, number][] = [
  // [block, butterflySize, nFactors]
  [32, 16, 2],
  [32, 8, 1],
  [32, 16, 4],
  [16, 32, 3],
  [32, 4, 2],
  [8, 64, 1],
  [32, 2, 1],
];

Deno.test("flatBlockButterfly equals the element-level reference (pooled), rectangular shapes", () => {
  let compared = 0;
  for (const [out, inn] of SHAPES) {
    for (const [block, size, nFactors] of CONFIGS) {
      const outP = Math.ceil(out / block) * block, inP = Math.ceil(inn / block) * block;
      for (const globalSize of [0, 40]) {
        for (const shuffle of [false, true]) {
          const label = `${out}x${inn} b${block} B${size} f${nFactors} g${globalSize} shuffle ${shuffle}`;
          const opts = {
            outFeatures: out,
            inFeatures: inn,
            block,
            butterflySize: size,
            nFactors,
            globalSize,
            shuffle,
          };
          if (outP % size !== 0 || inP % size !== 0) {
            assertThrows(() => flatBlockButterfly(opts), RangeError, "nearest sizes that work");
            continue;
          }
          const m = flatBlockButterfly(opts);
          const ref = refElements({ out, inn, block, size, nFactors, globalSize, shuffle });
          const tiles = refPool(ref.el, ref.outP, ref.inP, block);
          assertEquals([m.rows, m.cols, m.block], [outP / block, inP / block, block], label);
          assertEquals(m.outFeatures, outP, label);
          assertEquals(m.inFeatures, inP, label);
          assertEquals(m.bits(), tiles, label);
          assertEquals(m.nnz, sum(tiles), label);
          compared++;
        }
      }
    }
  }
  assertOk(compared >= 100, `only ${compared} configurations compared`);
});

Deno.test("flat butterfly: element density is exactly (f+1)/B, every row keeps f+1 grid cells", () => {
  for (const [out, inn] of [[3072, 768], [768, 3072], [1536, 384]]) {
    for (const [size, nFactors] of [[16, 2], [8, 3], [32, 1], [64, 6], [4, 1]]) {
      for (const shuffle of [false, true]) {
        const { outP, inP, el } = refElements({ out, inn, block: 32, size, nFactors, shuffle });
        const label = `${out}x${inn} B${size} f${nFactors} shuffle ${shuffle}`;
        assertEquals(sum(el) / (outP * inP), (nFactors + 1) / size, label);
        for (let r = 0; r < outP; r += 97) {
          assertEquals(
            sum(el.subarray(r * inP, (r + 1) * inP)),
            ((nFactors + 1) * inP) / size,
            `${label} row ${r}`,
          );
        }
        const grid = refGrid(size, nFactors, shuffle);
        for (let i = 0; i < size; i++) assertEquals(sum(grid[i]), nFactors + 1, `${label} grid row ${i}`);
        for (let j = 0; j < size; j++) {
          assertEquals(sum(grid.map((row) => row[j])), nFactors + 1, `${label} grid column ${j}`);
        }
      }
    }
  }
});

Deno.test("flat butterfly: tile density is (f+1)/B when grid cells are whole tiles", () => {
  for (const [out, inn, size, nFactors] of [[1024, 1024, 16, 2], [2048, 512, 16, 3], [4096, 1024, 32, 4]]) {
    const m = flatBlockButterfly({ outFeatures: out, inFeatures: inn, butterflySize: size, nFactors });
    assertEquals(m.density, (nFactors + 1) / size, `${out}x${inn} B${size} f${nFactors}`);
    // Each block row keeps (f+1) cells of (in/B/32) tiles.
    const bsr = m.toBSR();
    for (let i = 0; i < m.rows; i++) {
      assertEquals(bsr.rowPtr[i + 1] - bsr.rowPtr[i], ((nFactors + 1) * inn) / size / 32, `block row ${i}`);
    }
  }
  // The docs' example.
  const m = flatBlockButterfly({
    outFeatures: 512,
    inFeatures: 512,
    block: 32,
    butterflySize: 16,
    nFactors: 2,
  });
  assertEquals([m.rows, m.cols, m.nnz, m.density], [16, 16, 48, 0.1875]);
});

Deno.test("flat butterfly: the grid itself (block 1, one element per cell) and the union of factors", () => {
  for (const size of [2, 4, 8, 16, 32]) {
    for (let f = 1; f <= Math.log2(size); f++) {
      const m = flatBlockButterfly({
        outFeatures: size,
        inFeatures: size,
        block: 1,
        butterflySize: size,
        nFactors: f,
      });
      for (let i = 0; i < size; i++) {
        for (let j = 0; j < size; j++) {
          const x = i ^ j;
          const expected = x === 0 || ((x & (x - 1)) === 0 && x < 2 ** f);
          assertEquals(m.has(i, j), expected, `B${size} f${f} cell (${i}, ${j})`);
        }
      }
      const factors = Array.from({ length: f }, (_, k) => butterflyFactor(size, k));
      assertEquals(union(...factors).bits(), m.bits(), `union of the first ${f} factors of ${size}`);
    }
  }
  // B = 2, f = 1 keeps everything.
  assertEquals(
    flatBlockButterfly({ outFeatures: 64, inFeatures: 64, butterflySize: 2, nFactors: 1 }).density,
    1,
  );
});

Deno.test("flat butterfly shuffle: column (g, c) -> (c, g) with 2^(log2 B - f) groups", () => {
  // B = 8, f = 1: G = 4 groups of C = 2 columns. Unshuffled row 0 keeps columns 0 = (0,0) and 1 = (0,1);
  // they move to (0,0) -> 0*4+0 = 0 and (0,1) -> 1*4+0 = 4.
  const m = flatBlockButterfly({
    outFeatures: 8,
    inFeatures: 8,
    block: 1,
    butterflySize: 8,
    nFactors: 1,
    shuffle: true,
  });
  const row = (i: number) => Array.from({ length: 8 }, (_, j) => (m.has(i, j) ? 1 : 0)).join("");
  assertEquals(row(0), "10001000");
  // Row 3 keeps old columns 3 = (1,1) -> 1*4+1 = 5 and 2 = (1,0) -> 0*4+1 = 1.
  assertEquals(row(3), "01000100");
  // Permutation: every row and column still has f+1 kept cells, and the set of rows is a column permutation.
  for (const [size, f] of [[16, 2], [32, 3], [64, 2], [8, 2]]) {
    const plain = flatBlockButterfly({
      outFeatures: size,
      inFeatures: size,
      block: 1,
      butterflySize: size,
      nFactors: f,
    });
    const sh = flatBlockButterfly({
      outFeatures: size,
      inFeatures: size,
      block: 1,
      butterflySize: size,
      nFactors: f,
      shuffle: true,
    });
    const G = size / 2 ** f, C = size / G;
    for (let i = 0; i < size; i++) {
      for (let g = 0; g < G; g++) {
        for (let c = 0; c < C; c++) {
          assertEquals(
            sh.has(i, c * G + g),
            plain.has(i, g * C + c),
            `B${size} f${f} row ${i} (g ${g}, c ${c})`,
          );
        }
      }
    }
  }
  // f = log2 B: one group, the shuffle is the identity.
  const a = flatBlockButterfly({ outFeatures: 512, inFeatures: 512, butterflySize: 16, nFactors: 4 });
  const b = flatBlockButterfly({
    outFeatures: 512,
    inFeatures: 512,
    butterflySize: 16,
    nFactors: 4,
    shuffle: true,
  });
  assertEquals(a.bits(), b.bits());
});

Deno.test("flat butterfly globalSize: the first rows and columns become dense; equals union with globalMask", () => {
  for (const globalSize of [1, 32, 33, 100, 5000]) {
    const opts = { outFeatures: 768, inFeatures: 3072, butterflySize: 16, nFactors: 2 };
    const withGlobal = flatBlockButterfly({ ...opts, globalSize });
    const g = globalMask({ outFeatures: 768, inFeatures: 3072, globalSize });
    assertEquals(withGlobal.bits(), union(flatBlockButterfly(opts), g).bits(), `globalSize ${globalSize}`);
    const t = Math.ceil(globalSize / 32);
    for (let i = 0; i < withGlobal.rows; i++) {
      for (let j = 0; j < withGlobal.cols; j++) {
        if (i < t || j < t) assertOk(withGlobal.has(i, j), `globalSize ${globalSize} tile (${i}, ${j})`);
      }
    }
  }
});

Deno.test("flat butterfly padding: dimensions pad to whole blocks; the error names the nearest sizes", () => {
  const m = flatBlockButterfly({ outFeatures: 100, inFeatures: 200, butterflySize: 16, nFactors: 2 });
  assertEquals([m.rows, m.cols, m.outFeatures, m.inFeatures], [4, 7, 128, 224]);
  // 200 pads to 224 = 7 * 32, which 64 does not divide: 192 and 256 do.
  const e = assertThrows(
    () => flatBlockButterfly({ outFeatures: 100, inFeatures: 200, butterflySize: 64, nFactors: 1 }),
    RangeError,
    "flatBlockButterfly: inFeatures 200 pads to 224",
  );
  assertOk(e.message.includes("192 or 256"), e.message);
  for (const inFeatures of [192, 256]) {
    flatBlockButterfly({ outFeatures: 128, inFeatures, butterflySize: 64, nFactors: 1 });
  }
  // outFeatures 768 with butterflySize 512: 512 or 1024.
  const e2 = assertThrows(
    () => flatBlockButterfly({ outFeatures: 768, inFeatures: 1024, butterflySize: 512, nFactors: 1 }),
    RangeError,
    "outFeatures 768",
  );
  assertOk(e2.message.includes("512 or 1024"), e2.message);
  // Only an above size when nothing below works: 40 with block 32 and butterflySize 128.
  const e3 = assertThrows(
    () => flatBlockButterfly({ outFeatures: 40, inFeatures: 128, butterflySize: 128, nFactors: 1 }),
    RangeError,
    "nearest sizes that work: 128",
  );
  assertOk(!e3.message.includes(" or "), e3.message);
  // block 1: no padding.
  const m1 = flatBlockButterfly({
    outFeatures: 48,
    inFeatures: 80,
    block: 1,
    butterflySize: 16,
    nFactors: 3,
  });
  assertEquals([m1.rows, m1.cols], [48, 80]);
});

Deno.test("flat butterfly bad arguments: clear errors naming the value and the rule", () => {
  const ok = { outFeatures: 512, inFeatures: 512, block: 32, butterflySize: 16, nFactors: 2 };
  const bad = (patch: Record<string, unknown>) => () => flatBlockButterfly({ ...ok, ...patch } as typeof ok);
  assertThrows(
    bad({ butterflySize: 12 }),
    RangeError,
    "flatBlockButterfly: butterflySize must be a power of two, got 12",
  );
  assertThrows(bad({ butterflySize: 1 }), RangeError, "butterflySize must be >= 2, got 1");
  assertThrows(bad({ butterflySize: 0 }), RangeError, "butterflySize must be >= 2, got 0");
  assertThrows(bad({ butterflySize: 16.5 }), RangeError, "butterflySize must be an integer, got 16.5");
  assertThrows(bad({ butterflySize: "16" }), TypeError, "butterflySize");
  assertThrows(bad({ butterflySize: undefined }), TypeError, "butterflySize");
  assertThrows(bad({ nFactors: 0 }), RangeError, "nFactors must be >= 1, got 0");
  assertThrows(bad({ nFactors: 5 }), RangeError, "nFactors must be at most log2(butterflySize) = 4");
  assertThrows(bad({ nFactors: 1.5 }), RangeError, "nFactors must be an integer, got 1.5");
  assertThrows(bad({ block: 0 }), RangeError, "block must be >= 1, got 0");
  assertThrows(bad({ block: -32 }), RangeError, "block must be >= 1, got -32");
  assertThrows(bad({ block: 2.5 }), RangeError, "block must be an integer, got 2.5");
  assertThrows(bad({ block: NaN }), RangeError, "block must be an integer, got NaN");
  assertThrows(bad({ outFeatures: 0 }), RangeError, "outFeatures must be >= 1, got 0");
  assertThrows(bad({ inFeatures: Infinity }), RangeError, "inFeatures must be an integer, got Infinity");
  assertThrows(bad({ globalSize: -1 }), RangeError, "globalSize must be >= 0, got -1");
  assertThrows(bad({ shuffle: "yes" }), TypeError, "shuffle must be a boolean");
  assertThrows(() => flatBlockButterfly(null as never), TypeError, "options must be an object");
});

// ---------------------------------------------------------------- BlockMask

/** Brute-force BSR from bits: row-major kept tiles, and per column the kept rows ascending. */
function refBSR(bits: Uint8Array, rows: number, cols: number) {
  const rowPtr = [0], colIdx: number[] = [], colPtr = [0], rowIdx: number[] = [], blockIdx: number[] = [];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) if (bits[i * cols + j]) colIdx.push(j);
    rowPtr.push(colIdx.length);
  }
  for (let j = 0; j < cols; j++) {
    for (let i = 0; i < rows; i++) {
      if (!bits[i * cols + j]) continue;
      rowIdx.push(i);
      // The position of (i, j) in row-major order: kept tiles before it.
      let k = 0;
      for (let t = 0; t < i * cols + j; t++) k += bits[t];
      blockIdx.push(k);
    }
    colPtr.push(rowIdx.length);
  }
  return { rowPtr, colIdx, colPtr, rowIdx, blockIdx };
}

Deno.test("BlockMask.toBSR: row-major rowPtr/colIdx and a consistent transposed walk", () => {
  const rng = new Rng(11);
  const masks: BlockMask[] = [
    BlockMask.fromFunction(3, 5, 4, () => false),
    BlockMask.fromFunction(4, 4, 2, () => true),
    BlockMask.fromFunction(1, 1, 32, () => true),
    flatBlockButterfly({ outFeatures: 3072, inFeatures: 768, butterflySize: 16, nFactors: 2, shuffle: true }),
    ...[0.05, 0.3, 0.9].map((d) =>
      BlockMask.fromFunction(7 + rng.int(9), 3 + rng.int(13), 16, () => rng.uniform() < d)
    ),
    // empty leading and trailing rows; bits given as other truthy values
    BlockMask.fromFunction(6, 5, 4, (i, j) => i > 1 && i < 4 && (i + j) % 2 === 0),
    new BlockMask(3, 4, 2, [0, 2, 0, 0, 0, 0, 0, 0, true, 0, 0, 5]),
  ];
  for (const m of masks) {
    const label = `${m.rows}x${m.cols} nnz ${m.nnz}`;
    const got = m.toBSR();
    const ref = refBSR(m.bits(), m.rows, m.cols);
    assertEquals([got.rows, got.cols, got.block, got.nnz], [m.rows, m.cols, m.block, m.nnz], label);
    assertEquals(Array.from(got.rowPtr), ref.rowPtr, `${label} rowPtr`);
    assertEquals(Array.from(got.colIdx), ref.colIdx, `${label} colIdx`);
    assertEquals(Array.from(got.colPtr), ref.colPtr, `${label} colPtr`);
    assertEquals(Array.from(got.rowIdx), ref.rowIdx, `${label} rowIdx`);
    assertEquals(Array.from(got.blockIdx), ref.blockIdx, `${label} blockIdx`);
    assertOk(got.rowIdx instanceof Int32Array && got.blockIdx instanceof Int32Array, label);
    // Walking the transposed layout visits the same (row, col) as the row-major one.
    for (let j = 0; j < m.cols; j++) {
      for (let t = got.colPtr[j]; t < got.colPtr[j + 1]; t++) {
        const i = got.rowIdx[t], k = got.blockIdx[t];
        assertOk(got.rowPtr[i] <= k && k < got.rowPtr[i + 1] && got.colIdx[k] === j, `${label} slot ${t}`);
      }
    }
    assertOk(m.toBSR() === got, "toBSR is computed once");
    assertOk(Object.isFrozen(got), "the layout is frozen");
    assertEquals(m.density, m.nnz / (m.rows * m.cols));
  }
});

Deno.test("validateLayout: a change to any index array of a large layout is refused (the hashed path)", () => {
  const m = flatBlockButterfly({ outFeatures: 4096, inFeatures: 1024, butterflySize: 16, nFactors: 2 });
  const names = ["rowPtr", "colIdx", "colPtr", "rowIdx", "blockIdx"] as const;
  for (const name of names) {
    for (const at of ["first", "middle", "last"] as const) {
      const l = m.toBSR(), copy = { ...l };
      for (const n of names) copy[n] = l[n].slice();
      assertEquals(validateLayout("dds", copy), copy);
      const a = copy[name], i = at === "first" ? 0 : at === "middle" ? a.length >> 1 : a.length - 1;
      a[i] += 1;
      assertThrows(() => validateLayout("dds", copy), RangeError, "changed after it was first checked");
      a[i] -= 1;
      assertEquals(validateLayout("dds", copy), copy, `${name} restored`);
    }
  }
});

Deno.test("BlockMask: has() checks its range; the constructor validates; bits() is a copy", () => {
  const m = BlockMask.fromFunction(2, 3, 4, (i, j) => i === j);
  assertEquals([m.has(0, 0), m.has(0, 1), m.has(1, 1), m.has(1, 2)], [true, false, true, false]);
  for (const [i, j] of [[-1, 0], [2, 0], [0, 3], [0.5, 0], [0, NaN]]) {
    assertThrows(() => m.has(i, j), RangeError, `BlockMask.has: tile (${i}, ${j}) is outside the 2x3 grid`);
  }
  assertThrows(
    () => new BlockMask(2, 2, 4, [1, 0, 1]),
    RangeError,
    "bits has 3 entries but a 2x2 grid needs 4",
  );
  assertThrows(() => new BlockMask(0, 2, 4, []), RangeError, "rows must be a positive integer, got 0");
  assertThrows(
    () => new BlockMask(2, 2, 1.5, [1, 0, 0, 1]),
    RangeError,
    "block must be a positive integer, got 1.5",
  );
  assertThrows(() => new BlockMask(2, "2" as never, 4, [1, 0, 0, 1]), TypeError, "cols must be a number");
  assertThrows(
    () => BlockMask.fromFunction(-1, 2, 4, () => true),
    RangeError,
    "rows must be a positive integer, got -1",
  );
  assertThrows(
    () => BlockMask.fromFunction(2, 1.5, 4, () => true),
    RangeError,
    "cols must be a positive integer, got 1.5",
  );
  const bits = m.bits();
  bits[1] = 1;
  assertOk(!m.has(0, 1), "mutating bits() leaves the mask alone");
  const src = [1, 0, 0, 1];
  const m2 = new BlockMask(2, 2, 8, src);
  src[1] = 1;
  assertEquals(m2.nnz, 2, "the constructor copies its bits");
  assertEquals(new BlockMask(1, 3, 1, [true, false, true]).nnz, 2);
});

Deno.test("BlockMask.toString: a small text picture with a header", () => {
  const m = BlockMask.fromFunction(2, 3, 4, (i, j) => j >= i);
  assertEquals(m.toString(), "BlockMask 2x3 tiles of 4, nnz 5, density 0.8333\n###\n.##");
  const b = butterflyFactor(4, 1);
  assertEquals(b.toString().split("\n").slice(1), ["#.#.", ".#.#", "#.#.", ".#.#"]);
});

/** A small XML well-formedness check: tags balance and every attribute is quoted. */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0, m: RegExpExecArray | null;
  while ((m = tag.exec(xml))) {
    if (/[<>]/.test(xml.slice(last, m.index))) return false; // stray angle bracket in text
    last = tag.lastIndex;
    const [, close, name, , self] = m;
    if (self) continue;
    if (close) {
      if (stack.pop() !== name) return false;
    } else stack.push(name);
  }
  return stack.length === 0 && !/[<>]/.test(xml.slice(last));
}

Deno.test("BlockMask.toSVG: well-formed, one rect per kept tile plus the frame", () => {
  for (
    const m of [
      flatBlockButterfly({
        outFeatures: 1536,
        inFeatures: 384,
        butterflySize: 16,
        nFactors: 2,
        globalSize: 32,
      }),
      BlockMask.fromFunction(3, 3, 1, () => false),
      randomMask({ outFeatures: 300, inFeatures: 500, density: 0.3, seed: 3 }),
    ]
  ) {
    const svg = m.toSVG({ cell: 5, title: 'a <b> & "c"' });
    assertOk(
      svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"') && svg.endsWith("</svg>"),
      svg.slice(0, 80),
    );
    assertOk(wellFormed(svg), "well-formed XML");
    assertEquals((svg.match(/<rect /g) ?? []).length, m.nnz + 1, "rects");
    assertOk(svg.includes(`width="${m.cols * 5}" height="${m.rows * 5}"`), "size");
    assertOk(svg.includes("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>"), "escaped title");
    // Each kept tile has its rect at (j*cell, i*cell).
    const bsr = m.toBSR();
    for (let i = 0; i < m.rows; i++) {
      for (let e = bsr.rowPtr[i]; e < bsr.rowPtr[i + 1]; e++) {
        assertOk(
          svg.includes(`<rect x="${bsr.colIdx[e] * 5}" y="${i * 5}" width="5" height="5"/>`),
          `tile ${i}`,
        );
      }
    }
    assertOk(wellFormed(m.toSVG()), "default title");
  }
});

// ---------------------------------------------------------------- other patterns

Deno.test("randomMask: exact count, seeded, padded grid, bad arguments", () => {
  for (
    const [out, inn, block, density] of [[256, 256, 32, 0.25], [300, 500, 32, 0.1], [64, 96, 16, 1], [
      33,
      33,
      32,
      0.01,
    ]]
  ) {
    const rows = Math.ceil(out / block), cols = Math.ceil(inn / block);
    const m = randomMask({ outFeatures: out, inFeatures: inn, block, density, seed: 5 });
    assertEquals([m.rows, m.cols], [rows, cols]);
    assertEquals(m.nnz, Math.max(1, Math.round(density * rows * cols)), `${out}x${inn} d ${density}`);
    const again = randomMask({ outFeatures: out, inFeatures: inn, block, density, seed: 5 });
    assertEquals(again.bits(), m.bits(), "same seed, same mask");
  }
  const a = randomMask({ outFeatures: 1024, inFeatures: 1024, density: 0.2, seed: 1 });
  const b = randomMask({ outFeatures: 1024, inFeatures: 1024, density: 0.2, seed: 2 });
  assertEquals(a.nnz, b.nnz);
  assertOk(sum(a.bits().map((v, i) => v ^ b.bits()[i])) > 0, "different seeds, different masks");
  const base = { outFeatures: 64, inFeatures: 64, seed: 1 };
  assertThrows(() => randomMask({ ...base, density: 0 }), RangeError, "density must be in (0, 1], got 0");
  assertThrows(() => randomMask({ ...base, density: 1.5 }), RangeError, "got 1.5");
  assertThrows(() => randomMask({ ...base, density: NaN }), RangeError, "got NaN");
  assertThrows(
    () => randomMask({ ...base, density: 0.5, seed: NaN }),
    TypeError,
    "seed must be a finite number",
  );
  assertThrows(
    () => randomMask({ ...base, density: 0.5, block: 0 }),
    RangeError,
    "block must be >= 1, got 0",
  );
});

Deno.test("union: a tile is kept when any mask keeps it; mismatches and wrong types throw", () => {
  const rng = new Rng(21);
  const ms = [0.1, 0.2, 0.3].map((d) => BlockMask.fromFunction(6, 9, 8, () => rng.uniform() < d));
  const u = union(...ms);
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 9; j++) assertEquals(u.has(i, j), ms.some((m) => m.has(i, j)), `tile (${i}, ${j})`);
  }
  assertEquals(union(ms[0]).bits(), ms[0].bits(), "union of one mask is itself");
  assertEquals(union(ms[0], ms[0]).nnz, ms[0].nnz, "idempotent");
  assertThrows(() => union(), RangeError, "union: needs at least one mask, got 0");
  assertThrows(
    () => union(ms[0], BlockMask.fromFunction(6, 8, 8, () => true)),
    RangeError,
    "union: masks must share grid and block; got 6x9 block 8 and 6x8 block 8",
  );
  assertThrows(() => union(ms[0], BlockMask.fromFunction(6, 9, 4, () => true)), RangeError, "block 4");
  assertThrows(() => union(ms[0], {} as never), TypeError, "every argument must be a BlockMask");
  assertThrows(() => union(5 as never), TypeError, "every argument must be a BlockMask");
});

Deno.test("butterflyFactor: i == j or i XOR j == 2^k; bad arguments", () => {
  for (const size of [2, 4, 16, 64]) {
    for (let k = 0; k < Math.log2(size); k++) {
      const m = butterflyFactor(size, k, { block: 4 });
      assertEquals([m.rows, m.cols, m.block, m.nnz], [size, size, 4, 2 * size]);
      for (let i = 0; i < size; i++) {
        // The partner of i in factor k: flip bit k by adding or subtracting 2^k.
        const partner = Math.floor(i / 2 ** k) % 2 === 0 ? i + 2 ** k : i - 2 ** k;
        for (let j = 0; j < size; j++) {
          assertEquals(m.has(i, j), j === i || j === partner, `${size} k ${k} (${i}, ${j})`);
        }
      }
    }
  }
  assertThrows(
    () => butterflyFactor(12, 0),
    RangeError,
    "butterflyFactor: size must be a power of two, got 12",
  );
  assertThrows(() => butterflyFactor(8, 3), RangeError, "k must be below log2(size) = 3, got 3");
  assertThrows(() => butterflyFactor(8, -1), RangeError, "k must be >= 0, got -1");
  assertThrows(() => butterflyFactor(1, 0), RangeError, "size must be >= 2, got 1");
  assertThrows(() => butterflyFactor(8, 0, { block: 0 }), RangeError, "block must be >= 1, got 0");
});

Deno.test("blockDiagonal: the stretched diagonal, pooled; equal to the reference", () => {
  for (
    const [out, inn, block, nBlocks] of [[128, 128, 32, 4], [256, 128, 32, 4], [768, 3072, 32, 8], [
      96,
      96,
      32,
      2,
    ]]
  ) {
    const m = blockDiagonal({ outFeatures: out, inFeatures: inn, block, nBlocks });
    const outP = Math.ceil(out / block) * block, inP = Math.ceil(inn / block) * block;
    const el = new Uint8Array(outP * inP);
    for (let r = 0; r < outP; r++) {
      for (let c = 0; c < inP; c++) {
        el[r * inP + c] = Math.floor((r * nBlocks) / outP) === Math.floor((c * nBlocks) / inP) ? 1 : 0;
      }
    }
    assertEquals(m.bits(), refPool(el, outP, inP, block), `${out}x${inn} b${block} n${nBlocks}`);
  }
  assertEquals(blockDiagonal({ outFeatures: 128, inFeatures: 128, block: 32, nBlocks: 4 }).nnz, 4);
  assertThrows(
    () => blockDiagonal({ outFeatures: 128, inFeatures: 128, block: 32, nBlocks: 3 }),
    RangeError,
    "blockDiagonal: outFeatures 128 pads to 128",
  );
  assertThrows(() => blockDiagonal({ outFeatures: 128, inFeatures: 128, nBlocks: 0 }), RangeError, "nBlocks");
});

Deno.test("globalMask: the first globalSize rows and columns, pooled", () => {
  for (
    const [out, inn, block, gs] of [
      [128, 128, 32, 32],
      [128, 256, 32, 33],
      [100, 70, 16, 5],
      [64, 64, 32, 0],
      [64, 64, 32, 999],
    ]
  ) {
    const m = globalMask({ outFeatures: out, inFeatures: inn, block, globalSize: gs });
    const outP = Math.ceil(out / block) * block, inP = Math.ceil(inn / block) * block;
    const el = new Uint8Array(outP * inP);
    for (let r = 0; r < outP; r++) for (let c = 0; c < inP; c++) el[r * inP + c] = r < gs || c < gs ? 1 : 0;
    assertEquals(m.bits(), refPool(el, outP, inP, block), `${out}x${inn} b${block} g${gs}`);
  }
  assertEquals(globalMask({ outFeatures: 128, inFeatures: 128, block: 32, globalSize: 32 }).nnz, 7);
  assertThrows(() => globalMask({ outFeatures: 64, inFeatures: 64, globalSize: -3 }), RangeError, "got -3");
});

// ---------------------------------------------------------------- budget

const BUDGET_SHAPES: [number, number][] = [[768, 768], [1024, 1024], [3072, 768], [768, 3072], [1536, 384], [
  100,
  200,
]];

/** The smallest budget a shape takes: its sparsest flat block butterfly. */
function minimumBudget(out: number, inn: number): number {
  const e = assertThrows(
    () => pixelflyBudget({ outFeatures: out, inFeatures: inn, budget: 1e-9 }),
    RangeError,
  );
  const m = e.message.match(/the budget must be at least ([0-9.e-]+)/);
  assertOk(m, e.message);
  return Number(m[1]);
}

Deno.test("pixelflyBudget: cost <= budget, within one rank step of it, and the mask it names", () => {
  for (const [out, inn] of BUDGET_SHAPES) {
    const dense = out * inn, step = out + inn;
    for (const budget of [0.12, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 0.9, 1]) {
      const label = `${out}x${inn} budget ${budget}`;
      if (budget < minimumBudget(out, inn)) continue;
      const c = pixelflyBudget({ outFeatures: out, inFeatures: inn, budget });
      assertEquals(c.block, 32, label);
      assertEquals(c.denseParams, dense, label);
      assertEquals(c.params, c.mask.nnz * 32 * 32 + c.rank * step, label);
      assertEquals(c.fraction, c.params / dense, label);
      assertOk(c.params <= budget * dense, `${label}: ${c.params} > ${budget * dense}`);
      assertOk(budget * dense - c.params < step, `${label}: ${c.params} is more than one rank step below`);
      assertOk(Number.isInteger(Math.log2(c.butterflySize)) && c.butterflySize >= 2, label);
      assertOk(c.nFactors >= 1 && c.nFactors <= Math.log2(c.butterflySize), label);
      assertOk(Number.isInteger(c.rank) && c.rank >= 0 && c.rank <= Math.min(out, inn), label);
      const again = flatBlockButterfly({
        outFeatures: out,
        inFeatures: inn,
        butterflySize: c.butterflySize,
        nFactors: c.nFactors,
      });
      assertEquals(c.mask.bits(), again.bits(), `${label}: mask`);
    }
  }
});

Deno.test("pixelflyBudget: the paper's defaults when they fit", () => {
  // Defaults cost 3/16 of the weight (flat butterfly, B 16, f 2, grid cells whole tiles) + 32 * (in + out).
  for (const [out, inn] of [[1024, 1024], [2048, 512], [512, 2048], [4096, 1024]]) {
    const defaults = (3 / 16) * out * inn + 32 * (out + inn);
    for (const extra of [0, 0.01]) {
      const budget = defaults / (out * inn) + extra;
      const c = pixelflyBudget({ outFeatures: out, inFeatures: inn, budget });
      const label = `${out}x${inn} budget ${budget}`;
      assertEquals([c.block, c.butterflySize, c.nFactors], [32, 16, 2], label);
      if (extra === 0) assertEquals([c.rank, c.params], [32, defaults], label);
      else assertOk(c.rank > 32, `${label}: rank ${c.rank} should take the rest`);
    }
  }
  const c = pixelflyBudget({ inFeatures: 1024, outFeatures: 1024, budget: 0.25 });
  assertEquals([c.butterflySize, c.nFactors, c.rank, c.fraction, c.mask.nnz], [16, 2, 32, 0.25, 192]);
  // block 16 is honoured.
  const c16 = pixelflyBudget({ inFeatures: 512, outFeatures: 512, budget: 0.3, block: 16 });
  assertEquals(c16.block, 16);
  assertEquals(c16.mask.block, 16);
  assertOk(c16.params <= 0.3 * 512 * 512);
});

Deno.test("pixelflyBudget: monotonic in the budget", () => {
  for (const [out, inn] of BUDGET_SHAPES) {
    const min = minimumBudget(out, inn);
    let prev = -1, prevDensity = -1;
    for (let budget = min; budget <= 1; budget += 0.02) { // 0.02 > one rank step (in + out) / (in * out)
      const c = pixelflyBudget({ outFeatures: out, inFeatures: inn, budget });
      assertOk(c.params >= prev, `${out}x${inn} budget ${budget}: cost ${c.params} fell below ${prev}`);
      prev = c.params;
      prevDensity = Math.max(prevDensity, c.mask.density);
    }
    // The most a budget of 1 buys is the dense weight (or just under it).
    assertOk(
      pixelflyBudget({ outFeatures: out, inFeatures: inn, budget: 1 }).fraction > 0.95,
      `${out}x${inn}`,
    );
    assertOk(prevDensity > 0, "densities seen");
  }
});

Deno.test("pixelflyBudget: errors name the values", () => {
  const e = assertThrows(
    () => pixelflyBudget({ outFeatures: 768, inFeatures: 768, budget: 0.01 }),
    RangeError,
    "pixelflyBudget: budget 0.01 of a 768x768 layer allows 5898 parameters",
  );
  assertOk(e.message.includes("the budget must be at least"), e.message);
  // The minimum it names works, and a hair below does not.
  const min = minimumBudget(768, 768);
  const atMin = pixelflyBudget({ outFeatures: 768, inFeatures: 768, budget: min });
  assertEquals(atMin.rank, 0);
  assertThrows(() => pixelflyBudget({ outFeatures: 768, inFeatures: 768, budget: min * 0.999 }), RangeError);
  const ok = { outFeatures: 512, inFeatures: 512, budget: 0.3 };
  assertThrows(
    () => pixelflyBudget({ ...ok, budget: 0 }),
    RangeError,
    "budget must be a fraction of the dense cost in (0, 1], got 0",
  );
  assertThrows(() => pixelflyBudget({ ...ok, budget: 1.5 }), RangeError, "got 1.5");
  assertThrows(() => pixelflyBudget({ ...ok, budget: NaN }), RangeError, "got NaN");
  assertThrows(() => pixelflyBudget({ ...ok, budget: "0.3" as never }), TypeError, "budget must be a number");
  assertThrows(
    () => pixelflyBudget({ ...ok, block: 0 }),
    RangeError,
    "block must be a positive integer, got 0",
  );
  assertThrows(
    () => pixelflyBudget({ ...ok, inFeatures: 3.5 }),
    RangeError,
    "inFeatures must be a positive integer",
  );
  assertThrows(() => pixelflyBudget({ ...ok, outFeatures: undefined as never }), TypeError, "outFeatures");
  assertThrows(() => pixelflyBudget(undefined as never), TypeError, "options must be an object");
  assertThrows(
    () => pixelflyBudget({ outFeatures: 15, inFeatures: 15, budget: 1, block: 1 }),
    RangeError,
    "a 15x15 layer with block 1 pads to 15x15, which no butterflySize >= 2 divides",
  );
});

const GPT2: LayerSchema[] = [
  { name: "attn.qkv", kind: "projection", inFeatures: 768, outFeatures: 2304 },
  { name: "attn.scores", kind: "attention", inFeatures: 768, outFeatures: 768, seqLen: 1024 },
  { name: "attn.out", kind: "projection", inFeatures: 768, outFeatures: 768 },
  { name: "mlp.fc1", kind: "mlp", inFeatures: 768, outFeatures: 3072 },
  { name: "mlp.fc2", kind: "mlp", inFeatures: 3072, outFeatures: 768 },
];

Deno.test("allocateBudget: total <= budget, per-layer masks, cost model", () => {
  for (const budget of [0.15, 0.25, 0.5, 1]) {
    const plan = allocateBudget(GPT2, { budget });
    assertEquals(plan.layers.map((l) => l.name), GPT2.map((l) => l.name));
    assertOk(plan.fraction <= budget, `fraction ${plan.fraction} > budget ${budget}`);
    assertOk(plan.fraction > budget - 0.01, `fraction ${plan.fraction} far below budget ${budget}`);
    assertEquals(plan.cost, plan.layers.reduce((a, l) => a + l.cost, 0));
    // Dense cost per token: weights out*in, attention seqLen*(in+out).
    assertEquals(plan.denseCost, 768 * 2304 + 1024 * (768 + 768) + 768 * 768 + 2 * 768 * 3072);
    for (const l of plan.layers) {
      const s = GPT2.find((x) => x.name === l.name)!;
      const [rows, cols] = s.kind === "attention" ? [1024, 1024] : [s.outFeatures, s.inFeatures];
      assertEquals(l.shape, [rows, cols], l.name);
      assertEquals(l.params, l.mask.nnz * 32 * 32 + l.rank * (rows + cols), l.name);
      assertEquals(l.fraction, l.params / (rows * cols), l.name);
      assertEquals(l.density, l.mask.density, l.name);
      assertOk(Math.abs(l.cost - l.fraction * l.denseCost) <= 1e-6 * l.denseCost, l.name);
      assertEquals(
        l.mask.bits(),
        flatBlockButterfly({
          outFeatures: rows,
          inFeatures: cols,
          butterflySize: l.butterflySize,
          nFactors: l.nFactors,
        })
          .bits(),
        l.name,
      );
    }
  }
});

Deno.test("allocateBudget: attention's share grows with the sequence length; its scores get rank 0", () => {
  let prev = 0;
  for (const seqLen of [256, 512, 1024, 2048, 4096]) {
    const schema = GPT2.map((l) => (l.kind === "attention" ? { ...l, seqLen } : l));
    const plan = allocateBudget(schema, { budget: 0.25 });
    assertOk(plan.fraction <= 0.25, `seqLen ${seqLen}`);
    const attn = plan.layers.find((l) => l.kind === "attention")!;
    const share = attn.cost / plan.cost;
    assertOk(share > prev, `seqLen ${seqLen}: attention share ${share} did not grow from ${prev}`);
    assertEquals(attn.shape, [seqLen, seqLen]);
    // no low-rank attention term to spend a rank on: the layout alone
    assertEquals([attn.rank, attn.params], [0, attn.mask.nnz * 32 * 32]);
    prev = share;
  }
  // Without seqLen an attention entry is an ordinary weight.
  const plain = allocateBudget([{ name: "qk", kind: "attention", inFeatures: 512, outFeatures: 512 }], {
    budget: 0.3,
  });
  assertEquals(plain.layers[0].shape, [512, 512]);
  assertEquals(plain.denseCost, 512 * 512);
});

Deno.test("allocateBudget: a small layer that cannot go low is pinned at its minimum; the rest pay", () => {
  // A 64x64 layer's sparsest butterfly keeps 2 of 4 tiles: 0.5 of its cost.
  const schema: LayerSchema[] = [
    { name: "tiny", kind: "projection", inFeatures: 64, outFeatures: 64 },
    { name: "big", kind: "mlp", inFeatures: 1024, outFeatures: 1024 },
  ];
  const plan = allocateBudget(schema, { budget: 0.25 });
  assertEquals(plan.layers[0].mask.nnz, 2, "the tiny layer keeps its sparsest butterfly");
  assertOk(plan.layers[0].fraction >= 0.5, "(plus whatever rank the leftover buys)");
  assertOk(plan.layers[1].fraction < 0.25, "the big layer pays for the tiny one");
  assertOk(plan.fraction <= 0.25);
});

Deno.test("allocateBudget: a budget exactly at every layer's minimum fits (no hair-under-share error)", () => {
  // 256x64 at block 32: the sparsest butterfly keeps 8 of 16 tiles, 0.5 of the dense cost; the layers'
  // shares at budget 0.5 are their minimums exactly (once an error: the share a hair under was too small)
  const schema: LayerSchema[] = [
    { name: "up", kind: "mlp", inFeatures: 64, outFeatures: 256 },
    { name: "down", kind: "mlp", inFeatures: 256, outFeatures: 64, uses: 3 },
  ];
  const plan = allocateBudget(schema, { budget: 0.5 });
  assertEquals(plan.layers.map((l) => l.mask.nnz), [8, 8]);
  assertEquals(plan.layers.map((l) => l.rank), [0, 0]);
  assertEquals(plan.fraction, 0.5);
  assertEquals(plan.layers[1].cost, 3 * 8 * 32 * 32, "a layer's uses multiply its cost");
  assertThrows(
    () => allocateBudget(schema, { budget: 0.4999 }),
    RangeError,
    "the budget must be at least 0.5",
  );
});

Deno.test("allocateBudget: the table prints aligned, with totals", () => {
  const plan = allocateBudget(GPT2, { budget: 0.25 });
  const text = plan.toString();
  const lines = text.split("\n");
  const table = lines.slice(0, -1);
  assertEquals(table.length, 2 + GPT2.length + 2, text);
  const width = table[0].length;
  for (const line of table) assertEquals(line.length, width, `not aligned:\n${text}`);
  assertOk(
    /^name\s+kind\s+shape\s+butterfly\s+factors\s+rank\s+density\s+params\s+fraction\s+cost$/.test(table[0]),
    table[0],
  );
  for (const l of plan.layers) {
    const row = table.find((t) => t.startsWith(l.name + " "));
    assertOk(row, `row for ${l.name}`);
    assertOk(row.includes(`${l.shape[0]}x${l.shape[1]}`) && row.includes(l.fraction.toFixed(4)), row);
  }
  assertOk(table[table.length - 1].startsWith("total"), text);
  assertOk(lines[lines.length - 1].includes(`<= budget 0.25`), lines[lines.length - 1]);
  assertOk(String(plan) === text);
});

Deno.test("allocateBudget: bad schemas and impossible budgets", () => {
  const op = (s: unknown, budget = 0.25) => () => allocateBudget(s as LayerSchema[], { budget });
  assertThrows(op("mlp"), TypeError, "schema must be an array");
  assertThrows(op([]), RangeError, "schema must list at least one layer, got 0");
  assertThrows(
    op([{ ...GPT2[0], kind: "conv" }]),
    RangeError,
    "schema[0].kind must be one of mlp, attention, projection, got conv",
  );
  assertThrows(op([GPT2[0], GPT2[0]]), RangeError, 'schema[1].name "attn.qkv" is used twice');
  assertThrows(op([{ ...GPT2[3], seqLen: 128 }]), RangeError, "seqLen is for attention layers only");
  assertThrows(
    op([{ ...GPT2[1], seqLen: 0 }]),
    RangeError,
    "schema[0].seqLen must be a positive integer, got 0",
  );
  assertThrows(op([{ ...GPT2[3], inFeatures: "768" }]), TypeError, "schema[0].inFeatures must be a number");
  assertThrows(op([{ ...GPT2[3], name: 3 }]), TypeError, "schema[0].name must be a string");
  assertThrows(op(GPT2, 0), RangeError, "budget must be a fraction of the dense cost in (0, 1], got 0");
  const e = assertThrows(op(GPT2, 0.02), RangeError, "allocateBudget: budget 0.02 allows");
  assertOk(e.message.includes("the budget must be at least"), e.message);
  assertThrows(
    () =>
      allocateBudget([{ name: "odd", kind: "mlp", inFeatures: 15, outFeatures: 15 }], {
        budget: 1,
        block: 1,
      }),
    RangeError,
    "(layer odd)",
  );
});
