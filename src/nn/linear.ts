/**
 * Linear layers: the dense baseline, the block-sparse layer, the low-rank
 * term and their Pixelfly combination (Chen, Dao et al., ICLR 2022,
 * Section 3: flat block butterfly + low-rank).
 *
 * @module
 */
import { BlockMask } from "../masks/block_mask.ts";
import { checkOptions } from "../validate.ts";
import { uniformBsr } from "../random.ts";
import { flatBlockButterfly } from "../masks/patterns.ts";
import {
  add,
  affine,
  blockSparseLinear,
  ddsGatedLowRank,
  ddsLowRank,
  gatedCombine,
  matmul,
  mul,
  padLast,
  reshape,
  sigmoid,
  sliceLast,
} from "../ops.ts";
import type { Tensor } from "../tensor.ts";
import { isGradEnabled } from "../tape.ts";
import {
  checkPositiveInt,
  drawnTensor,
  type LayerOptions,
  Module,
  noDecay,
  rngFor,
  uniformTensor,
} from "./module.ts";

function checkInput(op: string, x: Tensor, inFeatures: number): void {
  if (x === null || typeof x !== "object" || !("shape" in x)) {
    throw new TypeError(`${op}: input must be a Tensor, got ${x}`);
  }
  if (x.rank < 1 || x.shape.at(-1) !== inFeatures) {
    throw new RangeError(
      `${op}: x [${x.shape}] has ${
        x.shape.at(-1)
      } features in its last dimension but the layer takes ${inFeatures}`,
    );
  }
}

/** Options of {@link Linear}. */
export interface LinearOptions extends LayerOptions {
  /** Add a learned bias (true). */
  bias?: boolean;
}

/**
 * The dense layer `x·Wᵀ + b`, W (out, in), initialised as PyTorch does
 * (Kaiming-uniform with a = sqrt 5, i.e. ±1/sqrt(in)).
 *
 * @example
 * ```ts
 * import { Linear, ones } from "@pixelfly/pixelfly";
 * const layer = new Linear(3, 2, { seed: 0 });
 * console.log(layer.forward(ones([5, 3])).shape); // [5, 2]
 * ```
 */
export class Linear extends Module {
  /** Input features (K). */
  readonly inFeatures: number;
  /** Output features (N). */
  readonly outFeatures: number;
  /** The weight parameter. */
  readonly weight: Tensor;
  /** The bias parameter (absent when built without one). */
  readonly bias: Tensor | undefined;

  /** Build the layer; see the class documentation for the options. */
  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    checkOptions("Linear", opts);
    const op = "Linear";
    this.inFeatures = checkPositiveInt(op, "inFeatures", inFeatures);
    this.outFeatures = checkPositiveInt("Linear", "outFeatures", outFeatures);
    const rng = rngFor(opts), bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param(
      "weight",
      uniformTensor([outFeatures, inFeatures], bound, rng, opts.backend, op),
    );
    this.bias = opts.bias === false
      ? undefined
      : noDecay(this.param("bias", uniformTensor([outFeatures], bound, rng, opts.backend, op)));
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    checkInput("Linear", x, this.inFeatures);
    const y = matmul(x.rank === 1 ? reshape(x, [1, this.inFeatures]) : x, this.weight, { transB: true });
    const out = this.bias ? add(y, this.bias) : y;
    return x.rank === 1 ? reshape(out, [this.outFeatures]) : out;
  }
}

/** Options of {@link BlockSparseLinear}: a mask, or the flat block butterfly that makes one. */
export interface BlockSparseLinearOptions extends LinearOptions {
  /** The tile mask over the padded (out, in) weight; built from the butterfly options when omitted. */
  mask?: BlockMask;
  /** Tile edge (32). */
  block?: number;
  /** Butterfly grid side (16). */
  butterflySize?: number;
  /** Butterfly factors (2). */
  nFactors?: number;
  /** Dense leading rows and columns (0). */
  globalSize?: number;
  /** Channel shuffle (false). */
  shuffle?: boolean;
}

