/**
 * Tensor: a shape, a buffer on one backend, and (for training) a gradient
 * and the tape node that made it.
 *
 * Tensors live where their backend computes (WASM linear memory, GPU
 * buffers). Memory is released by `dispose()`, by `tidy()` scopes, and as a
 * last resort when the garbage collector finalises a forgotten tensor.
 *
 * @module
 */
import { backward as runBackward } from "./autograd.ts";
import { getBackend } from "./backends/select.ts";
import type { Backend, BackendBuffer } from "./backends/types.ts";
import { Rng } from "./random.ts";
import { checkBackend } from "./validate.ts";
import type { TapeNode } from "./tape.ts";

/**
 * What a tensor made from host data is known to hold: whether every value is
 * an integer, and where the extremes are. Ids and labels are checked against
 * it before a kernel reads them (`gather`, `crossEntropy`).
 */
export interface IntegerSummary {
  /** Number of values. */
  size: number;
  /** The smallest value and its first position. */
  min: number;
  /** Position of `min`. */
  minAt: number;
  /** The largest value and its first position. */
  max: number;
  /** Position of `max`. */
  maxAt: number;
  /** The first position holding a value that is not an integer (NaN, ±Infinity, 0.5), or -1. */
  bad: number;
  /** The value at `bad`. */
  badValue: number;
}

function summarize(d: Float32Array): IntegerSummary {
  const s: IntegerSummary = {
    size: d.length,
    min: Infinity,
    minAt: -1,
    max: -Infinity,
    maxAt: -1,
    bad: -1,
    badValue: 0,
  };
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (!Number.isInteger(v)) {
      s.bad = i;
      s.badValue = v;
      return s;
    }
    if (v < s.min) {
      s.min = v;
      s.minAt = i;
    }
    if (v > s.max) {
      s.max = v;
      s.maxAt = i;
    }
  }
  return s;
}

/** Live buffers and values of tensors on one backend. */
interface Usage {
  buffers: number;
  values: number;
  finalized: number;
}
const usage = new Map<Backend, Usage>();

function usageOf(be: Backend): Usage {
  let u = usage.get(be);
  if (u === undefined) usage.set(be, u = { buffers: 0, values: 0, finalized: 0 });
  return u;
}

/** Shared storage of tensors that view the same buffer (reshape). */
class Storage {
  refs = 1;
  /** Known contents of host-made data, until something writes in place. */
  summary: IntegerSummary | undefined;
  readonly values: number;
  constructor(readonly backend: Backend, public buffer: BackendBuffer | undefined) {
    this.values = buffer?.size ?? 0;
    const u = usageOf(backend);
    u.buffers++;
    u.values += this.values;
  }
  release(): void {
    if (--this.refs === 0 && this.buffer !== undefined) {
      const u = usageOf(this.backend);
      u.buffers--;
      u.values -= this.values;
      const b = this.buffer;
      this.buffer = undefined;
      this.summary = undefined;
      this.backend.free(b);
    }
  }
}

/**
 * One tensor's hold on its storage. The step scopes and the finalizer keep
 * this small object, never the Tensor, so they keep no Tensor alive (a
 * WeakRef per tensor would: V8 holds WeakRef targets until the job ends, and
 * a training loop that never yields a macrotask is one long job).
 */
class Hold {
  done = false;
  /** Freed by the garbage collector and counted in `finalized` (the hold stays in `tracked`). */
  countedByGc = false;
  releasedBy: string | undefined;
  constructor(readonly storage: Storage, readonly id: number) {}
  release(reason?: string): void {
    if (this.done) return;
    this.done = true;
    this.releasedBy = reason;
    tracked.delete(this.id);
    finalizer.unregister(this); // a loop that never yields a task would pile up pending finalizer cells
    this.storage.release();
  }
}

const finalizer = new FinalizationRegistry<Hold>((hold) => {
  if (hold.done) return;
  const storage = hold.storage;
  if (storage.refs === 1 && storage.buffer !== undefined) {
    usageOf(storage.backend).finalized++;
    // a step scope that later reaches this hold un-counts it: it would have freed the buffer then anyway
    hold.countedByGc = true;
  }
  hold.done = true;
  try {
    storage.release();
  } catch {
    // a backend disposed before its tensors were collected: nothing to free
  }
});

