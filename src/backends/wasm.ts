/**
 * The WASM SIMD backend: AssemblyScript kernels (`asm/`) running on tensors
 * that live in the module's linear memory across ops.
 *
 * Four builds ship inside the module graph as base64 (no fetch, no
 * permissions): SIMD128 with relaxed-SIMD fused multiply-add, plain SIMD128,
 * and each of those on an imported shared memory for worker threads.
 * {@link createWasmBackend} picks the first one this engine accepts
 * (`WebAssembly.validate`). With `threads: 2`, `gemm` and `dds` split their
 * output between the calling thread and one Worker (made from a `blob:` URL,
 * so no permission is needed) that shares the memory; they meet with
 * `Atomics.wait`/`Atomics.notify`.
 *
 * @module
 */
import { wasmBase64 as relaxedBase64 } from "../../asm/generated/kernels_relaxed.ts";
import { wasmBase64 as simdBase64 } from "../../asm/generated/kernels_simd.ts";
import { wasmBase64 as threadsBase64 } from "../../asm/generated/kernels_threads.ts";
import { wasmBase64 as threadsSimdBase64 } from "../../asm/generated/kernels_threads_simd.ts";
import { Allocator } from "./_wasm_alloc.ts";
import { balancedSplit, CTRL_BYTES, splitPoint, WorkerThread } from "./_wasm_threads.ts";
import { BINARY_CODE, BROADCAST_CODE, UNARY_CODE } from "./op_table.ts";
import type {
  AdamWParams,
  Backend,
  BackendBuffer,
  BinaryOp,
  BlockLayout,
  Broadcast,
  BsrSoftmaxParams,
  DdsParams,
  GemmParams,
  SddParams,
  SgdParams,
  UnaryOp,
} from "./types.ts";

/** The two builds of the kernels. */
export type WasmVariant = "relaxed" | "simd128";

/** Options of {@link createWasmBackend}. */
export interface WasmBackendOptions {
  /** Which build to load (the fastest one this engine validates when omitted). */
  variant?: WasmVariant;
  /**
   * Threads for the products `gemm` and `dds`: 1 (the default), 2 (the calling thread and one Worker), or
   * "auto" (min(2, navigator.hardwareConcurrency)). Where SharedArrayBuffer, Workers or the threads build
   * are unavailable the backend runs on 1 thread: read {@link WasmBackend.threads} for what you got. The Worker leaves after 1 s idle (so a backend nobody
   * disposes lets the process exit) and the next product starts another (about 20 ms);
   * {@link WasmBackend.dispose} stops it at once.
   */
  threads?: 1 | 2 | "auto";
  /**
   * Products smaller than this many multiply-adds (M·N·K for gemm, M·nnz·b² for dds) stay on one
   * thread, where the hand-off (about 0.1 ms) would cost more than it saves. Default 2^21; tests set 0.
   */
  minSplitWork?: number;
}

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A build's name: the two builds of {@link WasmVariant} and their shared-memory builds for threads. */
export type WasmBuild = WasmVariant | "threads" | "threads-simd128";

const byteCache = new Map<WasmBuild, Uint8Array>();

/**
 * The WebAssembly bytes of one build.
 *
 * @example
 * ```ts
 * import { wasmBytes } from "./wasm.ts";
 * console.log(WebAssembly.validate(wasmBytes("simd128") as BufferSource)); // true on engines with SIMD
 * ```
 */
export function wasmBytes(variant: WasmBuild): Uint8Array {
  let b = byteCache.get(variant);
  if (b === undefined) {
    b = decodeBase64(
      variant === "relaxed"
        ? relaxedBase64
        : variant === "simd128"
        ? simdBase64
        : variant === "threads"
        ? threadsBase64
        : threadsSimdBase64,
    );
    byteCache.set(variant, b);
  }
  return b;
}

/**
 * The fastest build this engine accepts, or undefined when it has no WASM SIMD.
 *
 * @example
 * ```ts
 * import { pickWasmVariant } from "./wasm.ts";
 * console.log(pickWasmVariant()); // "relaxed" on Deno 2
 * ```
 */
