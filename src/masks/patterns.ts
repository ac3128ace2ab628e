/**
 * Sparsity patterns: the flat block butterfly of Pixelated Butterfly (Chen,
 * Dao et al., ICLR 2022, Section 3.2), its single factors, block-diagonal,
 * global and random masks, and their union.
 *
 * @module
 */
import { Rng } from "../random.ts";
import { BlockMask } from "./block_mask.ts";

/** Options of {@link flatBlockButterfly}. */
export interface FlatBlockButterflyOptions {
  /** Rows of the weight (N). */
  outFeatures: number;
  /** Columns of the weight (K). */
  inFeatures: number;
  /** Tile edge b (32). */
  block?: number;
  /** Side of the butterfly grid, a power of two >= 2. */
  butterflySize: number;
  /** Number of butterfly factors in the union, 1 <= nFactors <= log2(butterflySize). */
  nFactors: number;
  /** The first globalSize element rows and columns are kept dense (0). */
  globalSize?: number;
  /** Permute grid columns as a channel shuffle (false). */
  shuffle?: boolean;
}

function checkInt(op: string, name: string, v: number, min: number): void {
  if (typeof v !== "number") throw new TypeError(`${op}: ${name} must be a number, got ${typeof v} ${v}`);
  if (!Number.isInteger(v)) throw new RangeError(`${op}: ${name} must be an integer, got ${v}`);
  if (v < min) throw new RangeError(`${op}: ${name} must be >= ${min}, got ${v}`);
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
}