/** The open `tidy` scopes, innermost last. */
const scopes: Set<Tensor>[] = [];

/** Every live tensor that no `keep` exempts, by id (ids grow, so the map is in creation order). */
const tracked = new Map<number, Hold>();

let nextId = 1;

// set by Tensor's static block: module-private access to a tensor's storage
let storageOf: (t: Tensor) => Storage;

/**
 * An n-dimensional float32 array on a backend.
 *
 * @example
 * ```ts
 * import { tensor } from "@pixelfly/pixelfly";
 * const t = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * console.log(t.shape, t.size); // [2, 3] 6
 * console.log(await t.data()); // Float32Array(6) [1, 2, 3, 4, 5, 6]
 * t.dispose();
 * ```
 */
export class Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  /** The backend that owns the buffer. */
  readonly backend: Backend;
  /** A process-unique id (for debugging and tapes); ids grow in creation order. */
  readonly id: number = nextId++;
  /** Whether gradients flow to this tensor. */
  requiresGrad = false;
  /** The accumulated gradient, after `backward()`. */
  grad: Tensor | undefined;
  /**
   * Optimizers skip decoupled weight decay on this parameter. Layers set it
   * on biases, norm parameters and embeddings (as fly's optimizer grouping
   * does); set it yourself to exempt any other parameter.
   */
  noWeightDecay = false;
  /** The tape node that produced this tensor, when it was made by a recorded op. */
  node: TapeNode | undefined;
  #hold: Hold;

  /** Wrap a backend buffer (used by ops; most code uses the creation helpers). */
  constructor(shape: readonly number[], backend: Backend, buffer: BackendBuffer, storage?: Storage) {
    const size = checkShape("Tensor", shape);
    if (buffer === null || typeof buffer !== "object" || typeof buffer.size !== "number") {
      throw new TypeError(`Tensor: buffer must be a BackendBuffer, got ${buffer}`);
    }
    if (buffer.size < size) {
      throw new RangeError(`Tensor: buffer holds ${buffer.size} values but shape [${shape}] needs ${size}`);
    }
    this.shape = Object.freeze([...shape]);
    this.size = size;
    this.backend = backend;
    if (storage) storage.refs++;
    this.#hold = new Hold(storage ?? new Storage(backend, buffer), this.id);
    finalizer.register(this, this.#hold, this.#hold);
    tracked.set(this.id, this.#hold);
    scopes.at(-1)?.add(this);
  }

  /** The backend buffer; throws once the tensor is disposed or released. */
  get buffer(): BackendBuffer {
    const b = this.#hold.storage.buffer;
    if (b === undefined || this.#hold.done) {
      throw new Error(
        this.#hold.releasedBy === undefined
          ? `Tensor ${this.id} [${this.shape}] was disposed and cannot be used`
          : `Tensor ${this.id} [${this.shape}] was released by ${this.#hold.releasedBy}: a training step frees ` +
            `what the previous step created and nobody kept; call keep(t) on a tensor you hold across steps`,
      );
    }
    return b;
  }

  /** Whether `dispose()` was called (or a step scope released the tensor). */
  get disposed(): boolean {
    return this.#hold.done;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** A copy of the values (flushes queued work first). */
  async data(): Promise<Float32Array> {
    const buf = this.buffer;
    this.backend.flush();
    const d = await this.backend.read(buf);
    return d.length === this.size ? d : d.slice(0, this.size);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new RangeError(`item: tensor has ${this.size} elements, expected 1`);
    return (await this.data())[0];
  }

  /**
   * A copy of this tensor on another backend (a leaf: no gradient history;
   * `requiresGrad` and `noWeightDecay` are carried over).
   *
   * @example
   * ```ts
   * import { loadBackend, tensor } from "@pixelfly/pixelfly";
   * const wasm = await loadBackend("wasm");
   * const t = await tensor([1, 2]).to(wasm);
   * console.log(t.backend.name, await t.data()); // "wasm" Float32Array(2) [1, 2]
   * ```
   */
  async to(backend: Backend): Promise<Tensor> {
    if (backend === null || typeof backend !== "object" || typeof backend.upload !== "function") {
      throw new TypeError(`Tensor.to: backend must be a Backend, got ${backend}`);
    }
    const d = await this.data();
    const t = allocTensor("Tensor.to", this.shape, backend, d);
    t.requiresGrad = this.requiresGrad;
    t.noWeightDecay = this.noWeightDecay;
    return t;
  }

  /** A tensor of another shape with the same values, sharing the buffer. */
  view(shape: readonly number[]): Tensor {
    const size = checkShape("view", shape);
    if (size !== this.size) {
      throw new RangeError(
        `view: cannot view [${this.shape}] (${this.size} values) as [${shape}] (${size} values)`,
      );
    }
    return new Tensor(shape, this.backend, this.buffer, this.#hold.storage);
  }

  /** Release the buffer (shared views keep it until they are disposed too). Idempotent. */
  dispose(): void {
    if (this.#hold.done) return;
    for (const s of scopes) s.delete(this);
    this.#hold.release();
    if (this.grad && !this.grad.disposed) this.grad.dispose();
    this.grad = undefined;
    this.node = undefined;
  }

  /**
   * Run reverse-mode autograd from this scalar (or with an explicit output
   * gradient). Frees the graph afterwards, as PyTorch does: what the ops saved
   * for backward is released and a second `backward()` through the same graph
   * throws, unless `retainGraph` is set.
   */
  backward(grad?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    runBackward(this, grad, opts);
  }

  /** A short description. */
  toString(): string {
    return `Tensor(${this.id}, [${this.shape}], ${this.backend.name}${
      this.requiresGrad ? ", requiresGrad" : ""
    })`;
  }

  static {
    storageOf = (t) => t.#hold.storage;
  }
}

/**
 * The integer summary of a tensor made from host data, or undefined when its
 * values are unknown on the host (computed by an op, or written in place).
 */
export function integerSummary(t: Tensor): IntegerSummary | undefined {
  return t.requiresGrad ? undefined : storageOf(t).summary;
}

/** Forget what is known about a tensor's values: something is about to write it in place. */
export function markWritten(t: Tensor): void {
  storageOf(t).summary = undefined;
}

/**
 * The id the next tensor will get: optimizers mark their steps with it, and
 * {@link releaseCreatedBetween} frees what a step created.
 */
export function tensorWatermark(): number {
  return nextId;
}

/**
 * Dispose every live tensor with an id in [from, to) that no `keep` exempts,
 * recording `reason` so that a later use names who released it. Returns the
 * number released.
 */
export function releaseCreatedBetween(from: number, to: number, reason: string): number {
  let n = 0;
  for (const [id, hold] of tracked) {
    if (id >= to) break;
    if (id < from) continue;
    if (hold.done) {
      // collected before its step came: count it as released now
      tracked.delete(id);
      if (hold.countedByGc) usageOf(hold.storage.backend).finalized--;
      continue;
    }
    hold.release(reason); // removes it from tracked
    n++;
  }
  return n;
}

/** What tensors hold on a backend: live buffers and bytes (4 per float32 value). */
export interface MemoryInfo {
  /** The backend's name. */
  backend: string;
  /** Buffers held by live tensors (views share one). */
  buffers: number;
  /** Bytes of those buffers. */
  bytes: number;
  /**
   * Buffers the garbage collector freed that nothing else would have freed
   * by now (a collected tensor that a step scope later reaches stops counting).
   * `buffers + finalized` is what would be live had no collection run: a leak
   * check that must not depend on the collector uses it.
   */
  finalized: number;
}

/**
 * The buffers and bytes that live tensors hold on a backend (the current one
 * when omitted), for leak checks and for out-of-memory messages.
 *
 * @example
 * ```ts
 * import { memory, ones, tidy } from "@pixelfly/pixelfly";
 * const before = memory().buffers;
 * tidy(() => { ones([1000]); });
 * console.log(memory().buffers === before); // true
 * ```
 */
export function memory(backend?: Backend): MemoryInfo {
  const be = backend ?? getBackend();
  const u = usageOf(be);
  return { backend: be.name, buffers: u.buffers, bytes: u.values * 4, finalized: u.finalized };
}

/** Validate a shape and return its element count. */
export function checkShape(op: string, shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw new TypeError(`${op}: shape must be an array of integers, got ${shape}`);
  let size = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0) {
      throw new RangeError(`${op}: shape [${shape}] must hold non-negative integers, got ${d}`);
    }
    size *= d;
  }
  return size;
}

/** Options of the creation helpers. */
export interface CreateOptions {
  /** The backend (the current one when omitted). */
  backend?: Backend;
  /** Track gradients for this tensor (a leaf). */
  requiresGrad?: boolean;
}

/**
 * The one creation path: check the shape (and the data's length), allocate
 * on the backend and wrap. Memory exhaustion becomes a RangeError naming the
 * op, the bytes asked for and what is live. Host data gets an integer summary
 * (so it may serve as ids or labels). Without data the values are zeros, or unspecified with
 * `zero = false` (for an output the next kernel overwrites entirely).
 */
export function allocTensor(
  op: string,
  shape: readonly number[],
  be: Backend,
  data?: Float32Array,
  zero = true,
): Tensor {
  const size = checkShape(op, shape);
  checkBackend(op, be);
  if (data !== undefined && data.length !== size) {
    throw new RangeError(`${op}: data has ${data.length} values but shape [${shape}] needs ${size}`);
  }
  let buf: BackendBuffer;
  try {
    buf = data === undefined ? be.alloc(size, zero ? undefined : { zero: false }) : be.upload(data);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const u = usageOf(be);
    throw new RangeError(
      `${op}: out of memory on the ${be.name} backend asking for ${
        size * 4
      } bytes (shape [${shape}]) while ` +
        `${u.buffers} tensor buffers holding ${u.values * 4} bytes are live; free intermediates with ` +
        `tidy(() => ...) or dispose(), or call backward() and opt.step() so a training step releases them ` +
        `(${e.message})`,
      { cause: e },
    );
  }
  const t = new Tensor(shape, be, buf);
  if (data !== undefined) storageOf(t).summary = summarize(data);
  return t;
}

function make(
  op: string,
  data: Float32Array | undefined,
  shape: readonly number[],
  opts: CreateOptions,
): Tensor {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`${op}: options must be an object, got ${opts}`);
  }
  const t = allocTensor(op, shape, opts.backend ?? getBackend(), data);
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/**
 * A tensor from values (copied) and a shape.
 *
 * @example
 * ```ts
 * import { tensor } from "@pixelfly/pixelfly";
 * const t = tensor([[1, 2], [3, 4]].flat(), [2, 2]);
 * console.log(t.shape); // [2, 2]
 * ```
 */
export function tensor(data: ArrayLike<number>, shape?: readonly number[], opts: CreateOptions = {}): Tensor {
  if (data === null || typeof data !== "object" || typeof data.length !== "number") {
    throw new TypeError(`tensor: data must be an array or typed array of numbers, got ${data}`);
  }
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  return make("tensor", values, shape ?? [values.length], opts);
}

/**
 * A tensor of zeros.
 *
 * @example
 * ```ts
 * import { zeros } from "@pixelfly/pixelfly";
 * console.log(await zeros([2]).data()); // Float32Array(2) [0, 0]
 * ```
 */
export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return make("zeros", undefined, shape, opts);
}

