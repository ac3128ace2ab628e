/**
 * Gradient-norm clipping without reading data back: the total norm is summed
 * on the backend and every gradient is rescaled there.
 *
 * @module
 */
import { getBackend } from "../backends/select.ts";
import type { Backend } from "../backends/types.ts";
import { markWritten, Tensor, zeros } from "../tensor.ts";

/** The gradients of `params` that exist, all on one backend, and that backend. */
function gradsOf(op: string, params: Iterable<Tensor>): { grads: Tensor[]; backend: Backend } {
  if (
    params === null || typeof params !== "object" || typeof (params as any)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(`${op}: params must be an iterable of Tensors, got ${params}`);
  }
  const grads: Tensor[] = [];
  let backend: Backend | undefined;
  let first: Tensor | undefined;
  let i = 0;
  for (const p of params) {
    if (!(p instanceof Tensor)) throw new TypeError(`${op}: params[${i}] must be a Tensor, got ${p}`);
    backend ??= p.backend;
    const g = p.grad;
    if (g !== undefined) {
      if (first !== undefined && g.backend !== first.backend) {
        throw new RangeError(
          `${op}: all gradients must live on one backend, but params[${i}] (${p}) has its gradient on ` +
            `${g.backend.name} and an earlier one (${first}) on ${first.backend.name}`,
        );
      }
      first ??= g;
      markWritten(g);
      grads.push(g);
    }
    i++;
  }
  return { grads, backend: first?.backend ?? backend ?? getBackend() };
}

/** The squared total norm of `grads` in a new (1) tensor on `be`. */
function normSquared(grads: Tensor[], be: Backend): Tensor {
  const out = zeros([1], { backend: be });
  grads.forEach((g, k) => be.sumSquares(g.buffer, out.buffer, { size: g.size, accumulate: k > 0 }));
  return out;
}

/** Turn a (1) tensor holding a squared norm into the norm, in place. */
function sqrtInPlace(t: Tensor): Tensor {
  t.backend.unary("sqrt", t.buffer, t.buffer, { size: 1 });
  return t;
}

/**
 * The total L2 norm of the gradients of `params` (those without a gradient
 * are skipped), as a one-element tensor computed on the gradients' backend:
 * nothing is read back until you `await norm.item()`. All gradients must live
 * on one backend. With no gradient at all the norm is 0.
 *
 * @example
 * ```ts
 * import { gradNorm, tensor } from "@pixelfly/pixelfly";
 * const a = tensor([0, 0], [2], { requiresGrad: true });
 * const b = tensor([0], [1], { requiresGrad: true });
 * a.grad = tensor([3, 0]);
 * b.grad = tensor([4]);
 * console.log((await gradNorm([a, b]).item()).toFixed(4)); // "5.0000"
 * ```
 */
export function gradNorm(params: Iterable<Tensor>): Tensor {
  const { grads, backend } = gradsOf("gradNorm", params);
  return sqrtInPlace(normSquared(grads, backend));
}

/**
 * Clip the gradients of `params` in place so that their total L2 norm is at
 * most `maxNorm`, as PyTorch's `clip_grad_norm_` does: every gradient is
 * multiplied by `min(1, maxNorm / (norm + 1e-6))`. Parameters without a
 * gradient are skipped; all gradients must live on one backend.
 *
 * Everything runs on the backend (`sumSquares` into one value, then
 * `clipScale` on each gradient), with no read-back. Returns the total norm
 * before clipping as a one-element tensor (see {@link gradNorm} for its
 * precision); `await norm.item()` when you want to log it.
 *
 * @example
 * ```ts
 * import { clipGradNorm, tensor } from "@pixelfly/pixelfly";
 * const w = tensor([0, 0], [2], { requiresGrad: true });
 * w.grad = tensor([3, 4]);
 * const norm = clipGradNorm([w], 1);
 * console.log((await norm.item()).toFixed(4)); // "5.0000"
 * console.log(Array.from(await w.grad.data(), (v) => v.toFixed(4))); // ["0.6000", "0.8000"]
 * ```
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): Tensor {
  const op = "clipGradNorm";
  if (typeof maxNorm !== "number" || !Number.isFinite(maxNorm) || maxNorm <= 0) {
    throw new RangeError(`${op}: maxNorm must be a positive finite number, got ${maxNorm}`);
  }
  const { grads, backend } = gradsOf(op, params);
  const normSq = normSquared(grads, backend);
  for (const g of grads) backend.clipScale(g.buffer, normSq.buffer, { size: g.size, maxNorm });
  return sqrtInPlace(normSq);
}
