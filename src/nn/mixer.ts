/**
 * MLP-Mixer (Tolstikhin et al., 2021) with optionally Pixelfly token- and
 * channel-mixing MLPs, the model the Pixelfly paper trains on ImageNet
 * (Chen, Dao et al., ICLR 2022, Section 5.1).
 *
 * @module
 */
import { checkOptions } from "../validate.ts";
import { add, affine, reshape, sumCols, transpose } from "../ops.ts";
import type { Tensor } from "../tensor.ts";
import { LayerNorm, type LinearKind, makeLinear, MLP } from "./layers.ts";
import { allocateLinears, type BudgetLinear } from "./_budget.ts";
import { checkPositiveInt, type LayerOptions, Module, rngFor } from "./module.ts";

/** Options of {@link MixerBlock}. */
export interface MixerBlockOptions extends LayerOptions {
  /** Hidden width of the token-mixing MLP. */
  tokenHidden: number;
  /** Hidden width of the channel-mixing MLP. */
  channelHidden: number;
  /** Linear layers of the token-mixing MLP ("dense" or Pixelfly options). */
  tokenLinear?: LinearKind;
  /** Linear layers of the channel-mixing MLP. */
  channelLinear?: LinearKind;
  /** The token-mixing MLP's two layers' kinds, overriding `tokenLinear` (a budget allocation gives each layer its own). */
  tokenMlpLinear?: [LinearKind, LinearKind];
  /** The channel-mixing MLP's two layers' kinds, overriding `channelLinear`. */
  channelMlpLinear?: [LinearKind, LinearKind];
}

/**
 * One Mixer block on (B, patches, channels): token mixing across patches,
 * then channel mixing, each pre-LN with a residual. Both MLPs use the exact
 * (erf) GELU, as PyTorch's `nn.GELU()` and timm's Mixer do; LayerNorm eps is
 * 1e-5 (timm's Mixer uses 1e-6).
 *
 * @example
 * ```ts
 * import { MixerBlock, randn } from "@pixelfly/pixelfly";
 * const blk = new MixerBlock(16, 32, { tokenHidden: 32, channelHidden: 64, seed: 0 });
 * console.log(blk.forward(randn([2, 16, 32], { seed: 1 })).shape); // [2, 16, 32]
 * ```
 */
export class MixerBlock extends Module {
  /** Patches (tokens) per example. */
  readonly patches: number;
  /** Channels per patch. */
  readonly channels: number;
  /** LayerNorm before token mixing. */
  readonly norm1: LayerNorm;
  /** The token-mixing MLP (child `token_mixing`). */
  readonly tokenMixing: MLP;
  /** LayerNorm before channel mixing. */
  readonly norm2: LayerNorm;
  /** The channel-mixing MLP (child `channel_mixing`). */
  readonly channelMixing: MLP;

  /** Build the layer; see the class documentation for the options. */
  constructor(patches: number, channels: number, opts: MixerBlockOptions) {
    super();
    checkOptions("MixerBlock", opts, true);
    this.patches = checkPositiveInt("MixerBlock", "patches", patches);
    this.channels = checkPositiveInt("MixerBlock", "channels", channels);
    checkPositiveInt("MixerBlock", "tokenHidden", opts?.tokenHidden);
    checkPositiveInt("MixerBlock", "channelHidden", opts.channelHidden);
    const rng = rngFor(opts), backend = opts.backend;
    this.norm1 = this.child("norm1", new LayerNorm(channels, { backend }));
    this.tokenMixing = this.child(
      "token_mixing",
      new MLP(patches, {
        hidden: opts.tokenHidden,
        ...mlpKinds("MixerBlock", "tokenMlpLinear", opts.tokenMlpLinear, opts.tokenLinear),
        backend,
        seed: rng.nextUint32(),
      }),
    );
    this.norm2 = this.child("norm2", new LayerNorm(channels, { backend }));
    this.channelMixing = this.child(
      "channel_mixing",
      new MLP(channels, {
        hidden: opts.channelHidden,
        ...mlpKinds("MixerBlock", "channelMlpLinear", opts.channelMlpLinear, opts.channelLinear),
        backend,
        seed: rng.nextUint32(),
      }),
    );
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    if (x?.rank !== 3 || x.shape[1] !== this.patches || x.shape[2] !== this.channels) {
      throw new RangeError(`MixerBlock: x [${x?.shape}] must be (batch, ${this.patches}, ${this.channels})`);
    }
    x = add(x, transpose(this.tokenMixing.forward(transpose(this.norm1.forward(x)))));
    return add(x, this.channelMixing.forward(this.norm2.forward(x)));
  }
}

