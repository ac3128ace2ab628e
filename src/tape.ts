/**
 * The tape: what a recorded op leaves on its output, whether ops record now,
 * and `noGrad`. It sits below the ops and imports no code (only types), so
 * `ops.ts` records and `autograd.ts` holds the gradient rules without an
 * import circle.
 *
 * {@link TapeNode} is a discriminated union over the op name: each gradient
 * rule in `autograd.ts` receives exactly the attributes its op recorded, and
 * TypeScript checks both sides.
 *
 * @module
 */
import type { BinaryOp, BlockLayout, Broadcast, BsrSoftmaxParams, UnaryOp } from "./backends/types.ts";
import type { Tensor } from "./tensor.ts";

/** The attributes each recorded op keeps for its gradient rule, by op name. */
export interface OpAttrs {
  /** `matmul(a, b, { transA, transB })`. */
  matmul: { transA: boolean; transB: boolean };
  /** `dds(x, w, layout, { transW })`. */
  dds: { layout: BlockLayout; transW: boolean };
  /** `ddsLowRank(x, w, layout, h, u)`: `x·Wᵀ + h·uᵀ`. */
  ddsLowRank: { layout: BlockLayout };
  /** `ddsGatedLowRank(x, w, layout, v, u, a, c, bias)`; `bias` says whether a bias is the 7th input; s, l, h, g saved. */
  ddsGatedLowRank: { layout: BlockLayout; bias: boolean };
  /** `sdd(a, b, layout, { transA, transB })`. */
  sdd: { layout: BlockLayout; transA: boolean; transB: boolean };
  /** add, sub, mul, div of two tensors. */
  binary: { op: BinaryOp; bcast: Broadcast };
  /** `alpha * x + beta`. */
  affine: { alpha: number };
  /** relu, gelu, ...; the output is saved. */
  unary: { op: UnaryOp };
  /** The sum of all elements. */
  sum: Record<never, never>;
  /** Column sums. */
  sumRows: Record<never, never>;
  /** Row sums. */
  sumCols: Record<never, never>;
  /** A view in another shape. */
  reshape: Record<never, never>;
  /** Pad the last axis from k columns. */
  padLast: { k: number };
  /** Slice the last axis from n columns. */
  sliceLast: { n: number };
  /** Swap the last two axes. */
  transpose: Record<never, never>;
  /** Softmax over the last axis; the output is saved. */
  softmax: Record<never, never>;
  /** Row softmax of block-sparse scores (attention); the output is saved. */
  bsrSoftmax: Omit<BsrSoftmaxParams, "batch">;
  /** Mean cross-entropy; probabilities and labels are saved. */
  crossEntropy: Record<never, never>;
  /** Pixelfly's `(1 − g)·s + g·l + bias`, one gate per row; `bias` says whether a bias is the fourth input. */
  gatedCombine: { bias: boolean };
  /** LayerNorm; row means and reciprocal deviations are saved. */
  layerNorm: { eps: number };
  /** Row gather; the index tensor is saved. */
  gather: Record<never, never>;
}

/** The name of a recorded op: the key of its gradient rule. */
export type OpName = keyof OpAttrs;

/** The node one op leaves on its output. */
export interface TapeNodeOf<K extends OpName> {
  /** The op's name: the key of its gradient rule. */
  readonly op: K;
  /** The op's tensor inputs, in order; gradients flow to those that require them. */
  inputs: Tensor[];
  /** Tensors the rule needs besides the inputs (outputs, statistics). */
  saved: Tensor[];
  /** Non-tensor attributes (flags, sizes, layouts). */
  readonly attrs: OpAttrs[K];
  /**
   * The saved tensors that only this node owns (made by the op for its
   * backward): freed when the graph is freed, or at once when the op is not recorded.
   */
  owned: Tensor[];
  /** Set once `backward()` has freed the graph through this node. */
  freed: boolean;
}

/** What a recorded op leaves on its output for backward: a union over the op name. */
export type TapeNode = { [K in OpName]: TapeNodeOf<K> }[OpName];

let recording = true;

/**
 * Whether ops record on the tape now (false inside {@link noGrad}).
 *
 * @example
 * ```ts
 * import { isGradEnabled, noGrad } from "@pixelfly/pixelfly";
 * console.log(isGradEnabled(), noGrad(() => isGradEnabled())); // true false
 * ```
 */
export function isGradEnabled(): boolean {
  return recording;
}

/**
 * Run `fn` without recording: for evaluation and parameter updates. Ops run
 * under `noGrad` keep nothing for backward.
 *
 * @example
 * ```ts
 * import { matmul, noGrad, randn } from "@pixelfly/pixelfly";
 * const w = randn([2, 2], { seed: 1, requiresGrad: true });
 * const y = noGrad(() => matmul(w, w));
 * console.log(y.requiresGrad); // false
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const was = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = was;
  }
}

/** What an op hands to {@link record} besides its output and inputs. */
export interface RecordOptions {
  /** Tensors the rule needs besides the inputs (outputs, statistics), in the order the rule reads them. */
  saved?: Tensor[];
  /** The saved tensors the op made only for its backward: freed at once when nothing is recorded. */
  owned?: Tensor[];
}

/**
 * Record `out` as produced by `op` when recording is on and an input needs
 * gradients; otherwise free what the op made only for its backward.
 */
export function record<K extends OpName>(
  out: Tensor,
  op: K,
  inputs: Tensor[],
  attrs: OpAttrs[K],
  { saved = [], owned = [] }: RecordOptions = {},
): Tensor {
  if (recording && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    const node: TapeNodeOf<K> = { op, inputs, saved, attrs, owned, freed: false };
    out.node = node as unknown as TapeNode;
  } else {
    for (const t of owned) t.dispose();
  }
  return out;
}
