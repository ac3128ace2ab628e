/**
 * Tile layouts of attention scores over a sequence: the flat block butterfly
 * over sequence tiles (Chen, Dao et al., ICLR 2022, Section 3.2), a local band
 * (sliding-window attention), global tokens, random tiles, their unions, the
 * BigBird-style local + global + random baseline of the paper's Figure 7, and
 * causal layouts that drop the tiles above the diagonal.
 *
 * Every mask here is square: ceil(length / block) tiles per side, tile (i, j)
 * holding queries i·b.. and keys j·b.. .
 *
 * @module
 */
import { Rng } from "../random.ts";
import { BlockMask } from "./block_mask.ts";
import { flatBlockButterfly, flatButterflyGrid } from "./patterns.ts";

/** Makes the score layout of a sequence of `length` positions (the form attention layers accept). */
export type SequenceMaskFactory = (length: number) => BlockMask;

function checkInt(op: string, name: string, v: unknown, min: number): number {
  if (typeof v !== "number") throw new TypeError(`${op}: ${name} must be a number, got ${typeof v} ${v}`);
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`${op}: ${name} must be an integer >= ${min}, got ${v}`);
  }
  return v;
}

function tilesOf(op: string, length: unknown, block: unknown): number {
  return Math.ceil(checkInt(op, "length", length, 1) / checkInt(op, "block", block, 1));
}

/**
 * A band of tiles around the diagonal (sliding-window attention): tile (i, j)
 * is kept when |i − j| < window (window 1 is the block diagonal).
 *
 * @example
 * ```ts
 * import { localMask } from "@pixelfly/pixelfly";
 * console.log(localMask({ length: 128, block: 32, window: 2 }).nnz); // 10
 * ```
 */
export function localMask(
  { length, block, window }: { length: number; block: number; window: number },
): BlockMask {
  const n = tilesOf("localMask", length, block);
  checkInt("localMask", "window", window, 1);
  return BlockMask.fromFunction(n, n, block, (i, j) => Math.abs(i - j) < window);
}

/**
 * Global tokens: the first `global` tiles attend to everything and are
 * attended by everything (dense tile rows and columns).
 *
 * @example
 * ```ts
 * import { globalTokensMask } from "@pixelfly/pixelfly";
 * console.log(globalTokensMask({ length: 128, block: 32, global: 1 }).nnz); // 7
 * ```
 */
export function globalTokensMask(
  { length, block, global }: { length: number; block: number; global: number },
): BlockMask {
  const n = tilesOf("globalTokensMask", length, block);
  checkInt("globalTokensMask", "global", global, 0);
  return BlockMask.fromFunction(n, n, block, (i, j) => i < global || j < global);
}

/**
 * The flat block butterfly over sequence tiles: a `butterflySize` grid (a
 * power of two dividing the tile count, the tile count when omitted and a
 * power of two) of `nFactors` butterfly factors, stretched over the tiles.
 *
 * @example
 * ```ts
 * import { butterflySequenceMask } from "@pixelfly/pixelfly";
 * console.log(butterflySequenceMask({ length: 256, block: 32, nFactors: 2 }).nnz); // 24
 * ```
 */
export function butterflySequenceMask(
  { length, block, butterflySize, nFactors }: {
    length: number;
    block: number;
    butterflySize?: number;
    nFactors: number;
  },
): BlockMask {
  const op = "butterflySequenceMask";
  const n = tilesOf(op, length, block);
  const size = butterflySize ?? n;
  checkInt(op, "butterflySize", size, 1);
  if ((size & (size - 1)) !== 0 || size < 2 || n % size !== 0) {
    throw new RangeError(
      `${op}: butterflySize must be a power of two >= 2 dividing the ${n} tiles of length ${length} ` +
        `at block ${block}, got ${size}`,
    );
  }
  const log2 = Math.log2(size);
  checkInt(op, "nFactors", nFactors, 1);
  if (nFactors > log2) {
    throw new RangeError(`${op}: nFactors must be <= log2(butterflySize) = ${log2}, got ${nFactors}`);
  }
  const grid = flatButterflyGrid(size, nFactors), per = n / size;
  return BlockMask.fromFunction(n, n, block, (i, j) => grid(Math.floor(i / per), Math.floor(j / per)));
}

/**
 * `perRow` random tiles in every tile row (seeded; may repeat tiles other masks keep).
 *
 * @example
 * ```ts
 * import { randomTilesMask } from "@pixelfly/pixelfly";
 * console.log(randomTilesMask({ length: 256, block: 32, perRow: 1, seed: 1 }).nnz); // 8
 * ```
 */