/** An MLP's layer kinds: a pair for fc1 and fc2, or one kind for both. */
function mlpKinds(
  op: string,
  name: string,
  pair: [LinearKind, LinearKind] | undefined,
  both: LinearKind | undefined,
): { linear?: LinearKind; fc1Linear?: LinearKind; fc2Linear?: LinearKind } {
  if (pair === undefined) return { linear: both };
  if (!Array.isArray(pair) || pair.length !== 2) {
    throw new TypeError(`${op}: ${name} must be a pair of linear kinds [fc1, fc2], got ${String(pair)}`);
  }
  return { fc1Linear: pair[0], fc2Linear: pair[1] };
}

/** Options of {@link MlpMixer}. */
export interface MlpMixerOptions extends LayerOptions {
  /** Number of patches per example. */
  patches: number;
  /** Values per patch (patch side² × colour channels). */
  patchDim: number;
  /** Hidden channels. */
  channels: number;
  /** Mixer blocks. */
  depth: number;
  /** Output classes. */
  classes: number;
  /** Token-mixing hidden width (floor(channels / 2), at least 1). */
  tokenHidden?: number;
  /** Channel-mixing hidden width (4 × channels). */
  channelHidden?: number;
  /** Linear layers of every MLP: "dense" or Pixelfly options. */
  linear?: LinearKind;
  /** Linear layers of the token-mixing MLPs only (defaults to `linear`). */
  tokenLinear?: LinearKind;
  /**
   * A compute budget, as a fraction of the dense Mixer blocks' multiply-adds per example: `allocateBudget`
   * shares it between the blocks' token- and channel-mixing layers (a token-mixing layer runs once per
   * channel, a channel-mixing one once per patch) and picks each one's flat block butterfly and rank (the
   * paper's Figure 1). Layers with a side shorter than `budgetBlock` (token mixing over few patches) stay
   * dense, as do the stem and the head. `linear` and `tokenLinear` must then be left out. See
   * {@link MlpMixer.budgetReport}.
   */
  budget?: number;
  /** Tile edge of a budget allocation (32). */
  budgetBlock?: number;
}

/**
 * An MLP-Mixer classifier on pre-cut patches (B, patches, patchDim): patch
 * embedding, `depth` Mixer blocks, LayerNorm, mean over patches, head.
 *
 * @example
 * ```ts
 * import { MlpMixer, randn } from "@pixelfly/pixelfly";
 * const net = new MlpMixer({ patches: 16, patchDim: 49, channels: 32, depth: 2, classes: 10, seed: 0 });
 * console.log(net.forward(randn([3, 16, 49], { seed: 1 })).shape); // [3, 10]
 * ```
 */
export class MlpMixer extends Module {
  /** Patch embedding. */
  readonly stem: Module;
  /** The Mixer blocks. */
  readonly blocks: MixerBlock[];
  /** Final LayerNorm. */
  readonly norm: LayerNorm;
  /** Classifier head. */
  readonly head: Module;
  readonly #patches: number;
  readonly #channels: number;
  readonly #opts: MlpMixerOptions;
  #report: ((built: number, dense: number) => string) | undefined;