/**
 * A linear layer whose weight keeps only the tiles of a block mask, stored
 * as (nnz, block, block) in BSR order and multiplied by the block-sparse
 * kernels (forward `dds`, backward `dds` and `sdd`). Dimensions that are not
 * whole blocks are padded with zeros inside the layer.
 *
 * Initialisation: Kaiming-uniform (a = sqrt 5) on the padded dense weight,
 * every element row of block row i scaled by sqrt(blockCols / keptBlocksInRow(i)),
 * then sparsified; bias uniform in ±1/sqrt(in). That per-block-row scaling
 * is what the comment in fly's `BlockSparseLinear` intends; fly's code at HEAD
 * tiles the factors so that element row r gets block row (r mod rows)'s
 * factor, and its release commit used one global factor. The three agree on
 * pure flat butterfly masks (every block row keeps as many tiles) and differ
 * with `globalSize` or random masks, where pixelfly keeps each row's variance
 * that of the dense initialisation.
 *
 * Weight decay as in fly (`BlockSparseLinear(weight_decay=True)`): the sparse
 * weight decays, the bias does not (`noWeightDecay`).
 *
 * @example
 * ```ts
 * import { BlockSparseLinear, ones } from "@pixelfly/pixelfly";
 * const layer = new BlockSparseLinear(64, 64, { block: 8, butterflySize: 8, nFactors: 1, seed: 0 });
 * console.log(layer.mask.density, layer.forward(ones([2, 64])).shape); // 0.25 [2, 64]
 * ```
 */
export class BlockSparseLinear extends Module {
  /** Input features (K). */
  readonly inFeatures: number;
  /** Output features (N). */
  readonly outFeatures: number;
  /** The tile mask of the weight. */
  readonly mask: BlockMask;
  /** The weight parameter. */
  readonly weight: Tensor;
  /** The bias parameter (absent when built without one). */
  readonly bias: Tensor | undefined;

  /** Build the layer; see the class documentation for the options. */
  constructor(inFeatures: number, outFeatures: number, opts: BlockSparseLinearOptions = {}) {
    super();
    checkOptions("BlockSparseLinear", opts);
    const op = "BlockSparseLinear";
    this.inFeatures = checkPositiveInt(op, "inFeatures", inFeatures);
    this.outFeatures = checkPositiveInt(op, "outFeatures", outFeatures);
    let mask = opts.mask;
    if (mask === undefined) {
      mask = flatBlockButterfly({
        outFeatures,
        inFeatures,
        block: opts.block ?? 32,
        butterflySize: opts.butterflySize ?? 16,
        nFactors: opts.nFactors ?? 2,
        globalSize: opts.globalSize ?? 0,
        shuffle: opts.shuffle ?? false,
      });
    } else {
      if (!(mask instanceof BlockMask)) throw new TypeError(`${op}: mask must be a BlockMask, got ${mask}`);
      const b = mask.block;
      if (mask.rows !== Math.ceil(outFeatures / b) || mask.cols !== Math.ceil(inFeatures / b)) {
        throw new RangeError(
          `${op}: mask is ${mask.rows}x${mask.cols} tiles of ${b}, but a ${outFeatures}x${inFeatures} weight needs ` +
            `${Math.ceil(outFeatures / b)}x${Math.ceil(inFeatures / b)}`,
        );
      }
    }
    this.mask = mask;
    const rng = rngFor(opts);
    this.weight = this.param("weight", initBlockSparse(mask, rng, opts));
    this.bias = opts.bias === false ? undefined : noDecay(
      this.param("bias", uniformTensor([outFeatures], 1 / Math.sqrt(inFeatures), rng, opts.backend, op)),
    );
    this.buffer("mask", () => ({ dtype: "U8", shape: [mask.rows, mask.cols], data: mask.bits() }));
  }

