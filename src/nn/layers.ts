/**
 * Building blocks: normalisation, activations, dropout, containers, an MLP
 * block and an embedding.
 *
 * @module
 */
import { gather, gelu, type GeluOptions, layerNorm, mul, relu } from "../ops.ts";
import type { Rng } from "../random.ts";
import type { Tensor } from "../tensor.ts";
import { BlockSparseLinear, Linear, PixelflyLinear, type PixelflyLinearOptions } from "./linear.ts";
import { checkPositiveInt, fromArray, type LayerOptions, Module, noDecay, rngFor } from "./module.ts";
import { checkOptions, hostValues } from "../validate.ts";
import { allocateLinears } from "./_budget.ts";

/**
 * LayerNorm over the last axis with learned scale (`weight`) and shift (`bias`).
 *
 * @example
 * ```ts
 * import { LayerNorm, tensor } from "@pixelfly/pixelfly";
 * const ln = new LayerNorm(2);
 * console.log(Array.from(await ln.forward(tensor([1, 3], [1, 2])).data(), Math.round)); // [-1, 1]
 * ```
 */
export class LayerNorm extends Module {
  /** Normalised features. */
  readonly features: number;
  /** Added to the variance. */
  readonly eps: number;
  /** The weight parameter. */
  readonly weight: Tensor;
  /** The bias (shift) parameter, initialised to zeros. */
  readonly bias: Tensor;

  /** Build the layer; see the class documentation for the options. */
  constructor(features: number, opts: { eps?: number } & LayerOptions = {}) {
    super();
    checkOptions("LayerNorm", opts);
    this.features = checkPositiveInt("LayerNorm", "features", features);
    this.eps = opts.eps ?? 1e-5;
    if (typeof this.eps !== "number" || !Number.isFinite(this.eps) || !(this.eps > 0)) {
      throw new RangeError(`LayerNorm: eps must be a positive finite number, got ${this.eps}`);
    }
    this.weight = this.param(
      "weight",
      fromArray(hostValues("LayerNorm", features).fill(1), [features], opts.backend),
    );
    this.bias = this.param("bias", fromArray(hostValues("LayerNorm", features), [features], opts.backend));
    this.weight.noWeightDecay = true;
    this.bias.noWeightDecay = true;
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    if (x?.shape?.at(-1) !== this.features) {
      throw new RangeError(`LayerNorm: x [${x?.shape}] must end in ${this.features} features`);
    }
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/**
 * GELU activation: exact (erf) by default, like PyTorch's `nn.GELU()` and the
 * Pixelfly reference MLPs; `new GELU({ approximate: "tanh" })` for the tanh
 * approximation (PyTorch's `nn.GELU(approximate="tanh")`, GPT-2's).
 *
 * @example
 * ```ts
 * import { GELU, tensor } from "@pixelfly/pixelfly";
 * console.log((await new GELU().forward(tensor([0])).data())[0]); // 0
 * console.log(new GELU({ approximate: "tanh" }).approximate); // "tanh"
 * ```
 */
export class GELU extends Module {
  /** `"none"` (exact erf GELU) or `"tanh"`. */
  readonly approximate: "none" | "tanh";
  /** A GELU layer; `approximate` as in {@link gelu}. */
  constructor(opts: GeluOptions = {}) {
    super();
    checkOptions("GELU", opts);
    const a = opts?.approximate ?? "none";
    if (a !== "none" && a !== "tanh") {
      throw new RangeError(`GELU: approximate must be "none" or "tanh", got ${JSON.stringify(a)}`);
    }
    this.approximate = a;
  }
  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }
}

/**
 * ReLU activation.
 *
 * @example
 * ```ts
 * import { ReLU, tensor } from "@pixelfly/pixelfly";
 * console.log(await new ReLU().forward(tensor([-1, 1])).data()); // Float32Array(2) [0, 1]
 * ```
 */
export class ReLU extends Module {
  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/**
 * Dropout with a seeded mask: in training, each element is zeroed with
 * probability p and the rest scaled by 1/(1 − p); identity in eval mode.
 *
 * @example
 * ```ts
 * import { Dropout, ones } from "@pixelfly/pixelfly";
 * const d = new Dropout(0.5, { seed: 1 });
 * const y = await d.forward(ones([1000])).data();
 * console.log(y.every((v) => v === 0 || v === 2)); // true
 * ```
 */
export class Dropout extends Module {
  /** Drop probability. */
  readonly p: number;
  readonly #rng: Rng;

