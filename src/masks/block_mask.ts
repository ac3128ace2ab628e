/**
 * BlockMask: which `block x block` tiles of a weight are kept, and their
 * block-sparse row (BSR) layout.
 *
 * @module
 */
import type { BlockLayout } from "../backends/types.ts";
import { checkPositiveInt, describeValue } from "../validate.ts";
import { fnv1a } from "../random.ts";

/**
 * A boolean mask over a `rows x cols` grid of `block x block` tiles.
 *
 * The weight it describes is `(rows*block, cols*block)` = `(out, in)`, padded
 * up to whole blocks. Immutable; `toBSR()` is computed once.
 *
 * @example
 * ```ts
 * import { BlockMask } from "@pixelfly/pixelfly";
 * const m = BlockMask.fromFunction(2, 2, 4, (i, j) => i === j);
 * console.log(m.nnz, m.density); // 2 0.5
 * console.log(m.toBSR().colIdx); // Int32Array [0, 1]
 * ```
 */
export class BlockMask {
  /** Block rows (output features / block). */
  readonly rows: number;
  /** Block columns (input features / block). */
  readonly cols: number;
  /** Tile edge in elements. */
  readonly block: number;
  readonly #bits: Uint8Array;
  readonly #nnz: number;
  #bsr: BlockLayout | undefined;

  /** A mask from row-major 0/1 bits of length rows*cols (copied). */
  constructor(rows: number, cols: number, block: number, bits: ArrayLike<number | boolean>) {
    checkPositiveInt("BlockMask", "rows", rows);
    checkPositiveInt("BlockMask", "cols", cols);
    checkPositiveInt("BlockMask", "block", block);
    if (bits === null || typeof bits !== "object" || typeof bits.length !== "number") {
      throw new TypeError(`BlockMask: bits must be an array of 0/1 values, got ${describeValue(bits)}`);
    }
    if (bits.length !== rows * cols) {
      throw new RangeError(
        `BlockMask: bits has ${bits.length} entries but a ${rows}x${cols} grid needs ${rows * cols}`,
      );
    }
    this.rows = rows;
    this.cols = cols;
    this.block = block;
    // (locals, not the private field, in the loop: a layer's first mask runs this cold, in the interpreter)
    const own = new Uint8Array(rows * cols);
    let nnz = 0;
    for (let i = 0; i < own.length; i++) {
      if (bits[i]) {
        own[i] = 1;
        nnz++;
      }
    }
    this.#bits = own;
    this.#nnz = nnz;
  }

