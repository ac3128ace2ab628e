/**
 * Seeded randomness: every random number in pixelfly comes from here.
 *
 * @module
 */
import { wasmBase64 } from "../asm/generated/random_wasm.ts";

// A view of the first `count` floats of the module's memory, grown to hold them.
function stage(m: RandomWasm, count: number): Float32Array {
  const have = m.memory.buffer.byteLength;
  if (count * 4 > have) m.memory.grow(Math.ceil((count * 4 - have) / 65536));
  return new Float32Array(m.memory.buffer, 0, count);
}

/** Options of {@link Rng.fillUniform}. */
export interface FillUniformOptions {
  /** Lower bound (0). */
  lo?: number;
  /** Upper bound, excluded (1). */
  hi?: number;
  /** First index of `out` to fill (0). */
  start?: number;
  /** Values to fill (to the end of `out`). */
  count?: number;
  /** Factor applied to every value (1). */
  scale?: number;
}

// Rng's state, for uniformBlocks (set by Rng's static block).
let stateOf: (rng: Rng) => Uint32Array;

/**
 * A small, fast, seeded generator (SplitMix32 seeding a xoshiro128**).
 *
 * @example
 * ```ts
 * import { Rng } from "@pixelfly/pixelfly";
 * const a = new Rng(7), b = new Rng(7);
 * console.log(a.uniform() === b.uniform()); // true
 * ```
 */
export class Rng {
  #s = new Uint32Array(4);
  #spare: number | undefined;

  static {
    stateOf = (rng) => rng.#s;
  }

  /** A generator for this integer seed. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed must be a finite number, got ${seed}`);
    let x = (Math.trunc(seed) >>> 0) ^ 0x9e3779b9;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * (this.nextUint32() / 4294967296);
  }

  /**
   * Fill `count` values of `out` from index `start` with `uniform(lo, hi) * scale`: the same values, in
   * the same order, as that many calls of {@link Rng.uniform}, without a call per value (layers draw
   * their initial weights with it).
   *
   * @example
   * ```ts
   * import { Rng } from "@pixelfly/pixelfly";
   * const a = new Rng(7), b = new Rng(7), out = new Float32Array(4);
   * a.fillUniform(out, { lo: -1, hi: 1, start: 1, count: 2 });
   * console.log(out[0], out[1] === Math.fround(b.uniform(-1, 1)), out[3]); // 0 true 0
   * ```
   */
  fillUniform(out: Float32Array | Float64Array, opts: FillUniformOptions = {}): void {
    if (!(out instanceof Float32Array || out instanceof Float64Array)) {
      throw new TypeError(`Rng.fillUniform: out must be a Float32Array or Float64Array, got ${out}`);
    }
    if (opts === null || typeof opts !== "object") {
      throw new TypeError(`Rng.fillUniform: options must be an object, got ${opts}`);
    }
    const { lo = 0, hi = 1, start = 0, count = out.length - start, scale = 1 } = opts;
    if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0)) {
      throw new RangeError(`Rng.fillUniform: start ${start} and count ${count} must be integers >= 0`);
    }
    if (start + count > out.length) {
      throw new RangeError(
        `Rng.fillUniform: start ${start} + count ${count} is past the end (${out.length})`,
      );
    }
    if (out instanceof Float64Array) {
      // float64 keeps the unrounded values, as uniform() gives them
      jsFill(this.#s, out, lo, hi - lo, start, count, scale);
      return;
    }
    const walk = { rows: 1, rowStride: 0, cols: 1, colStride: 0, len: count };
    uniformBlocks(this, (v, at) => out.set(v, start + at), { ...walk, lo, hi, scale });
  }

  /** Standard normal (Box-Muller), times std plus mean. */
  normal(mean = 0, std = 1): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return mean + std * v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Shuffle an array in place (Fisher-Yates) and return it. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): typeof a {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

// Draws at least this many go through the WebAssembly path (a call costs about a microsecond).
const WASM_MIN = 256;
// Values drawn per call where the destination order allows chunks (64 KB of the module's memory: on
// some machines every first touch of a fresh page costs microseconds, so the scratch stays small).
const CHUNK = 1 << 14;
// The most values a tile-major walk draws in place at once (16 MB); larger walks go run by run.
const MAX_STAGE = 1 << 22;

interface RandomWasm {
  memory: WebAssembly.Memory;
  setState(a: number, b: number, c: number, d: number): void;
  getState(i: number): number;
  uniform(...args: number[]): void;
  fnv(ptr: number, n: number, h: number): number;
}

// undefined: not loaded yet; null: this engine cannot run it (no WebAssembly, or a policy forbids it).
let wasm: RandomWasm | null | undefined;

function randomWasm(): RandomWasm | null {
  if (wasm === undefined) {
    try {
      // native base64 where the engine has it (Deno's atob is a lazily loaded script: milliseconds at first use)
      const native = (Uint8Array as { fromBase64?: (s: string) => Uint8Array }).fromBase64;
      let bytes: Uint8Array;
      if (typeof native === "function") bytes = native(wasmBase64);
      else {
        const bin = atob(wasmBase64);
        bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      }
      // a few hundred bytes: synchronous compilation is allowed everywhere, even on a browser's main thread
      const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), {});
      wasm = inst.exports as unknown as RandomWasm;
    } catch {
      wasm = null;
    }
  }
  return wasm;
}