export function pickWasmVariant(
  validate: (bytes: Uint8Array) => boolean = (b) => WebAssembly.validate(b as BufferSource),
): WasmVariant | undefined {
  if (validate(wasmBytes("relaxed"))) return "relaxed";
  if (validate(wasmBytes("simd128"))) return "simd128";
  return undefined;
}

/** The kernel exports of asm/kernels.ts (byte addresses and element counts). */
interface Kernels {
  memory: WebAssembly.Memory;
  heapBase(): number;
  gemmWorkspace(): number;
  gemm(...args: number[]): void;
  ddsWorkspace(M: number, inBlocks: number, nnz: number, b: number): number;
  dds(...args: number[]): void;
  sddWorkspace(rows: number, cols: number, b: number, K: number): number;
  sdd(...args: number[]): void;
  sumRows(x: number, y: number, M: number, N: number, beta: number): void;
  sumCols(x: number, y: number, M: number, N: number, beta: number): void;
  sumSquares(x: number, out: number, size: number, beta: number): void;
  binary(op: number, a: number, b: number, out: number, M: number, N: number, bcast: number): void;
  unary(op: number, x: number, y: number, size: number): void;
  unaryGrad(op: number, x: number, y: number, dy: number, dx: number, size: number, beta: number): void;
  scale(x: number, y: number, size: number, alpha: number, beta: number, acc: number): void;
  fill(x: number, size: number, value: number): void;
  copy(src: number, dst: number, size: number): void;
  transpose(x: number, y: number, B: number, M: number, N: number): void;
  softmax(x: number, y: number, M: number, N: number): void;
  bsrSoftmax(...args: number[]): void;
  bsrSoftmaxGrad(...args: number[]): void;
  softmaxGrad(y: number, dy: number, dx: number, M: number, N: number, beta: number): void;
  crossEntropy(logits: number, labels: number, probs: number, losses: number, M: number, N: number): void;
  crossEntropyGrad(...args: number[]): void;
  layerNorm(...args: number[]): void;
  layerNormGrad(...args: number[]): void;
  gatherRows(table: number, idx: number, out: number, M: number, N: number): void;
  scatterAddRows(dout: number, idx: number, dtable: number, M: number, N: number): void;
  adamw(...args: number[]): void;
  sgd(...args: number[]): void;
  clipScale(g: number, normSq: number, size: number, maxNorm: number): void;
}

const PAGE = 65536;
// Pages the threads builds' shared memory may grow to (2 GiB; asm/build.ts's --maximumMemory).
const SHARED_MAX_PAGES = 32768;

// Thrown by the allocator's grow callback; the backend turns it into a RangeError with the figures.
class OutOfMemory extends Error {}

/** A buffer of the wasm backend: `size` float32 values at byte `ptr` of linear memory. */
export class WasmBuffer implements BackendBuffer {
  readonly size: number;
  /** Byte offset in linear memory; -1 once freed. */
  ptr: number;
  readonly owner: WasmBackend;
  constructor(owner: WasmBackend, ptr: number, size: number) {
    this.owner = owner;
    this.ptr = ptr;
    this.size = size;
  }
}

/** The WASM SIMD backend. Make it with {@link createWasmBackend}. */
export class WasmBackend implements Backend {
  readonly name = "wasm";
  /** The build in use. */
  readonly variant: WasmVariant;
  /** Threads that run `gemm` and `dds`: 2 when a Worker shares the work, else 1. */
  readonly threads: number;
  /** Products below this many multiply-adds stay on one thread (see {@link WasmBackendOptions}). */
  minSplitWork: number;
  #k: Kernels;
  #mem: WebAssembly.Memory;
  #alloc: Allocator;
  #view: Float32Array;
  #iview: Int32Array;
  #ws = [0, 0];
  #wsBytes = [0, 0];
  #thread: WorkerThread | undefined;
  #idx = 0;
  #idxBytes = 0;
  #live = 0;
  #liveBytes = 0;
  #maxBytes: number;