  /** A mask whose tile (i, j) is kept when `keep(i, j)` is true. */
  static fromFunction(
    rows: number,
    cols: number,
    block: number,
    keep: (i: number, j: number) => boolean,
  ): BlockMask {
    const n = rows * cols; // a bad size reaches the constructor's checks, not a typed-array error
    const bits = new Uint8Array(Number.isInteger(n) && n > 0 ? n : 0);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) bits[i * cols + j] = keep(i, j) ? 1 : 0;
    return new BlockMask(rows, cols, block, bits);
  }

  /** Number of kept tiles. */
  get nnz(): number {
    return this.#nnz;
  }

  /** Kept fraction of tiles, nnz / (rows * cols). */
  get density(): number {
    return this.#nnz / (this.rows * this.cols);
  }

  /** Output features covered (rows * block). */
  get outFeatures(): number {
    return this.rows * this.block;
  }

  /** Input features covered (cols * block). */
  get inFeatures(): number {
    return this.cols * this.block;
  }

  /** Whether tile (i, j) is kept. */
  has(i: number, j: number): boolean {
    if (!Number.isInteger(i) || !Number.isInteger(j) || i < 0 || j < 0 || i >= this.rows || j >= this.cols) {
      throw new RangeError(`BlockMask.has: tile (${i}, ${j}) is outside the ${this.rows}x${this.cols} grid`);
    }
    return this.#bits[i * this.cols + j] === 1;
  }

  /** A copy of the row-major 0/1 tile bits. */
  bits(): Uint8Array {
    return this.#bits.slice();
  }

  /**
   * The BSR layout: kept tiles in row-major order (`rowPtr`, `colIdx`), plus
   * the transposed walk used by `dX = dY·W` (`colPtr`, `rowIdx`, `blockIdx`).
   * Computed once and shared; never mutate it.
   */
  toBSR(): BlockLayout {
    if (this.#bsr) return this.#bsr;
    const { rows, cols } = this, bits = this.#bits, nnz = this.#nnz;
    const rowPtr = new Int32Array(rows + 1), colIdx = new Int32Array(nnz);
    const colPtr = new Int32Array(cols + 1), rowIdx = new Int32Array(nnz);
    const blockIdx = new Int32Array(nnz);
    // kept tiles found by the native indexOf (a first layer's mask is walked cold, in the interpreter:
    // a step per kept tile, not per tile)
    let e = 0;
    for (let i = 0, t = bits.indexOf(1); i < rows; i++) {
      rowPtr[i] = e;
      // t: the next kept tile in row-major order (-1 past the last), carried from row to row
      for (const end = (i + 1) * cols; t >= 0 && t < end; t = bits.indexOf(1, t + 1)) {
        const j = t - i * cols;
        colIdx[e++] = j;
        colPtr[j + 1]++;
      }
    }
    rowPtr[rows] = e;
    for (let j = 0; j < cols; j++) colPtr[j + 1] += colPtr[j];
    const next = colPtr.slice(0, cols);
    for (let i = 0; i < rows; i++) {
      for (let k = rowPtr[i]; k < rowPtr[i + 1]; k++) {
        const slot = next[colIdx[k]]++;
        rowIdx[slot] = i;
        blockIdx[slot] = k;
      }
    }
    const bsr: BlockLayout = Object.freeze({
      rows,
      cols,
      block: this.block,
      nnz: this.#nnz,
      rowPtr,
      colIdx,
      colPtr,
      rowIdx,
      blockIdx,
    });
    fingerprints.set(bsr, fingerprint(bsr)); // valid by construction
    this.#bsr = bsr;
    return bsr;
  }

  /** A small text picture: one character per tile, `#` kept, `.` dropped. */
  toString(): string {
    const lines: string[] = [];
    for (let i = 0; i < this.rows; i++) {
      let s = "";
      for (let j = 0; j < this.cols; j++) s += this.#bits[i * this.cols + j] ? "#" : ".";
      lines.push(s);
    }
    return `BlockMask ${this.rows}x${this.cols} tiles of ${this.block}, nnz ${this.#nnz}, density ${
      this.density.toFixed(4)
    }\n${lines.join("\n")}`;
  }

  /** An SVG picture of the mask: kept tiles dark, `cell` pixels per tile. */
  toSVG({ cell = 8, title }: { cell?: number; title?: string } = {}): string {
    const w = this.cols * cell, h = this.rows * cell;
    const rects: string[] = [];
    for (let i = 0; i < this.rows; i++) {
      for (let j = 0; j < this.cols; j++) {
        if (this.#bits[i * this.cols + j]) {
          rects.push(`<rect x="${j * cell}" y="${i * cell}" width="${cell}" height="${cell}"/>`);
        }
      }
    }
    const t = title ??
      `${this.rows * this.block}x${this.cols * this.block}, block ${this.block}, density ${
        this.density.toFixed(3)
      }`;
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">` +
      `<title>${escapeXml(t)}</title><rect width="${w}" height="${h}" fill="#fff" stroke="#999"/>` +
      `<g fill="#1f4e79">${rects.join("")}</g></svg>`;
  }
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
}

/** Layouts known to be valid, with a fingerprint of their arrays when they were checked. */
const fingerprints = new WeakMap<object, number>();

/** FNV-1a over the sizes and the five index arrays (a few ns per entry). */
function fingerprint(l: BlockLayout): number {
  // the arrays hashed by fnv1a (WebAssembly past a few entries: layouts are fingerprinted on every op, and a
  // first forward's run cold; the JS loop took 1-6 ms of a 1024 -> 4096 layer's cold start)
  const P = 0x01000193;
  let h = 0x811c9dc5;
  h = Math.imul(h ^ l.rows, P);
  h = Math.imul(h ^ l.cols, P);
  h = Math.imul(h ^ l.block, P);
  h = Math.imul(h ^ l.nnz, P);
  for (const a of [l.rowPtr, l.colIdx, l.colPtr, l.rowIdx, l.blockIdx]) {
    h = fnv1a(Math.imul(h ^ a.length, P), a);
  }
  return h;
}

/**
 * Check a block layout before any kernel walks it, and remember that it is
 * valid: sizes are positive integers; `rowPtr` (rows + 1) starts at 0, never
 * decreases and ends at nnz; `colIdx` entries are in [0, cols) and strictly
 * increasing within each block row; the transposed walk (`colPtr`, `rowIdx`,
 * `blockIdx`) lists every kept block exactly once, by column, rows strictly
 * increasing. A layout checked before (and every `BlockMask.toBSR()` result)
 * costs one fingerprint pass; one whose arrays changed since it was checked
 * is refused (backends cache device copies of layouts, so they must not
 * change). Returns the layout; throws a TypeError or RangeError naming `op`.
 *
 * @example
 * ```ts
 * import { BlockMask, validateLayout } from "@pixelfly/pixelfly";
 * const layout = BlockMask.fromFunction(2, 2, 4, (i, j) => i === j).toBSR();
 * console.log(validateLayout("dds", layout) === layout); // true
 * const bad = { ...layout, colIdx: new Int32Array([0, 5]) };
 * try { validateLayout("dds", bad); } catch (e) { console.log((e as Error).message); }
 * // dds: layout colIdx[1] is 5, but block columns are in [0, 2)
 * ```
 */
