/**
 * BlockMask: which `block x block` tiles of a weight are kept, and their
 * block-sparse row (BSR) layout.
 *
 * @module
 */
import type { BlockLayout } from "../backends/types.ts";

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
    for (const [name, v] of [["rows", rows], ["cols", cols], ["block", block]] as const) {
      if (typeof v !== "number") {
        throw new TypeError(`BlockMask: ${name} must be a number, got ${typeof v} ${v}`);
      }
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`BlockMask: ${name} must be a positive integer, got ${v}`);
      }
    }
    if (bits.length !== rows * cols) {
      throw new RangeError(
        `BlockMask: bits has ${bits.length} entries but a ${rows}x${cols} grid needs ${rows * cols}`,
      );
    }
    this.rows = rows;
    this.cols = cols;
    this.block = block;
    this.#bits = new Uint8Array(rows * cols);
    let nnz = 0;
    for (let i = 0; i < bits.length; i++) {
      if (bits[i]) {
        this.#bits[i] = 1;
        nnz++;
      }
    }
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
    const { rows, cols } = this;
    const rowPtr = new Int32Array(rows + 1), colIdx = new Int32Array(this.#nnz);
    const colPtr = new Int32Array(cols + 1), rowIdx = new Int32Array(this.#nnz);
    const blockIdx = new Int32Array(this.#nnz);
    let e = 0;
    for (let i = 0; i < rows; i++) {
      rowPtr[i] = e;
      for (let j = 0; j < cols; j++) {
        if (this.#bits[i * cols + j]) {
          colIdx[e++] = j;
          colPtr[j + 1]++;
        }
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
    this.#bsr = Object.freeze({
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
    return this.#bsr;
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
