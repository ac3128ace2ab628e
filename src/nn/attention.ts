/**
 * Multi-head attention on {@link scaledDotProductAttention}, whose
 * projections can be Pixelfly layers (each one separately) and whose scores
 * can be block-sparse: a flat block butterfly over sequence tiles, a local
 * band, global tokens, or any sequence mask factory (Chen, Dao et al.,
 * ICLR 2022, Section 3.2 applies the flat butterfly to attention). Only the
 * kept tiles are computed and stored. Also the pre-LN transformer block.
 *
 * @module
 */
import { _attentionT } from "../attention.ts";
import { BlockMask } from "../masks/block_mask.ts";
import { attentionMask, type SequenceMaskFactory } from "../masks/sequence.ts";
import { add, affine, matmul, reshape, softmax, transpose } from "../ops.ts";
import { Tensor } from "../tensor.ts";
import { Dropout, LayerNorm, type LinearKind, makeLinear, MLP, type MLPOptions } from "./layers.ts";
import { checkPositiveInt, fromArray, type LayerOptions, Module, rngFor } from "./module.ts";
import { checkOptions } from "../validate.ts";

/**
 * @internal Checks the options a transformer layer (`op`) shares with its blocks: heads dividing dim,
 * causal, projections, mlpLinear, mlpHidden and dropout, so a bad one is reported under `op`.
 */
export function _checkTransformerOptions(op: string, dim: number, opts: Record<string, unknown>): void {
  checkOptions(op, opts);
  const heads = checkPositiveInt(op, "heads", opts.heads);
  if (dim % heads !== 0) {
    throw new RangeError(`${op}: heads must divide dim; got dim ${dim} and heads ${heads}`);
  }
  if (opts.causal !== undefined && typeof opts.causal !== "boolean") {
    throw new TypeError(`${op}: causal must be a boolean, got ${typeof opts.causal} ${String(opts.causal)}`);
  }
  const pr = opts.projections;
  if (pr !== undefined && (pr === null || typeof pr !== "object" || Array.isArray(pr))) {
    throw new TypeError(`${op}: projections must be an object of per-projection kinds, got ${String(pr)}`);
  }
  const ml = opts.mlpLinear;
  if (ml !== undefined && (!Array.isArray(ml) || ml.length !== 2)) {
    throw new TypeError(`${op}: mlpLinear must be a pair [fc1 kind, fc2 kind], got ${String(ml)}`);
  }
  if (opts.mlpHidden !== undefined) checkPositiveInt(op, "mlpHidden", opts.mlpHidden);
  const p = opts.dropout;
  if (p !== undefined && (typeof p !== "number" || !(p >= 0 && p < 1))) {
    throw new RangeError(
      `${op}: dropout must be a number in [0, 1), got ${typeof p === "string" ? `"${p}"` : p}`,
    );
  }
}

/**
 * The block-sparse score layout of {@link MultiHeadAttention}: the union of a
 * flat block butterfly over sequence tiles, a local band and global tokens.
 */
export interface ScoreMaskOptions {
  /** Sequence positions per tile. */
  block: number;
  /** Butterfly grid side over the sequence (the tile count, or the largest power of two dividing it). */
  butterflySize?: number;
  /** Butterfly factors (0: no butterfly part). */
  nFactors?: number;
  /** Width in tiles of a local band (0: none). */
  local?: number;
  /** Global tiles (0: none). */
  global?: number;
}

/** Which of the four projections are what kind, overriding `linear` for each one named. */
export interface ProjectionKinds {
  /** Query projection. */
  q?: LinearKind;
  /** Key projection. */
  k?: LinearKind;
  /** Value projection. */
  v?: LinearKind;
  /** Output projection. */
  o?: LinearKind;
}

/** Options of {@link MultiHeadAttention}. */
export interface MultiHeadAttentionOptions extends LayerOptions {
  /** Number of heads (dividing dim). */
  heads: number;
  /** Positions attend only to themselves and earlier ones (false). */
  causal?: boolean;
  /** Q, K, V and output projections: "dense" or Pixelfly options. */
  linear?: LinearKind;
  /** Per-projection kinds (fly keeps the output projection dense: `{ o: "dense" }`). */
  projections?: ProjectionKinds;
  /**
   * Keep only these tiles of the scores: options of the butterfly + local + global layout, or a
   * factory giving the mask of a sequence length. Dense scores when omitted.
   */
  scoreMask?: ScoreMaskOptions | SequenceMaskFactory;
  /**
   * The sequence length masks are made for; shorter inputs use the top-left tiles of that mask, so a
   * position sees the same keys at every length (what cached generation needs). Made per length when
   * omitted.
   */
  context?: number;
}

/** Keys and values of earlier positions, per layer, for generation: (N, capacity, dh) each. */
export interface AttentionCache {
  /** Cached keys, (batch·heads, capacity, dh). */
  k: Tensor;
  /** Cached values, (batch·heads, capacity, dh). */
  v: Tensor;
}

