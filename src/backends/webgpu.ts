/**
 * The WebGPU backend: WGSL compute kernels through the runtime's native
 * WebGPU (`navigator.gpu`).
 *
 * Tensors stay in GPU buffers; compute calls are recorded into one command
 * encoder (one compute pass while possible) and submitted together on
 * {@link Backend.flush} or {@link Backend.read}, so a training step costs few
 * submits and one await. Uniforms for every dispatch of a submit go into one
 * ring buffer, bound with dynamic offsets and written once per submit.
 *
 * Two kernel families: `register` (register tiles, no workgroup memory: fast
 * to compile and fast on software adapters) and `workgroup` (workgroup-memory
 * tiles, for hardware GPUs), chosen by `adapter.isFallbackAdapter`.
 *
 * @module
 */
import { checkDdsExtra, ddsExtraByGemm } from "./_dds_extra.ts";
import { checkNoAlias } from "../validate.ts";
import * as S from "../../wgsl/generated/shaders.ts";
import { constPrelude, type Consts, ddsTiles, type Family, gemmTiles } from "./_webgpu_tiles.ts";
import { batchedDds, batchedSdd } from "./_webgpu_attention.ts";
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

/** Options of {@link createWebGpuBackend}. */
export interface WebGpuOptions {
  /** The adapter to use (the default adapter otherwise). */
  adapter?: GPUAdapter;
  /** Kernel family; by default `register` on a fallback (software) adapter, `workgroup` otherwise. */
  family?: Family;
}

type ShaderName = "OPS" | "GEMM_REG" | "GEMM_WG" | "DDS_REG" | "DDS_WG" | "ATTENTION";

/** Workgroup width of the kernels in ops.wgsl. */
const OPS_WG = 64;
/** Most workgroups a 1-D grid-stride kernel is dispatched with. */
const MAX_GROUPS_1D = 4096;
/** Partial sums of sumSquares' first pass. */
const SUMSQ_PARTS = 4096;
/** Bytes of uniforms per dispatch (16 words); the ring stride rounds this up to the device alignment. */
const UNIFORM_BYTES = 64;
/** Bytes of the uniform ring: dispatches per submit = RING_BYTES / stride. */
const RING_BYTES = 1 << 18;
/** Pooled bytes kept for reuse; beyond this freed buffers are destroyed. */
const POOL_LIMIT_BYTES = 1 << 30;
/** Upload bytes staged before a submit is forced. */
const STAGING_LIMIT_BYTES = 1 << 26;

/** A buffer of the WebGPU backend. */
class GpuBuf implements BackendBuffer {
  readonly size: number;
  gpu: GPUBuffer | undefined;
  readonly cls: number;
  readonly owner: WebGpuBackend;
  constructor(owner: WebGpuBackend, size: number, gpu: GPUBuffer, cls: number) {
    this.owner = owner;
    this.size = size;
    this.gpu = gpu;
    this.cls = cls;
  }
}

/** Size class in bytes: powers of two with quarter steps, at least 256. */
function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes - 1));
  const q = p / 4;
  return Math.ceil(bytes / q) * q;
}

function groups1d(n: number, perGroup = OPS_WG): number {
  return Math.max(1, Math.min(MAX_GROUPS_1D, Math.ceil(n / perGroup)));
}

/** The JavaScript runtime, for messages. */
export type Runtime = "deno" | "node" | "browser";

function runtime(): Runtime {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Deno !== undefined) return "deno";
  return g.process?.versions?.node !== undefined ? "node" : "browser";
}

/**
 * Why there is no WebGPU adapter, in words that fit the runtime (Node, Deno, a browser):
 * `hasGpu` tells whether `navigator.gpu` exists (and returned no adapter).
 */
export function webGpuAbsence(hasGpu: boolean, where: Runtime = runtime()): string {
  if (where === "node") {
    return "Node.js has no navigator.gpu; use the wasm backend, or pass an adapter from a WebGPU " +
      "binding for Node (for example the `webgpu` npm package) as createWebGpuBackend({ adapter })";
  }
  if (where === "deno") {
    return hasGpu
      ? "navigator.gpu returned no adapter; on Linux without a GPU install Mesa " +
        "(libegl1 libegl-mesa0 libgl1-mesa-dri)"
      : "navigator.gpu is not available in this Deno";
  }
  return hasGpu
    ? "navigator.gpu returned no adapter: this browser or machine offers none"
    : "navigator.gpu is not available: this browser has WebGPU off, or the page is not a secure context";
}

/**
 * Make a WebGPU backend on the given (or default) adapter.
 *
 * @example
 * ```ts ignore
 * import { createWebGpuBackend } from "./webgpu.ts";
 * const gpu = await createWebGpuBackend();
 * const x = gpu.upload(new Float32Array([1, 2, 3]));
 * gpu.scale(x, x, { size: 3, alpha: 2, beta: 0, accumulate: false });
 * console.log(await gpu.read(x)); // Float32Array [2, 4, 6]
 * gpu.dispose();
 * ```
 */