  /** Made by {@link createWasmBackend}; `memory` is the shared memory of the threads build. */
  constructor(
    instance: WebAssembly.Instance,
    variant: WasmVariant,
    opts: { memory?: WebAssembly.Memory; minSplitWork?: number } = {},
  ) {
    this.variant = variant;
    this.threads = 1;
    this.minSplitWork = opts.minSplitWork ?? 2 ** 21;
    this.#k = instance.exports as unknown as Kernels;
    this.#mem = opts.memory ?? this.#k.memory;
    this.#view = new Float32Array(this.#mem.buffer);
    this.#iview = new Int32Array(this.#mem.buffer);
    // the shared memory's maximum is set by createWasmBackend; an unshared one may grow to 4 GiB (wasm32)
    this.#maxBytes = (opts.memory ? SHARED_MAX_PAGES : 65536) * PAGE;
    this.#alloc = new Allocator(this.#k.heapBase(), (bytes) => this.#grow(bytes));
  }

  // Grows linear memory to at least `bytes`: by at least an eighth (so a slowly growing heap does not grow
  // on every alloc) but never past the maximum; throws OutOfMemory when even the exact amount fails.
  #grow(bytes: number): void {
    const have = this.#mem.buffer.byteLength;
    if (bytes <= have) return;
    const pages = Math.ceil((bytes - have) / PAGE);
    if (bytes <= this.#maxBytes) {
      const room = (this.#maxBytes - have) / PAGE;
      const ahead = Math.min(room, Math.max(pages, Math.ceil(have / PAGE / 8)));
      for (const n of ahead > pages ? [ahead, pages] : [pages]) {
        try {
          this.#mem.grow(n);
          return;
        } catch {
          // the engine refused this much (the host is short of memory): try the exact amount next
        }
      }
    }
    throw new OutOfMemory();
  }