/**
 * Multi-head self-attention on (B, L, dim) inputs. Parameters `q`, `k`, `v`,
 * `o` follow PyTorch naming. With `scoreMask` the scores are block-sparse:
 * only the kept tiles are computed and stored.
 *
 * @example
 * ```ts
 * import { MultiHeadAttention, randn } from "@pixelfly/pixelfly";
 * const att = new MultiHeadAttention(16, { heads: 4, causal: true, scoreMask: { block: 4, local: 1, nFactors: 1 }, seed: 0 });
 * console.log(att.forward(randn([2, 16, 16], { seed: 1 })).shape); // [2, 16, 16]
 * ```
 */
export class MultiHeadAttention extends Module {
  /** Model width. */
  readonly dim: number;
  /** Number of heads. */
  readonly heads: number;
  /** Whether positions see only the past. */
  readonly causal: boolean;
  /** The score layout (dense when absent). */
  readonly scoreMask: ScoreMaskOptions | SequenceMaskFactory | undefined;
  /** The length masks are made for (per length when absent). */
  readonly context: number | undefined;
  /** Query projection. */
  readonly q: Module;
  /** Key projection. */
  readonly k: Module;
  /** Value projection. */
  readonly v: Module;
  /** Output projection. */
  readonly o: Module;
  readonly #masks = new Map<number, BlockMask>();

  /** Build the layer; see the class documentation for the options. */
  constructor(dim: number, opts: MultiHeadAttentionOptions) {
    super();
    const op = "MultiHeadAttention";
    checkOptions(op, opts, true);
    this.dim = checkPositiveInt(op, "dim", dim);
    _checkTransformerOptions(op, dim, {
      heads: opts.heads,
      causal: opts.causal,
      projections: opts.projections,
      backend: opts.backend,
    });
    this.heads = opts.heads;
    this.causal = opts.causal ?? false;
    const sm = opts.scoreMask;
    if (sm !== undefined && typeof sm !== "function" && (sm === null || typeof sm !== "object")) {
      throw new TypeError(`${op}: scoreMask must be mask options or a function of the length, got ${sm}`);
    }
    this.scoreMask = sm;
    this.context = opts.context === undefined ? undefined : checkPositiveInt(op, "context", opts.context);
    const rng = rngFor(opts);
    const mk = (name: "q" | "k" | "v" | "o") =>
      this.child(
        name,
        makeLinear(dim, dim, opts.projections?.[name] ?? opts.linear, {
          backend: opts.backend,
          seed: rng.nextUint32(),
        }),
      );
    this.q = mk("q");
    this.k = mk("k");
    this.v = mk("v");
    this.o = mk("o");
  }

  /** The score mask for sequence length L (undefined for dense scores). */
  maskFor(L: number): BlockMask | undefined {
    const sm = this.scoreMask;
    if (sm === undefined) return undefined;
    let m = this.#masks.get(L);
    if (m) return m;
    const make = (n: number): BlockMask => {
      const made = typeof sm === "function" ? sm(n) : attentionMask(n, sm);
      if (!(made instanceof BlockMask)) {
        throw new TypeError(`MultiHeadAttention: the score mask factory returned ${made}, not a BlockMask`);
      }
      return made;
    };
    if (this.context !== undefined && L < this.context) {
      const full = this.maskFor(this.context)!, n = Math.ceil(L / full.block);
      m = BlockMask.fromFunction(n, n, full.block, (i, j) => full.has(i, j));
    } else {
      m = make(L);
    }
    this.#masks.set(L, m);
    return m;
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    const op = "MultiHeadAttention";
    if (!(x instanceof Tensor) || x.rank !== 3 || x.shape[2] !== this.dim) {
      throw new RangeError(`${op}: x [${x?.shape}] must be (batch, length, ${this.dim})`);
    }
    const [B, L, D] = x.shape, H = this.heads, dh = D / H;
    if (this.context !== undefined && L > this.context) {
      throw new RangeError(`${op}: length ${L} is longer than the context ${this.context}`);
    }
    // (B, L, D) -> (B, D, L) -> (B·H, dh, L): each head's Qᵀ, Kᵀ, Vᵀ, contiguous.
    const heads = (t: Tensor) => reshape(transpose(t), [B * H, dh, L]);
    const qt = heads(this.q.forward(x)), kt = heads(this.k.forward(x)), vt = heads(this.v.forward(x));
    const ot = _attentionT(qt, kt, vt, {
      mask: this.maskFor(L),
      causal: this.causal,
      scale: 1 / Math.sqrt(dh),
    });
    return this.o.forward(transpose(reshape(ot, [B, D, L])));
  }

