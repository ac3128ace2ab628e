/**
 * The WASM SIMD backend: AssemblyScript kernels (`asm/`) running on tensors
 * that live in the module's linear memory across ops.
 *
 * Four builds ship inside the module graph as base64 (no fetch, no
 * permissions): SIMD128 with relaxed-SIMD fused multiply-add, plain SIMD128,
 * and each of those on an imported shared memory for worker threads.
 * {@link createWasmBackend} picks the first one this engine accepts
 * (`WebAssembly.validate`). With `threads: n`, every kernel splits its
 * output between the calling thread and n - 1 Workers (made from a `blob:`
 * URL, so no permission is needed) that share the memory; they meet with
 * `Atomics.wait`/`Atomics.notify`. Each output element is computed by the same
 * arithmetic whatever the split, so results do not depend on the thread count.
 *
 * @module
 */
import { checkDdsExtra, ddsExtraByGemm } from "./_dds_extra.ts";
import { checkNoAlias } from "../validate.ts";
import { Allocator } from "./_wasm_alloc.ts";
import {
  balancedSplit,
  evenSplit,
  MAX_PARTS_PER_THREAD,
  type Spawner,
  ThreadPool,
  threadSupport,
} from "./_wasm_threads.ts";
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

/**
 * What a {@link WasmBackend} runs and why ({@link WasmBackend.info}): small on purpose, so a status line
 * (`backendInfo()`, a page) can show it as it is.
 */
export interface WasmBackendInfo {
  /** The build in use: "relaxed" (fused multiply-add) or "simd128". */
  variant: WasmVariant;
  /** Threads the kernels run on now (1 after {@link WasmBackend.dispose}). */
  threads: number;
  /** Threads asked for, with "auto" resolved to a count. */
  requestedThreads: number;
  /**
   * One sentence per fallback taken, empty when none: why the plain SIMD128 build runs (naming Node's
   * `--experimental-wasm-relaxed-simd` there), or why there is 1 thread instead of the count asked for
   * (no cross-origin isolation, a browser's main thread, no Worker, a Worker that failed to start).
   */
  notes: string[];
}

/** Options of {@link createWasmBackend}. */
export interface WasmBackendOptions {
  /** Which build to load (the fastest one this engine validates when omitted). */
  variant?: WasmVariant;
  /**
   * Threads that share every kernel's work: "auto" (the default: one per core, at most 8), or an integer n
   * up to 64 (the calling thread and n - 1 Workers; more than `navigator.hardwareConcurrency` runs
   * correctly but only oversubscribes the cores; 1 keeps everything on the calling thread). Results are
   * bit for bit the same for every count. Where SharedArrayBuffer, `Atomics.wait` on this thread, Workers
   * or the threads build are unavailable (a page that is not cross-origin isolated, a browser's main
   * thread) the backend runs on 1 thread and {@link WasmBackend.info} says why. "auto" returns without
   * waiting for its Workers to start (the kernels run on the calling thread until they are ready); a count
   * asked for waits, and falls back to 1 thread with a note if one cannot start. An idle Worker leaves
   * after {@link WasmBackendOptions.threadIdleMs} (so a backend nobody disposes lets the process exit) and
   * the kernels that split start them again, one per kernel; {@link WasmBackend.dispose} stops them at once. Memory: the threads
   * builds' shared memory grows to at most 2 GiB, one thread's to 4 GiB (ask for `threads: 1` for models
   * that need more than 2 GiB).
   */
  threads?: number | "auto";
  /**
   * How long, in milliseconds, an idle Worker waits for the next kernel before it leaves: a number >= 0,
   * or Infinity for never. A Worker that left is replaced by a later kernel that splits (one Worker per
   * kernel), and in Deno each `new Worker` blocks the calling thread 20-40 ms. By default the limit starts at 1 s and doubles, up to
   * 8 s, each time a kernel finds the Workers gone: a program that pauses between bursts of work (a server
   * between requests, an app between a user's actions) soon stops paying for replacements, and one that
   * never pauses exits within 1 s of its last kernel (a web Worker keeps Deno's process alive until it
   * leaves). On Node the Workers never keep the process alive, and by default never leave. A server, whose
   * process lives on anyway, can pass Infinity.
   */
  threadIdleMs?: number;
  /**
   * Each thread past the first needs this much work, in multiply-adds (M·N·K for gemm, M·nnz·b² for dds,
   * K·nnz·b² for sdd; elementwise and row kernels count each element as 4 to 64 of them, by cost), so small
   * kernels stay on the calling thread, where the hand-off would cost more than it saves (measured by
   * bench/split_threshold.ts). Default 2^21; 0 splits everything, always (for tests: with a positive value
   * the backend runs kernels on the calling thread alone for a while when the Workers keep arriving late,
   * as on a machine whose cores other processes take).
   */
  minSplitWork?: number;
}