export function validateLayout(op: string, layout: unknown): BlockLayout {
  if (layout === null || typeof layout !== "object") {
    throw new TypeError(`${op}: mask must be a BlockMask or a BlockLayout, got ${describeValue(layout)}`);
  }
  const l = layout as BlockLayout;
  const known = fingerprints.get(l);
  if (known !== undefined) {
    if (fingerprint(l) !== known) {
      throw new RangeError(
        `${op}: the layout's index arrays changed after it was first checked; layouts must not be mutated ` +
          `(backends cache them): build a new one`,
      );
    }
    return l;
  }
  const rows = checkPositiveInt(op, "layout rows", l.rows);
  const cols = checkPositiveInt(op, "layout cols", l.cols);
  checkPositiveInt(op, "layout block", l.block);
  const nnz = l.nnz;
  if (typeof nnz !== "number" || !Number.isInteger(nnz) || nnz < 0 || nnz > rows * cols) {
    throw new RangeError(`${op}: layout nnz must be an integer in [0, ${rows * cols}], got ${nnz}`);
  }
  const arr = (name: keyof BlockLayout, len: number): Int32Array => {
    const a = l[name];
    if (!(a instanceof Int32Array)) {
      throw new TypeError(`${op}: layout ${name} must be an Int32Array, got ${describeValue(a)}`);
    }
    if (a.length !== len) {
      throw new RangeError(`${op}: layout ${name} has ${a.length} entries but must have ${len}`);
    }
    return a;
  };
  const rowPtr = arr("rowPtr", rows + 1), colIdx = arr("colIdx", nnz);
  const colPtr = arr("colPtr", cols + 1), rowIdx = arr("rowIdx", nnz), blockIdx = arr("blockIdx", nnz);
  const ptrs = (name: string, p: Int32Array) => {
    if (p[0] !== 0) throw new RangeError(`${op}: layout ${name}[0] is ${p[0]}, but must be 0`);
    for (let i = 1; i < p.length; i++) {
      if (p[i] < p[i - 1]) {
        throw new RangeError(`${op}: layout ${name}[${i}] is ${p[i]}, below ${name}[${i - 1}] = ${p[i - 1]}`);
      }
    }
    if (p[p.length - 1] !== nnz) {
      throw new RangeError(`${op}: layout ${name}[${p.length - 1}] is ${p[p.length - 1]}, but nnz is ${nnz}`);
    }
  };
  ptrs("rowPtr", rowPtr);
  ptrs("colPtr", colPtr);
  const rowOf = new Int32Array(nnz);
  for (let i = 0; i < rows; i++) {
    for (let e = rowPtr[i]; e < rowPtr[i + 1]; e++) {
      const j = colIdx[e];
      if (j < 0 || j >= cols) {
        throw new RangeError(`${op}: layout colIdx[${e}] is ${j}, but block columns are in [0, ${cols})`);
      }
      if (e > rowPtr[i] && j <= colIdx[e - 1]) {
        throw new RangeError(
          `${op}: layout colIdx[${e}] is ${j}, not above colIdx[${e - 1}] = ${
            colIdx[e - 1]
          } in block row ${i} (columns must be sorted and unique)`,
        );
      }
      rowOf[e] = i;
    }
  }
  const seen = new Uint8Array(nnz);
  for (let j = 0; j < cols; j++) {
    for (let s = colPtr[j]; s < colPtr[j + 1]; s++) {
      const e = blockIdx[s], i = rowIdx[s];
      if (e < 0 || e >= nnz || seen[e] || colIdx[e] !== j || rowOf[e] !== i) {
        throw new RangeError(
          `${op}: layout transposed walk is inconsistent at slot ${s} (block column ${j}): blockIdx ${e}, ` +
            `rowIdx ${i} must name a kept block of that column exactly once`,
        );
      }
      if (s > colPtr[j] && i <= rowIdx[s - 1]) {
        throw new RangeError(
          `${op}: layout rowIdx[${s}] is ${i}, not above rowIdx[${s - 1}] in block column ${j}`,
        );
      }
      seen[e] = 1;
    }
  }
  fingerprints.set(l, fingerprint(l));
  return l;
}