function padTo(n: number, block: number): number {
  return Math.ceil(n / block) * block;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Stretch a `gr x gc` grid over the padded `(out, in)` weight, make the first
 * `globalSize` element rows and columns dense, and pool to `block` tiles: a
 * tile is kept when any element in it is. Works on element ranges, so it
 * never materialises the element mask.
 */
function stretchAndPool(
  op: string,
  grid: (i: number, j: number) => boolean,
  gr: number,
  gc: number,
  outFeatures: number,
  inFeatures: number,
  block: number,
  globalSize: number,
): BlockMask {
  const outP = padTo(outFeatures, block), inP = padTo(inFeatures, block);
  for (
    const [name, size, padded, g] of [
      ["outFeatures", outFeatures, outP, gr],
      ["inFeatures", inFeatures, inP, gc],
    ] as const
  ) {
    if (padded % g !== 0) {
      const L = (block / gcd(block, g)) * g;
      const below = Math.floor(padded / L) * L, above = Math.ceil(padded / L) * L;
      const near = below > 0 ? `${below} or ${above}` : `${above}`;
      throw new RangeError(
        `${op}: ${name} ${size} pads to ${padded} (a multiple of block ${block}), which the grid size ${g} ` +
          `does not divide; nearest sizes that work: ${near}`,
      );
    }
  }
  const rows = outP / block, cols = inP / block;
  const cellR = outP / gr, cellC = inP / gc; // elements per grid cell (whole: checked above)
  const bits = new Uint8Array(rows * cols);
  // A tile is kept when it overlaps a kept cell: each kept cell marks the tiles its element range
  // touches (gr·gc grid calls and a fill per tile row, not a call per tile).
  for (let i = 0; i < gr; i++) {
    const t0 = Math.floor((i * cellR) / block), t1 = Math.floor(((i + 1) * cellR - 1) / block);
    for (let j = 0; j < gc; j++) {
      if (!grid(i, j)) continue;
      const u0 = Math.floor((j * cellC) / block), u1 = Math.floor(((j + 1) * cellC - 1) / block);
      for (let ti = t0; ti <= t1; ti++) bits.fill(1, ti * cols + u0, ti * cols + u1 + 1);
    }
  }
  // the first globalSize element rows and columns are dense: tiles starting below globalSize
  const gRows = Math.min(rows, Math.ceil(globalSize / block)),
    gCols = Math.min(cols, Math.ceil(globalSize / block));
  bits.fill(1, 0, gRows * cols);
  if (gCols > 0) { for (let ti = gRows; ti < rows; ti++) bits.fill(1, ti * cols, ti * cols + gCols); }
  return new BlockMask(rows, cols, block, bits);
}

/**
 * The grid of the flat block butterfly: cell (i, j) of a `size x size` grid
 * is kept when i == j or i XOR j == 2^k for some k < nFactors, the union of
 * the first nFactors butterfly factors (the paper's Section 3.2).
 *
 * @example
 * ```ts
 * import { flatButterflyGrid } from "@pixelfly/pixelfly";
 * const keep = flatButterflyGrid(8, 2);
 * console.log(keep(0, 0), keep(0, 2), keep(0, 4)); // true true false
 * ```
 */
export function flatButterflyGrid(size: number, nFactors: number): (i: number, j: number) => boolean {
  const op = "flatButterflyGrid";
  checkInt(op, "size", size, 2);
  if (!isPow2(size)) throw new RangeError(`${op}: size must be a power of two, got ${size}`);
  checkInt(op, "nFactors", nFactors, 1);
  if (nFactors > Math.log2(size)) {
    throw new RangeError(`${op}: nFactors must be at most log2(size) = ${Math.log2(size)}, got ${nFactors}`);
  }
  const keepXor = new Set<number>([0]);
  for (let k = 0; k < nFactors; k++) keepXor.add(1 << k);
  return (i, j) => i < size && j < size && keepXor.has(i ^ j);
}

/**
 * The flat block butterfly mask of Pixelated Butterfly (Chen, Dao et al., ICLR 2022, Section 3.2).
 *
 * On a `butterflySize x butterflySize` grid, cell (i, j) is kept when i == j
 * or i XOR j == 2^k for some k < nFactors; with `shuffle`, grid columns are
 * permuted as a channel shuffle with `2^(log2 butterflySize - nFactors)`
 * groups; the grid is stretched over the (padded) weight, the first
 * `globalSize` rows and columns are made dense, and the element mask is
 * pooled to `block x block` tiles.
 *
 * @example
 * ```ts
 * import { flatBlockButterfly } from "@pixelfly/pixelfly";
 * const m = flatBlockButterfly({ outFeatures: 512, inFeatures: 512, block: 32, butterflySize: 16, nFactors: 2 });
 * console.log(m.rows, m.cols, m.nnz, m.density); // 16 16 48 0.1875
 * ```
 */
export function flatBlockButterfly(opts: FlatBlockButterflyOptions): BlockMask {
  const op = "flatBlockButterfly";
  if (opts === null || typeof opts !== "object") throw new TypeError(`${op}: options must be an object`);
  const { outFeatures, inFeatures, block = 32, butterflySize, nFactors, globalSize = 0, shuffle = false } =
    opts;
  checkInt(op, "outFeatures", outFeatures, 1);
  checkInt(op, "inFeatures", inFeatures, 1);
  checkInt(op, "block", block, 1);
  checkInt(op, "butterflySize", butterflySize, 2);
  if (!isPow2(butterflySize)) {
    throw new RangeError(`${op}: butterflySize must be a power of two, got ${butterflySize}`);
  }
  const logB = Math.log2(butterflySize);
  checkInt(op, "nFactors", nFactors, 1);
  if (nFactors > logB) {
    throw new RangeError(
      `${op}: nFactors must be at most log2(butterflySize) = ${logB} for butterflySize ${butterflySize}, got ${nFactors}`,
    );
  }
  checkInt(op, "globalSize", globalSize, 0);
  if (typeof shuffle !== "boolean") throw new TypeError(`${op}: shuffle must be a boolean, got ${shuffle}`);
  const base = flatButterflyGrid(butterflySize, nFactors);
  let grid = base;
  if (shuffle) {
    // Column (g, c) -> (c, g): new column c*G + g holds old column g*C + c.
    const G = 2 ** (logB - nFactors), C = butterflySize / G;
    const inverse = new Int32Array(butterflySize);
    for (let g = 0; g < G; g++) for (let c = 0; c < C; c++) inverse[c * G + g] = g * C + c;
    grid = (i, j) => base(i, inverse[j]);
  }
  return stretchAndPool(op, grid, butterflySize, butterflySize, outFeatures, inFeatures, block, globalSize);
}

/**
 * The support of butterfly factor k on a `size x size` grid of `block` tiles:
 * tile (i, j) kept when i == j or i XOR j == 2^k.
 *
 * @example
 * ```ts
 * import { butterflyFactor } from "@pixelfly/pixelfly";
 * console.log(butterflyFactor(4, 1).toString().split("\n").slice(1).join(" ")); // "#.#. .#.# #.#. .#.#"
 * ```
 */
export function butterflyFactor(size: number, k: number, { block = 1 }: { block?: number } = {}): BlockMask {
  const op = "butterflyFactor";
  checkInt(op, "size", size, 2);
  if (!isPow2(size)) throw new RangeError(`${op}: size must be a power of two, got ${size}`);
  checkInt(op, "k", k, 0);
  if (k >= Math.log2(size)) {
    throw new RangeError(`${op}: k must be below log2(size) = ${Math.log2(size)}, got ${k}`);
  }
  checkInt(op, "block", block, 1);
  const s = 1 << k;
  return BlockMask.fromFunction(size, size, block, (i, j) => i === j || (i ^ j) === s);
}

/**
 * A block-diagonal mask: `nBlocks` dense diagonal blocks stretched over the weight.
 *
 * @example
 * ```ts
 * import { blockDiagonal } from "@pixelfly/pixelfly";
 * console.log(blockDiagonal({ outFeatures: 128, inFeatures: 128, block: 32, nBlocks: 4 }).nnz); // 4
 * ```
 */
export function blockDiagonal(
  { outFeatures, inFeatures, block = 32, nBlocks }: {
    outFeatures: number;
    inFeatures: number;
    block?: number;
    nBlocks: number;
  },
): BlockMask {
  const op = "blockDiagonal";
  checkInt(op, "outFeatures", outFeatures, 1);
  checkInt(op, "inFeatures", inFeatures, 1);
  checkInt(op, "block", block, 1);
  checkInt(op, "nBlocks", nBlocks, 1);
  return stretchAndPool(op, (i, j) => i === j, nBlocks, nBlocks, outFeatures, inFeatures, block, 0);
}

/**
 * The global mask: the first `globalSize` element rows and columns dense.
 *
 * @example
 * ```ts
 * import { globalMask } from "@pixelfly/pixelfly";
 * console.log(globalMask({ outFeatures: 128, inFeatures: 128, block: 32, globalSize: 32 }).nnz); // 7
 * ```
 */
export function globalMask(
  { outFeatures, inFeatures, block = 32, globalSize }: {
    outFeatures: number;
    inFeatures: number;
    block?: number;
    globalSize: number;
  },
): BlockMask {
  const op = "globalMask";
  checkInt(op, "outFeatures", outFeatures, 1);
  checkInt(op, "inFeatures", inFeatures, 1);
  checkInt(op, "block", block, 1);
  checkInt(op, "globalSize", globalSize, 0);
  return stretchAndPool(op, () => false, 1, 1, outFeatures, inFeatures, block, globalSize);
}

/**
 * A random mask keeping `round(density * tiles)` tiles (at least one), chosen uniformly with a seed.
 *
 * @example
 * ```ts
 * import { randomMask } from "@pixelfly/pixelfly";
 * const m = randomMask({ outFeatures: 256, inFeatures: 256, block: 32, density: 0.25, seed: 1 });
 * console.log(m.nnz); // 16
 * ```
 */
export function randomMask(
  { outFeatures, inFeatures, block = 32, density, seed }: {
    outFeatures: number;
    inFeatures: number;
    block?: number;
    density: number;
    seed: number;
  },
): BlockMask {
  const op = "randomMask";
  checkInt(op, "outFeatures", outFeatures, 1);
  checkInt(op, "inFeatures", inFeatures, 1);
  checkInt(op, "block", block, 1);
  if (typeof density !== "number" || !(density > 0 && density <= 1)) {
    throw new RangeError(`${op}: density must be in (0, 1], got ${density}`);
  }
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new TypeError(`${op}: seed must be a finite number, got ${seed}`);
  }
  const rows = Math.ceil(outFeatures / block), cols = Math.ceil(inFeatures / block);
  const total = rows * cols, keep = Math.max(1, Math.round(density * total));
  const order = new Rng(seed).shuffle(Array.from({ length: total }, (_, i) => i)) as number[];
  const bits = new Uint8Array(total);
  for (let t = 0; t < keep; t++) bits[order[t]] = 1;
  return new BlockMask(rows, cols, block, bits);
}