/**
 * A tensor of ones.
 *
 * @example
 * ```ts
 * import { ones } from "@pixelfly/pixelfly";
 * console.log(await ones([3]).data()); // Float32Array(3) [1, 1, 1]
 * ```
 */
export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

/**
 * A tensor filled with one value.
 *
 * @example
 * ```ts
 * import { full } from "@pixelfly/pixelfly";
 * console.log(await full([2], 7).data()); // Float32Array(2) [7, 7]
 * ```
 */
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  if (typeof value !== "number") throw new TypeError(`full: value must be a number, got ${typeof value}`);
  const t = make("full", undefined, shape, opts);
  const v = Math.fround(value);
  if (v !== 0 && t.size > 0) t.backend.fill(t.buffer, { size: t.size, value: v });
  // filled from the host's value: its contents are known, as for data from the host
  storageOf(t).summary = summarize(t.size > 0 ? Float32Array.of(v) : new Float32Array(0));
  storageOf(t).summary!.size = t.size;
  return t;
}

/** Options of the random creation helpers. */
export interface RandomOptions extends CreateOptions {
  /** The seed (required: all randomness is seeded). */
  seed: number;
}

/**
 * Normal random values (mean 0, std 1 unless given), seeded.
 *
 * @example
 * ```ts
 * import { randn } from "@pixelfly/pixelfly";
 * const a = await randn([4], { seed: 1 }).data(), b = await randn([4], { seed: 1 }).data();
 * console.log(a.every((v, i) => v === b[i])); // true
 * ```
 */
