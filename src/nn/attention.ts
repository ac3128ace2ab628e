/**
 * Multi-head attention whose projections can be Pixelfly layers and whose
 * scores can keep only a flat block butterfly pattern over sequence blocks
 * (Chen, Dao et al., ICLR 2022, Section 3.2 applies the same pattern to
 * attention), with an optional causal mask; and a pre-LN transformer block.
 *
 * @module
 */
import { flatBlockButterfly } from "../masks/patterns.ts";
import { add, affine, matmul, reshape, softmax, transpose } from "../ops.ts";
import { keep, type Tensor } from "../tensor.ts";
import { LayerNorm, type LinearKind, makeLinear, MLP } from "./layers.ts";
import { checkPositiveInt, fromArray, type LayerOptions, Module, rngFor } from "./module.ts";

/** The block-sparse score pattern of {@link MultiHeadAttention}. */
export interface ScoreMaskOptions {
  /** Sequence positions per tile. */
  block: number;
  /** Butterfly grid side over the sequence tiles' grid. */
  butterflySize: number;
  /** Butterfly factors. */
  nFactors: number;
}

/** Options of {@link MultiHeadAttention}. */
export interface MultiHeadAttentionOptions extends LayerOptions {
  /** Number of heads (dividing dim). */
  heads: number;
  /** Positions attend only to themselves and earlier ones (false). */
  causal?: boolean;
  /** Q, K, V and output projections: "dense" or Pixelfly options. */
  linear?: LinearKind;
  /** Keep only a flat block butterfly pattern of the scores (dense scores when omitted). */
  scoreMask?: ScoreMaskOptions;
}

const MASKED = -1e9;

/**
 * Multi-head self-attention on (B, L, dim) inputs. Parameters `q`, `k`, `v`,
 * `o` follow PyTorch naming. Masked scores (causal, or outside the
 * butterfly pattern) get −1e9 before the softmax.
 *
 * @example
 * ```ts
 * import { MultiHeadAttention, randn } from "@pixelfly/pixelfly";
 * const att = new MultiHeadAttention(16, { heads: 4, causal: true, seed: 0 });
 * console.log(att.forward(randn([2, 8, 16], { seed: 1 })).shape); // [2, 8, 16]
 * ```
 */
export class MultiHeadAttention extends Module {
  /** Model width. */
  readonly dim: number;
  /** Number of heads. */
  readonly heads: number;
  /** Whether positions see only the past. */
  readonly causal: boolean;
  /** The butterfly pattern of the scores (dense when absent). */
  readonly scoreMask: ScoreMaskOptions | undefined;
  /** Query projection. */
  readonly q: Module;
  /** Key projection. */
  readonly k: Module;
  /** Value projection. */
  readonly v: Module;
  /** Output projection. */
  readonly o: Module;
  readonly #bias = new Map<number, Tensor | undefined>();

  /** Build the layer; see the class documentation for the options. */
  constructor(dim: number, opts: MultiHeadAttentionOptions) {
    super();
    const op = "MultiHeadAttention";
    this.dim = checkPositiveInt(op, "dim", dim);
    this.heads = checkPositiveInt(op, "heads", opts?.heads);
    if (dim % this.heads !== 0) {
      throw new RangeError(`${op}: heads must divide dim; got dim ${dim} and heads ${this.heads}`);
    }
    this.causal = opts.causal ?? false;
    this.scoreMask = opts.scoreMask;
    const rng = rngFor(opts);
    const mk = (name: string) =>
      this.child(name, makeLinear(dim, dim, opts.linear, { backend: opts.backend, seed: rng.nextUint32() }));
    this.q = mk("q");
    this.k = mk("k");
    this.v = mk("v");
    this.o = mk("o");
  }