  /** Build the layer; see the class documentation for the options. */
  constructor(p: number, opts: LayerOptions = {}) {
    super();
    checkOptions("Dropout", opts);
    if (typeof p !== "number" || !(p >= 0 && p < 1)) {
      throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
    }
    this.p = p;
    this.#rng = rngFor(opts);
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const keepScale = 1 / (1 - this.p), m = new Float32Array(x.size);
    for (let i = 0; i < m.length; i++) m[i] = this.#rng.uniform() < this.p ? 0 : keepScale;
    const mask = fromArray(m, [...x.shape], x.backend);
    return mul(x, mask);
  }
}

/**
 * Modules applied one after another; children are named `0`, `1`, ...
 *
 * @example
 * ```ts
 * import { Linear, ReLU, Sequential, ones } from "@pixelfly/pixelfly";
 * const net = new Sequential(new Linear(4, 8, { seed: 1 }), new ReLU(), new Linear(8, 2, { seed: 2 }));
 * console.log(net.forward(ones([3, 4])).shape, net.namedParameters()[0][0]); // [3, 2] "0.weight"
 * ```
 */
export class Sequential extends Module {
  /** The layers, in order. */
  readonly layers: Module[];

  /** Build the layer; see the class documentation for the options. */
  constructor(...layers: Module[]) {
    super();
    layers.forEach((l, i) => {
      if (!(l instanceof Module)) throw new TypeError(`Sequential: argument ${i} must be a Module, got ${l}`);
      this.child(String(i), l);
    });
    this.layers = layers;
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    for (const l of this.layers) x = l.forward(x);
    return x;
  }
}

/** How a model's linear layers are built: dense, or Pixelfly with these options. */
export type LinearKind =
  | "dense"
  | ({ kind: "pixelfly" } & PixelflyLinearOptions)
  | ({
    kind: "blocksparse";
  } & ConstructorParameters<typeof BlockSparseLinear>[2]);

/** Make a linear layer of the given kind. */
export function makeLinear(
  inFeatures: number,
  outFeatures: number,
  kind: LinearKind | undefined,
  opts: LayerOptions,
): Linear | PixelflyLinear | BlockSparseLinear {
  if (kind === undefined || kind === "dense") return new Linear(inFeatures, outFeatures, opts);
  if (kind.kind === "pixelfly") return new PixelflyLinear(inFeatures, outFeatures, { ...kind, ...opts });
  if (kind.kind === "blocksparse") {
    return new BlockSparseLinear(inFeatures, outFeatures, { ...kind, ...opts });
  }
  throw new TypeError(`makeLinear: unknown linear kind ${JSON.stringify(kind)}`);
}

/** Options of {@link MLP}. */
export interface MLPOptions extends LayerOptions {
  /** Hidden width. */
  hidden: number;
  /** Output width (= in). */
  outFeatures?: number;
  /** Linear layers: "dense" (default) or Pixelfly options. */
  linear?: LinearKind;
  /** The first layer's kind, overriding `linear` (a budget allocation gives each layer its own). */
  fc1Linear?: LinearKind;
  /** The second layer's kind, overriding `linear`. */
  fc2Linear?: LinearKind;
  /** Activation between the two layers: "gelu" (default: exact erf GELU, as PyTorch), "gelu-tanh" or "relu". */
  activation?: "gelu" | "gelu-tanh" | "relu";
  /** Dropout after the activation (0). */
  dropout?: number;
  /**
   * A compute budget, as a fraction of the dense MLP's multiply-adds: `allocateBudget` shares it between
   * `fc1` and `fc2` and picks each one's flat block butterfly and rank (the paper's Figure 1); a layer with
   * a side shorter than `budgetBlock` stays dense. `linear`, `fc1Linear` and `fc2Linear` must then be left
   * out. See {@link MLP.budgetReport}.
   */
  budget?: number;
  /** Tile edge of a budget allocation (32). */
  budgetBlock?: number;
}

/**
 * The transformer/Mixer MLP block: Linear → activation → (dropout) → Linear,
 * each linear optionally Pixelfly. Children `fc1`, `fc2`.
 *
 * @example
 * ```ts
 * import { MLP, ones } from "@pixelfly/pixelfly";
 * const mlp = new MLP(64, { hidden: 128, linear: { kind: "pixelfly", block: 8, butterflySize: 8, rank: 4 }, seed: 0 });
 * console.log(mlp.forward(ones([2, 64])).shape); // [2, 64]
 * ```
 */
export class MLP extends Module {
  /** First linear layer. */
  readonly fc1: Module;
  /** Second linear layer. */
  readonly fc2: Module;
  readonly #act: Module;
  readonly #drop: Dropout | undefined;
  readonly #report: ((built: number, dense: number) => string) | undefined;
  readonly #denseParams: number;