export function randn(
  shape: readonly number[],
  opts: RandomOptions & { mean?: number; std?: number },
): Tensor {
  const size = hostSize("randn", shape);
  const rng = seeded("randn", opts);
  const d = new Float32Array(size);
  for (let i = 0; i < size; i++) d[i] = rng.normal(opts.mean ?? 0, opts.std ?? 1);
  return make("randn", d, shape, opts);
}

/**
 * Uniform random values in [low, high) (default [0, 1)), seeded.
 *
 * @example
 * ```ts
 * import { randu } from "@pixelfly/pixelfly";
 * const v = await randu([3], { seed: 2, low: -1, high: 1 }).data();
 * console.log(v.every((x) => x >= -1 && x < 1)); // true
 * ```
 */
export function randu(
  shape: readonly number[],
  opts: RandomOptions & { low?: number; high?: number },
): Tensor {
  const size = hostSize("randu", shape);
  const rng = seeded("randu", opts);
  const lo = opts.low ?? 0, hi = opts.high ?? 1;
  if (!(hi > lo)) throw new RangeError(`randu: high must exceed low, got low ${lo} and high ${hi}`);
  const d = new Float32Array(size);
  for (let i = 0; i < size; i++) d[i] = rng.uniform(lo, hi);
  return make("randu", d, shape, opts);
}