export async function createWebGpuBackend(opts: WebGpuOptions = {}): Promise<Backend> {
  return await WebGpuBackend.create(opts);
}

/** The WebGPU backend (see the module doc). Use {@link createWebGpuBackend} to make one. */
export class WebGpuBackend implements Backend {
  readonly name = "webgpu";
  /** The kernel family in use. */
  readonly family: Family;
  /** The GPU device (exposed for tests). */
  readonly device: GPUDevice;
  readonly #big: boolean;
  #lost: string | undefined;
  #error: string | undefined;
  #disposed = false;

  #modules = new Map<string, GPUShaderModule>();
  #pipelines = new Map<string, GPUComputePipeline>();
  #layouts = new Map<string, GPUBindGroupLayout>();
  #pipelineLayouts = new Map<string, GPUPipelineLayout>();
  /** Pipelines compiled so far (tests check that a new batch size compiles nothing). */
  pipelinesCompiled = 0;

  #pool = new Map<number, GPUBuffer[]>();
  #pooledBytes = 0;
  #pendingFree: GPUBuffer[] = [];
  #pendingFreeCls: number[] = [];
  #live = new Set<GPUBuffer>();
  /** Buffers handed out from the pool instead of created (tests check reuse). */
  poolHits = 0;
  /** Buffers created. */
  buffersCreated = 0;

  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #staging: GPUBuffer[] = [];
  #stagingBytes = 0;
  #readPool = new Map<number, GPUBuffer[]>();
  /** Submits so far. */
  submits = 0;

  readonly #ringStride: number;
  #ring: GPUBuffer;
  #ringCpu = new ArrayBuffer(RING_BYTES);
  #ringU32 = new Uint32Array(this.#ringCpu);
  #ringF32 = new Float32Array(this.#ringCpu);
  #ringUsed = 0;

  /** Index buffers of the layouts in use, released when a layout is garbage-collected. */
  #layoutBufs = new WeakMap<BlockLayout, { buf: GPUBuffer; off: number[] }>();
  #layoutLive = new Set<GPUBuffer>();
  #layoutGone = new FinalizationRegistry<GPUBuffer>((buf) => this.#releaseLayoutBuf(buf));
  /** Buffers to destroy after the next submit (recorded work may still use them). */
  #pendingDestroy: GPUBuffer[] = [];
  #dummy: GPUBuffer;
  #scratch: GPUBuffer;

  private constructor(device: GPUDevice, family: Family, big: boolean) {
    this.device = device;
    this.family = family;
    this.#big = big;
    const align = device.limits.minUniformBufferOffsetAlignment;
    this.#ringStride = Math.ceil(UNIFORM_BYTES / align) * align;
    this.#ring = device.createBuffer({
      size: RING_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.#dummy = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    this.#scratch = device.createBuffer({ size: SUMSQ_PARTS * 4, usage: GPUBufferUsage.STORAGE });
    device.lost.then((info) => {
      this.#lost ??= `${info.reason}${info.message ? `: ${info.message}` : ""}`;
    });
    device.addEventListener("uncapturederror", (ev) => {
      this.#error ??= (ev as GPUUncapturedErrorEvent).error?.message ?? "unknown GPU error";
    });
  }

  /** Make a backend (see {@link createWebGpuBackend}). */
  static async create(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
    // deno-lint-ignore no-explicit-any
    const gpu: GPU | undefined = (globalThis.navigator as any)?.gpu;
    const adapter = opts.adapter ?? (gpu ? await gpu.requestAdapter() : null);
    if (!adapter) {
      throw new Error(`webgpu backend: no WebGPU adapter found (${webGpuAbsence(gpu !== undefined)})`);
    }
    const fallback = (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      // deno-lint-ignore no-explicit-any
      (adapter as any).info?.isFallbackAdapter ?? false;
    const want = [
      "maxStorageBufferBindingSize",
      "maxBufferSize",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
      "maxComputeWorkgroupSizeY",
      "maxStorageBuffersPerShaderStage",
    ] as const;
    // Ask for the adapter's own maxima of the limits the kernels can use, never more than it offers
    // (browsers refuse a device whose requiredLimits exceed the adapter's).
    const requiredLimits: Record<string, number> = {};
    for (const k of want) {
      const v = adapter.limits[k];
      if (typeof v === "number" && Number.isFinite(v)) requiredLimits[k] = v;
    }
    if (requiredLimits.maxStorageBufferBindingSize > requiredLimits.maxBufferSize) {
      requiredLimits.maxStorageBufferBindingSize = requiredLimits.maxBufferSize;
    }
    const device = await adapter.requestDevice({ requiredLimits });
    const family = opts.family ?? (fallback ? "register" : "workgroup");
    return new WebGpuBackend(device, family, !fallback);
  }

  // --- state checks ---------------------------------------------------------

  #check(op: string): void {
    if (this.#disposed) throw new Error(`webgpu backend: ${op} after dispose()`);
    if (this.#lost !== undefined) {
      throw new Error(`webgpu backend: ${op} failed: the GPU device was lost (${this.#lost})`);
    }
  }

  #buf(b: BackendBuffer, op: string): GPUBuffer {
    const g = b as GpuBuf;
    if (!(g instanceof GpuBuf) || g.owner !== this) {
      throw new Error(`webgpu backend: ${op} got a buffer of another backend`);
    }
    if (g.gpu === undefined) throw new Error(`webgpu backend: ${op} got a freed buffer`);
    return g.gpu;
  }

