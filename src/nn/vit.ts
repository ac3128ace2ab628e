/**
 * ViT: a Vision Transformer classifier on pre-cut patches, with Pixelfly MLPs
 * and attention projections as fly's Pixelfly-ViT configs use (Chen, Dao et
 * al., ICLR 2022, Section 5.1), and optionally block-sparse attention.
 *
 * @module
 */
import { add, matmul, padLast, reshape, transpose } from "../ops.ts";
import type { SequenceMaskFactory } from "../masks/sequence.ts";
import { keep, Tensor } from "../tensor.ts";
import {
  _checkTransformerOptions,
  type ProjectionKinds,
  type ScoreMaskOptions,
  TransformerBlock,
} from "./attention.ts";
import { Dropout, LayerNorm, type LinearKind, makeLinear } from "./layers.ts";
import { checkPositiveInt, fromArray, type LayerOptions, Module, noDecay, rngFor } from "./module.ts";
import { allocateTransformer } from "./_budget.ts";
import type { Allocation } from "../masks/budget.ts";

/** Configuration of {@link ViT}. */
export interface ViTConfig extends LayerOptions {
  /** Patches per image (the sequence length without the class token). */
  patches: number;
  /** Values per patch (patch side² × colour channels). */
  patchDim: number;
  /** Model width. */
  dim: number;
  /** Number of transformer blocks. */
  depth: number;
  /** Attention heads per block. */
  heads: number;
  /** Number of classes. */
  classes: number;
  /** MLP hidden width (4 × dim). */
  mlpHidden?: number;
  /** The MLPs' and attention projections' linear layers: "dense" (default) or Pixelfly options. */
  linear?: LinearKind;
  /** Per-projection kinds overriding `linear` in attention. */
  projections?: ProjectionKinds;
  /** "dense" (default) or a block-sparse score layout over the tokens (options or a mask factory). */
  attention?: "dense" | ScoreMaskOptions | SequenceMaskFactory;
  /** "cls": a learned class token (default); "mean": the mean over patch tokens. */
  pool?: "cls" | "mean";
  /** Dropout on the embeddings and each residual branch (0). */
  dropout?: number;
  /**
   * A fraction of the dense blocks' compute, shared among every projection and MLP layer by
   * `allocateBudget` (the paper's Figure 1; attention scores stay dense: a few tokens make one tile);
   * then `linear` and `projections` must be left out. See {@link ViT.budgetReport}.
   */
  budget?: number;
  /** Tile edge of a budget allocation (32). */
  budgetBlock?: number;
}

/**
 * Cut (B, H, W, C) images (row-major, channels last) into (B, patches, p·p·C)
 * patch rows, patches in row-major order: the input {@link ViT} and `MlpMixer` take.
 *
 * @example
 * ```ts
 * import { toPatches } from "@pixelfly/pixelfly";
 * const img = Float32Array.from({ length: 16 }, (_, i) => i); // one 4x4 image
 * console.log(toPatches(img, { height: 4, width: 4, patch: 2 }).slice(0, 4)); // Float32Array(4) [0, 1, 4, 5]
 * ```
 */