/** Values a tensor drawn on the host may hold (4 GiB of float32). */
const MAX_HOST_VALUES = 2 ** 30;

function hostSize(op: string, shape: readonly number[]): number {
  const size = checkShape(op, shape);
  if (size > MAX_HOST_VALUES) {
    throw new RangeError(
      `${op}: shape [${shape}] holds ${size} values, more than the ${MAX_HOST_VALUES} a tensor drawn on the host may hold`,
    );
  }
  return size;
}

function seeded(op: string, opts: RandomOptions): Rng {
  if (opts === undefined || typeof opts.seed !== "number" || !Number.isFinite(opts.seed)) {
    throw new TypeError(
      `${op}: options.seed must be a finite number (all randomness is seeded), got ${opts?.seed}`,
    );
  }
  return new Rng(opts.seed);
}

/**
 * Run `fn` and dispose every tensor it created except those it returns (in an
 * array or object, one level deep) and those marked with `keep`.
 *
 * @example
 * ```ts
 * import { ones, tidy, add } from "@pixelfly/pixelfly";
 * const a = ones([2]);
 * const c = tidy(() => {
 *   const b = add(a, a); // disposed at the end
 *   return add(b, a); // kept
 * });
 * console.log(await c.data()); // Float32Array(2) [3, 3]
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    // a step that throws must not leak what it made before the error
    for (const t of scope) t.dispose();
    throw e;
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) {
    // free what fn made before its first await, and keep its later failure from surfacing unhandled
    for (const t of scope) t.dispose();
    result.catch(() => {});
    throw new TypeError("tidy: fn must be synchronous; await outside tidy and read data after it returns");
  }
  const kept = new Set<Tensor>();
  const visit = (v: unknown) => {
    if (v instanceof Tensor) kept.add(v);
  };
  visit(result);
  if (Array.isArray(result)) result.forEach(visit);
  else if (result && typeof result === "object") Object.values(result).forEach(visit);
  const parent = scopes.at(-1);
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/**
 * Exempt tensors from the enclosing `tidy` scopes (parameters, optimizer state).
 *
 * @example
 * ```ts
 * import { keep, ones, tidy } from "@pixelfly/pixelfly";
 * let k;
 * tidy(() => { k = keep(ones([1])); });
 * console.log(k!.disposed); // false
 * ```
 */
export function keep<T extends Tensor>(t: T): T {
  if (!(t instanceof Tensor)) throw new TypeError(`keep: t must be a Tensor, got ${t}`);
  for (const s of scopes) s.delete(t);
  tracked.delete(t.id);
  return t;
}