/**
 * The union of masks of the same grid and block: a tile is kept when any mask keeps it.
 *
 * @example
 * ```ts
 * import { BlockMask, union } from "@pixelfly/pixelfly";
 * const a = BlockMask.fromFunction(2, 2, 8, (i, j) => i === j);
 * const b = BlockMask.fromFunction(2, 2, 8, (i, j) => i === 0 && j === 1);
 * console.log(union(a, b).nnz); // 3
 * ```
 */
export function union(...masks: BlockMask[]): BlockMask {
  if (masks.length === 0) throw new RangeError("union: needs at least one mask, got 0");
  for (const m of masks) {
    if (!(m instanceof BlockMask)) throw new TypeError(`union: every argument must be a BlockMask, got ${m}`);
  }
  const [first] = masks;
  const bits = first.bits();
  for (const m of masks.slice(1)) {
    if (m.rows !== first.rows || m.cols !== first.cols || m.block !== first.block) {
      throw new RangeError(
        `union: masks must share grid and block; got ${first.rows}x${first.cols} block ${first.block} ` +
          `and ${m.rows}x${m.cols} block ${m.block}`,
      );
    }
    const mb = m.bits();
    for (let i = 0; i < bits.length; i++) bits[i] |= mb[i];
  }
  return new BlockMask(first.rows, first.cols, first.block, bits);
}
