/**
 * Training helpers: accuracy, arg-max, and the forward cost of a model.
 *
 * @module
 */
import { BlockSparseLinear, Linear, LowRank } from "./nn/linear.ts";
import type { Module } from "./nn/module.ts";
import type { Tensor } from "./tensor.ts";

/**
 * The row-wise arg-max of (M, N) logits, read back from the backend.
 *
 * @example
 * ```ts
 * import { argmax, tensor } from "@pixelfly/pixelfly";
 * console.log(await argmax(tensor([1, 5, 3, 0], [2, 2]))); // Int32Array(2) [1, 0]
 * ```
 */
export async function argmax(logits: Tensor): Promise<Int32Array> {
  if (logits?.rank !== 2) {
    throw new RangeError(`argmax: logits must be 2-D (M, N), got shape [${logits?.shape}]`);
  }
  const [M, N] = logits.shape, d = await logits.data(), out = new Int32Array(M);
  for (let i = 0; i < M; i++) {
    let best = 0;
    for (let j = 1; j < N; j++) if (d[i * N + j] > d[i * N + best]) best = j;
    out[i] = best;
  }
  return out;
}

/**
 * The fraction of rows whose arg-max equals the label.
 *
 * @example
 * ```ts
 * import { accuracy, tensor } from "@pixelfly/pixelfly";
 * console.log(await accuracy(tensor([1, 5, 3, 0], [2, 2]), [1, 1])); // 0.5
 * ```
 */
export async function accuracy(logits: Tensor, labels: ArrayLike<number>): Promise<number> {
  const pred = await argmax(logits);
  if (labels?.length !== pred.length) {
    throw new RangeError(`accuracy: got ${labels?.length} labels for ${pred.length} rows of logits`);
  }
  let hit = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) hit++;
  return hit / pred.length;
}

/**
 * Multiply-add FLOPs (2 per multiply-add) of one forward pass of the
 * model's linear layers per row of input: dense `2·in·out`, block-sparse
 * `2·nnz·b²`, low-rank `2·r·(in + out)`. `rowsPerExample` scales layers that
 * see several rows per example (Mixer channel mixing sees one row per patch);
 * by default every layer counts once.
 *
 * @example
 * ```ts
 * import { Linear, linearFlops } from "@pixelfly/pixelfly";
 * console.log(linearFlops(new Linear(4, 3, { seed: 1 }))); // 24
 * ```
 */
export function linearFlops(model: Module, rowsPerExample: (path: string) => number = () => 1): number {
  let total = 0;
  const walk = (m: Module, path: string) => {
    const rows = rowsPerExample(path);
    if (m instanceof Linear) total += rows * 2 * m.inFeatures * m.outFeatures;
    else if (m instanceof BlockSparseLinear) total += rows * 2 * m.mask.nnz * m.mask.block * m.mask.block;
    else if (m instanceof LowRank) total += rows * 2 * m.rank * (m.inFeatures + m.outFeatures);
    for (const [n, c] of m.namedChildren()) walk(c, path ? `${path}.${n}` : n);
  };
  walk(model, "");
  return total;
}