  /** Apply the layer to `x`. */
  forward(x: Tensor): Tensor {
    checkInput("BlockSparseLinear", x, this.inFeatures);
    const K = this.mask.inFeatures, N = this.mask.outFeatures;
    const y = blockSparseLinear(padLast(x, K), this.weight, this.mask);
    const out = sliceLast(y, Math.min(N, this.outFeatures));
    return this.bias ? add(out, this.bias) : out;
  }
}

function initBlockSparse(mask: BlockMask, rng: ReturnType<typeof rngFor>, opts: LayerOptions): Tensor {
  const b = mask.block, K = mask.inFeatures;
  const bound = 1 / Math.sqrt(K); // Kaiming-uniform, a = sqrt(5), fan_in = padded in-features
  const layout = mask.toBSR();
  // Only the kept tiles are drawn (the same distribution as masking a dense draw, at nnz·b² draws, not N·K),
  // in the order a dense draw visits them: element row r of block row i crosses its kept tiles left to
  // right. Each block row's tiles are contiguous in BSR order, so they go to the backend in one piece.
  const rowScale = new Float64Array(mask.rows);
  for (let i = 0; i < mask.rows; i++) {
    const kept = layout.rowPtr[i + 1] - layout.rowPtr[i];
    rowScale[i] = kept > 0 ? Math.sqrt(mask.cols / kept) : 1;
  }
  return drawnTensor("BlockSparseLinear", [layout.nnz, b, b], opts.backend, (sink) => {
    uniformBsr(rng, sink, { block: b, rowPtr: layout.rowPtr, rowScale, lo: -bound, hi: bound });
  });
}

/** Options of {@link LowRank}. */
export interface LowRankOptions extends LayerOptions {
  /** An integer rank, or a fraction in (0, 1) of min(in, out). */
  rank: number;
}

/**
 * The low-rank term `y = (x·Vᵀ)·Uᵀ` with V (rank, in) and U (out, rank).
 *
 * @example
 * ```ts
 * import { LowRank, ones } from "@pixelfly/pixelfly";
 * const lr = new LowRank(16, 8, { rank: 0.5, seed: 0 });
 * console.log(lr.rank, lr.forward(ones([3, 16])).shape); // 4 [3, 8]
 * ```
 */
export class LowRank extends Module {
  /** Input features (K). */
  readonly inFeatures: number;
  /** Output features (N). */
  readonly outFeatures: number;
  /** Rank of the low-rank term. */
  readonly rank: number;
  /** Left factor (out, rank). */
  readonly U: Tensor;
  /** Right factor (rank, in). */
  readonly V: Tensor;

  /** Build the layer; see the class documentation for the options. */
  constructor(inFeatures: number, outFeatures: number, opts: LowRankOptions) {
    super();
    checkOptions("LowRank", opts, true);
    const op = "LowRank";
    this.inFeatures = checkPositiveInt(op, "inFeatures", inFeatures);
    this.outFeatures = checkPositiveInt(op, "outFeatures", outFeatures);
    const r = opts?.rank;
    if (typeof r !== "number" || !(r > 0)) {
      throw new RangeError(`${op}: rank must be a positive integer or a fraction in (0, 1), got ${r}`);
    }
    const rank = r < 1 ? Math.max(1, Math.round(r * Math.min(inFeatures, outFeatures))) : r;
    if (!Number.isInteger(rank)) throw new RangeError(`${op}: rank must be an integer when >= 1, got ${r}`);
    this.rank = rank;
    const rng = rngFor(opts);
    this.V = this.param(
      "V",
      uniformTensor([rank, inFeatures], 1 / Math.sqrt(inFeatures), rng, opts.backend, op),
    );
    this.U = this.param("U", uniformTensor([outFeatures, rank], 1 / Math.sqrt(rank), rng, opts.backend, op));
  }

  /** Apply the layer to `x`: (..., in) -> (..., out); a 1-D (in) input gives (out), as in PyTorch. */
  forward(x: Tensor): Tensor {
    checkInput("LowRank", x, this.inFeatures);
    if (x.rank === 1) return reshape(this.forward(reshape(x, [1, this.inFeatures])), [this.outFeatures]);
    return matmul(matmul(x, this.V, { transB: true }), this.U, { transB: true });
  }
}