  // Reserves `bytes` of linear memory; a RangeError that says what is live when memory is exhausted.
  #reserve(bytes: number, what: string): number {
    try {
      return this.#alloc.alloc(bytes);
    } catch (err) {
      if (!(err instanceof OutOfMemory)) throw err;
      const have = this.#mem.buffer.byteLength, holes = this.#alloc.freeBelowTop;
      throw new RangeError(
        `wasm backend: out of memory in ${what}: ${bytes} bytes requested, ` +
          `${this.#maxBytes - this.#alloc.top} available above the heap top ` +
          `(linear memory ${have} of at most ${this.#maxBytes} bytes; free holes ${holes.total} bytes, ` +
          `the largest ${holes.largest}); ${this.#live} live buffers hold ${this.#liveBytes} bytes. ` +
          `Release what you no longer need: wrap each step in tidy(() => ...) or call dispose() on tensors`,
      );
    }
  }

  /** Bytes of linear memory (it only grows). */
  get memoryBytes(): number {
    return this.#mem.buffer.byteLength;
  }

  /** One past the highest byte the allocator has handed out. */
  get heapTop(): number {
    return this.#alloc.top;
  }

  /** Number of live buffers. */
  get liveBuffers(): number {
    return this.#live;
  }

  #f32(): Float32Array {
    if (this.#view.buffer !== this.#mem.buffer) {
      this.#view = new Float32Array(this.#mem.buffer);
      this.#iview = new Int32Array(this.#mem.buffer);
    }
    return this.#view;
  }

  #i32(): Int32Array {
    this.#f32();
    return this.#iview;
  }

  #p(buf: BackendBuffer): number {
    const b = buf as WasmBuffer;
    if (!(b instanceof WasmBuffer) || b.owner !== this) {
      throw new Error("wasm backend: buffer belongs to another backend");
    }
    if (b.ptr < 0) throw new Error("wasm backend: buffer was freed");
    return b.ptr;
  }

  /** Starts the worker thread (threads build only); called once by createWasmBackend. */
  async startThread(module: WebAssembly.Module): Promise<void> {
    const ctrl = this.#reserve(CTRL_BYTES, "createWasmBackend");
    this.#f32().fill(0, ctrl >>> 2, (ctrl + CTRL_BYTES) >>> 2);
    this.#thread = await WorkerThread.start(module, this.#mem, ctrl);
    (this as { threads: number }).threads = 2;
  }

  // Workspace of the calling thread (slot 0) or of the worker (slot 1).
  #workspace(bytes: number, slot = 0): number {
    if (bytes > this.#wsBytes[slot]) {
      if (this.#wsBytes[slot] > 0) this.#alloc.free(this.#ws[slot], this.#wsBytes[slot]);
      this.#wsBytes[slot] = Math.max(bytes, Math.ceil(this.#wsBytes[slot] * 1.25));
      this.#ws[slot] = this.#reserve(this.#wsBytes[slot], "a kernel's workspace");
    }
    return this.#ws[slot];
  }

  // Runs `own` here while the worker runs its posted job, then joins; the worker always finishes
  // before this returns or throws, so no kernel still writes memory after an error.
  #together(what: string, own: () => void): void {
    const t = this.#thread!;
    try {
      own();
    } finally {
      t.join(what);
    }
  }

  // Copies the layout's index arrays into linear memory: [rowPtr, colIdx, colPtr, rowIdx, blockIdx].
  #layout(l: BlockLayout): number[] {
    const parts = [l.rowPtr, l.colIdx, l.colPtr, l.rowIdx, l.blockIdx];
    const total = parts.reduce((s, a) => s + a.length, 0) * 4;
    if (total > this.#idxBytes) {
      if (this.#idxBytes > 0) this.#alloc.free(this.#idx, this.#idxBytes);
      this.#idxBytes = Math.max(total, Math.ceil(this.#idxBytes * 1.25));
      this.#idx = this.#reserve(this.#idxBytes, "a block layout's indices");
    }
    const view = this.#i32();
    const ptrs: number[] = [];
    let off = this.#idx;
    for (const a of parts) {
      ptrs.push(off);
      view.set(a, off >>> 2);
      off += a.length * 4;
    }
    return ptrs;
  }

  // --- memory -------------------------------------------------------------
  alloc(size: number): BackendBuffer {
    const ptr = this.#reserve(size * 4, "alloc");
    this.#f32().fill(0, ptr >>> 2, (ptr >>> 2) + size);
    this.#live++;
    this.#liveBytes += size * 4;
    return new WasmBuffer(this, ptr, size);
  }
  upload(data: Float32Array): BackendBuffer {
    const ptr = this.#reserve(data.length * 4, "upload");
    this.#f32().set(data, ptr >>> 2);
    this.#live++;
    this.#liveBytes += data.length * 4;
    return new WasmBuffer(this, ptr, data.length);
  }
  write(buf: BackendBuffer, data: Float32Array, offset = 0): void {
    this.#f32().set(data, (this.#p(buf) >>> 2) + offset);
  }
  read(buf: BackendBuffer): Promise<Float32Array> {
    const p = this.#p(buf) >>> 2;
    return Promise.resolve(this.#f32().slice(p, p + buf.size));
  }
  /** A copy of the buffer's values, synchronously (this backend computes synchronously). */
  readSync(buf: BackendBuffer): Float32Array {
    const p = this.#p(buf) >>> 2;
    return this.#f32().slice(p, p + buf.size);
  }
  free(buf: BackendBuffer): void {
    const ptr = this.#p(buf);
    this.#alloc.free(ptr, buf.size * 4);
    (buf as WasmBuffer).ptr = -1;
    this.#live--;
    this.#liveBytes -= buf.size * 4;
  }
  flush(): void {}
  dispose(): void {
    // The instance and its memory go with the last reference to this object; the worker stops now.
    this.#live = 0;
    this.#liveBytes = 0;
    const t = this.#thread;
    this.#thread = undefined;
    (this as { threads: number }).threads = 1;
    t?.stop();
  }

  // --- products -----------------------------------------------------------
  gemm(a: BackendBuffer, b: BackendBuffer, c: BackendBuffer, p: GemmParams): void {
    const { M, N, K, transA, transB, accumulate } = p;
    const alpha = p.alpha ?? 1, batch = p.batch ?? 1;
    const sA = (p.strideA ?? M * K) * 4, sB = (p.strideB ?? K * N) * 4, sC = (p.strideC ?? M * N) * 4;
    const pa = this.#p(a), pb = this.#p(b), pc = this.#p(c);
    const ta = transA ? 1 : 0, tb = transB ? 1 : 0, acc = accumulate ? 1 : 0;
    const lda = transA ? M : K, ldb = transB ? K : N;
    const ws = this.#workspace(this.#k.gemmWorkspace());
    // Two threads: split the larger of M and N at a multiple of the 8-wide register tile.
    const split = this.#thread && M * N * K >= this.minSplitWork ? splitPoint(Math.max(M, N)) : 0;
    if (split > 0) this.#workspace(this.#k.gemmWorkspace(), 1);
    for (let t = 0; t < batch; t++) {
      const A = pa + t * sA, B = pb + t * sB, C = pc + t * sC;
      if (split === 0) {
        this.#k.gemm(A, B, C, M, N, K, ta, tb, acc, alpha, ws, lda, ldb, N);
      } else if (N >= M) {
        const B2 = B + split * (transB ? K : 1) * 4;
        this.#thread!.post(1, [
          A,
          B2,
          C + split * 4,
          M,
          N - split,
          K,
          ta,
          tb,
          acc,
          0,
          this.#ws[1],
          lda,
          ldb,
          N,
        ], [
          [13, alpha],
        ]);
        this.#together("gemm", () => this.#k.gemm(A, B, C, M, split, K, ta, tb, acc, alpha, ws, lda, ldb, N));
      } else {
        const A2 = A + split * (transA ? 1 : K) * 4;
        this.#thread!.post(1, [
          A2,
          B,
          C + split * N * 4,
          M - split,
          N,
          K,
          ta,
          tb,
          acc,
          0,
          this.#ws[1],
          lda,
          ldb,
          N,
        ], [
          [13, alpha],
        ]);
        this.#together("gemm", () => this.#k.gemm(A, B, C, split, N, K, ta, tb, acc, alpha, ws, lda, ldb, N));
      }
    }
  }

  dds(x: BackendBuffer, w: BackendBuffer, y: BackendBuffer, p: DdsParams): void {
    const { M, layout: l, transW, accumulate } = p;
    const px = this.#p(x), pw = this.#p(w), py = this.#p(y);
    const [rowPtr, colIdx, colPtr, rowIdx, blockIdx] = this.#layout(l);
    const inBlocks = transW ? l.cols : l.rows, outBlocks = transW ? l.rows : l.cols;
    const ptr = transW ? rowPtr : colPtr, idx = transW ? colIdx : rowIdx, tw = transW ? 1 : 0;
    const acc = accumulate ? 1 : 0, b = l.block, nnz = l.nnz;
    const ws = this.#workspace(this.#k.ddsWorkspace(M, inBlocks, nnz, b));
    // Two threads: each takes a range of output block columns holding about half the kept blocks, so
    // each packs only its own blocks of W (X is packed by both).
    const split = this.#thread && M * nnz * b * b >= this.minSplitWork
      ? balancedSplit(transW ? l.rowPtr : l.colPtr)
      : 0;
    const ws2 = split === 0 ? 0 : this.#workspace(this.#k.ddsWorkspace(M, inBlocks, nnz, b), 1);
    // batched (attention): one product per batch entry on the one layout, at byte strides
    const sX = (p.strideX ?? M * inBlocks * b) * 4, sW = (p.strideW ?? nnz * b * b) * 4;
    const sY = (p.strideY ?? M * outBlocks * b) * 4;
    for (let t = 0; t < (p.batch ?? 1); t++) {
      const X = px + t * sX, W = pw + t * sW, Y = py + t * sY;
      if (split === 0) {
        this.#k.dds(X, W, Y, M, inBlocks, outBlocks, b, nnz, ptr, idx, blockIdx, tw, acc, ws, 0, outBlocks);
        continue;
      }
      const args = [X, W, Y, M, inBlocks, outBlocks, b, nnz, ptr, idx, blockIdx, tw, acc];
      this.#thread!.post(2, [...args, ws2, split, outBlocks]);
      this.#together("dds", () => this.#k.dds(...args, ws, 0, split));
    }
  }

  sdd(a: BackendBuffer, b: BackendBuffer, w: BackendBuffer, p: SddParams): void {
    const { layout: l, K, transA, transB, accumulate } = p;
    const pa = this.#p(a), pb = this.#p(b), pw = this.#p(w);
    const [rowPtr, colIdx, colPtr] = this.#layout(l);
    const ws = this.#workspace(this.#k.sddWorkspace(l.rows, l.cols, l.block, K));
    const R = l.rows * l.block, C = l.cols * l.block;
    const sA = (p.strideA ?? R * K) * 4,
      sB = (p.strideB ?? K * C) * 4,
      sW = (p.strideW ?? l.nnz * l.block ** 2) * 4;
    for (let t = 0; t < (p.batch ?? 1); t++) {
      this.#k.sdd(
        pa + t * sA,
        pb + t * sB,
        pw + t * sW,
        l.rows,
        l.cols,
        l.block,
        K,
        transA ? 1 : 0,
        transB ? 1 : 0,
        rowPtr,
        colIdx,
        colPtr,
        accumulate ? 1 : 0,
        ws,
      );
    }
  }

  bsrSoftmax(x: BackendBuffer, y: BackendBuffer, p: BsrSoftmaxParams): void {
    const l = p.layout, [rowPtr, colIdx] = this.#layout(l);
    const f = p.causal ? 1 : 0;
    this.#k.bsrSoftmax(
      this.#p(x),
      this.#p(y),
      rowPtr,
      colIdx,
      l.rows,
      l.nnz,
      l.block,
      p.batch,
      p.L,
      p.S,
      f,
      p.scale,
    );
  }
  bsrSoftmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: BsrSoftmaxParams & { accumulate: boolean },
  ): void {
    const l = p.layout, [rowPtr] = this.#layout(l);
    const acc = p.accumulate ? 1 : 0;
    this.#k.bsrSoftmaxGrad(
      this.#p(y),
      this.#p(dy),
      this.#p(dx),
      rowPtr,
      l.rows,
      l.nnz,
      l.block,
      p.batch,
      p.scale,
      acc,
    );
  }

  // --- reductions ---------------------------------------------------------
  sumRows(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void {
    this.#k.sumRows(this.#p(x), this.#p(y), p.M, p.N, p.accumulate ? 1 : 0);
  }
  sumCols(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void {
    this.#k.sumCols(this.#p(x), this.#p(y), p.M, p.N, p.accumulate ? 1 : 0);
  }
  sumSquares(x: BackendBuffer, out: BackendBuffer, p: { size: number; accumulate: boolean }): void {
    this.#k.sumSquares(this.#p(x), this.#p(out), p.size, p.accumulate ? 1 : 0);
  }

  // --- elementwise --------------------------------------------------------
  binary(
    op: BinaryOp,
    a: BackendBuffer,
    b: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number; bcast: Broadcast },
  ): void {
    this.#k.binary(BINARY_CODE[op], this.#p(a), this.#p(b), this.#p(out), p.M, p.N, BROADCAST_CODE[p.bcast]);
  }
  unary(op: UnaryOp, x: BackendBuffer, y: BackendBuffer, p: { size: number }): void {
    this.#k.unary(UNARY_CODE[op], this.#p(x), this.#p(y), p.size);
  }
  unaryGrad(
    op: UnaryOp,
    x: BackendBuffer,
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { size: number; accumulate: boolean },
  ): void {
    this.#k.unaryGrad(
      UNARY_CODE[op],
      this.#p(x),
      this.#p(y),
      this.#p(dy),
      this.#p(dx),
      p.size,
      p.accumulate ? 1 : 0,
    );
  }
  scale(
    x: BackendBuffer,
    y: BackendBuffer,
    p: { size: number; alpha: number; beta: number; accumulate: boolean },
  ): void {
    this.#k.scale(this.#p(x), this.#p(y), p.size, p.alpha, p.beta, p.accumulate ? 1 : 0);
  }
  fill(x: BackendBuffer, p: { size: number; value: number }): void {
    this.#k.fill(this.#p(x), p.size, p.value);
  }
  copy(
    src: BackendBuffer,
    dst: BackendBuffer,
    p: { size: number; srcOffset: number; dstOffset: number },
  ): void {
    this.#k.copy(this.#p(src) + p.srcOffset * 4, this.#p(dst) + p.dstOffset * 4, p.size);
  }
  transpose(x: BackendBuffer, y: BackendBuffer, p: { B: number; M: number; N: number }): void {
    this.#k.transpose(this.#p(x), this.#p(y), p.B, p.M, p.N);
  }

  // --- rows ---------------------------------------------------------------
  softmax(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number }): void {
    this.#k.softmax(this.#p(x), this.#p(y), p.M, p.N);
  }
  softmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    this.#k.softmaxGrad(this.#p(y), this.#p(dy), this.#p(dx), p.M, p.N, p.accumulate ? 1 : 0);
  }
  crossEntropy(
    logits: BackendBuffer,
    labels: BackendBuffer,
    probs: BackendBuffer,
    losses: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    this.#k.crossEntropy(this.#p(logits), this.#p(labels), this.#p(probs), this.#p(losses), p.M, p.N);
  }
  crossEntropyGrad(
    probs: BackendBuffer,
    labels: BackendBuffer,
    dlosses: BackendBuffer,
    dlogits: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    this.#k.crossEntropyGrad(
      this.#p(probs),
      this.#p(labels),
      this.#p(dlosses),
      this.#p(dlogits),
      p.M,
      p.N,
      p.accumulate ? 1 : 0,
    );
  }
  layerNorm(
    x: BackendBuffer,
    gamma: BackendBuffer,
    beta: BackendBuffer,
    y: BackendBuffer,
    mean: BackendBuffer,
    rstd: BackendBuffer,
    p: { M: number; N: number; eps: number },
  ): void {
    this.#k.layerNorm(
      this.#p(x),
      this.#p(gamma),
      this.#p(beta),
      this.#p(y),
      this.#p(mean),
      this.#p(rstd),
      p.M,
      p.N,
      p.eps,
    );
  }
  layerNormGrad(
    dy: BackendBuffer,
    x: BackendBuffer,
    gamma: BackendBuffer,
    mean: BackendBuffer,
    rstd: BackendBuffer,
    dx: BackendBuffer,
    dgamma: BackendBuffer,
    dbeta: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    this.#k.layerNormGrad(
      this.#p(dy),
      this.#p(x),
      this.#p(gamma),
      this.#p(mean),
      this.#p(rstd),
      this.#p(dx),
      this.#p(dgamma),
      this.#p(dbeta),
      p.M,
      p.N,
      p.accumulate ? 1 : 0,
    );
  }
  gatherRows(
    table: BackendBuffer,
    idx: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    this.#k.gatherRows(this.#p(table), this.#p(idx), this.#p(out), p.M, p.N);
  }
  scatterAddRows(
    dout: BackendBuffer,
    idx: BackendBuffer,
    dtable: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    this.#k.scatterAddRows(this.#p(dout), this.#p(idx), this.#p(dtable), p.M, p.N);
  }

  // --- optimizers ---------------------------------------------------------
  adamw(
    param: BackendBuffer,
    grad: BackendBuffer,
    m: BackendBuffer,
    v: BackendBuffer,
    p: AdamWParams,
  ): void {
    this.#k.adamw(
      this.#p(param),
      this.#p(grad),
      this.#p(m),
      this.#p(v),
      p.size,
      p.lr,
      p.beta1,
      p.beta2,
      p.eps,
      p.weightDecay,
      1 - p.beta1 ** p.step,
      1 - p.beta2 ** p.step,
    );
  }
  sgd(
    param: BackendBuffer,
    grad: BackendBuffer,
    momentum: BackendBuffer,
    p: SgdParams & { first: boolean },
  ): void {
    this.#k.sgd(
      this.#p(param),
      this.#p(grad),
      this.#p(momentum),
      p.size,
      p.lr,
      p.momentum,
      p.dampening,
      p.nesterov ? 1 : 0,
      p.weightDecay,
      p.first ? 1 : 0,
    );
  }
  clipScale(g: BackendBuffer, normSq: BackendBuffer, p: { size: number; maxNorm: number }): void {
    this.#k.clipScale(this.#p(g), this.#p(normSq), p.size, p.maxNorm);
  }
}