export function toPatches(
  images: Float32Array,
  { height, width, channels = 1, patch }: { height: number; width: number; channels?: number; patch: number },
): Float32Array {
  const op = "toPatches";
  for (
    const [n, v] of [["height", height], ["width", width], ["channels", channels], ["patch", patch]] as const
  ) {
    checkPositiveInt(op, n, v);
  }
  if (height % patch !== 0 || width % patch !== 0) {
    throw new RangeError(`${op}: patch ${patch} must divide height ${height} and width ${width}`);
  }
  const per = height * width * channels;
  if (!(images instanceof Float32Array) || images.length % per !== 0) {
    throw new RangeError(
      `${op}: images must be a Float32Array of whole ${height}x${width}x${channels} images`,
    );
  }
  const B = images.length / per, ph = height / patch, pw = width / patch, pd = patch * patch * channels;
  const out = new Float32Array(images.length);
  for (let b = 0; b < B; b++) {
    for (let pi = 0; pi < ph; pi++) {
      for (let pj = 0; pj < pw; pj++) {
        const o = ((b * ph + pi) * pw + pj) * pd;
        for (let y = 0; y < patch; y++) {
          for (let x = 0; x < patch; x++) {
            for (let c = 0; c < channels; c++) {
              out[o + (y * patch + x) * channels + c] =
                images[b * per + ((pi * patch + y) * width + pj * patch + x) * channels + c];
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * A Vision Transformer: patch embedding, learned positions (plus a class
 * token, or mean pooling), `depth` pre-LN transformer blocks, LayerNorm and a
 * linear head, on (B, patches, patchDim) inputs. The class token is stored as
 * the last row of the position table (a learned token plus its learned
 * position is one learned vector).
 *
 * @example
 * ```ts
 * import { ViT, randn } from "@pixelfly/pixelfly";
 * const vit = new ViT({ patches: 16, patchDim: 49, dim: 32, depth: 1, heads: 2, classes: 10, seed: 0 });
 * console.log(vit.forward(randn([3, 16, 49], { seed: 1 })).shape); // [3, 10]
 * ```
 */
export class ViT extends Module {
  /** The configuration it was built with. */
  readonly config: Readonly<ViTConfig>;
  /** Patch embedding. */
  readonly embed: Module;
  /** Learned positions (patches, or patches + 1 with the class token last) x dim. */
  readonly pos: Tensor;
  /** The transformer blocks. */
  readonly blocks: TransformerBlock[];
  /** The final LayerNorm. */
  readonly norm: LayerNorm;
  /** The classifier. */
  readonly head: Module;
  readonly #drop: Dropout | undefined;
  readonly #pool: Tensor;
  #allocation: Allocation | undefined;

  /** With a `budget`: the allocation table and the built model's parameter count against the dense model's. */
  budgetReport(): string {
    const a = this.#allocation;
    if (!a) return "ViT: built without a budget (every layer as configured)";
    const { budget: _b, budgetBlock: _bb, ...rest } = this.config;
    const dense = new ViT({ ...rest, seed: 0 });
    const line = `built: ${this.parameterCount()} parameters (dense ${dense.parameterCount()})`;
    dense.dispose();
    return `${a.toString()}\n${line}`;
  }

  /** Build the model; see {@link ViTConfig}. */
  constructor(config: ViTConfig) {
    super();
    const op = "ViT";
    if (config === null || typeof config !== "object") throw new TypeError(`${op}: config must be an object`);
    const P = checkPositiveInt(op, "patches", config.patches);
    const patchDim = checkPositiveInt(op, "patchDim", config.patchDim);
    const dim = checkPositiveInt(op, "dim", config.dim);
    const depth = checkPositiveInt(op, "depth", config.depth);
    const classes = checkPositiveInt(op, "classes", config.classes);
    _checkTransformerOptions(op, dim, { ...config });
    const pool = config.pool ?? "cls";
    if (pool !== "cls" && pool !== "mean") {
      throw new RangeError(`${op}: pool must be "cls" or "mean", got ${pool}`);
    }
    this.config = Object.freeze({ ...config, pool });
    const rng = rngFor(config), backend = config.backend, T = pool === "cls" ? P + 1 : P;
    this.embed = this.child("embed", makeLinear(patchDim, dim, "dense", { backend, seed: rng.nextUint32() }));
    const pd = new Float32Array(T * dim);
    for (let i = 0; i < pd.length; i++) pd[i] = rng.normal(0, 0.02);
    this.pos = noDecay(this.param("pos", fromArray(pd, [T, dim], backend))); // positions do not decay (fly)
    this.#drop = config.dropout
      ? this.child("drop", new Dropout(config.dropout, { seed: rng.nextUint32() }))
      : undefined;
    const att = config.attention === "dense" ? undefined : config.attention;
    let choices: ReturnType<typeof allocateTransformer>["blocks"] | undefined;
    if (config.budget !== undefined) {
      if (config.linear !== undefined || config.projections !== undefined) {
        throw new RangeError(`${op}: budget chooses every layer; leave linear and projections out`);
      }
      const plan = allocateTransformer({
        depth,
        dim,
        hidden: config.mlpHidden ?? 4 * dim,
        budget: config.budget,
        block: config.budgetBlock ?? 32,
      });
      this.#allocation = plan.allocation;
      choices = plan.blocks;
    }
    this.blocks = [];
    for (let i = 0; i < depth; i++) {
      this.blocks.push(this.child(
        `blocks.${i}`,
        new TransformerBlock(dim, {
          heads: config.heads,
          linear: config.linear,
          projections: choices ? choices[i].projections : config.projections,
          mlpLinear: choices?.[i].mlp,
          scoreMask: att,
          mlpHidden: config.mlpHidden,
          dropout: config.dropout,
          backend,
          seed: rng.nextUint32(),
        }),
      ));
    }
    this.norm = this.child("norm", new LayerNorm(dim, { backend }));
    this.head = this.child("head", makeLinear(dim, classes, "dense", { backend, seed: rng.nextUint32() }));
    // pooling weights over the T tokens: the class token (last), or the mean of the patches
    const w = new Float32Array(T);
    if (pool === "cls") w[P] = 1;
    else w.fill(1 / P);
    this.#pool = keep(fromArray(w, [T, 1], backend));
  }

  /** Logits (B, classes) for patches (B, patches, patchDim). */
  forward(x: Tensor): Tensor {
    const { patches: P, patchDim, dim: D } = this.config;
    if (!(x instanceof Tensor) || x.rank !== 3 || x.shape[1] !== P || x.shape[2] !== patchDim) {
      throw new RangeError(`ViT: x [${x?.shape}] must be (batch, ${P}, ${patchDim})`);
    }
    const B = x.shape[0], T = this.pos.shape[0];
    let h = this.embed.forward(x); // (B, P, D)
    if (T > P) h = transpose(padLast(transpose(h), T)); // a zero token last, where the class token goes
    h = reshape(add(reshape(h, [B, T * D]), reshape(this.pos, [T * D])), [B, T, D]);
    if (this.#drop) h = this.#drop.forward(h);
    for (const b of this.blocks) h = b.forward(h);
    h = this.norm.forward(h);
    const pooled = reshape(matmul(transpose(h), this.#pool), [B, D]); // (B, D, T)·(T, 1)
    return this.head.forward(pooled);
  }

  /** Free the parameters and the pooling weights. */
  override dispose(): void {
    super.dispose();
    this.#pool.dispose();
  }
}