  // --- memory ---------------------------------------------------------------

  #take(size: number): { gpu: GPUBuffer; cls: number; fresh: boolean } {
    const cls = sizeClass(Math.max(1, size) * 4);
    // A buffer beyond the device's limits would fail on the GPU timeline and poison every later read:
    // refuse it here (allocTensor turns the RangeError into one naming the op).
    const max = Math.min(this.device.limits.maxBufferSize, this.device.limits.maxStorageBufferBindingSize);
    if (!(cls <= max)) {
      throw new RangeError(
        `webgpu backend: ${size * 4} bytes exceed the device's largest buffer of ${max} bytes`,
      );
    }
    const list = this.#pool.get(cls);
    const pooled = list?.pop();
    if (pooled) {
      this.#pooledBytes -= cls;
      this.poolHits++;
      return { gpu: pooled, cls, fresh: false };
    }
    const gpu = this.device.createBuffer({
      size: cls,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.buffersCreated++;
    this.#live.add(gpu);
    return { gpu, cls, fresh: true };
  }

  alloc(size: number): BackendBuffer {
    this.#check("alloc");
    const { gpu, cls, fresh } = this.#take(size);
    const buf = new GpuBuf(this, size, gpu, cls);
    if (!fresh && size > 0) this.fill(buf, { size, value: 0 });
    return buf;
  }

  upload(data: Float32Array): BackendBuffer {
    this.#check("upload");
    const { gpu, cls } = this.#take(data.length);
    const buf = new GpuBuf(this, data.length, gpu, cls);
    this.write(buf, data);
    return buf;
  }

  write(buf: BackendBuffer, data: Float32Array, offset = 0): void {
    this.#check("write");
    const dst = this.#buf(buf, "write");
    if (data.length === 0) return;
    // Staged through a mapped buffer and a recorded copy, so the write lands in order with
    // the compute work recorded before and after it (queue.writeBuffer would jump ahead).
    const bytes = data.length * 4;
    const staging = this.device.createBuffer({
      size: Math.ceil(bytes / 4) * 4,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Float32Array(staging.getMappedRange()).set(data);
    staging.unmap();
    this.#endPass();
    this.#enc().copyBufferToBuffer(staging, 0, dst, offset * 4, bytes);
    this.#staging.push(staging);
    this.#stagingBytes += bytes;
    if (this.#stagingBytes > STAGING_LIMIT_BYTES) this.flush();
  }

  async read(buf: BackendBuffer): Promise<Float32Array> {
    this.#check("read");
    const src = this.#buf(buf, "read");
    const size = buf.size;
    if (size === 0) {
      this.flush();
      return new Float32Array(0);
    }
    const cls = sizeClass(size * 4);
    const rb = this.#readPool.get(cls)?.pop() ??
      this.device.createBuffer({ size: cls, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.#endPass();
    this.#enc().copyBufferToBuffer(src, 0, rb, 0, size * 4);
    this.flush();
    try {
      await rb.mapAsync(GPUMapMode.READ, 0, size * 4);
    } catch (e) {
      await Promise.resolve();
      const why = this.#lost ?? (e as Error)?.message ?? String(e);
      this.#lost ??= why;
      throw new Error(`webgpu backend: read failed: the GPU device was lost (${why}); no data was returned`);
    }
    if (this.#lost !== undefined) {
      rb.unmap();
      throw new Error(
        `webgpu backend: read failed: the GPU device was lost (${this.#lost}); no data was returned`,
      );
    }
    if (this.#error !== undefined) {
      rb.unmap();
      throw new Error(`webgpu backend: read failed: a GPU command failed earlier (${this.#error})`);
    }
    const out = new Float32Array(rb.getMappedRange(0, size * 4).slice(0));
    rb.unmap();
    let list = this.#readPool.get(cls);
    if (!list) this.#readPool.set(cls, list = []);
    if (list.length < 4) list.push(rb);
    else rb.destroy();
    return out;
  }

  free(buf: BackendBuffer): void {
    // a buffer of another backend, or one freed already, throws (as on wasm)
    const gpu = this.#buf(buf, "free");
    const g = buf as GpuBuf;
    // Work recorded but not yet submitted may still use it: pool it only after the next submit.
    this.#pendingFree.push(gpu);
    this.#pendingFreeCls.push(g.cls);
    g.gpu = undefined;
    if (this.#encoder === null) this.#recycle();
  }

  #recycle(): void {
    for (const b of this.#pendingDestroy) b.destroy();
    this.#pendingDestroy = [];
    for (let i = 0; i < this.#pendingFree.length; i++) {
      const gpu = this.#pendingFree[i], cls = this.#pendingFreeCls[i];
      if (this.#pooledBytes + cls > POOL_LIMIT_BYTES || this.#disposed) {
        gpu.destroy();
        this.#live.delete(gpu);
        continue;
      }
      let list = this.#pool.get(cls);
      if (!list) this.#pool.set(cls, list = []);
      list.push(gpu);
      this.#pooledBytes += cls;
    }
    this.#pendingFree = [];
    this.#pendingFreeCls = [];
  }

  flush(): void {
    if (this.#disposed) return;
    this.#check("flush");
    if (this.#encoder !== null) {
      this.#endPass();
      if (this.#ringUsed > 0) this.device.queue.writeBuffer(this.#ring, 0, this.#ringCpu, 0, this.#ringUsed);
      this.device.queue.submit([this.#encoder.finish()]);
      this.submits++;
      this.#encoder = null;
      this.#ringUsed = 0;
      for (const s of this.#staging) s.destroy();
      this.#staging = [];
      this.#stagingBytes = 0;
    }
    this.#recycle();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const b of this.#live) b.destroy();
    for (const l of this.#readPool.values()) for (const b of l) b.destroy();
    for (const b of this.#layoutLive) b.destroy();
    for (const b of this.#pendingDestroy) b.destroy();
    this.#layoutLive.clear();
    this.#pendingDestroy = [];
    for (const s of this.#staging) s.destroy();
    this.#live.clear();
    this.#pool.clear();
    this.#readPool.clear();
    this.device.destroy();
  }

  /** Resolves when the GPU has finished all submitted work (benches use it). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.#check("sync");
  }

  // --- recording ------------------------------------------------------------

  #enc(): GPUCommandEncoder {
    if (this.#encoder === null) this.#encoder = this.device.createCommandEncoder();
    return this.#encoder;
  }

  #endPass(): void {
    if (this.#pass !== null) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /** The pipeline layout of storage bindings 1..n with the given access (`r` read-only, `w` read_write). */
  #layout(access: string): GPUPipelineLayout {
    let pl = this.#pipelineLayouts.get(access);
    if (pl) return pl;
    const entries: GPUBindGroupLayoutEntry[] = [{
      binding: 0,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: UNIFORM_BYTES },
    }];
    for (let i = 0; i < access.length; i++) {
      entries.push({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: access[i] === "w" ? "storage" : "read-only-storage" },
      });
    }
    const bgl = this.device.createBindGroupLayout({ entries });
    this.#layouts.set(access, bgl);
    pl = this.device.createPipelineLayout({ bindGroupLayouts: [bgl] });
    this.#pipelineLayouts.set(access, pl);
    return pl;
  }

  #pipeline(source: ShaderName, entry: string, consts: Consts): { pipe: GPUComputePipeline; access: string } {
    const access = S.BINDINGS[source][entry];
    const prelude = constPrelude(consts);
    const key = `${source}|${entry}|${prelude}`;
    let pipe = this.#pipelines.get(key);
    if (pipe) return { pipe, access };
    const mkey = `${source}|${prelude}`;
    let module = this.#modules.get(mkey);
    if (!module) {
      module = this.device.createShaderModule({ code: `${prelude}${S.OP_CODES}${S.COMMON}\n${S[source]}` });
      this.#modules.set(mkey, module);
    }
    pipe = this.device.createComputePipeline({
      label: `${source}:${entry}`,
      layout: this.#layout(access),
      compute: { module, entryPoint: entry },
    });
    this.pipelinesCompiled++;
    this.#pipelines.set(key, pipe);
    return { pipe, access };
  }

  /**
   * Record one dispatch: uniforms u (u32 slots 0..7) and f (f32 slots 8..15), storage buffers
   * bound at 1..n in order with the access the entry point declares.
   *
   * Browsers reject a dispatch that binds one buffer twice when either binding is writable
   * (Deno accepts it). The kernels with an in-place form have their own entry points; anywhere
   * else a read-only input that is also a writable output is first copied to a scratch buffer.
   */
  #dispatch(
    kernel: { pipe: GPUComputePipeline; access: string },
    bufs: GPUBuffer[],
    u: number[],
    f: number[],
    groups: [number, number, number],
  ): void {
    if (this.#ringUsed + this.#ringStride > RING_BYTES) this.flush();
    const { pipe, access } = kernel;
    const n = access.length;
    for (let i = 0; i < n; i++) {
      if (access[i] !== "w") continue;
      for (let j = 0; j < n; j++) {
        if (j === i || bufs[j] !== bufs[i]) continue;
        if (access[j] === "w") {
          throw new Error(
            `webgpu backend: one buffer bound to two outputs (bindings ${Math.min(i, j) + 1} and ` +
              `${Math.max(i, j) + 1}) of ${pipe.label || "a kernel"}`,
          );
        }
        bufs = bufs.slice();
        bufs[j] = this.#scratchCopy(bufs[i]);
      }
    }
    const off = this.#ringUsed;
    const w = off / 4;
    this.#ringU32.fill(0, w, w + 16);
    for (let i = 0; i < u.length; i++) this.#ringU32[w + i] = u[i];
    for (let i = 0; i < f.length; i++) this.#ringF32[w + 8 + i] = f[i];
    this.#ringUsed += this.#ringStride;
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: this.#ring, size: UNIFORM_BYTES },
    }];
    for (let i = 0; i < n; i++) entries.push({ binding: i + 1, resource: { buffer: bufs[i] } });
    const bg = this.device.createBindGroup({ layout: this.#layouts.get(access)!, entries });
    this.#enc();
    if (this.#pass === null) this.#pass = this.#encoder!.beginComputePass();
    this.#pass.setPipeline(pipe);
    this.#pass.setBindGroup(0, bg, [off]);
    this.#pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
  }

  /** A copy of `src` in a scratch buffer destroyed after the next submit (recorded before the pass). */
  #scratchCopy(src: GPUBuffer): GPUBuffer {
    const tmp = this.device.createBuffer({
      size: src.size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.#endPass();
    this.#enc().copyBufferToBuffer(src, 0, tmp, 0, src.size);
    this.#pendingDestroy.push(tmp);
    return tmp;
  }

  #ops(entry: string, bufs: BackendBuffer[], u: number[], f: number[], groups: number, op: string): void {
    this.#check(op);
    const gb = bufs.map((b) => this.#buf(b, op));
    this.#dispatch(this.#pipeline("OPS", entry, {}), gb, u, f, [groups, 1, 1]);
  }

  /** Index buffer of a layout: rowPtr, colIdx, colPtr, rowIdx, blockIdx, rowOf (cached per layout). */
  #layoutBuf(l: BlockLayout): { buf: GPUBuffer; off: number[] } {
    let c = this.#layoutBufs.get(l);
    if (c) return c;
    const parts = [l.rowPtr, l.colIdx, l.colPtr, l.rowIdx, l.blockIdx];
    const rowOf = new Int32Array(l.nnz);
    for (let i = 0; i < l.rows; i++) rowOf.fill(i, l.rowPtr[i], l.rowPtr[i + 1]);
    parts.push(rowOf);
    const total = parts.reduce((s, a) => s + a.length, 0);
    const buf = this.device.createBuffer({
      size: Math.max(16, total * 4),
      usage: GPUBufferUsage.STORAGE,
      mappedAtCreation: true,
    });
    const view = new Int32Array(buf.getMappedRange());
    const off: number[] = [];
    let o = 0;
    for (const a of parts) {
      off.push(o);
      view.set(a, o);
      o += a.length;
    }
    buf.unmap();
    c = { buf, off };
    this.#layoutBufs.set(l, c);
    this.#layoutLive.add(buf);
    this.#layoutGone.register(l, buf);
    return c;
  }

  /** A layout was garbage-collected: destroy its index buffer (after the next submit if work is recorded). */
  #releaseLayoutBuf(buf: GPUBuffer): void {
    if (!this.#layoutLive.delete(buf) || this.#disposed) return;
    if (this.#encoder === null) buf.destroy();
    else this.#pendingDestroy.push(buf);
  }

  /** Index buffers of block layouts held on the GPU now (tests check they are released). */
  get layoutBuffers(): number {
    return this.#layoutLive.size;
  }

  // --- products -------------------------------------------------------------

  gemm(a: BackendBuffer, b: BackendBuffer, c: BackendBuffer, p: GemmParams): void {
    checkNoAlias("webgpu backend gemm", "c", c, { a, b });
    this.#check("gemm");
    const { M, N, K, transA, transB, accumulate } = p;
    const batch = p.batch ?? 1;
    if (M === 0 || N === 0 || batch === 0) return;
    const ga = this.#buf(a, "gemm"), gb = this.#buf(b, "gemm"), gc = this.#buf(c, "gemm");
    const t = gemmTiles(this.family, this.#big);
    const consts: Consts = { ...t, TRANS_A: transA, TRANS_B: transB, SDD: false };
    const src = this.family === "register" ? "GEMM_REG" : "GEMM_WG";
    const pipe = this.#pipeline(src, "gemm", consts);
    const tileM = this.family === "register" ? t.WGY as number * (t.TM as number) : t.BM as number;
    const tileN = this.family === "register" ? t.WGX as number * (t.TN as number) : t.BN as number;
    const sA = p.strideA ?? M * K, sB = p.strideB ?? K * N, sC = p.strideC ?? M * N;
    this.#dispatch(
      pipe,
      [ga, gb, gc, this.#dummy],
      [M, N, K, sA, sB, sC, accumulate ? 1 : 0, 0],
      [p.alpha ?? 1],
      [Math.ceil(N / tileN), Math.ceil(M / tileM), batch],
    );
  }

  dds(x: BackendBuffer, w: BackendBuffer, y: BackendBuffer, p: DdsParams): void {
    if (p.lowRank || p.project) {
      return ddsExtraByGemm(this, x, w, y, p, checkDdsExtra("webgpu backend dds", x, w, y, p));
    }
    checkNoAlias("webgpu backend dds", "y", y, { x, w });
    if ((p.batch ?? 1) !== 1) return batchedDds(this, x, w, y, p);
    this.#check("dds");
    const { M, layout, transW, accumulate } = p;
    const b = layout.block;
    const N = layout.rows * b, K = layout.cols * b;
    const inCols = transW ? K : N, outCols = transW ? N : K;
    if (M === 0 || outCols === 0) return;
    const gx = this.#buf(x, "dds"), gw = this.#buf(w, "dds"), gy = this.#buf(y, "dds");
    const lb = this.#layoutBuf(layout);
    const t = ddsTiles(this.family, this.#big, b);
    const pipe = this.#pipeline(
      this.family === "register" ? "DDS_REG" : "DDS_WG",
      "dds",
      { ...t, TRANS_W: transW },
    );
    const [oRowPtr, oColIdx, oColPtr, oRowIdx, oBlockIdx] = lb.off;
    const u = [
      M,
      inCols,
      outCols,
      b,
      accumulate ? 1 : 0,
      transW ? oRowPtr : oColPtr,
      transW ? oColIdx : oRowIdx,
      oBlockIdx,
    ];
    let groups: [number, number, number];
    if (this.family === "register") {
      const tn = (t.WGX as number) * (t.TN as number), tm = (t.WGY as number) * (t.TM as number);
      groups = [Math.ceil(outCols / tn), Math.ceil(M / tm), 1];
    } else {
      groups = [outCols / (t.BN as number), Math.ceil(M / (t.BM as number)), 1];
    }
    this.#dispatch(pipe, [gx, gw, gy, lb.buf], u, [], groups);
  }

  sdd(a: BackendBuffer, b: BackendBuffer, w: BackendBuffer, p: SddParams): void {
    checkNoAlias("webgpu backend sdd", "w", w, { a, b });
    if ((p.batch ?? 1) !== 1) return batchedSdd(this, a, b, w, p);
    this.#check("sdd");
    const { layout, K, transA, transB, accumulate } = p;
    const blk = layout.block;
    if (layout.nnz === 0) return;
    const ga = this.#buf(a, "sdd"), gb = this.#buf(b, "sdd"), gw = this.#buf(w, "sdd");
    const lb = this.#layoutBuf(layout);
    const t = gemmTiles(this.family, this.#big, blk);
    const consts: Consts = { ...t, TRANS_A: transA, TRANS_B: transB, SDD: true };
    const src = this.family === "register" ? "GEMM_REG" : "GEMM_WG";
    const pipe = this.#pipeline(src, "gemm", consts);
    const tileM = this.family === "register" ? t.WGY as number * (t.TM as number) : t.BM as number;
    const tileN = this.family === "register" ? t.WGX as number * (t.TN as number) : t.BN as number;
    const R = layout.rows * blk, C = layout.cols * blk;
    const u32 = new Uint32Array(2), f32 = new Float32Array(u32.buffer);
    u32[0] = lb.off[5];
    u32[1] = lb.off[1];
    // one layer of workgroups per kept block
    const maxZ = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (layout.nnz > maxZ) {
      throw new RangeError(`sdd: webgpu takes at most ${maxZ} kept blocks, got ${layout.nnz}`);
    }
    this.#dispatch(
      pipe,
      [ga, gb, gw, lb.buf],
      [R, C, K, 0, 0, 0, accumulate ? 1 : 0, blk],
      [1, f32[0], f32[1]],
      [Math.ceil(blk / tileN), Math.ceil(blk / tileM), layout.nnz],
    );
  }

  // --- reductions -----------------------------------------------------------

  sumRows(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void {
    if (p.N === 0) return;
    this.#ops("sumRows", [x, y], [p.M, p.N, p.accumulate ? 1 : 0], [], groups1d(p.N), "sumRows");
  }
  sumCols(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void {
    if (p.M === 0) return;
    this.#ops("sumCols", [x, y], [p.M, p.N, p.accumulate ? 1 : 0], [], groups1d(p.M), "sumCols");
  }
  sumSquares(x: BackendBuffer, out: BackendBuffer, p: { size: number; accumulate: boolean }): void {
    this.#check("sumSquares");
    const gx = this.#buf(x, "sumSquares"), go = this.#buf(out, "sumSquares");
    const parts = Math.max(1, Math.min(SUMSQ_PARTS, p.size));
    const p1 = this.#pipeline("OPS", "sumSquaresPartial", {});
    this.#dispatch(p1, [gx, this.#scratch], [p.size, parts], [], [Math.ceil(parts / OPS_WG), 1, 1]);
    const p2 = this.#pipeline("OPS", "sumSquaresFinal", {});
    this.#dispatch(p2, [this.#scratch, go], [p.size === 0 ? 0 : parts, p.accumulate ? 1 : 0], [], [1, 1, 1]);
  }

  // --- elementwise ----------------------------------------------------------

  binary(
    op: BinaryOp,
    a: BackendBuffer,
    b: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number; bcast: Broadcast },
  ): void {
    const n = p.M * p.N;
    if (n === 0) return;
    const u = [p.M, p.N, BINARY_CODE[op], BROADCAST_CODE[p.bcast]];
    if (out === a) this.#ops("binaryInPlace", [a, b], u, [], groups1d(n), "binary");
    else this.#ops("binary", [a, b, out], u, [], groups1d(n), "binary");
  }
  unary(op: UnaryOp, x: BackendBuffer, y: BackendBuffer, p: { size: number }): void {
    if (p.size === 0) return;
    if (x === y) this.#ops("unaryInPlace", [x], [p.size, UNARY_CODE[op]], [], groups1d(p.size), "unary");
    else this.#ops("unary", [x, y], [p.size, UNARY_CODE[op]], [], groups1d(p.size), "unary");
  }
  unaryGrad(
    op: UnaryOp,
    x: BackendBuffer,
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { size: number; accumulate: boolean },
  ): void {
    if (p.size === 0) return;
    this.#ops(
      "unaryGrad",
      [x, y, dy, dx],
      [p.size, UNARY_CODE[op], p.accumulate ? 1 : 0],
      [],
      groups1d(p.size),
      "unaryGrad",
    );
  }
  scale(
    x: BackendBuffer,
    y: BackendBuffer,
    p: { size: number; alpha: number; beta: number; accumulate: boolean },
  ): void {
    if (p.size === 0) return;
    if (x === y && !p.accumulate) {
      this.#ops("scaleInPlace", [x], [p.size], [p.alpha, p.beta], groups1d(p.size), "scale");
    } else {
      this.#ops(
        "scale",
        [x, y],
        [p.size, p.accumulate ? 1 : 0],
        [p.alpha, p.beta],
        groups1d(p.size),
        "scale",
      );
    }
  }
  fill(x: BackendBuffer, p: { size: number; value: number }): void {
    if (p.size === 0) return;
    this.#ops("fill", [x], [p.size], [p.value], groups1d(p.size), "fill");
  }
  copy(
    src: BackendBuffer,
    dst: BackendBuffer,
    p: { size: number; srcOffset: number; dstOffset: number },
  ): void {
    if (p.size === 0) return;
    const overlap = src === dst && p.srcOffset < p.dstOffset + p.size && p.dstOffset < p.srcOffset + p.size;
    if (overlap && p.srcOffset !== p.dstOffset) {
      const tmp = this.alloc(p.size);
      this.copy(src, tmp, { size: p.size, srcOffset: p.srcOffset, dstOffset: 0 });
      this.copy(tmp, dst, { size: p.size, srcOffset: 0, dstOffset: p.dstOffset });
      this.free(tmp);
      return;
    }
    this.#ops("copy", [src, dst], [p.size, p.srcOffset, p.dstOffset], [], groups1d(p.size), "copy");
  }
  transpose(x: BackendBuffer, y: BackendBuffer, p: { B: number; M: number; N: number }): void {
    const n = p.B * p.M * p.N;
    if (n === 0) return;
    this.#ops("transpose", [x, y], [p.B, p.M, p.N], [], groups1d(n), "transpose");
  }

  // --- rows -----------------------------------------------------------------

  bsrSoftmax(x: BackendBuffer, y: BackendBuffer, p: BsrSoftmaxParams): void {
    this.#attention("bsrSoftmax", [x, y], p, 0);
  }
  bsrSoftmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: BsrSoftmaxParams & { accumulate: boolean },
  ): void {
    this.#attention("bsrSoftmaxGrad", [y, dy, dx], p, p.accumulate ? 1 : 0);
  }
  // wgsl/attention.wgsl: storage 1..3 the tiles (the third a placeholder for bsrSoftmax), 4 the layout
  #attention(entry: string, bufs: BackendBuffer[], p: BsrSoftmaxParams, acc: number): void {
    this.#check(entry);
    const l = p.layout, rows = p.batch * l.rows * l.block;
    if (rows === 0 || l.nnz === 0) return;
    const gb = bufs.map((b) => this.#buf(b, entry));
    if (gb.length === 2) gb.push(this.#dummy);
    const lb = this.#layoutBuf(l);
    const u = [l.rows, l.block, l.nnz, p.L, p.S, p.causal ? 1 : 0, lb.off[0], lb.off[1]];
    const pipe = this.#pipeline("ATTENTION", entry, {});
    this.#dispatch(pipe, [...gb, lb.buf], u, [p.scale, acc, p.batch], [groups1d(rows), 1, 1]);
  }
  softmax(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number }): void {
    if (p.M === 0) return;
    this.#ops("softmax", [x, y], [p.M, p.N], [], groups1d(p.M), "softmax");
  }
  softmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    if (p.M === 0) return;
    this.#ops("softmaxGrad", [y, dy, dx], [p.M, p.N, p.accumulate ? 1 : 0], [], groups1d(p.M), "softmaxGrad");
  }
  crossEntropy(
    logits: BackendBuffer,
    labels: BackendBuffer,
    probs: BackendBuffer,
    losses: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    if (p.M === 0) return;
    this.#ops("crossEntropy", [logits, labels, probs, losses], [p.M, p.N], [], groups1d(p.M), "crossEntropy");
  }
  crossEntropyGrad(
    probs: BackendBuffer,
    labels: BackendBuffer,
    dlosses: BackendBuffer,
    dlogits: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    const n = p.M * p.N;
    if (n === 0) return;
    this.#ops(
      "crossEntropyGrad",
      [probs, labels, dlosses, dlogits],
      [p.M, p.N, p.accumulate ? 1 : 0],
      [],
      groups1d(n),
      "crossEntropyGrad",
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
    if (p.M === 0) return;
    this.#ops("layerNorm", [x, gamma, beta, y, mean, rstd], [p.M, p.N], [p.eps], groups1d(p.M), "layerNorm");
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
    if (p.M === 0 || p.N === 0) return;
    this.#ops(
      "layerNormGradX",
      [dy, x, gamma, mean, rstd, dx],
      [p.M, p.N, p.accumulate ? 1 : 0],
      [],
      groups1d(p.M),
      "layerNormGrad",
    );
    this.#ops(
      "layerNormGradGB",
      [dy, x, mean, rstd, dgamma, dbeta],
      [p.M, p.N],
      [],
      groups1d(p.N),
      "layerNormGrad",
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
    const n = p.M * p.N;
    if (n === 0) return;
    // without a bias, s stands in for the unread binding (two read-only bindings of one buffer are fine)
    const bufs = [s, l, g, p.bias ? bias : s, y];
    this.#ops("gatedCombine", bufs, [p.M, p.N, p.bias ? 1 : 0], [], groups1d(n), "gatedCombine");
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
    const n = p.M * p.N, u = [p.M, p.N, p.accumulate ? 1 : 0];
    if (n === 0) return;
    this.#ops("gatedCombineGradSL", [dy, g, ds, dl], u, [], groups1d(n), "gatedCombineGrad");
    this.#ops("gatedCombineGradG", [dy, s, l, dg], u, [], groups1d(p.M), "gatedCombineGrad");
  }
  gatherRows(
    table: BackendBuffer,
    idx: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    const n = p.M * p.N;
    if (n === 0) return;
    this.#ops("gatherRows", [table, idx, out], [p.M, p.N], [], groups1d(n), "gatherRows");
  }
  scatterAddRows(
    dout: BackendBuffer,
    idx: BackendBuffer,
    dtable: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    if (p.M === 0 || p.N === 0) return;
    const chunks = Math.ceil(p.N / 32);
    this.#ops(
      "scatterAddRows",
      [dout, idx, dtable],
      [p.M, p.N, chunks],
      [],
      groups1d(p.M * chunks),
      "scatterAddRows",
    );
  }

  // --- optimizers -----------------------------------------------------------

  adamw(param: BackendBuffer, grad: BackendBuffer, m: BackendBuffer, v: BackendBuffer, p: AdamWParams): void {
    if (p.size === 0) return;
    const bc1 = 1 - p.beta1 ** p.step, bc2 = 1 - p.beta2 ** p.step;
    this.#ops(
      "adamw",
      [param, grad, m, v],
      [p.size],
      [p.lr, p.beta1, p.beta2, p.eps, p.weightDecay, bc1, bc2],
      groups1d(p.size),
      "adamw",
    );
  }
  sgd(
    param: BackendBuffer,
    grad: BackendBuffer,
    momentum: BackendBuffer,
    p: SgdParams & { first: boolean },
  ): void {
    if (p.size === 0) return;
    this.#ops(
      "sgd",
      [param, grad, momentum],
      [p.size, p.nesterov ? 1 : 0, p.first ? 1 : 0],
      [p.lr, p.momentum, p.dampening, p.weightDecay],
      groups1d(p.size),
      "sgd",
    );
  }
  clipScale(g: BackendBuffer, normSq: BackendBuffer, p: { size: number; maxNorm: number }): void {
    if (p.size === 0) return;
    this.#ops("clipScale", [g, normSq], [p.size], [p.maxNorm], groups1d(p.size), "clipScale");
  }
}