  /**
   * With a `budget`: the allocation table (what each layer got, its kept entries and cost per example)
   * and the built model's parameter count against the dense model's.
   */
  budgetReport(): string {
    if (!this.#report) return "MlpMixer: built without a budget (every layer as configured)";
    const { budget: _b, budgetBlock: _bb, ...rest } = this.#opts;
    const dense = new MlpMixer({ ...rest, seed: 0 });
    const n = dense.parameterCount();
    dense.dispose();
    return this.#report(this.parameterCount(), n);
  }

  /** Build the layer; see the class documentation for the options. */
  constructor(opts: MlpMixerOptions) {
    super();
    checkOptions("MlpMixer", opts, true);
    const op = "MlpMixer";
    const patches = checkPositiveInt(op, "patches", opts?.patches);
    const channels = checkPositiveInt(op, "channels", opts.channels);
    checkPositiveInt(op, "patchDim", opts.patchDim);
    checkPositiveInt(op, "depth", opts.depth);
    checkPositiveInt(op, "classes", opts.classes);
    const tokenHidden = checkPositiveInt(
      op,
      "tokenHidden",
      opts.tokenHidden ?? Math.max(1, Math.floor(channels / 2)),
    );
    const channelHidden = checkPositiveInt(op, "channelHidden", opts.channelHidden ?? 4 * channels);
    this.#patches = patches;
    this.#channels = channels;
    this.#opts = { ...opts };
    const depth = opts.depth;
    let kinds: Map<string, LinearKind> | undefined;
    if (opts.budget !== undefined) {
      if (opts.linear !== undefined || opts.tokenLinear !== undefined) {
        throw new RangeError(`${op}: budget chooses every layer; leave linear and tokenLinear out`);
      }
      const layers: BudgetLinear[] = [];
      for (let i = 0; i < depth; i++) {
        const t = `blocks.${i}.token_mixing`, c = `blocks.${i}.channel_mixing`;
        layers.push(
          { name: `${t}.fc1`, inFeatures: patches, outFeatures: tokenHidden, uses: channels },
          { name: `${t}.fc2`, inFeatures: tokenHidden, outFeatures: patches, uses: channels },
          { name: `${c}.fc1`, inFeatures: channels, outFeatures: channelHidden, uses: patches },
          { name: `${c}.fc2`, inFeatures: channelHidden, outFeatures: channels, uses: patches },
        );
      }
      const plan = allocateLinears(op, layers, {
        budget: opts.budget,
        block: opts.budgetBlock ?? 32,
        unit: "example",
      });
      this.#report = plan.report;
      kinds = plan.kinds;
    } else if (opts.budgetBlock !== undefined) {
      throw new RangeError(`${op}: budgetBlock ${opts.budgetBlock} needs a budget`);
    }
    const pair = (path: string): [LinearKind, LinearKind] | undefined =>
      kinds && [kinds.get(`${path}.fc1`) ?? "dense", kinds.get(`${path}.fc2`) ?? "dense"];
    const rng = rngFor(opts), backend = opts.backend;
    this.stem = this.child(
      "stem",
      makeLinear(opts.patchDim, channels, "dense", { backend, seed: rng.nextUint32() }),
    );
    this.blocks = [];
    for (let i = 0; i < depth; i++) {
      this.blocks.push(this.child(
        `blocks.${i}`,
        new MixerBlock(patches, channels, {
          tokenHidden,
          channelHidden,
          tokenLinear: opts.tokenLinear ?? opts.linear,
          channelLinear: opts.linear,
          tokenMlpLinear: pair(`blocks.${i}.token_mixing`),
          channelMlpLinear: pair(`blocks.${i}.channel_mixing`),
          backend,
          seed: rng.nextUint32(),
        }),
      ));
    }
    this.norm = this.child("norm", new LayerNorm(channels, { backend }));
    this.head = this.child(
      "head",
      makeLinear(channels, opts.classes, "dense", { backend, seed: rng.nextUint32() }),
    );
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    let h = this.stem.forward(x);
    for (const b of this.blocks) h = b.forward(h);
    h = this.norm.forward(h);
    const B = h.shape[0];
    // mean over patches: (B, P, C) -> (B, C, P) -> row sums / P
    const pooled = affine(
      sumCols(reshape(transpose(h), [B * this.#channels, this.#patches])),
      1 / this.#patches,
      0,
    );
    return this.head.forward(reshape(pooled, [B, this.#channels]));
  }
}