// Runs the hot kernels a few times so they leave V8's baseline tier before real work.
function warm(be: WasmBackend): void {
  const n = 64, b = 16;
  const a = be.alloc(n * n), bb = be.alloc(n * n), c = be.alloc(n * n);
  const rows = n / b;
  const rowPtr = new Int32Array(rows + 1), colIdx = new Int32Array(rows * rows);
  for (let i = 0; i <= rows; i++) rowPtr[i] = i * rows;
  for (let e = 0; e < rows * rows; e++) colIdx[e] = e % rows;
  const layout: BlockLayout = {
    rows,
    cols: rows,
    block: b,
    nnz: rows * rows,
    rowPtr,
    colIdx,
    colPtr: rowPtr,
    rowIdx: Int32Array.from(colIdx, (_, e) => e % rows),
    blockIdx: Int32Array.from(colIdx, (_, e) => (e % rows) * rows + Math.floor(e / rows)),
  };
  const minSplit = be.minSplitWork;
  be.minSplitWork = 0; // warm the worker's kernels too
  for (let r = 0; r < 8; r++) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        be.gemm(a, bb, c, { M: n, N: n, K: n, transA, transB, accumulate: r > 0 });
      }
    }
    be.dds(a, bb, c, { M: n, layout, transW: true, accumulate: false });
    be.dds(a, bb, c, { M: n, layout, transW: false, accumulate: true });
    be.sdd(a, c, bb, { layout, K: n, transA: true, transB: false, accumulate: false });
  }
  be.minSplitWork = minSplit;
  be.free(a);
  be.free(bb);
  be.free(c);
}