  /** Build the layer; see the class documentation for the options. */
  constructor(inFeatures: number, opts: MLPOptions) {
    super();
    checkOptions("MLP", opts, true);
    checkPositiveInt("MLP", "inFeatures", inFeatures);
    const hidden = checkPositiveInt("MLP", "hidden", opts?.hidden);
    const out = checkPositiveInt("MLP", "outFeatures", opts.outFeatures ?? inFeatures);
    this.#denseParams = inFeatures * hidden + hidden + hidden * out + out;
    let fc1Kind = opts.fc1Linear ?? opts.linear, fc2Kind = opts.fc2Linear ?? opts.linear;
    if (opts.budget !== undefined) {
      if (opts.linear !== undefined || opts.fc1Linear !== undefined || opts.fc2Linear !== undefined) {
        throw new RangeError("MLP: budget chooses both layers; leave linear, fc1Linear and fc2Linear out");
      }
      const plan = allocateLinears("MLP", [
        { name: "fc1", inFeatures, outFeatures: hidden },
        { name: "fc2", inFeatures: hidden, outFeatures: out },
      ], { budget: opts.budget, block: opts.budgetBlock ?? 32 });
      this.#report = plan.report;
      fc1Kind = plan.kinds.get("fc1") ?? "dense";
      fc2Kind = plan.kinds.get("fc2") ?? "dense";
    } else if (opts.budgetBlock !== undefined) {
      throw new RangeError(`MLP: budgetBlock ${opts.budgetBlock} needs a budget`);
    }
    const rng = rngFor(opts);
    const sub = { backend: opts.backend };
    this.fc1 = this.child(
      "fc1",
      makeLinear(inFeatures, hidden, fc1Kind, { ...sub, seed: rng.nextUint32() }),
    );
    this.#act = opts.activation === "relu"
      ? new ReLU()
      : new GELU({ approximate: opts.activation === "gelu-tanh" ? "tanh" : "none" });
    this.#drop = opts.dropout
      ? this.child("drop", new Dropout(opts.dropout, { seed: rng.nextUint32() }))
      : undefined;
    this.fc2 = this.child(
      "fc2",
      makeLinear(hidden, out, fc2Kind, { ...sub, seed: rng.nextUint32() }),
    );
  }

  /**
   * With a `budget`: the allocation table (what each layer got, its kept entries and cost) and the built
   * layer's parameter count against the dense MLP's.
   */
  budgetReport(): string {
    if (!this.#report) return "MLP: built without a budget (every layer as configured)";
    return this.#report(this.parameterCount(), this.#denseParams);
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    let h = this.#act.forward(this.fc1.forward(x));
    if (this.#drop) h = this.#drop.forward(h);
    return this.fc2.forward(h);
  }
}

/**
 * A table of `count` learned vectors of width `features`, looked up by integer ids.
 *
 * @example
 * ```ts
 * import { Embedding } from "@pixelfly/pixelfly";
 * const emb = new Embedding(10, 4, { seed: 0 });
 * console.log(emb.lookup([1, 2, 3]).shape); // [3, 4]
 * ```
 */
export class Embedding extends Module {
  /** The weight parameter. */
  readonly weight: Tensor;

  /** Build the layer; see the class documentation for the options. */
  constructor(count: number, features: number, opts: LayerOptions = {}) {
    super();
    checkOptions("Embedding", opts);
    checkPositiveInt("Embedding", "count", count);
    checkPositiveInt("Embedding", "features", features);
    const rng = rngFor(opts), d = hostValues("Embedding", count * features);
    for (let i = 0; i < d.length; i++) d[i] = rng.normal(0, 0.02);
    // embeddings do not decay (fly's optimizer grouping, after minGPT)
    this.weight = noDecay(this.param("weight", fromArray(d, [count, features], opts.backend)));
  }

  /** Rows for these ids (shape [...ids, features]). */
  lookup(ids: ArrayLike<number> | Tensor): Tensor {
    return gather(this.weight, ids);
  }

  /** `forward` takes a tensor of ids. */
  forward(ids: Tensor): Tensor {
    return gather(this.weight, ids);
  }
}