/** Options of {@link PixelflyLinear}. */
export interface PixelflyLinearOptions extends LayerOptions {
  /** Tile edge (32). */
  block?: number;
  /** Butterfly grid side (16). */
  butterflySize?: number;
  /** Butterfly factors (2). */
  nFactors?: number;
  /** Low-rank rank, integer or fraction of min(in, out) (32); 0 drops the low-rank term and the gate. */
  rank?: number;
  /** Per-row gate `g = sigmoid(x·a + c)` (true); 0.5 otherwise. */
  gating?: boolean;
  /** Learned bias (true). */
  bias?: boolean;
  /** Dense leading rows and columns of the mask (0). */
  globalSize?: number;
  /** Channel shuffle of the mask (false). */
  shuffle?: boolean;
  /** A ready mask (for example from `pixelflyBudget`); overrides the butterfly options. */
  mask?: BlockMask;
}

/**
 * The Pixelfly layer: `(1 − g)·sparse(x) + g·lowRank(x) + bias`, the sparse
 * part on a flat block butterfly mask, `g = sigmoid(x·a + c)` per row when
 * gating, 0.5 otherwise (Chen, Dao et al., ICLR 2022, Section 3).
 *
 * @example
 * ```ts
 * import { PixelflyLinear, ones } from "@pixelfly/pixelfly";
 * const layer = new PixelflyLinear(256, 512, { seed: 0 });
 * console.log(layer.sparse.mask.density.toFixed(4), layer.lowRank!.rank); // "0.1875" 32
 * console.log(layer.forward(ones([4, 256])).shape); // [4, 512]
 * ```
 */
export class PixelflyLinear extends Module {
  /** Input features (K). */
  readonly inFeatures: number;
  /** Output features (N). */
  readonly outFeatures: number;
  /** The block-sparse part (child `sparse`). */
  readonly sparse: BlockSparseLinear;
  /** The low-rank part (child `low_rank`; absent with rank 0, as a tight budget may choose). */
  readonly lowRank: LowRank | undefined;
  /** The per-row gate (child `gate`; absent without gating). */
  readonly gate: Linear | undefined;
  /** The bias parameter (absent when built without one). */
  readonly bias: Tensor | undefined;

  /** Build the layer; see the class documentation for the options. */
  constructor(inFeatures: number, outFeatures: number, opts: PixelflyLinearOptions = {}) {
    super();
    checkOptions("PixelflyLinear", opts);
    const op = "PixelflyLinear";
    this.inFeatures = checkPositiveInt(op, "inFeatures", inFeatures);
    this.outFeatures = checkPositiveInt(op, "outFeatures", outFeatures);
    const rng = rngFor(opts);
    const seed = () => rng.nextUint32();
    const { backend } = opts;
    this.sparse = this.child(
      "sparse",
      new BlockSparseLinear(inFeatures, outFeatures, {
        mask: opts.mask,
        block: opts.block ?? 32,
        butterflySize: opts.butterflySize ?? 16,
        nFactors: opts.nFactors ?? 2,
        globalSize: opts.globalSize,
        shuffle: opts.shuffle,
        bias: false,
        seed: seed(),
        backend,
      }),
    );
    const rank = opts.rank ?? 32;
    const maxRank = Math.min(inFeatures, outFeatures);
    this.lowRank = rank === 0 ? undefined : this.child(
      "low_rank",
      new LowRank(inFeatures, outFeatures, {
        rank: rank >= 1 ? Math.min(rank, maxRank) : rank,
        seed: seed(),
        backend,
      }),
    );
    this.gate = opts.gating === false || this.lowRank === undefined
      ? undefined
      : this.child("gate", new Linear(inFeatures, 1, { seed: seed(), backend }));
    this.bias = opts.bias === false ? undefined : noDecay(
      this.param("bias", uniformTensor([outFeatures], 1 / Math.sqrt(inFeatures), rng, backend, op)),
    );
  }