/**
 * The walk of {@link uniformBlocks}: `rows x cols` runs of `len` values, drawn row by row, run by run;
 * run (r, e) lands at element `r·rowStride + e·colStride`.
 */
export interface BlockWalk {
  /** Outer count. */
  rows: number;
  /** Elements between consecutive outer steps. */
  rowStride: number;
  /** Middle count. */
  cols: number;
  /** Elements between consecutive middle steps. */
  colStride: number;
  /** Contiguous values per (row, col). */
  len: number;
}

/** Options of {@link uniformBlocks}: the walk and the values' range and factor. */
export interface UniformBlocksOptions extends BlockWalk {
  /** Lower bound (0). */
  lo?: number;
  /** Upper bound, excluded (1). */
  hi?: number;
  /** Factor applied to every value (1). */
  scale?: number;
}

/**
 * Receives drawn values: `values` go to elements `offset ..` of the destination. The array is only
 * valid during the call (it may be a view of scratch memory that the next draw overwrites).
 */
export type UniformSink = (values: Float32Array, offset: number) => void;

/**
 * Draw `rows·cols·len` uniforms in [lo, hi), times `scale`, rounded to float32: value q of the stream
 * (the order of `rng.uniform` calls) goes to element `r·rowStride + e·colStride + k` for
 * q = (r·cols + e)·len + k, handed to `sink` in chunks. The values equal
 * `Math.fround(rng.uniform(lo, hi) * scale)` call for call. A layer draws a block-sparse weight's kept
 * tiles with it in the order a dense draw would visit them (each element row across its kept tiles),
 * straight into the backend's buffer.
 *
 * @example
 * ```ts
 * import { Rng, uniformBlocks } from "./random.ts";
 * const a = new Rng(1), b = new Rng(1), out = new Float32Array(8);
 * // two tiles of 2 x 2, tile-major: value (r, e, k) at 4e + 2r + k
 * const walk = { rows: 2, rowStride: 2, cols: 2, colStride: 4, len: 2 };
 * uniformBlocks(a, (v, at) => out.set(v, at), { ...walk, lo: -1, hi: 1 });
 * const first = [0, 1, 4, 5].map(() => Math.fround(b.uniform(-1, 1)));
 * console.log(first.every((v, i) => out[[0, 1, 4, 5][i]] === v)); // true
 * ```
 */
export function uniformBlocks(rng: Rng, sink: UniformSink, opts: UniformBlocksOptions): void {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`uniformBlocks: options must be an object, got ${opts}`);
  }
  const { rows, rowStride, cols, colStride, len, lo = 0, hi = 1, scale = 1 } = opts;
  for (const v of [rows, rowStride, cols, colStride, len]) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(`uniformBlocks: the walk's counts and strides must be integers >= 0, got ${v}`);
    }
  }
  const n = rows * cols * len;
  if (n === 0) return;
  const w = hi - lo, s = stateOf(rng), m = n >= WASM_MIN ? randomWasm() : null;
  if (m === null) {
    jsWalk(s, sink, opts, lo, w, scale);
    return;
  }
  m.setState(s[0], s[1], s[2], s[3]);
  if (colStride === len && rowStride === cols * len) {
    // row-major: the destination's order is the stream's, so flat chunks
    const view = stage(m, Math.min(n, CHUNK));
    for (let q = 0; q < n; q += CHUNK) {
      const c = Math.min(CHUNK, n - q);
      m.uniform(0, 1, 0, 1, 0, c, lo, w, scale);
      sink(c === view.length ? view : view.subarray(0, c), q);
    }
  } else if (rowStride === len && colStride === rows * len && n <= MAX_STAGE) {
    // tile-major (a block row of BSR tiles): drawn in place as a whole, handed over at once
    const view = stage(m, n);
    m.uniform(0, rows, rowStride, cols, colStride, len, lo, w, scale);
    sink(view, 0);
  } else {
    // any other walk: run by run, CHUNK values at a time
    const view = stage(m, Math.min(len, CHUNK));
    for (let r = 0; r < rows; r++) {
      for (let e = 0; e < cols; e++) {
        for (let k = 0; k < len; k += CHUNK) {
          const c = Math.min(CHUNK, len - k);
          m.uniform(0, 1, 0, 1, 0, c, lo, w, scale);
          sink(c === view.length ? view : view.subarray(0, c), r * rowStride + e * colStride + k);
        }
      }
    }
  }
  for (let i = 0; i < 4; i++) s[i] = m.getState(i);
}

