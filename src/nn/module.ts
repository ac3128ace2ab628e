/**
 * Module: the base of every layer: named parameters, child modules,
 * train/eval mode, and named buffers (masks) that checkpoints store.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { getBackend } from "../backends/select.ts";
import { allocTensor, keep, markWritten, Tensor } from "../tensor.ts";
import { nextSeed, Rng, uniformBlocks, type UniformSink } from "../random.ts";
import { checkHostCount, checkPositiveInt } from "../validate.ts";

export { checkPositiveInt };

/** A non-trained array stored in checkpoints beside the parameters (a mask's tile bits). */
export interface NamedBuffer {
  /** Element type. */
  dtype: "U8" | "I32" | "F32";
  /** Dimensions. */
  shape: number[];
  /** Row-major values. */
  data: Uint8Array | Int32Array | Float32Array;
}

/** Options every layer takes. */
export interface LayerOptions {
  /** Seed of the initial weights (drawn from `manualSeed`'s generator when omitted). */
  seed?: number;
  /** The backend of the parameters (the current one when omitted). */
  backend?: Backend;
}

/**
 * The base class of layers. Subclasses register parameters and children in
 * their constructor and implement `forward`.
 *
 * @example
 * ```ts
 * import { Linear } from "@pixelfly/pixelfly";
 * const layer = new Linear(4, 2, { seed: 1 });
 * console.log(layer.namedParameters().map(([n, p]) => `${n} [${p.shape}]`)); // [ "weight [2,4]", "bias [2]" ]
 * ```
 */
export abstract class Module {
  /** Whether the module is in training mode (dropout active). */
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();
  readonly #buffers = new Map<string, () => NamedBuffer>();

  /** Apply the layer. */
  abstract forward(x: Tensor): Tensor;

  /** Register a trainable parameter under `name` (requiresGrad on, kept out of tidy scopes). */
  protected param(name: string, t: Tensor): Tensor {
    if (!(t instanceof Tensor)) throw new TypeError(`Module.param: ${name} must be a Tensor, got ${t}`);
    t.requiresGrad = true;
    markWritten(t); // optimizers write parameters in place
    keep(t);
    this.#params.set(name, t);
    return t;
  }

  /** Register a child module under `name` (its parameters appear as `name.param`). */
  protected child<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** Register a named buffer for checkpoints. */
  protected buffer(name: string, get: () => NamedBuffer): void {
    this.#buffers.set(name, get);
  }

  /** Every parameter, depth first. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every parameter with its PyTorch-style path (`layers.0.sparse.weight`). */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.#params) out.push([prefix + n, p]);
    for (const [n, c] of this.#children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Every named buffer (masks) with its path. */
  namedBuffers(prefix = ""): [string, NamedBuffer][] {
    const out: [string, NamedBuffer][] = [];
    for (const [n, get] of this.#buffers) out.push([prefix + n, get()]);
    for (const [n, c] of this.#children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Child modules with their names. */
  namedChildren(): [string, Module][] {
    return [...this.#children];
  }

  /** Training mode on (or off) for this module and its children. */
  train(on = true): this {
    this.training = on;
    for (const c of this.#children.values()) c.train(on);
    return this;
  }

  /** Evaluation mode (dropout off). */
  eval(): this {
    return this.train(false);
  }

  /** Number of trainable values. */
  parameterCount(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  /** Set every gradient to undefined (freeing them). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = undefined;
    }
  }

  /** Free every parameter. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}

/**
 * Exempt a parameter from weight decay and return it. Layers call it on
 * biases, normalisation parameters and embeddings, as fly's optimizer
 * grouping does (after minGPT); weights, sparse weights and low-rank factors decay.
 */
export function noDecay(t: Tensor): Tensor {
  t.noWeightDecay = true;
  return t;
}

/** An initializer's random source: the given seed or the next global one. */
export function rngFor(opts: LayerOptions | undefined): Rng {
  return new Rng(opts?.seed ?? nextSeed());
}

/** A tensor of uniform values in ±bound on the layer's backend. */
export function uniformTensor(
  shape: number[],
  bound: number,
  rng: Rng,
  backend?: Backend,
  op = "layer",
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return drawnTensor(op, shape, backend, (sink) => {
    uniformBlocks(rng, sink, { rows: 1, rowStride: 0, cols: 1, colStride: 0, len: n, lo: -bound, hi: bound });
  });
}

/**
 * A tensor of `shape` on a backend (the current one when omitted) whose values `draw` hands to the
 * sink in chunks. On the wasm backend they are written straight into the tensor's buffer (no host
 * array of the whole tensor, whose fresh pages cost a page fault each); elsewhere (a WebGPU write
 * stages a buffer per call) they are gathered on the host and uploaded once. `draw` must write every
 * element.
 */
export function drawnTensor(
  op: string,
  shape: readonly number[],
  backend: Backend | undefined,
  draw: (sink: UniformSink) => void,
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  checkHostCount(op, n);
  const be = backend ?? getBackend();
  if (be.name !== "wasm") {
    const d = new Float32Array(n);
    draw((values, offset) => d.set(values, offset));
    return allocTensor(op, shape, be, d);
  }
  const t = allocTensor(op, shape, be, undefined, false);
  try {
    const buf = t.buffer;
    draw((values, offset) => be.write(buf, values, offset));
  } catch (e) {
    t.dispose();
    throw e;
  }
  return t;
}

/**
 * A tensor holding `data` on a backend (the current one when omitted): the
 * same checks as `tensor()`, so `data` must hold exactly as many values as
 * the shape.
 *
 * @example
 * ```ts
 * import { fromArray } from "@pixelfly/pixelfly";
 * console.log(fromArray(new Float32Array([1, 2, 3, 4]), [2, 2]).shape); // [2, 2]
 * ```
 */
export function fromArray(data: Float32Array, shape: readonly number[], backend?: Backend): Tensor {
  if (!(data instanceof Float32Array)) {
    throw new TypeError(`fromArray: data must be a Float32Array, got ${data}`);
  }
  return allocTensor("fromArray", shape, backend ?? getBackend(), data);
}
