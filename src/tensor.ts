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
import { getBackend } from "./backends/select.ts";
import type { Backend, BackendBuffer } from "./backends/types.ts";
import { Rng } from "./random.ts";
import type { TapeNode } from "./autograd.ts";

/** Shared storage of tensors that view the same buffer (reshape). */
class Storage {
  refs = 1;
  constructor(readonly backend: Backend, public buffer: BackendBuffer | undefined) {}
  release(): void {
    if (--this.refs === 0 && this.buffer !== undefined) {
      this.backend.free(this.buffer);
      this.buffer = undefined;
    }
  }
}

const finalizer = new FinalizationRegistry<Storage>((s) => {
  try {
    s.release();
  } catch {
    // a backend disposed before its tensors were collected: nothing to free
  }
});

/** The open `tidy` scopes, innermost last. */
const scopes: Set<Tensor>[] = [];

let nextId = 1;

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
  /** A process-unique id (for debugging and tapes). */
  readonly id: number = nextId++;
  /** Whether gradients flow to this tensor. */
  requiresGrad = false;
  /** The accumulated gradient, after `backward()`. */
  grad: Tensor | undefined;
  /** Optimizers skip decoupled weight decay on this parameter (as the reference does for sparse weights). */
  noWeightDecay = false;
  /** The tape node that produced this tensor, when it was made by a recorded op. */
  node: TapeNode | undefined;
  #storage: Storage;

  /** Wrap a backend buffer (used by ops; most code uses the creation helpers). */
  constructor(shape: readonly number[], backend: Backend, buffer: BackendBuffer, storage?: Storage) {
    const size = checkShape("Tensor", shape);
    if (buffer.size < size) {
      throw new RangeError(`Tensor: buffer holds ${buffer.size} values but shape [${shape}] needs ${size}`);
    }
    this.shape = Object.freeze([...shape]);
    this.size = size;
    this.backend = backend;
    if (storage) storage.refs++;
    this.#storage = storage ?? new Storage(backend, buffer);
    finalizer.register(this, this.#storage, this);
    scopes.at(-1)?.add(this);
  }

  /** The backend buffer; throws once the tensor is disposed. */
  get buffer(): BackendBuffer {
    const b = this.#storage.buffer;
    if (b === undefined || this.#disposed) {
      throw new Error(`Tensor ${this.id} [${this.shape}] was disposed and cannot be used`);
    }
    return b;
  }

  #disposed = false;

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.#disposed;
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

  /** A tensor of another shape with the same values, sharing the buffer. */
  view(shape: readonly number[]): Tensor {
    const size = checkShape("view", shape);
    if (size !== this.size) {
      throw new RangeError(
        `view: cannot view [${this.shape}] (${this.size} values) as [${shape}] (${size} values)`,
      );
    }
    return new Tensor(shape, this.backend, this.buffer, this.#storage);
  }

  /** Release the buffer (shared views keep it until they are disposed too). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    finalizer.unregister(this);
    for (const s of scopes) s.delete(this);
    this.#storage.release();
    if (this.grad && !this.grad.#disposed) this.grad.dispose();
    this.grad = undefined;
    this.node = undefined;
  }

  /** Run reverse-mode autograd from this scalar (or with an explicit output gradient). */
  backward(grad?: Tensor): void {
    backwardHook(this, grad);
  }

  /** A short description. */
  toString(): string {
    return `Tensor(${this.id}, [${this.shape}], ${this.backend.name}${
      this.requiresGrad ? ", requiresGrad" : ""
    })`;
  }
}

/** Set by autograd.ts (avoids an import cycle at module evaluation). */
let backwardHook: (t: Tensor, grad?: Tensor) => void = () => {
  throw new Error("backward: autograd is not loaded");
};

/** @internal Installed by autograd.ts. */
export function _setBackwardHook(fn: (t: Tensor, grad?: Tensor) => void): void {
  backwardHook = fn;
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

function make(op: string, data: Float32Array, shape: readonly number[], opts: CreateOptions): Tensor {
  const size = checkShape(op, shape);
  if (data.length !== size) {
    throw new RangeError(`${op}: data has ${data.length} values but shape [${shape}] needs ${size}`);
  }
  const be = opts.backend ?? getBackend();
  const t = new Tensor(shape, be, be.upload(data));
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
  const size = checkShape("zeros", shape);
  const be = opts.backend ?? getBackend();
  const t = new Tensor(shape, be, be.alloc(size));
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
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
  const size = checkShape("full", shape);
  return make("full", new Float32Array(size).fill(value), shape, opts);
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
  const size = checkShape("randn", shape);
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
  const size = checkShape("randu", shape);
  const rng = seeded("randu", opts);
  const lo = opts.low ?? 0, hi = opts.high ?? 1;
  if (!(hi > lo)) throw new RangeError(`randu: high must exceed low, got low ${lo} and high ${hi}`);
  const d = new Float32Array(size);
  for (let i = 0; i < size; i++) d[i] = rng.uniform(lo, hi);
  return make("randu", d, shape, opts);
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
  for (const s of scopes) s.delete(t);
  return t;
}