export function randomTilesMask(
  { length, block, perRow, seed }: { length: number; block: number; perRow: number; seed: number },
): BlockMask {
  const op = "randomTilesMask";
  const n = tilesOf(op, length, block);
  checkInt(op, "perRow", perRow, 0);
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new TypeError(`${op}: seed must be a finite number, got ${seed}`);
  }
  const rng = new Rng(seed), bits = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) {
    const order = rng.shuffle(Array.from({ length: n }, (_, j) => j)) as number[];
    for (let t = 0; t < Math.min(perRow, n); t++) bits[i * n + order[t]] = 1;
  }
  return new BlockMask(n, n, block, bits);
}

/**
 * BigBird-style attention (local band + global tokens + random tiles), the
 * sparse baseline of the paper's Figure 7.
 *
 * @example
 * ```ts
 * import { bigBirdMask } from "@pixelfly/pixelfly";
 * const m = bigBirdMask({ length: 512, block: 32, window: 3, global: 1, random: 1, seed: 0 });
 * console.log(m.rows, m.density.toFixed(3)); // 16 0.430
 * ```
 */
export function bigBirdMask(
  { length, block, window = 3, global = 1, random = 1, seed = 0 }: {
    length: number;
    block: number;
    window?: number;
    global?: number;
    random?: number;
    seed?: number;
  },
): BlockMask {
  return unionOf([
    localMask({ length, block, window }),
    globalTokensMask({ length, block, global }),
    randomTilesMask({ length, block, perRow: random, seed }),
  ]);
}

/**
 * The layout causal attention needs: `mask` without the tiles wholly above
 * the diagonal (every key there is later than every query).
 *
 * @example
 * ```ts
 * import { causalMask, localMask } from "@pixelfly/pixelfly";
 * console.log(causalMask(localMask({ length: 128, block: 32, window: 2 })).nnz); // 7
 * ```
 */
export function causalMask(mask: BlockMask): BlockMask {
  if (!(mask instanceof BlockMask)) throw new TypeError(`causalMask: mask must be a BlockMask, got ${mask}`);
  return BlockMask.fromFunction(mask.rows, mask.cols, mask.block, (i, j) => j <= i && mask.has(i, j));
}

function unionOf(masks: BlockMask[]): BlockMask {
  const [first] = masks, bits = first.bits();
  for (const m of masks.slice(1)) {
    const mb = m.bits();
    for (let i = 0; i < bits.length; i++) bits[i] |= mb[i];
  }
  return new BlockMask(first.rows, first.cols, first.block, bits);
}

/** Options of {@link attentionMask}: the union of a butterfly, a local band and global tokens. */
export interface AttentionMaskOptions {
  /** Sequence positions per tile. */
  block: number;
  /** Butterfly grid side over the tiles (the tile count when omitted). 0 or nFactors 0: no butterfly. */
  butterflySize?: number;
  /** Butterfly factors (0: no butterfly part). */
  nFactors?: number;
  /** Width in tiles of a local band (0: none). */
  local?: number;
  /** Global tiles (0: none). */
  global?: number;
  /** Drop the tiles above the diagonal (false). */
  causal?: boolean;
}

/**
 * Butterfly + local + global attention: the union of
 * {@link butterflySequenceMask}, {@link localMask} and {@link globalTokensMask}
 * (each part optional), made causal on request.
 *
 * @example
 * ```ts
 * import { attentionMask } from "@pixelfly/pixelfly";
 * const m = attentionMask(2048, { block: 64, nFactors: 2, local: 1, global: 1 });
 * console.log(m.rows, m.density.toFixed(3)); // 32 0.150
 * ```
 */
export function attentionMask(length: number, opts: AttentionMaskOptions): BlockMask {
  const op = "attentionMask";
  if (opts === null || typeof opts !== "object") throw new TypeError(`${op}: options must be an object`);
  const { block, nFactors = 0, local = 0, global = 0, causal = false } = opts;
  const n = tilesOf(op, length, block);
  const parts: BlockMask[] = [BlockMask.fromFunction(n, n, block, () => false)];
  if (nFactors > 0 && opts.butterflySize !== 0) {
    let size = opts.butterflySize;
    if (size === undefined) {
      size = 1;
      while (size * 2 <= n && n % (size * 2) === 0) size *= 2; // largest power of two dividing n
    }
    const padded = n * block; // the butterfly grid stretched (or pooled) over the padded sequence
    parts.push(
      flatBlockButterfly({ outFeatures: padded, inFeatures: padded, block, butterflySize: size, nFactors }),
    );
  }
  if (local > 0) parts.push(localMask({ length, block, window: local }));
  if (global > 0) parts.push(globalTokensMask({ length, block, global }));
  const m = unionOf(parts);
  return causal ? causalMask(m) : m;
}
