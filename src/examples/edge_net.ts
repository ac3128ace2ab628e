/**
 * The small Pixelfly classifier that `edge.ts` serves and
 * `make_edge_model.ts` trains: 28x28 images (784 pixels in [0, 1]) →
 * PixelflyLinear(784, 128) → ReLU → Linear(128, 10) logits. Its masks are
 * fixed by the options below, so a fresh model always accepts the checkpoint.
 *
 * @module
 */
import { type Backend, Linear, PixelflyLinear, ReLU, Sequential } from "../../mod.ts";

/** Image side in pixels. */
export const SIDE = 28;
/** Pixels per image (784). */
export const PIXELS: number = SIDE * SIDE;
/** Number of classes. */
export const CLASSES = 10;
/** Hidden width. */
export const HIDDEN = 128;
/** The Pixelfly layer's options: flat block butterfly of 16x16 tiles (density 0.265 on 8x49 tiles), rank 8, gated. */
export const PIXELFLY = { block: 16, butterflySize: 8, nFactors: 1, rank: 8 } as const;

/**
 * A fresh edge classifier with seeded initial weights on `backend` (the current one when omitted):
 * parameters `0.sparse.weight`, `0.low_rank.U`, ..., `2.weight`, `2.bias` and mask `0.sparse.mask`,
 * stored in the checkpoint under fly's names (`0.low_rank.lr_weight2`, `0.sparse.layout`, ...).
 *
 * @example
 * ```ts
 * import { createEdgeModel } from "./edge_net.ts";
 * import { ones } from "@pixelfly/pixelfly";
 * console.log(createEdgeModel().forward(ones([2, 784])).shape); // [2, 10]
 * ```
 */
export function createEdgeModel(
  { seed = 0, backend }: { seed?: number; backend?: Backend } = {},
): Sequential {
  return new Sequential(
    new PixelflyLinear(PIXELS, HIDDEN, { ...PIXELFLY, seed, backend }),
    new ReLU(),
    new Linear(HIDDEN, CLASSES, { seed: seed + 1, backend }),
  );
}