// The JS path of a walk: run by run, CHUNK values at a time.
function jsWalk(
  s: Uint32Array,
  sink: UniformSink,
  walk: BlockWalk,
  lo: number,
  w: number,
  scale: number,
): void {
  const { rows, rowStride, cols, colStride, len } = walk;
  const run = new Float32Array(Math.min(len, CHUNK));
  for (let r = 0; r < rows; r++) {
    for (let e = 0; e < cols; e++) {
      for (let k = 0; k < len; k += CHUNK) {
        const c = Math.min(CHUNK, len - k), v = c === run.length ? run : run.subarray(0, c);
        jsFill(s, v, lo, w, 0, c, scale);
        sink(v, r * rowStride + e * colStride + k);
      }
    }
  }
}

/** Options of {@link uniformBsr}. */
export interface UniformBsrOptions {
  /** Tile edge b. */
  block: number;
  /** Kept tiles of block row i are entries `rowPtr[i] .. rowPtr[i + 1] - 1` (BSR order); rows + 1 entries. */
  rowPtr: Int32Array;
  /** Factor of block row i's values (1 for every row when omitted). */
  rowScale?: Float64Array;
  /** Lower bound (0). */
  lo?: number;
  /** Upper bound, excluded (1). */
  hi?: number;
}

/**
 * Draw the kept tiles of a block-sparse weight stored as (nnz, b, b) in BSR order, in the order a
 * dense row-major draw visits them: element row r of block row i crosses its kept tiles left to right.
 * The values equal {@link uniformBlocks} called block row by block row with the tile-major walk
 * `{ rows: b, rowStride: b, cols: kept, colStride: b², len: b }` and that row's scale (value for value,
 * and the generator continues the same), handed to `sink` one block row at a time. One call for the
 * whole weight: the per-row bookkeeping runs once, not once per block row (a layer's construction runs
 * this code cold).
 *
 * @example
 * ```ts
 * import { Rng, uniformBlocks, uniformBsr } from "./random.ts";
 * const rowPtr = new Int32Array([0, 2, 3]), a = new Float32Array(12), b = new Float32Array(12);
 * uniformBsr(new Rng(1), (v, at) => a.set(v, at), { block: 2, rowPtr, lo: -1, hi: 1 });
 * const rng = new Rng(1);
 * uniformBlocks(rng, (v, at) => b.set(v, at), { rows: 2, rowStride: 2, cols: 2, colStride: 4, len: 2, lo: -1, hi: 1 });
 * uniformBlocks(rng, (v, at) => b.set(v, 8 + at), { rows: 2, rowStride: 2, cols: 1, colStride: 4, len: 2, lo: -1, hi: 1 });
 * console.log(a.every((v, i) => v === b[i])); // true
 * ```
 */