  /** Apply the layer to `x`: (..., in) -> (..., out); a 1-D (in) input gives (out), as in PyTorch. */
  forward(x: Tensor): Tensor {
    checkInput("PixelflyLinear", x, this.inFeatures);
    if (x.rank === 1) return reshape(this.forward(reshape(x, [1, this.inFeatures])), [this.outFeatures]);
    if (this.lowRank === undefined) {
      const s = this.sparse.forward(x);
      return this.bias ? add(s, this.bias) : s;
    }
    if (this.gate) {
      // (1 − g)·sparse(x) + g·lowRank(x) + bias with g = sigmoid(x·a + c), one number per row
      const mask = this.sparse.mask;
      const whole = mask.inFeatures === this.inFeatures && mask.outFeatures === this.outFeatures;
      // an input that takes no gradient while training (a first layer): the fused combine below, whose
      // backward gives g's gradient in its one pass, where the commuted form needs the sparse product's
      // backward (the dds of dY and W) for it alone (MLP 784-2048-2048-10 step at batch 128: 0.90-0.91x
      // the time on 1 thread, measured interleaved, machine shared)
      const firstLayer = isGradEnabled() && !x.requiresGrad;
      const gate = this.gate, gateBias = gate.bias;
      if (whole && gateBias !== undefined && !(this.inFeatures < this.outFeatures && !firstLayer)) {
        // one op with the gate: x·Vᵀ made while the sparse kernel reads x; its backward adds dH·V + dz·a
        // inside the sparse kernel and makes dV and da in one product (block 16 on wasm)
        const rows = x.size / this.inFeatures;
        const y = ddsGatedLowRank(
          reshape(x, [rows, this.inFeatures]),
          this.sparse.weight,
          mask,
          this.lowRank.V,
          this.lowRank.U,
          gate.weight,
          gateBias,
          this.bias,
        );
        return reshape(y, [...x.shape.slice(0, -1), this.outFeatures]);
      }
      const g = sigmoid(gate.forward(x));
      if (this.inFeatures < this.outFeatures && !firstLayer) {
        // a wide output: g commutes with the products, so (1 − g) scales x before the sparse product and g
        // the rank-wide h = x·Vᵀ, and no (rows, out) tensor is scaled or kept for g's gradient (forward +
        // backward at batch 2048, one thread: 2% faster than the fused combine at 128 -> 512; the fused
        // combine is 10% faster at 512 -> 128)
        const h = mul(matmul(x, this.lowRank.V, { transB: true }), g);
        const xs = mul(x, affine(g, -1, 1));
        if (whole) {
          // one op for sparse + low-rank (block 16 on wasm: the low-rank term added inside the sparse
          // kernel, no separate pass over the (rows, out) result)
          const rows = x.size / this.inFeatures;
          const y = reshape(
            ddsLowRank(
              reshape(xs, [rows, this.inFeatures]),
              this.sparse.weight,
              mask,
              reshape(h, [rows, this.lowRank.rank]),
              this.lowRank.U,
            ),
            [...x.shape.slice(0, -1), this.outFeatures],
          );
          return this.bias ? add(y, this.bias) : y;
        }
        const y = add(this.sparse.forward(xs), matmul(h, this.lowRank.U, { transB: true }));
        return this.bias ? add(y, this.bias) : y;
      }
      // otherwise one fused pass forward and one backward (ds, dl and dg together)
      return gatedCombine(this.sparse.forward(x), this.lowRank.forward(x), g, this.bias);
    }
    const y = affine(add(this.sparse.forward(x), this.lowRank.forward(x)), 0.5, 0);
    return this.bias ? add(y, this.bias) : y;
  }

  /** Trainable values of the sparse part, low-rank part and the rest. */
  get parameterBreakdown(): { sparse: number; lowRank: number; other: number } {
    const sparse = this.sparse.parameterCount(), lowRank = this.lowRank?.parameterCount() ?? 0;
    return { sparse, lowRank, other: this.parameterCount() - sparse - lowRank };
  }
}