/**
 * Make the WASM SIMD backend. Rejects where this engine has no WASM SIMD or
 * the requested build does not validate.
 *
 * @example
 * ```ts
 * import { createWasmBackend } from "./wasm.ts";
 * const be = await createWasmBackend();
 * const x = be.upload(new Float32Array([1, 2, 3, 4]));
 * be.scale(x, x, { size: 4, alpha: 2, beta: 0, accumulate: false });
 * console.log(await be.read(x)); // Float32Array [2, 4, 6, 8]
 *
 * // gemm and dds split between this thread and one Worker; dispose() stops the Worker
 * const be2 = await createWasmBackend({ threads: 2 });
 * console.log(be2.threads); // 2 where SharedArrayBuffer and Workers exist, else 1
 * be2.dispose();
 * ```
 */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  const variant = opts.variant ?? pickWasmVariant();
  if (variant === undefined) {
    throw new Error("createWasmBackend: this engine does not support WebAssembly SIMD128");
  }
  if (variant !== "relaxed" && variant !== "simd128") {
    throw new RangeError(`createWasmBackend: variant must be "relaxed" or "simd128", got ${variant}`);
  }
  const threads = opts.threads ?? 1;
  if (threads !== 1 && threads !== 2 && threads !== "auto") {
    throw new RangeError(`createWasmBackend: threads must be 1, 2 or "auto", got ${threads}`);
  }
  const minSplitWork = opts.minSplitWork;
  if (minSplitWork !== undefined && !(minSplitWork >= 0)) {
    throw new RangeError(`createWasmBackend: minSplitWork must be a number >= 0, got ${minSplitWork}`);
  }
  const want = threads === "auto" ? Math.min(2, globalThis.navigator?.hardwareConcurrency ?? 1) : threads;
  const build = variant === "relaxed" ? "threads" : "threads-simd128";
  if (want > 1 && threadsAvailable(build)) {
    const module = await WebAssembly.compile(wasmBytes(build) as BufferSource);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: SHARED_MAX_PAGES, shared: true });
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const be = new WasmBackend(instance, variant, { memory, minSplitWork });
    await be.startThread(module);
    warm(be);
    return be;
  }
  const bytes = wasmBytes(variant);
  if (!WebAssembly.validate(bytes as BufferSource)) {
    throw new Error(`createWasmBackend: this engine does not accept the ${variant} build`);
  }
  const { instance } = await WebAssembly.instantiate(bytes as BufferSource, {});
  const be = new WasmBackend(instance, variant, { minSplitWork });
  warm(be);
  return be;
}

// Worker threads need SharedArrayBuffer, Workers, Atomics.wait on this thread and the threads build.
function threadsAvailable(build: WasmBuild): boolean {
  return typeof SharedArrayBuffer === "function" && typeof Worker === "function" &&
    typeof Atomics?.wait === "function" && typeof Blob === "function" &&
    typeof URL?.createObjectURL === "function" && WebAssembly.validate(wasmBytes(build) as BufferSource);
}