  /** The additive (L, L) score bias for sequence length L (undefined when nothing is masked). */
  scoreBias(L: number, backend: Tensor["backend"]): Tensor | undefined {
    if (this.#bias.has(L)) return this.#bias.get(L);
    let keepAt: ((i: number, j: number) => boolean) | undefined;
    if (this.scoreMask) {
      const { block, butterflySize, nFactors } = this.scoreMask;
      const m = flatBlockButterfly({ outFeatures: L, inFeatures: L, block, butterflySize, nFactors });
      keepAt = (i, j) => m.has(Math.floor(i / block), Math.floor(j / block));
    }
    if (this.causal) {
      const prev = keepAt;
      keepAt = (i, j) => j <= i && (prev ? prev(i, j) : true);
    }
    let bias: Tensor | undefined;
    if (keepAt) {
      const d = new Float32Array(L * L);
      for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) d[i * L + j] = keepAt(i, j) ? 0 : MASKED;
      bias = keep(fromArray(d, [L * L], backend));
    }
    this.#bias.set(L, bias);
    return bias;
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    const op = "MultiHeadAttention";
    if (x?.rank !== 3 || x.shape[2] !== this.dim) {
      throw new RangeError(`${op}: x [${x?.shape}] must be (batch, length, ${this.dim})`);
    }
    const [B, L, D] = x.shape, H = this.heads, dh = D / H;
    // (B, L, D) -> (B, D, L) -> (B·H, dh, L): each head's Qᵀ, Kᵀ, Vᵀ, contiguous.
    const heads = (t: Tensor) => reshape(transpose(t), [B * H, dh, L]);
    const qt = heads(this.q.forward(x)), kt = heads(this.k.forward(x)), vt = heads(this.v.forward(x));
    let scores = affine(matmul(qt, kt, { transA: true }), 1 / Math.sqrt(dh), 0); // (B·H, L, L)
    const bias = this.scoreBias(L, x.backend);
    if (bias) scores = reshape(add(reshape(scores, [B * H, L * L]), bias), [B * H, L, L]);
    const p = softmax(scores);
    const ot = matmul(vt, p, { transB: true }); // (B·H, dh, L) = (P·V)ᵀ per head
    return this.o.forward(transpose(reshape(ot, [B, D, L])));
  }

  /** Free the parameters and the cached score masks. */
  override dispose(): void {
    super.dispose();
    for (const b of this.#bias.values()) b?.dispose();
    this.#bias.clear();
  }
}

/** Options of {@link TransformerBlock}. */
export interface TransformerBlockOptions extends MultiHeadAttentionOptions {
  /** MLP hidden width (4 × dim). */
  mlpHidden?: number;
}

/**
 * A pre-LN transformer block (GPT-2 style): `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
 *
 * @example
 * ```ts
 * import { TransformerBlock, randn } from "@pixelfly/pixelfly";
 * const blk = new TransformerBlock(16, { heads: 2, causal: true, seed: 0 });
 * console.log(blk.forward(randn([1, 4, 16], { seed: 2 })).shape); // [1, 4, 16]
 * ```
 */
export class TransformerBlock extends Module {
  /** LayerNorm before attention. */
  readonly ln1: LayerNorm;
  /** The attention. */
  readonly attn: MultiHeadAttention;
  /** LayerNorm before the MLP. */
  readonly ln2: LayerNorm;
  /** The MLP. */
  readonly mlp: MLP;

  /** Build the layer; see the class documentation for the options. */
  constructor(dim: number, opts: TransformerBlockOptions) {
    super();
    const rng = rngFor(opts);
    this.ln1 = this.child("ln1", new LayerNorm(dim, { backend: opts.backend }));
    this.attn = this.child("attn", new MultiHeadAttention(dim, { ...opts, seed: rng.nextUint32() }));
    this.ln2 = this.child("ln2", new LayerNorm(dim, { backend: opts.backend }));
    this.mlp = this.child(
      "mlp",
      new MLP(dim, {
        hidden: opts.mlpHidden ?? 4 * dim,
        linear: opts.linear,
        backend: opts.backend,
        seed: rng.nextUint32(),
      }),
    );
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    x = add(x, this.attn.forward(this.ln1.forward(x)));
    return add(x, this.mlp.forward(this.ln2.forward(x)));
  }
}