export function uniformBsr(rng: Rng, sink: UniformSink, opts: UniformBsrOptions): void {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`uniformBsr: options must be an object, got ${opts}`);
  }
  const { block: b, rowPtr, rowScale, lo = 0, hi = 1 } = opts;
  if (!Number.isInteger(b) || b < 1) {
    throw new RangeError(`uniformBsr: block must be an integer >= 1, got ${b}`);
  }
  if (!(rowPtr instanceof Int32Array) || rowPtr.length < 1) {
    throw new TypeError(`uniformBsr: rowPtr must be a non-empty Int32Array, got ${rowPtr}`);
  }
  const rows = rowPtr.length - 1, bb = b * b;
  if (rowScale !== undefined && !(rowScale instanceof Float64Array && rowScale.length === rows)) {
    throw new TypeError(`uniformBsr: rowScale must be a Float64Array of ${rows} entries (one per block row)`);
  }
  let most = 0;
  for (let i = 0; i < rows; i++) {
    const kept = rowPtr[i + 1] - rowPtr[i];
    if (!(kept >= 0)) {
      throw new RangeError(`uniformBsr: rowPtr must not decrease, but rowPtr[${i + 1}] < rowPtr[${i}]`);
    }
    if (kept > most) most = kept;
  }
  const w = hi - lo, s = stateOf(rng), m = rowPtr[rows] * bb >= WASM_MIN ? randomWasm() : null;
  if (m === null || most * bb > MAX_STAGE) {
    for (let i = 0; i < rows; i++) {
      const e0 = rowPtr[i], walk = { rows: b, rowStride: b, cols: rowPtr[i + 1] - e0, colStride: bb, len: b };
      if (walk.cols === 0) continue;
      const scale = rowScale === undefined ? 1 : rowScale[i];
      if (m === null) jsWalk(s, (v, at) => sink(v, e0 * bb + at), walk, lo, w, scale);
      else uniformBlocks(rng, (v, at) => sink(v, e0 * bb + at), { ...walk, lo, hi, scale });
    }
    return;
  }
  // each block row's tiles drawn in place at the start of the module's memory, handed over at once
  const view = stage(m, most * bb);
  m.setState(s[0], s[1], s[2], s[3]);
  for (let i = 0; i < rows; i++) {
    const e0 = rowPtr[i], kept = rowPtr[i + 1] - e0;
    if (kept === 0) continue;
    m.uniform(0, b, b, kept, bb, b, lo, w, rowScale === undefined ? 1 : rowScale[i]);
    sink(kept === most ? view : view.subarray(0, kept * bb), e0 * bb);
  }
  for (let i = 0; i < 4; i++) s[i] = m.getState(i);
}

// Words at least this many go through the WebAssembly path of fnv1a.
const FNV_WASM_MIN = 64;

/**
 * FNV-1a over the 32-bit words of `a`, continuing from hash `h`: `h = Math.imul(h ^ a[i], 16777619)` for
 * every word in order, returned as an unsigned 32-bit integer. Block layouts are fingerprinted with it on
 * every block-sparse op; past a few words it runs in the small WebAssembly module of the generator's bulk
 * draws (the same value as the JS loop, which a layer's first forward would run cold: in V8's interpreter,
 * then on-stack replaced by its optimiser, milliseconds for a 1024 -> 4096 layer's layout).
 *
 * @example
 * ```ts
 * import { fnv1a } from "./random.ts";
 * const a = Int32Array.from({ length: 100 }, (_, i) => i * 7919 - 50);
 * let h = 0x811c9dc5;
 * for (const v of a) h = Math.imul(h ^ v, 0x01000193);
 * console.log(fnv1a(0x811c9dc5, a) === h >>> 0); // true
 * ```
 */
export function fnv1a(h: number, a: Int32Array): number {
  const m = a.length >= FNV_WASM_MIN ? randomWasm() : null;
  if (m === null) {
    for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i], 0x01000193);
    return h >>> 0;
  }
  // copied into the module's scratch (the start of its memory, where draws stage their values: so not for a
  // draw's sink to call while it still reads them) CHUNK words at a time
  const n = a.length, view = new Int32Array(stage(m, Math.min(n, CHUNK)).buffer, 0, Math.min(n, CHUNK));
  for (let q = 0; q < n; q += CHUNK) {
    const c = Math.min(CHUNK, n - q);
    view.set(a.subarray(q, q + c));
    h = m.fnv(0, c, h);
  }
  return h >>> 0;
}

// The JS path: `count` values from `start`, the state in int32 locals (xoshiro128** as in nextUint32).
function jsFill(
  s: Uint32Array,
  out: Float32Array | Float64Array,
  lo: number,
  w: number,
  start: number,
  count: number,
  scale: number,
): void {
  let s0 = s[0] | 0, s1 = s[1] | 0, s2 = s[2] | 0, s3 = s[3] | 0;
  for (let i = start, end = start + count; i < end; i++) {
    const m = Math.imul(s1, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    out[i] = (lo + w * (r / 4294967296)) * scale;
  }
  s[0] = s0;
  s[1] = s1;
  s[2] = s2;
  s[3] = s3;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

let global = new Rng(0);

/**
 * Seed the generator that layers draw their default seeds from (as
 * `torch.manual_seed`): the same program after the same call builds the
 * same initial weights.
 *
 * @example
 * ```ts
 * import { manualSeed, nextSeed } from "@pixelfly/pixelfly";
 * manualSeed(3);
 * const a = nextSeed();
 * manualSeed(3);
 * console.log(nextSeed() === a); // true
 * ```
 */
export function manualSeed(seed: number): void {
  global = new Rng(seed);
}

/** A fresh seed from the global generator (used when a layer is given no seed). */
export function nextSeed(): number {
  return global.nextUint32();
}