function decodeBase64(s: string): Uint8Array {
  // native where the engine has it (a 36 KB build decodes in 0.1 ms; the loop below runs cold: milliseconds)
  const native = (Uint8Array as { fromBase64?: (s: string) => Uint8Array }).fromBase64;
  if (typeof native === "function") return native(s);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A build's name: the two builds of {@link WasmVariant} and their shared-memory builds for threads. */
export type WasmBuild = WasmVariant | "threads" | "threads-simd128";

const byteCache = new Map<WasmBuild, Uint8Array>();

// Each build's base64 is a module of its own, imported when that build is first needed: a dynamic import
// of a literal path inside the module graph, so a URL import, `deno compile` and bundlers (esbuild inlines
// it) still need no fetch of other files and no permission, and importing pixelfly parses none of the four
// builds (a backend loads the one it runs; measured by bench/cold_start.ts: 2-4 ms of a cold import).
const SOURCES: Record<WasmBuild, () => Promise<{ wasmBase64: string }>> = {
  relaxed: () => import("../../asm/generated/kernels_relaxed.ts"),
  simd128: () => import("../../asm/generated/kernels_simd.ts"),
  threads: () => import("../../asm/generated/kernels_threads.ts"),
  "threads-simd128": () => import("../../asm/generated/kernels_threads_simd.ts"),
};

/**
 * The WebAssembly bytes of one build (its module is loaded at the first call).
 *
 * @example
 * ```ts
 * import { wasmBytes } from "./wasm.ts";
 * console.log(WebAssembly.validate(await wasmBytes("simd128") as BufferSource)); // true on engines with SIMD
 * ```
 */
export async function wasmBytes(variant: WasmBuild): Promise<Uint8Array> {
  let b = byteCache.get(variant);
  if (b === undefined) {
    const source = SOURCES[variant];
    if (source === undefined) throw new RangeError(`wasmBytes: no build named ${variant}`);
    b = decodeBase64((await source()).wasmBase64);
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
 * console.log(await pickWasmVariant()); // "relaxed" on Deno 2
 * ```
 */
export async function pickWasmVariant(
  validate: (bytes: Uint8Array) => boolean = (b) => WebAssembly.validate(b as BufferSource),
): Promise<WasmVariant | undefined> {
  if (validate(await wasmBytes("relaxed"))) return "relaxed";
  if (validate(await wasmBytes("simd128"))) return "simd128";
  return undefined;
}

/** The kernel exports of asm/kernels.ts (byte addresses and element counts). */
interface Kernels {
  memory: WebAssembly.Memory;
  heapBase(): number;
  gemmWorkspace(): number;
  gemmPackedBytes(K: number, N: number): number;
  gemmPackB(dst: number, b: number, K: number, N: number, transB: number, ldb: number): void;
  gemm(...args: number[]): void;
  gemmDot(...args: number[]): void;
  gemmRows(...args: number[]): void;
  gemmCols(...args: number[]): void;
  gemmThin(...args: number[]): void;
  gemmThinPack(b: number, sbk: number, sbn: number, dst: number, K: number, N: number, j0: number): void;
  gemmThinUntranspose(
    t: number,
    c: number,
    M: number,
    N: number,
    ldc: number,
    alpha: number,
    acc: number,
  ): void;
  ddsWorkspace(M: number, inBlocks: number, nnz: number, b: number): number;
  ddsLowRankWorkspace(M: number, inBlocks: number, outBlocks: number, b: number, rank: number): number;
  ddsPackedBytes(nnz: number, b: number): number;
  ddsRows(...args: number[]): void;
  ddsPackW(
    w: number,
    blk: number,
    b: number,
    nnz: number,
    transW: number,
    dst: number,
    e0: number,
    e1: number,
  ): void;
  dds(...args: number[]): void;
  sddWorkspace(rows: number, cols: number, b: number, K: number): number;
  sddSharedBytes(cols: number, b: number, K: number): number;
  sddFlagBytes(cols: number, K: number): number;
  sdd(...args: number[]): void;
  sumRows(x: number, y: number, M: number, N: number, beta: number, ld: number, ws: number): void;
  sumCols(x: number, y: number, M: number, N: number, beta: number): void;
  sumSquares(x: number, out: number, size: number, beta: number): void;
  sumSquaresChunks(x: number, partial: number, size: number, c0: number, c1: number): void;
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
  gatedCombine(...args: number[]): void;
  gatedCombineGrad(...args: number[]): void;
  gatherRows(table: number, idx: number, out: number, M: number, N: number): void;
  scatterAddRows(dout: number, idx: number, dtable: number, M: number, N: number, ld: number): void;
  adamw(...args: number[]): void;
  sgd(...args: number[]): void;
  clipScale(g: number, normSq: number, size: number, maxNorm: number): void;
}

// The kernels the worker threads serve (an index into this list travels in a job's control block).
const JOBS = [
  "gemm",
  "gemmDot",
  "gemmRows",
  "gemmCols",
  "gemmThin",
  "dds",
  "sdd",
  "ddsPackW",
  "sumRows",
  "sumCols",
  "sumSquaresChunks",
  "binary",
  "unary",
  "unaryGrad",
  "scale",
  "fill",
  "copy",
  "transpose",
  "softmax",
  "softmaxGrad",
  "crossEntropy",
  "crossEntropyGrad",
  "layerNorm",
  "layerNormGrad",
  "gatherRows",
  "scatterAddRows",
  "adamw",
  "sgd",
  "clipScale",
  "bsrSoftmax",
  "bsrSoftmaxGrad",
  "ddsRows",
  "gatedCombine",
  "gatedCombineGrad",
] as const;
type Job = typeof JOBS[number];

// Largest N for gemmDot, K or N for gemmRows, M for gemmCols (see WasmBackend's #thin), measured by
// bench/thin_gemm.ts (one thread, CPU time; Zen 4 VM): at d = 1 the thin kernels are 1.6-7.5x faster than
// the packed GEMM, at d = 4 0.97-2.2x, at d = 10 gemmDot still 1.33x (the others 0.36-1.2x), at d = 16 and
// above the packed GEMM wins or ties almost everywhere (gemmRows' 4-row blocks included).
const THIN_DOT_N = 10, THIN_K = 4, THIN_N = 4, THIN_M = 4;
// Largest N for gemmThin's row tiles (C = Aᵀ·B read in place; see #thinTiled) and their k-block, measured
// by bench/thin_gemm.ts and warm A/B runs (one thread, CPU time, 2-vCPU Zen 3 VM shared with other work):
// against the packed GEMM (which packs the large A) 1.1-1.9x at N = 16 and K of 2048 or more, 1.1-1.7x at
// N of 24 to 32 with K of 512 or more, but 0.9-1.1x at N = 32 and K = 256 (so above N = 16 they take K of
// 512 or more). k-blocks of 128 against none: 1.3-1.45x on 512x16x2048.
const THIN_TILED_N = 32, THIN_KB = 128;
// Shortest K and longest N for computing a small-M Aᵀ·B as (Bᵀ·A)ᵀ on those tiles (B's rows are then
// walked with a stride of N floats): at M = 16, 1.05-1.4x over the packed GEMM for N of 64 and 128 with K
// of 2048 or more, but 0.6-1.1x at N = 512 (the stride of 2 KiB) and 0.74-1.0x at K of 127 and 256.
const THIN_FLIP_K = 1024, THIN_FLIP_N = 256;

// dds' forward on at most this many rows reads a weight that has no current packed copy in place, once
// per version of the weight (asm/dds_rows.ts: same bits, no pack). Measured on a 1024 -> 4096 layer at
// density 3/16 (2-vCPU VM): a first call on 1-8 rows 3.5-3.9 ms against 7-11 ms packing first; later
// calls 1-1.8x slower than the packed kernel, so the second call on the same weight packs it.
const DDS_ROWS_M = 8;

// Floats from which alloc zeroes a buffer with the fill kernel rather than from JS (see alloc).
const ZERO_KERNEL = 1024;

// sumSquares' chunk (asm/rows.ts SQ_CHUNK): fixed, so its sum has the same bits on any thread count.
const SQ_CHUNK = 1 << 16;

// Work per element in multiply-add equivalents (the unit of minSplitWork), measured against the
// micro-kernel: a memory-bound pass, a pass with exp/div per element, a row kernel in float64.
const COST_PASS = 8, COST_MATH = 32, COST_ROW = 64;
// gatedCombine reads three rows and writes one, its gradient reads four, writes three and sums a row: at
// 128x2048 on one thread 1.1 and 1.7 ns per element (a pass: about 0.35), so counted as a pass each kept
// them on one thread in the Pixelfly MLP step; split, its 2-thread step took 0.96-0.99x the time (A/B).
const COST_GATED = 24, COST_GATED_GRAD = 36;
// Workspace bytes of sumRows: the float64 sums of one block of columns (asm/rows.ts SUMROWS_BLOCK = 1024).
const SUMROWS_WS = 1024 * 8;

// A gemm's work in multiply-add equivalents (minSplitWork's unit): its M·N·K multiply-adds plus a memory
// pass over each operand and C (COST_PASS per element). A thin product (a head's 128x10x2048, K = 10 classes
// or N = 10) does few multiply-adds per element it reads or writes, so counting M·N·K alone kept products
// of 0.3-0.5 ms on one thread.
function gemmWork(M: number, N: number, K: number): number {
  return M * N * K + COST_PASS * (M * N + M * K + K * N);
}

const PAGE = 65536;
// Pages the threads builds' shared memory may grow to (2 GiB; asm/build.ts's --maximumMemory).
const SHARED_MAX_PAGES = 32768;

// Thrown by the allocator's grow callback; the backend turns it into a RangeError with the figures.
class OutOfMemory extends Error {}

/** dds' packed copy of one weight in one direction. */
interface PackedW {
  ptr: number;
  bytes: number;
  /** The weight buffer's version when packed. */
  version: number;
  layout: BlockLayout;
}

/** A buffer of the wasm backend: `size` float32 values at byte `ptr` of linear memory. */
export class WasmBuffer implements BackendBuffer {
  readonly size: number;
  /** Byte offset in linear memory; -1 once freed. */
  ptr: number;
  readonly owner: WasmBackend;
  /** Bumped each time a kernel is handed this buffer (dds' packed weights are valid while it stays). */
  version = 0;
  constructor(owner: WasmBackend, ptr: number, size: number) {
    this.owner = owner;
    this.ptr = ptr;
    this.size = size;
  }
}

/** A gemm's B as last handed (version and shape), and op(B) packed whole once it came back unchanged. */
interface PackedB {
  /** 0 until packed (a B seen once is not packed: an activation is used once). */
  ptr: number;
  bytes: number;
  version: number;
  transB: number;
  K: number;
  N: number;
}

/** The WASM SIMD backend. Make it with {@link createWasmBackend}. */
export class WasmBackend implements Backend {
  readonly name = "wasm";
  /** The build in use. */
  readonly variant: WasmVariant;
  /** Threads that share the kernels' work: the calling thread plus `threads - 1` Workers. */
  readonly threads: number;
  /** Work below this many multiply-add equivalents stays on one thread (see {@link WasmBackendOptions}). */
  minSplitWork: number;
  /**
   * Products with a small dimension (a gate, a head, a low-rank factor) run on the unpacked thin kernels
   * (true); "legacy" leaves out the register-tiled ones (gemmThin) as before them; false
   * sends every product to the packed GEMM (for benches and tests).
   */
  thinProducts: boolean | "legacy" = true;
  /**
   * Parts per thread of a split gemm, dds or sdd (1 to 8): the threads claim parts one at a time, so more
   * parts than threads let a thread that runs faster (the other's core busy, or its caches slower) take
   * more of the work, at the cost of re-reading the shared operand once more per part.
   */
  partsPerThread = 1;
  #requested: number;
  #notes: string[];
  #k: Kernels;
  #mem: WebAssembly.Memory;
  #alloc: Allocator;
  #view: Float32Array;
  #iview: Int32Array;
  #ws: number[] = [0];
  #wsBytes: number[] = [0];
  #pool: ThreadPool | undefined;
  #idx = 0;
  #idxBytes = 0;
  #partial = 0;
  #partialBytes = 0;
  #live = 0;
  #liveBytes = 0;
  #maxBytes: number;

  /** Made by {@link createWasmBackend}; `memory` is the shared memory of the threads build. */
  constructor(
    instance: WebAssembly.Instance,
    variant: WasmVariant,
    opts: {
      memory?: WebAssembly.Memory;
      minSplitWork?: number;
      requestedThreads?: number;
      notes?: string[];
    } = {},
  ) {
    this.variant = variant;
    this.threads = 1;
    this.#requested = opts.requestedThreads ?? 1;
    this.#notes = [...(opts.notes ?? [])];
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

  /**
   * What this backend runs and why: the build, the threads it got and asked for, and a note for each
   * fallback it took (an empty list when it runs what was asked, on the fastest build).
   *
   * @example
   * ```ts
   * import { createWasmBackend } from "./wasm.ts";
   * const be = await createWasmBackend({ threads: 2 });
   * const { variant, threads, requestedThreads, notes } = be.info;
   * console.log(variant, threads, requestedThreads, notes); // "relaxed" 2 2 [] on Deno
   * be.dispose();
   * ```
   */
  get info(): WasmBackendInfo {
    return {
      variant: this.variant,
      threads: this.threads,
      requestedThreads: this.#requested,
      notes: [...this.#notes],
    };
  }

  /**
   * How the threads shared the work so far: the parts kernels were split into (0 on one thread), how
   * many of them the Workers ran (the calling thread ran the rest), jobs run on the calling thread alone
   * while backing off (the Workers were late), and of the jobs shared out, how many, the calling thread's
   * milliseconds in its own parts and its milliseconds waiting for the Workers' last parts, and how many
   * Workers were started again after they left idle. For benches and tests.
   */
  get threadStats(): {
    parts: number;
    onWorkers: number;
    aloneJobs: number;
    jobs: number;
    workedMs: number;
    waitedMs: number;
    restarts: number;
  } {
    return this.#pool?.stats ??
      { parts: 0, onWorkers: 0, aloneJobs: 0, jobs: 0, workedMs: 0, waitedMs: 0, restarts: 0 };
  }

  /**
   * How long an idle Worker now waits for the next kernel before it leaves, in ms (Infinity: never; see
   * {@link WasmBackendOptions.threadIdleMs}); undefined on one thread.
   */
  get threadIdleMs(): number | undefined {
    return this.#pool?.idleMs;
  }

  /** Bytes of linear memory (it only grows). */
  get memoryBytes(): number {
    return this.#mem.buffer.byteLength;
  }

  /** One past the highest byte the allocator has handed out. */
  get heapTop(): number {
    return this.#alloc.top;
  }

  /** Bytes held by packed copies of weights (dds' weights, the packed GEMM's op(B)), for benches and tests. */
  get packedBytes(): number {
    let n = 0;
    for (const es of this.#packed.values()) for (const e of es) n += e?.bytes ?? 0;
    for (const e of this.#packedB.values()) n += e.ptr > 0 ? e.bytes : 0;
    return n;
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

  #p(buf: BackendBuffer, keep = false): number {
    const b = buf as WasmBuffer;
    if (!(b instanceof WasmBuffer) || b.owner !== this) {
      throw new Error("wasm backend: buffer belongs to another backend");
    }
    if (b.ptr < 0) throw new Error("wasm backend: buffer was freed");
    // Every kernel handed a buffer may write it: only dds reads its weight with keep = true.
    if (!keep) b.version++;
    return b.ptr;
  }

  // dds' weights packed in its walk order, per weight buffer and direction (index transW): packed once
  // per update of the weight, not on every call. Entries go with their buffer's free.
  #packed = new Map<WasmBuffer, (PackedW | undefined)[]>();

  // Weights (and their version) that a few-row forward read in place, without packing them.
  #readInPlace = new WeakMap<WasmBuffer, number>();

  #packedCurrent(w: WasmBuffer, l: BlockLayout, tw: number): boolean {
    const e = this.#packed.get(w)?.[tw];
    return e !== undefined && e.version === w.version && e.layout === l;
  }

  #packedW(w: WasmBuffer, l: BlockLayout, tw: number, blockIdx: number): number {
    let entries = this.#packed.get(w);
    if (entries === undefined) this.#packed.set(w, entries = [undefined, undefined]);
    const bytes = this.#k.ddsPackedBytes(l.nnz, l.block);
    let e = entries[tw];
    if (e !== undefined && e.version === w.version && e.layout === l) return e.ptr;
    if (e === undefined || e.bytes !== bytes) {
      if (e !== undefined) this.#alloc.free(e.ptr, e.bytes);
      entries[tw] = undefined;
      e = { ptr: this.#reserve(bytes, "dds' packed weight"), bytes, version: -1, layout: l };
      entries[tw] = e;
    }
    // Threads take ranges of blocks of the walk; ddsPackW lays the panels out panel-major over the whole
    // walk (asm/sparse.ts packW) and each range writes its own blocks' panels there (disjoint bytes, the
    // same bits as one part). It stays one part below the split threshold, and while no worker is running
    // (a cold start's first forward: starting Workers for a memory-bound pack cost 40-55 ms there).
    const b = l.block;
    const cuts = evenSplit(l.nnz, this.#pool?.live ? this.#parts(l.nnz * b * b * COST_PASS) : 1);
    this.#run(
      "ddsPackW",
      cuts.slice(1).map((e1, t) => [w.ptr, blockIdx, b, l.nnz, tw, e.ptr, cuts[t], e1]),
    );
    e.version = w.version;
    e.layout = l;
    return e.ptr;
  }

  #dropPacked(w: WasmBuffer): void {
    for (const e of this.#packed.get(w) ?? []) if (e !== undefined) this.#alloc.free(e.ptr, e.bytes);
    this.#packed.delete(w);
    const g = this.#packedB.get(w);
    if (g !== undefined && g.ptr > 0) this.#alloc.free(g.ptr, g.bytes);
    this.#packedB.delete(w);
  }

  // The packed GEMM's op(B) packed whole, per B buffer: a B handed again with the same version and shape
  // (a weight between updates) is packed once into this copy, which every part then reads instead of
  // packing its own slices (the first call on a version packs as before). Entries go with their buffer's free.
  #packedB = new Map<WasmBuffer, PackedB>();

  // op(B)'s packed copy for this call, or 0 (first call on this version of B: pack in the kernel).
  #gemmPackedB(b: WasmBuffer, K: number, N: number, tb: number): number {
    const e = this.#packedB.get(b);
    if (e !== undefined && e.version === b.version && e.transB === tb && e.K === K && e.N === N) {
      if (e.ptr > 0) return e.ptr;
      const bytes = this.#k.gemmPackedBytes(K, N);
      e.ptr = this.#reserve(bytes, "gemm's packed B");
      e.bytes = bytes;
      this.#k.gemmPackB(e.ptr, b.ptr, K, N, tb, tb ? K : N);
      return e.ptr;
    }
    if (e !== undefined && e.ptr > 0) this.#alloc.free(e.ptr, e.bytes);
    this.#packedB.set(b, { ptr: 0, bytes: 0, version: b.version, transB: tb, K, N });
    return 0;
  }

  /**
   * Starts `n` worker threads with `spawn` (threads builds only); called once by createWasmBackend.
   *
   * @ignore
   */
  async startThreads(
    module: WebAssembly.Module,
    n: number,
    spawn: Spawner,
    wait = true,
    idleMs?: number,
  ): Promise<void> {
    const bytes = ThreadPool.blockBytes(n + 1);
    const block = this.#reserve(bytes, "createWasmBackend");
    this.#f32().fill(0, block >>> 2, (block + bytes) >>> 2);
    // not waiting: the Workers start as kernels split, one per kernel; one that cannot start leaves a note
    const onFailure = wait ? undefined : (msg: string) => {
      if (!this.#notes.some((n) => n.endsWith(msg))) this.#notes.push(`fewer threads than ${n + 1}: ${msg}`);
    };
    this.#pool = await ThreadPool.start(spawn, module, this.#mem, block, JOBS, n + 1, onFailure, idleMs);
    (this as { threads: number }).threads = n + 1;
    this.#ws = new Array(n + 1).fill(0);
    this.#wsBytes = new Array(n + 1).fill(0);
  }

  // Workspace of thread `slot` (0 is the calling thread).
  #workspace(bytes: number, slot = 0): number {
    const had = this.#wsBytes[slot];
    if (bytes > had) {
      if (had > 0) this.#alloc.free(this.#ws[slot], had);
      this.#wsBytes[slot] = 0;
      const size = Math.max(bytes, Math.ceil(had * 1.25));
      this.#ws[slot] = this.#reserve(size, "a kernel's workspace");
      this.#wsBytes[slot] = size;
    }
    return this.#ws[slot];
  }

  // How many threads work of this size gets: each one past the first needs minSplitWork of it.
  #parts(work: number): number {
    if (this.threads === 1) return 1;
    const m = this.minSplitWork;
    return m <= 0 ? this.threads : Math.max(1, Math.min(this.threads, Math.floor(work / m)));
  }

  // Parts of a split product (gemm, dds, sdd): #parts threads, partsPerThread parts each.
  #productParts(work: number): number {
    const t = this.#parts(work);
    return t > 1 ? t * Math.max(1, Math.min(MAX_PARTS_PER_THREAD, Math.floor(this.partsPerThread))) : 1;
  }

  // Workspaces of a job of `parts` parts: one per thread that may run a part (a part's list carries its
  // thread's, replaced by the running thread's own when the pool runs it).
  #workspaces(bytes: number, parts: number): number[] {
    const ws: number[] = [];
    for (let t = 0; t < Math.min(parts, this.threads); t++) ws.push(this.#workspace(bytes, t));
    return Array.from({ length: parts }, (_, p) => ws[p % ws.length]);
  }

  // Runs kernel `name` once per argument list, the parts shared out between the threads that are free
  // (argument wsArg, when >= 0, becomes the running thread's workspace: part t's list carries thread t's).
  // All parts finish before this returns or throws, so no kernel still writes memory after an error.
  #run(name: Job, parts: number[][], wsArg = -1): void {
    const k = this.#k[name] as (...args: number[]) => void;
    if (parts.length === 1 || this.#pool === undefined) {
      for (const args of parts) k(...args);
      return;
    }
    // minSplitWork 0 splits everything, always: no backing off while the workers are late
    this.#pool.run(name, parts, wsArg, this.#ws, (args) => k(...args), this.minSplitWork > 0);
  }

  // Runs an elementwise kernel over `size` elements split in ranges of whole v128s: args(offset, length).
  #elementwise(name: Job, size: number, cost: number, args: (o: number, n: number) => number[]): void {
    const cuts = evenSplit(size, this.#parts(size * cost), 4);
    this.#run(name, cuts.slice(1).map((e, t) => args(cuts[t], e - cuts[t])));
  }

  // Runs a row kernel over M rows split in ranges: args(firstRow, rows).
  #rows(name: Job, M: number, work: number, args: (r: number, n: number) => number[]): void {
    const cuts = evenSplit(M, this.#parts(work), 1);
    this.#run(name, cuts.slice(1).map((e, t) => args(cuts[t], e - cuts[t])));
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
  alloc(size: number, opts?: { zero?: boolean }): BackendBuffer {
    const ptr = this.#reserve(size * 4, "alloc");
    const buf = new WasmBuffer(this, ptr, size);
    // outputs a kernel overwrites skip the fill; a buffer that accumulates is zeroed by the fill kernel: JS's
    // TypedArray fill is slow on the threads build's shared memory (alloc + free of 256 Ki floats 140-150 µs
    // against 425-790 µs, 16 Ki 11 against 30-50, 1 Ki 7-11 against 10-18; 2 threads, interleaved processes).
    // On this thread, never split: an alloc must not start the Workers that "auto" threads start lazily.
    if (opts?.zero !== false) {
      if (size >= ZERO_KERNEL) this.#k.fill(ptr, size, 0);
      else this.#f32().fill(0, ptr >>> 2, (ptr >>> 2) + size);
    }
    this.#live++;
    this.#liveBytes += size * 4;
    return buf;
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
    this.#dropPacked(buf as WasmBuffer);
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
    this.#packed.clear();
    this.#packedB.clear();
    const pool = this.#pool;
    this.#pool = undefined;
    (this as { threads: number }).threads = 1;
    pool?.stop();
  }

  // --- products -----------------------------------------------------------
  gemm(a: BackendBuffer, b: BackendBuffer, c: BackendBuffer, p: GemmParams): void {
    checkNoAlias("wasm backend gemm", "c", c, { a, b });
    const { M, N, K, transA, transB, accumulate } = p;
    const alpha = p.alpha ?? 1, batch = p.batch ?? 1;
    const sA = (p.strideA ?? M * K) * 4, sB = (p.strideB ?? K * N) * 4, sC = (p.strideC ?? M * N) * 4;
    // B is only read (its version stays, for its packed copy below), unless it is also A or C.
    const pa = this.#p(a), pb = this.#p(b, true), pc = this.#p(c);
    const ta = transA ? 1 : 0, tb = transB ? 1 : 0, acc = accumulate ? 1 : 0;
    const lda = transA ? M : K, ldb = transB ? K : N;
    if (this.#thin(pa, pb, pc, p, alpha, batch, sA, sB, sC)) return;
    // Threads split the larger of M and N at multiples of the 8-wide register tile.
    const byN = N >= M;
    const cuts = evenSplit(byN ? N : M, this.#productParts(gemmWork(M, N, K)), 8);
    const ws = this.#workspaces(this.#k.gemmWorkspace(), cuts.length - 1);
    // op(B) packed once per version of B when it comes back unchanged (a weight), read by every part.
    const packed = batch === 1 && K > 0 ? this.#gemmPackedB(b as WasmBuffer, K, N, tb) : 0;
    for (let i = 0; i < batch; i++) {
      const A = pa + i * sA, B = pb + i * sB, C = pc + i * sC;
      this.#run(
        "gemm",
        cuts.slice(1).map((e, t) => {
          const s = cuts[t], n = e - s;
          return byN
            ? [
              A,
              B + s * (transB ? K : 1) * 4,
              C + s * 4,
              M,
              n,
              K,
              ta,
              tb,
              acc,
              alpha,
              ws[t],
              lda,
              ldb,
              N,
              packed,
              N,
              s,
            ]
            : [
              A + s * (transA ? 1 : K) * 4,
              B,
              C + s * N * 4,
              n,
              N,
              K,
              ta,
              tb,
              acc,
              alpha,
              ws[t],
              lda,
              ldb,
              N,
              packed,
              N,
              0,
            ];
        }),
        10,
      );
    }
  }

  // Products with a small dimension run unpacked (asm/thin.ts): a dot per element when B is transposed
  // and N small, scaled rows of B when K or N is small, and B walked once per 4 rows of C when M is small.
  // Returns false for the packed GEMM. The limits (THIN_*) are measured by `deno run bench/thin_gemm.ts`.
  #thin(
    pa: number,
    pb: number,
    pc: number,
    p: GemmParams,
    alpha: number,
    batch: number,
    sA: number,
    sB: number,
    sC: number,
  ): boolean {
    const { M, N, K, transA, transB } = p, acc = p.accumulate ? 1 : 0;
    if (!this.thinProducts) return false;
    // A(i,k) at a[i·sai + k·sak]
    const sai = transA ? 1 : K, sak = transA ? M : 1;
    if (this.thinProducts === true && this.#thinTiled(pa, pb, pc, p, alpha, batch, sA, sB, sC)) return true;
    let name: "gemmDot" | "gemmRows" | "gemmCols", byRows: boolean;
    // One or two rows against a transposed B that one thread takes (a projection x·Vᵀ of a first forward,
    // inference on one row): dots of contiguous rows, no pack of B. Warm, B's packed copy kept, one thread
    // (2-vCPU VM): 0.45-0.5x the packed GEMM's time at 1-2x32x1024, 0.77x at 1x1024x1024, 0.97x at
    // 1x4096x32; but 1.4x at 2x4096x32 (K = 32) and 1.2-2x at four rows.
    const dotRows = transB && !transA && (M === 1 || (M === 2 && K >= 256)) &&
      this.#parts(gemmWork(M, N, K)) === 1;
    if (((transB || N === 1) && !transA && N <= THIN_DOT_N) || dotRows) [name, byRows] = ["gemmDot", true];
    else if (!transB && (K <= THIN_K || N <= THIN_N)) [name, byRows] = ["gemmRows", true];
    else if (!transB && M <= THIN_M) [name, byRows] = ["gemmCols", false];
    else return false;
    const parts = this.#parts(gemmWork(M, N, K));
    const cuts = byRows ? evenSplit(M, parts) : evenSplit(N, parts, 8);
    for (let i = 0; i < batch; i++) {
      const A = pa + i * sA, B = pb + i * sB, C = pc + i * sC;
      this.#run(
        name,
        cuts.slice(1).map((e, t) => {
          const s = cuts[t], n = e - s;
          if (name === "gemmDot") return [A + s * K * 4, B, C + s * N * 4, n, N, K, K, K, N, alpha, acc];
          if (name === "gemmRows") {
            return [A + s * sai * 4, B, C + s * N * 4, n, N, K, sai, sak, N, N, alpha, acc];
          }
          return [A, B + s * 4, C + s * 4, M, n, K, sai, sak, N, N, alpha, acc];
        }),
      );
    }
    return true;
  }

  // Thin products C = Aᵀ·B (weight gradients) where the packed GEMM would pack the large operand, read in
  // place on gemmThin's 6x8 register tiles (asm/thin.ts): with N of 5 to THIN_TILED_N (a low-rank factor:
  // tiles over rows of C, k in blocks of THIN_KB; above N = 16 only for K of 512 or more), or with M of 3 to THIN_TILED_N, a long K and N up to
  // THIN_FLIP_N (the other factor: as Cᵀ = Bᵀ·A into the workspace, then transposed into C). Threads take
  // ranges of 6 rows; every element is one multiply-add chain in k order, so the bits do not depend on the
  // split. Returns false for the other paths.
  #thinTiled(
    pa: number,
    pb: number,
    pc: number,
    p: GemmParams,
    alpha: number,
    batch: number,
    sA: number,
    sB: number,
    sC: number,
  ): boolean {
    const { M, N, K, transA, transB } = p, acc = p.accumulate ? 1 : 0;
    // C = Aᵀ·B by rows of C in 6-row tiles (N small), or as Cᵀ = Bᵀ·A (M small, K long)
    const rows = transA && !transB && N >= 5 && N <= THIN_TILED_N && M >= N && (N <= 16 || K >= 512);
    const flip = transA && !transB && M >= 3 && M <= THIN_TILED_N && N > M && N <= THIN_FLIP_N &&
      K >= THIN_FLIP_K;
    if ((!rows && !flip) || K === 0) return false;
    // Cᵀ = Bᵀ·A (flip: M small) has R rows and Q columns
    const [R, Q] = flip ? [N, M] : [M, N];
    // 8-column strips of B in place, its last Q mod 8 columns packed (zero-padded to 8) in the workspace
    const ns = Q >> 3, j0 = ns * 8, w = Q > j0 ? 8 : 0, kb = THIN_KB;
    const cuts = evenSplit(R, this.#parts(gemmWork(M, N, K)), 6);
    const args = cuts.slice(1).map((e, t) => ({ rows: e - cuts[t], s: cuts[t] }));
    // each part's partial sums between k blocks: its rows x the strips
    const partial = (r: typeof args[0]) => K > kb ? r.rows * (j0 + w) * 4 : 0;
    const btBytes = K * w * 4, tBytes = flip ? M * N * 4 : 0;
    const ws = this.#workspace(args.reduce((n, r) => n + partial(r), btBytes + tBytes) || 4, 0);
    for (let i = 0; i < batch; i++) {
      const [A, B] = flip ? [pb + i * sB, pa + i * sA] : [pa + i * sA, pb + i * sB];
      const C = flip ? ws + btBytes : pc + i * sC, al = flip ? 1 : alpha, ac = flip ? 0 : acc;
      if (w > 0) this.#k.gemmThinPack(B, Q, 1, ws, K, Q, j0);
      let at = ws + btBytes + tBytes;
      this.#run(
        "gemmThin",
        args.map((r) => {
          const part = at;
          at += partial(r);
          return [
            A + r.s * 4,
            1,
            R,
            B,
            Q,
            ns,
            ws,
            w,
            Q - j0,
            C + r.s * Q * 4,
            Q,
            r.rows,
            K,
            al,
            ac,
            part,
            kb,
          ];
        }),
      );
      if (flip) this.#k.gemmThinUntranspose(C, pc + i * sC, M, N, N, alpha, acc);
    }
    return true;
  }

  dds(x: BackendBuffer, w: BackendBuffer, y: BackendBuffer, p: DdsParams): void {
    const lr = p.lowRank ?? p.project;
    if (lr) {
      checkDdsExtra("wasm backend dds", x, w, y, p);
      // block 16: the term is added to each register tile of the sparse kernel while it is in L1, the
      // projection made while the kernel reads X (asm/sparse.ts), saving a gemm's pass over Y or X; at other
      // multiples of 4 the projection is made from X packed per sweep, the rows split between threads;
      // otherwise a gemm after
      const b = p.layout.block, rowSplit = p.project !== undefined && b % 4 === 0 && p.layout.nnz > 0;
      if ((b !== 16 && !rowSplit) || p.M <= DDS_ROWS_M || lr.rank === 0) {
        return ddsExtraByGemm(this, x, w, y, p, lr);
      }
    }
    checkNoAlias("wasm backend dds", "y", y, { x, w });
    const { M, layout: l, transW, accumulate } = p;
    const px = this.#p(x), pw = this.#p(w, true), py = this.#p(y);
    const [rowPtr, colIdx, colPtr, rowIdx, blockIdx] = this.#layout(l);
    const inBlocks = transW ? l.cols : l.rows, outBlocks = transW ? l.rows : l.cols;
    const ptr = transW ? rowPtr : colPtr, idx = transW ? colIdx : rowIdx, tw = transW ? 1 : 0;
    const acc = accumulate ? 1 : 0, b = l.block, nnz = l.nnz;
    const wb = w as WasmBuffer;
    if (
      tw === 1 && (p.batch ?? 1) === 1 && M <= DDS_ROWS_M && b % 4 === 0 && nnz > 0 &&
      !this.#packedCurrent(wb, l, tw) && this.#readInPlace.get(wb) !== wb.version
    ) {
      // a few rows on a weight not yet packed (a first forward): W read in place, no packed copy made;
      // a second forward on the same weight packs it (the packed kernel is faster on repeated calls).
      // It splits only while Workers run (as the weight pack): starting one (20-40 ms in Deno) for a
      // first forward of a few rows would cost far more than the split saves.
      this.#readInPlace.set(wb, wb.version);
      const cuts = balancedSplit(l.rowPtr, this.#pool?.live ? this.#parts(M * nnz * b * b) : 1);
      const args = [px, pw, py, M, inBlocks, outBlocks, b, ptr, idx, acc];
      this.#run("ddsRows", cuts.slice(1).map((e, t) => [...args, cuts[t], e]));
      return;
    }
    // One weight (not a batch of them): its blocks packed once per update (transW | 2 tells the kernel).
    const packed = (p.batch ?? 1) === 1 && nnz > 0 ? this.#packedW(w as WasmBuffer, l, tw, blockIdx) : 0;
    const nParts = this.#productParts(M * nnz * b * b);
    const wsBytes = this.#k.ddsWorkspace(M, inBlocks, nnz, b) +
      (lr ? 16 + this.#k.ddsLowRankWorkspace(M, inBlocks, outBlocks, b, lr.rank) : 0);
    if (packed && b !== 16) {
      // The weight packed once for all: threads take equal numbers of rows (a row costs the same whatever
      // the layout), each packing only its own rows of X (and making or adding its own rows of H). Not
      // whole 6-row tiles: at M = 256, 128 rows each (21 tiles and 2 rows) ran 0.98-1.01x the time of 132
      // and 124 (interleaved, 2 threads).
      const rows = evenSplit(M, nParts);
      const ws = this.#workspaces(wsBytes, rows.length - 1);
      const inB = inBlocks * b * 4, outB = outBlocks * b * 4, n = rows.length - 1;
      const walk = [inBlocks, outBlocks, b, nnz, ptr, idx, blockIdx, tw | 2, acc];
      // the projection (mode bits below): each part makes the rows of H of its rows of X
      const mode = lr ? 2 | (lr.transU ? 4 : 0) : 0;
      const ph = lr ? this.#p(lr.h) : 0, pu = lr ? this.#p(lr.u, true) : 0;
      const rank = lr?.rank ?? 0;
      const part = (r0: number, r1: number, t: number) => [
        px + r0 * inB,
        packed,
        py + r0 * outB,
        r1 - r0,
        ...walk,
        ws[t],
        0,
        outBlocks,
        lr ? ph + r0 * rank * 4 : 0,
        rank,
        pu,
        mode,
        t,
        n,
      ];
      this.#run("dds", rows.slice(1).map((r1, t) => part(rows[t], r1, t)), 13);
      return;
    }
    // Otherwise ranges of output block columns holding about equal numbers of kept blocks, so each packs
    // only its own blocks of W (X is packed by each).
    const cuts = balancedSplit(transW ? l.rowPtr : l.colPtr, nParts);
    const ws = this.#workspaces(wsBytes, cuts.length - 1);
    // the low-rank term or projection (asm/sparse.ts' mode bits: 1 low-rank, 2 projection, 4 op(U) = Uᵀ,
    // 8 H stored (rank, M))
    const mode = lr ? (p.lowRank ? 1 : 2) | (lr.transU ? 4 : 0) | (lr.transH ? 8 : 0) : 0;
    const lrArgs = lr
      ? [this.#p(lr.h, p.lowRank !== undefined), lr.rank, this.#p(lr.u, true), mode]
      : [0, 0, 0, 0];
    const parts = cuts.length - 1;
    // batched (attention): one product per batch entry on the one layout, at byte strides
    const sX = (p.strideX ?? M * inBlocks * b) * 4, sW = (p.strideW ?? nnz * b * b) * 4;
    const sY = (p.strideY ?? M * outBlocks * b) * 4;
    for (let i = 0; i < (p.batch ?? 1); i++) {
      const args = [
        px + i * sX,
        packed || pw + i * sW,
        py + i * sY,
        M,
        inBlocks,
        outBlocks,
        b,
        nnz,
        ptr,
        idx,
        blockIdx,
        packed ? tw | 2 : tw,
        acc,
      ];
      this.#run("dds", cuts.slice(1).map((e, t) => [...args, ws[t], cuts[t], e, ...lrArgs, t, parts]), 13);
    }
  }

  sdd(a: BackendBuffer, b: BackendBuffer, w: BackendBuffer, p: SddParams): void {
    checkNoAlias("wasm backend sdd", "w", w, { a, b });
    const { layout: l, K, transA, transB, accumulate } = p;
    const pa = this.#p(a), pb = this.#p(b), pw = this.#p(w);
    const [rowPtr, colIdx] = this.#layout(l);
    // Threads take ranges of block rows holding about equal numbers of kept blocks.
    const cuts = balancedSplit(l.rowPtr, this.#productParts(l.nnz * l.block * l.block * K));
    const ws = this.#workspaces(this.#k.sddWorkspace(l.rows, l.cols, l.block, K), cuts.length - 1);
    const R = l.rows * l.block, C = l.cols * l.block;
    const sA = (p.strideA ?? R * K) * 4,
      sB = (p.strideB ?? K * C) * 4,
      sW = (p.strideW ?? l.nnz * l.block ** 2) * 4;
    const ta = transA ? 1 : 0, tb = transB ? 1 : 0, acc = accumulate ? 1 : 0;
    // Split between threads: B packed once into a region the parts share (each block column by the
    // part that claims it first), not by every part whose blocks use it; its flags zeroed per product.
    const parts = cuts.length - 1;
    const shared = parts > 1 && this.#pool ? this.#sddSharedRegion(l.cols, l.block, K) : 0;
    const flagBytes = shared ? this.#k.sddFlagBytes(l.cols, K) : 0;
    for (let i = 0; i < (p.batch ?? 1); i++) {
      const args = [
        pa + i * sA,
        pb + i * sB,
        pw + i * sW,
        l.rows,
        l.cols,
        l.block,
        K,
        ta,
        tb,
        rowPtr,
        colIdx,
        acc,
      ];
      if (shared) this.#i32().fill(0, shared >>> 2, (shared + flagBytes) >>> 2);
      this.#run("sdd", cuts.slice(1).map((e, t) => [...args, ws[t], cuts[t], e, shared, t, parts]), 12);
    }
  }

  // sdd's region shared by the parts of one product (asm/sparse.ts sddSharedBytes), grown as needed.
  #sddShared = 0;
  #sddSharedBytes = 0;
  #sddSharedRegion(cols: number, block: number, K: number): number {
    const bytes = this.#k.sddSharedBytes(cols, block, K);
    if (bytes > this.#sddSharedBytes) {
      if (this.#sddSharedBytes > 0) this.#alloc.free(this.#sddShared, this.#sddSharedBytes);
      this.#sddSharedBytes = 0;
      this.#sddShared = this.#reserve(bytes, "sdd's shared packing");
      this.#sddSharedBytes = bytes;
    }
    return this.#sddShared;
  }

  bsrSoftmax(x: BackendBuffer, y: BackendBuffer, p: BsrSoftmaxParams): void {
    const l = p.layout, [rowPtr, colIdx] = this.#layout(l);
    const f = p.causal ? 1 : 0, px = this.#p(x), py = this.#p(y), bb = l.nnz * l.block * l.block;
    // threads take whole batch entries (heads)
    this.#rows("bsrSoftmax", p.batch, p.batch * bb * COST_MATH, (t, n) => [
      px + t * bb * 4,
      py + t * bb * 4,
      rowPtr,
      colIdx,
      l.rows,
      l.nnz,
      l.block,
      n,
      p.L,
      p.S,
      f,
      p.scale,
    ]);
  }
  bsrSoftmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: BsrSoftmaxParams & { accumulate: boolean },
  ): void {
    const l = p.layout, [rowPtr] = this.#layout(l);
    const acc = p.accumulate ? 1 : 0, bb = l.nnz * l.block * l.block;
    const py = this.#p(y), pdy = this.#p(dy), pdx = this.#p(dx);
    this.#rows("bsrSoftmaxGrad", p.batch, p.batch * bb * COST_PASS, (t, n) => [
      py + t * bb * 4,
      pdy + t * bb * 4,
      pdx + t * bb * 4,
      rowPtr,
      l.rows,
      l.nnz,
      l.block,
      n,
      p.scale,
      acc,
    ]);
  }

  // --- reductions ---------------------------------------------------------
  sumRows(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void {
    const { M, N } = p, px = this.#p(x), py = this.#p(y), acc = p.accumulate ? 1 : 0;
    // threads take ranges of columns: each output sums its column in row order, as on one thread
    const cuts = evenSplit(N, this.#parts(M * N * COST_PASS), 8);
    // each thread's float64 sums of one block of columns (asm/rows.ts SUMROWS_BLOCK x 8 bytes)
    const ws = this.#workspaces(SUMROWS_WS, cuts.length - 1);
    this.#run(
      "sumRows",
      cuts.slice(1).map((e, t) => [px + cuts[t] * 4, py + cuts[t] * 4, M, e - cuts[t], acc, N, ws[t]]),
      6,
    );
  }
  sumCols(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void {
    const { M, N } = p, px = this.#p(x), py = this.#p(y), acc = p.accumulate ? 1 : 0;
    this.#rows("sumCols", M, M * N * COST_PASS, (r, n) => [px + r * N * 4, py + r * 4, n, N, acc]);
  }
  sumSquares(x: BackendBuffer, out: BackendBuffer, p: { size: number; accumulate: boolean }): void {
    // float64 sums of fixed chunks (SQ_CHUNK elements, whatever the thread count), added in chunk order:
    // the threads take ranges of chunks, and every thread count gives the same bits
    const px = this.#p(x), po = this.#p(out), size = p.size, acc = p.accumulate ? 1 : 0;
    const chunks = Math.ceil(size / SQ_CHUNK), parts = Math.min(chunks, this.#parts(size * COST_PASS));
    if (parts <= 1) {
      this.#k.sumSquares(px, po, size, acc);
      return;
    }
    if (chunks * 8 > this.#partialBytes) {
      if (this.#partialBytes > 0) this.#alloc.free(this.#partial, this.#partialBytes);
      this.#partialBytes = 0;
      this.#partial = this.#reserve(chunks * 8, "sumSquares");
      this.#partialBytes = chunks * 8;
    }
    const cuts = evenSplit(chunks, parts);
    this.#run("sumSquaresChunks", cuts.slice(1).map((e, t) => [px, this.#partial, size, cuts[t], e]));
    const partial = new Float64Array(this.#mem.buffer, this.#partial, chunks), f32 = this.#f32();
    let s = 0;
    for (let c = 0; c < chunks; c++) s += partial[c];
    f32[po >>> 2] = (acc ? f32[po >>> 2] : 0) + s;
  }

  // --- elementwise --------------------------------------------------------
  binary(
    op: BinaryOp,
    a: BackendBuffer,
    b: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number; bcast: Broadcast },
  ): void {
    const { M, N, bcast } = p, code = BINARY_CODE[op], bc = BROADCAST_CODE[bcast];
    const pa = this.#p(a), pb = this.#p(b), po = this.#p(out);
    if (bcast === "full" || bcast === "scalar") {
      // one long row: split anywhere at whole v128s
      this.#elementwise("binary", M * N, COST_PASS, (o, n) => [
        code,
        pa + o * 4,
        bcast === "full" ? pb + o * 4 : pb,
        po + o * 4,
        1,
        n,
        bc,
      ]);
      return;
    }
    this.#rows("binary", M, M * N * COST_PASS, (r, n) => [
      code,
      pa + r * N * 4,
      bcast === "row" ? pb : pb + r * 4,
      po + r * N * 4,
      n,
      N,
      bc,
    ]);
  }
  unary(op: UnaryOp, x: BackendBuffer, y: BackendBuffer, p: { size: number }): void {
    const code = UNARY_CODE[op], px = this.#p(x), py = this.#p(y);
    this.#elementwise("unary", p.size, COST_MATH, (o, n) => [code, px + o * 4, py + o * 4, n]);
  }
  unaryGrad(
    op: UnaryOp,
    x: BackendBuffer,
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { size: number; accumulate: boolean },
  ): void {
    const code = UNARY_CODE[op], acc = p.accumulate ? 1 : 0;
    const px = this.#p(x), py = this.#p(y), pdy = this.#p(dy), pdx = this.#p(dx);
    this.#elementwise("unaryGrad", p.size, COST_MATH, (o, n) => [
      code,
      px + o * 4,
      py + o * 4,
      pdy + o * 4,
      pdx + o * 4,
      n,
      acc,
    ]);
  }
  scale(
    x: BackendBuffer,
    y: BackendBuffer,
    p: { size: number; alpha: number; beta: number; accumulate: boolean },
  ): void {
    const px = this.#p(x), py = this.#p(y), acc = p.accumulate ? 1 : 0;
    this.#elementwise(
      "scale",
      p.size,
      COST_PASS,
      (o, n) => [px + o * 4, py + o * 4, n, p.alpha, p.beta, acc],
    );
  }
  fill(x: BackendBuffer, p: { size: number; value: number }): void {
    const px = this.#p(x);
    this.#elementwise("fill", p.size, COST_PASS / 2, (o, n) => [px + o * 4, n, p.value]);
  }
  copy(
    src: BackendBuffer,
    dst: BackendBuffer,
    p: { size: number; srcOffset: number; dstOffset: number },
  ): void {
    const s = this.#p(src) + p.srcOffset * 4, d = this.#p(dst) + p.dstOffset * 4;
    if (Math.abs(s - d) < p.size * 4) {
      this.#k.copy(s, d, p.size); // overlapping ranges: one memmove
      return;
    }
    this.#elementwise("copy", p.size, COST_PASS / 2, (o, n) => [s + o * 4, d + o * 4, n]);
  }
  transpose(x: BackendBuffer, y: BackendBuffer, p: { B: number; M: number; N: number }): void {
    const { B, M, N } = p, px = this.#p(x), py = this.#p(y);
    // threads take whole matrices of the batch
    this.#rows(
      "transpose",
      B,
      B * M * N * COST_PASS,
      (r, n) => [px + r * M * N * 4, py + r * M * N * 4, n, M, N],
    );
  }

  // --- rows ---------------------------------------------------------------
  softmax(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number }): void {
    const { M, N } = p, px = this.#p(x), py = this.#p(y);
    this.#rows("softmax", M, M * N * COST_ROW, (r, n) => [px + r * N * 4, py + r * N * 4, n, N]);
  }
  softmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    const { M, N } = p, py = this.#p(y), pdy = this.#p(dy), pdx = this.#p(dx), acc = p.accumulate ? 1 : 0;
    this.#rows("softmaxGrad", M, M * N * COST_PASS, (r, n) => {
      const o = r * N * 4;
      return [py + o, pdy + o, pdx + o, n, N, acc];
    });
  }
  crossEntropy(
    logits: BackendBuffer,
    labels: BackendBuffer,
    probs: BackendBuffer,
    losses: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    const { M, N } = p;
    const pl = this.#p(logits), plab = this.#p(labels), pp = this.#p(probs), ploss = this.#p(losses);
    this.#rows("crossEntropy", M, M * N * COST_ROW, (r, n) => {
      const o = r * N * 4;
      return [pl + o, plab + r * 4, pp + o, ploss + r * 4, n, N];
    });
  }
  crossEntropyGrad(
    probs: BackendBuffer,
    labels: BackendBuffer,
    dlosses: BackendBuffer,
    dlogits: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    const { M, N } = p, acc = p.accumulate ? 1 : 0;
    const pp = this.#p(probs), plab = this.#p(labels), pdl = this.#p(dlosses), pdg = this.#p(dlogits);
    this.#rows("crossEntropyGrad", M, M * N * COST_PASS, (r, n) => {
      const o = r * N * 4;
      return [pp + o, plab + r * 4, pdl + r * 4, pdg + o, n, N, acc];
    });
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
    const { M, N } = p;
    const px = this.#p(x), pg = this.#p(gamma), pb = this.#p(beta), py = this.#p(y);
    const pm = this.#p(mean), pr = this.#p(rstd);
    this.#rows("layerNorm", M, M * N * COST_ROW, (r, n) => {
      const o = r * N * 4;
      return [px + o, pg, pb, py + o, pm + r * 4, pr + r * 4, n, N, p.eps];
    });
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
    const { M, N } = p;
    const args = [
      this.#p(dy),
      this.#p(x),
      this.#p(gamma),
      this.#p(mean),
      this.#p(rstd),
      this.#p(dx),
      this.#p(dgamma),
      this.#p(dbeta),
      M,
      N,
      p.accumulate ? 1 : 0,
    ];
    // each thread: a range of rows of dx and a range of columns of dgamma and dbeta (summed in row order)
    const parts = this.#parts(M * N * COST_ROW);
    const rows = evenSplit(M, parts), cols = evenSplit(N, parts, 4);
    const n = Math.max(rows.length, cols.length) - 1;
    const range = (cuts: number[], t: number) => t + 1 < cuts.length ? [cuts[t], cuts[t + 1]] : [0, 0];
    this.#run(
      "layerNormGrad",
      Array.from({ length: n }, (_, t) => [...args, ...range(rows, t), ...range(cols, t)]),
    );
  }
  gatedCombine(
    s: BackendBuffer,
    l: BackendBuffer,
    g: BackendBuffer,
    bias: BackendBuffer,
    y: BackendBuffer,
    p: { M: number; N: number; bias: boolean },
  ): void {
    const { M, N } = p,
      ps = this.#p(s),
      pl = this.#p(l),
      pg = this.#p(g),
      pb = this.#p(bias),
      py = this.#p(y);
    this.#rows("gatedCombine", M, M * N * COST_GATED, (r, n) => {
      const o = r * N * 4;
      return [ps + o, pl + o, pg + r * 4, pb, py + o, n, N, p.bias ? 1 : 0];
    });
  }
  gatedCombineGrad(
    dy: BackendBuffer,
    s: BackendBuffer,
    l: BackendBuffer,
    g: BackendBuffer,
    ds: BackendBuffer,
    dl: BackendBuffer,
    dg: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    const { M, N } = p, acc = p.accumulate ? 1 : 0;
    const [pdy, ps, pl, pg, pds, pdl, pdg] = [dy, s, l, g, ds, dl, dg].map((b) => this.#p(b));
    this.#rows("gatedCombineGrad", M, M * N * COST_GATED_GRAD, (r, n) => {
      const o = r * N * 4;
      return [pdy + o, ps + o, pl + o, pg + r * 4, pds + o, pdl + o, pdg + r * 4, n, N, acc];
    });
  }
  gatherRows(
    table: BackendBuffer,
    idx: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    const { M, N } = p, pt = this.#p(table), pi = this.#p(idx), po = this.#p(out);
    this.#rows("gatherRows", M, M * N * COST_PASS, (r, n) => [pt, pi + r * 4, po + r * N * 4, n, N]);
  }
  scatterAddRows(
    dout: BackendBuffer,
    idx: BackendBuffer,
    dtable: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    const { M, N } = p, pd = this.#p(dout), pi = this.#p(idx), pt = this.#p(dtable);
    // threads take ranges of columns, so rows repeated in idx never race
    const cuts = evenSplit(N, this.#parts(M * N * COST_PASS), 4);
    this.#run(
      "scatterAddRows",
      cuts.slice(1).map((e, t) => [pd + cuts[t] * 4, pi, pt + cuts[t] * 4, M, e - cuts[t], N]),
    );
  }

  // --- optimizers ---------------------------------------------------------
  adamw(
    param: BackendBuffer,
    grad: BackendBuffer,
    m: BackendBuffer,
    v: BackendBuffer,
    p: AdamWParams,
  ): void {
    const pp = this.#p(param), pg = this.#p(grad), pm = this.#p(m), pv = this.#p(v);
    const bc1 = 1 - p.beta1 ** p.step, bc2 = 1 - p.beta2 ** p.step;
    this.#elementwise("adamw", p.size, COST_MATH, (o, n) => [
      pp + o * 4,
      pg + o * 4,
      pm + o * 4,
      pv + o * 4,
      n,
      p.lr,
      p.beta1,
      p.beta2,
      p.eps,
      p.weightDecay,
      bc1,
      bc2,
    ]);
  }
  sgd(
    param: BackendBuffer,
    grad: BackendBuffer,
    momentum: BackendBuffer,
    p: SgdParams & { first: boolean },
  ): void {
    const pp = this.#p(param), pg = this.#p(grad), pm = this.#p(momentum);
    this.#elementwise("sgd", p.size, COST_PASS, (o, n) => [
      pp + o * 4,
      pg + o * 4,
      pm + o * 4,
      n,
      p.lr,
      p.momentum,
      p.dampening,
      p.nesterov ? 1 : 0,
      p.weightDecay,
      p.first ? 1 : 0,
    ]);
  }
  clipScale(g: BackendBuffer, normSq: BackendBuffer, p: { size: number; maxNorm: number }): void {
    const pg = this.#p(g), pn = this.#p(normSq);
    this.#elementwise("clipScale", p.size, COST_PASS, (o, n) => [pg + o * 4, pn, n, p.maxNorm]);
  }
}

// Runs the hot kernels on every thread before real work, when a thread count was asked for: the
// Workers' copies of the kernels compiled and the splitting paths run (and the Workers started), so a
// Worker that cannot run them is known at once. The default ("auto", or 1 thread) warms nothing: V8
// compiles a kernel at its first call either way (its baseline tier; WASM has no on-stack replacement),
// and warming every kernel in advance cost a cold start 8-12 ms of wall time and 10-14 ms of CPU
// (background tier-up of kernels a model may never call, such as sdd) for 2-3 ms saved at its first
// forward (bench/cold_start.ts, 2-vCPU VM, shared).
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
  be.minSplitWork = 0;
  // Eight rounds on every thread push the Workers' copies towards V8's optimising tier too (measured by
  // bench/cold_start.ts --clock cpu: they did not reach it; real work reaches it within its first calls).
  const rounds = 8;
  for (let r = 0; r < rounds; r++) {
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
 * // one thread per core by default (where SharedArrayBuffer and Workers exist); dispose() stops the Workers
 * const be = await createWasmBackend();
 * const x = be.upload(new Float32Array([1, 2, 3, 4]));
 * be.scale(x, x, { size: 4, alpha: 2, beta: 0, accumulate: false });
 * console.log(await be.read(x)); // Float32Array [2, 4, 6, 8]
 * console.log(be.threads === Math.min(8, navigator.hardwareConcurrency)); // true on Deno
 * be.dispose();
 *
 * // any count: the calling thread and two Workers; 1 keeps every kernel on the calling thread
 * const be2 = await createWasmBackend({ threads: 3 });
 * console.log(be2.threads); // 3 where SharedArrayBuffer and Workers exist, else 1
 * be2.dispose();
 * ```
 */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  if (opts.variant !== undefined && opts.variant !== "relaxed" && opts.variant !== "simd128") {
    throw new RangeError(`createWasmBackend: variant must be "relaxed" or "simd128", got ${opts.variant}`);
  }
  const threads = opts.threads ?? "auto";
  if (threads !== "auto" && !(Number.isInteger(threads) && threads >= 1 && threads <= MAX_THREADS)) {
    throw new RangeError(
      `createWasmBackend: threads must be an integer from 1 to ${MAX_THREADS} or "auto", got ${threads}`,
    );
  }
  const minSplitWork = opts.minSplitWork;
  if (minSplitWork !== undefined && !(minSplitWork >= 0)) {
    throw new RangeError(`createWasmBackend: minSplitWork must be a number >= 0, got ${minSplitWork}`);
  }
  const idleMs = opts.threadIdleMs;
  if (idleMs !== undefined && !(typeof idleMs === "number" && idleMs >= 0)) {
    throw new RangeError(`createWasmBackend: threadIdleMs must be a number >= 0 or Infinity, got ${idleMs}`);
  }
  const support = threads === 1 ? undefined : await threadSupport();
  const want = threads === "auto" ? autoThreads(support) : threads;
  // Threads with no variant asked for: the relaxed threads build compiling settles both questions at once
  // (relaxed SIMD and shared memory), and the plain relaxed build is then never loaded.
  let variant = opts.variant, threadModule: WebAssembly.Module | undefined;
  if (variant === undefined && want > 1 && support !== undefined && "spawn" in support) {
    threadModule = await compileIfAccepted(await wasmBytes("threads"));
    if (threadModule !== undefined) variant = "relaxed";
  }
  variant ??= await pickWasmVariant();
  if (variant === undefined) {
    throw new Error("createWasmBackend: this engine does not support WebAssembly SIMD128");
  }
  const notes: string[] = [];
  if (opts.variant === undefined && variant === "simd128") notes.push(relaxedNote());
  if (threads === "auto" && support !== undefined && "cores" in support && support.cores <= 1) {
    notes.push("1 thread: this engine reports 1 core (navigator.hardwareConcurrency)");
  }
  if (want > 1) {
    const build = variant === "relaxed" ? "threads" : "threads-simd128";
    const oneThread = `1 thread instead of ${want}`;
    if (support === undefined || "reason" in support) {
      notes.push(`${oneThread}: ${support?.reason}`);
    } else {
      const module = threadModule ?? await compileIfAccepted(await wasmBytes(build));
      if (module === undefined) {
        notes.push(`${oneThread}: this engine does not accept the threads build (shared memory and atomics)`);
      } else {
        const memory = new WebAssembly.Memory({ initial: 16, maximum: SHARED_MAX_PAGES, shared: true });
        const instance = await WebAssembly.instantiate(module, { env: { memory } });
        const be = new WasmBackend(instance, variant, {
          memory,
          minSplitWork,
          requestedThreads: want,
          notes,
        });
        try {
          // "auto" (the default) starts its Workers as kernels split, one per kernel (Deno's `new Worker`
          // blocks 20-40 ms each, which a small model's cold start should not pay); a count asked for starts them
          // now and waits, so a Worker that cannot start is known at once.
          const now = threads !== "auto";
          await be.startThreads(module, want - 1, support.spawn, now, idleMs);
          if (now) warm(be);
          return be;
        } catch (err) {
          // a Worker that cannot start (a content security policy, say): one thread, and say why
          notes.push(`${oneThread}: ${(err as Error)?.message ?? err}`);
        }
      }
    }
  }
  // (compiling checks the build: one asked for that this engine rejects is an Error)
  const module = await compileIfAccepted(await wasmBytes(variant));
  if (module === undefined) {
    throw new Error(`createWasmBackend: this engine does not accept the ${variant} build`);
  }
  const instance = await WebAssembly.instantiate(module, {});
  return new WasmBackend(instance, variant, { minSplitWork, requestedThreads: want, notes });
}

// The compiled module, or undefined where this engine rejects the bytes (a CompileError): compiling checks
// them once, where validate() and then compile() decode and check them twice (0.3-0.5 ms of a cold start).
async function compileIfAccepted(bytes: Uint8Array): Promise<WebAssembly.Module | undefined> {
  try {
    return await WebAssembly.compile(bytes as BufferSource);
  } catch (err) {
    if (err instanceof WebAssembly.CompileError) return undefined;
    throw err;
  }
}

// Why the plain SIMD128 build runs: this engine lacks relaxed SIMD (Node 20 has it behind a flag).
function relaxedNote(): string {
  const node = (globalThis as any).process?.versions?.node;
  return "this engine does not enable relaxed SIMD, so the plain SIMD128 build runs (products about 1.2-1.4x " +
    "slower)" +
    (typeof node === "string" ? `; Node ${node} enables it with --experimental-wasm-relaxed-simd` : "");
}

// The most threads a backend takes (more than the cores only oversubscribe them).
const MAX_THREADS = 64;
// "auto": one thread per core, at most AUTO_MAX (each thread also packs its own copy of a product's
// smaller operand, so far more threads than that gain little).
const AUTO_MAX = 8;

function autoThreads(support: Awaited<ReturnType<typeof threadSupport>> | undefined): number {
  const nav = globalThis.navigator?.hardwareConcurrency;
  const cores = support && "cores" in support ? support.cores : Number.isInteger(nav) ? nav! : 1;
  return Math.max(1, Math.min(AUTO_MAX, cores));
}