  /** An empty key/value cache for `batch` sequences of up to `capacity` positions. */
  newCache(batch: number, capacity: number): AttentionCache {
    const N = batch * this.heads, dh = this.dim / this.heads, be = this.q.parameters()[0].backend;
    const z = () => fromArray(new Float32Array(N * capacity * dh), [N, capacity, dh], be);
    return { k: z(), v: z() };
  }

  /**
   * One new position per sequence: x (B, 1, dim) at position `pos`, attending to the cached positions
   * 0..pos (and, with a score mask, only to kept tiles). Writes this position's key and value into the
   * cache. O(capacity) work per call, not O(pos²). Inference only (no gradients).
   */
  step(x: Tensor, cache: AttentionCache, pos: number): Tensor {
    const [B, , D] = x.shape, H = this.heads, dh = D / H, N = B * H;
    const cap = cache.k.shape[1], be = x.backend;
    if (!Number.isInteger(pos) || pos < 0 || pos >= cap) {
      throw new RangeError(`MultiHeadAttention.step: pos ${pos} is outside the cache's ${cap} positions`);
    }
    // (B, 1, D) is already (B·H, 1, dh) head-major
    const q = reshape(this.q.forward(x), [N, 1, dh]);
    const k = this.k.forward(x), v = this.v.forward(x);
    for (let n = 0; n < N; n++) {
      const dst = (n * cap + pos) * dh;
      be.copy(k.buffer, cache.k.buffer, { size: dh, srcOffset: n * dh, dstOffset: dst });
      be.copy(v.buffer, cache.v.buffer, { size: dh, srcOffset: n * dh, dstOffset: dst });
    }
    // scores over every cached slot; slots after pos and keys outside the mask get −1e9
    const mask = this.maskFor(this.context ?? cap), bias = new Float32Array(cap);
    for (let j = 0; j < cap; j++) {
      const seen = j <= pos &&
        (mask === undefined || mask.has(Math.floor(pos / mask.block), Math.floor(j / mask.block)));
      bias[j] = seen ? 0 : -1e9;
    }
    let s = affine(matmul(q, cache.k, { transB: true }), 1 / Math.sqrt(dh), 0); // (N, 1, cap)
    s = add(reshape(s, [N, cap]), fromArray(bias, [cap], be));
    const out = matmul(reshape(softmax(s), [N, 1, cap]), cache.v); // (N, 1, dh)
    return this.o.forward(reshape(out, [B, 1, D]));
  }
}

/** Options of {@link TransformerBlock}. */
export interface TransformerBlockOptions extends MultiHeadAttentionOptions {
  /** MLP hidden width (4 × dim). */
  mlpHidden?: number;
  /** Dropout on each residual branch's output (0). */
  dropout?: number;
  /** The MLP's two layers' kinds, overriding `linear` (a budget allocation gives each layer its own). */
  mlpLinear?: [LinearKind, LinearKind];
  /** The MLP's activation: `"gelu"` (exact erf, PyTorch's `nn.GELU()`, the default), `"gelu-tanh"` or `"relu"`. */
  activation?: MLPOptions["activation"];
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
  readonly #drop: Dropout | undefined;

  /** Build the layer; see the class documentation for the options. */
  constructor(dim: number, opts: TransformerBlockOptions) {
    super();
    const op = "TransformerBlock";
    checkOptions(op, opts, true);
    checkPositiveInt(op, "dim", dim);
    _checkTransformerOptions(op, dim, { ...opts });
    const rng = rngFor(opts);
    this.ln1 = this.child("ln1", new LayerNorm(dim, { backend: opts.backend }));
    this.attn = this.child("attn", new MultiHeadAttention(dim, { ...opts, seed: rng.nextUint32() }));
    this.ln2 = this.child("ln2", new LayerNorm(dim, { backend: opts.backend }));
    this.mlp = this.child(
      "mlp",
      new MLP(dim, {
        hidden: opts.mlpHidden ?? 4 * dim,
        linear: opts.linear,
        fc1Linear: opts.mlpLinear?.[0],
        fc2Linear: opts.mlpLinear?.[1],
        activation: opts.activation,
        backend: opts.backend,
        seed: rng.nextUint32(),
      }),
    );
    this.#drop = opts.dropout
      ? this.child("drop", new Dropout(opts.dropout, { seed: rng.nextUint32() }))
      : undefined;
  }

  #branch(y: Tensor): Tensor {
    return this.#drop ? this.#drop.forward(y) : y;
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    x = add(x, this.#branch(this.attn.forward(this.ln1.forward(x))));
    return add(x, this.#branch(this.mlp.forward(this.ln2.forward(x))));
  }

  /** One cached generation step (see {@link MultiHeadAttention.step}). */
  step(x: Tensor, cache: AttentionCache, pos: number): Tensor {
    x = add(x, this.attn.step(this.ln1.forward(x), cache, pos));
    return add(x, this.mlp.forward(this.ln2.forward(x)));
  }
}
