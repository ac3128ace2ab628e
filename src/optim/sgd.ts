/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and
 * (coupled, L2) weight decay, with PyTorch's `torch.optim.SGD` semantics.
 *
 * @module
 */
import { keep, type Tensor, zeros } from "../tensor.ts";
import type { Backend } from "../backends/types.ts";
import { checkGrad, checkInRange, checkNonNegative, collectParams, StepScope } from "./_common.ts";

/** Options of {@link SGD}. */
export interface SGDOptions {
  /** Learning rate (required; a finite number >= 0). */
  lr: number;
  /** Momentum factor, >= 0 (0: plain SGD, no momentum buffers are allocated). */
  momentum?: number;
  /** Dampening of the momentum, in [0, 1]. */
  dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient, >= 0; parameters with `noWeightDecay` get 0. */
  weightDecay?: number;
}

/**
 * SGD with PyTorch's update rule, applied in place to each parameter that has
 * a gradient (parameters whose `grad` is undefined are skipped):
 *
 * ```text
 * g = grad + weightDecay · p
 * buf = g                                      (first step)
 * buf = momentum · buf + (1 − dampening) · g   (later steps)
 * g = nesterov ? g + momentum · buf : buf      (when momentum > 0)
 * p = p − lr · g
 * ```
 *
 * The update runs on the parameter's own backend (one `sgd` kernel call per
 * parameter, no read-back, no tape). Momentum buffers are created on the
 * parameter's backend at its first step, are exempt from `tidy`, and are freed
 * by {@link SGD.dispose}. Weight decay is skipped for parameters whose
 * `noWeightDecay` flag is set.
 *
 * @example
 * ```ts
 * import { matmul, mse, SGD, tensor } from "@pixelfly/pixelfly";
 * // fit y = x·w with x (2,2), w (2,1)
 * const x = tensor([1, 2, 3, 4], [2, 2]), y = tensor([5, 11], [2, 1]);
 * const w = tensor([0, 0], [2, 1], { requiresGrad: true });
 * const opt = new SGD([w], { lr: 0.05, momentum: 0.9 });
 * for (let i = 0; i < 200; i++) {
 *   opt.zeroGrad();
 *   mse(matmul(x, w), y).backward();
 *   opt.step();
 * }
 * console.log(Array.from(await w.data(), (v) => v.toFixed(2))); // ["1.00", "2.00"]
 * opt.dispose();
 * ```
 */
export class SGD {
  #params: Tensor[];
  #lr: number;
  #momentum: number;
  #dampening: number;
  #nesterov: boolean;
  #weightDecay: number;
  /** Momentum buffers, created at a parameter's first step. */
  #buffers = new Map<Tensor, Tensor>();
  /** A one-element stand-in momentum buffer per backend when momentum is 0 (the kernel never touches it). */
  #unused = new Map<Backend, Tensor>();
  #disposed = false;
  #scope = new StepScope("SGD");

  /** Optimise `params` (each a Tensor, no duplicates). */
  constructor(params: Iterable<Tensor>, options: SGDOptions) {
    const op = "SGD";
    this.#params = collectParams(op, params);
    if (options === null || typeof options !== "object") {
      throw new TypeError(`${op}: options must be an object with at least lr, got ${options}`);
    }
    const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = options;
    this.#lr = checkNonNegative(op, "lr", lr);
    this.#momentum = checkNonNegative(op, "momentum", momentum);
    this.#dampening = checkInRange(op, "dampening", dampening, 0, 1, true);
    if (typeof nesterov !== "boolean") {
      throw new TypeError(`${op}: nesterov must be a boolean, got ${nesterov}`);
    }
    if (nesterov && (this.#momentum <= 0 || this.#dampening !== 0)) {
      throw new RangeError(
        `${op}: nesterov momentum requires momentum > 0 and dampening 0, got momentum ${this.#momentum} ` +
          `and dampening ${this.#dampening}`,
      );
    }
    this.#nesterov = nesterov;
    this.#weightDecay = checkNonNegative(op, "weightDecay", weightDecay);
  }

  /** The learning rate; set it between steps (for example from a schedule). */
  get lr(): number {
    return this.#lr;
  }
  set lr(value: number) {
    this.#lr = checkNonNegative("SGD", "lr", value);
  }

  /** The momentum factor. */
  get momentum(): number {
    return this.#momentum;
  }
  /** The dampening. */
  get dampening(): number {
    return this.#dampening;
  }
  /** Whether Nesterov momentum is used. */
  get nesterov(): boolean {
    return this.#nesterov;
  }
  /** The weight decay (L2 penalty). */
  get weightDecay(): number {
    return this.#weightDecay;
  }
  /** The parameters, in the order given. */
  get params(): readonly Tensor[] {
    return this.#params;
  }

  /**
   * Update every parameter that has a gradient, in place. Each step also
   * closes an implicit scope: tensors created between the two previous steps
   * that nobody `keep`s are released (what this iteration made stays valid
   * until the next step), so a loop without `tidy` or `dispose` holds at most
   * two iterations of tensors. Tensors made before the first step are never released.
   */
  step(): void {
    this.#check("step");
    this.#scope.step();
    for (const p of this.#params) {
      const g = p.grad;
      if (g === undefined) continue;
      checkGrad("SGD.step", p, g);
      const be = p.backend;
      let buf: Tensor;
      let first = false;
      if (this.#momentum !== 0) {
        let b = this.#buffers.get(p);
        if (b === undefined) {
          b = keep(zeros([p.size], { backend: be }));
          this.#buffers.set(p, b);
          first = true;
        }
        buf = b;
      } else {
        let u = this.#unused.get(be);
        if (u === undefined) {
          u = keep(zeros([1], { backend: be }));
          this.#unused.set(be, u);
        }
        buf = u;
      }
      be.sgd(p.buffer, g.buffer, buf.buffer, {
        size: p.size,
        lr: this.#lr,
        momentum: this.#momentum,
        dampening: this.#dampening,
        nesterov: this.#nesterov,
        weightDecay: p.noWeightDecay ? 0 : this.#weightDecay,
        first,
      });
    }
  }

  /** Drop every parameter's gradient (dispose it and set `grad` to undefined). */
  zeroGrad(): void {
    this.#check("zeroGrad");
    for (const p of this.#params) {
      p.grad?.dispose();
      p.grad = undefined;
    }
  }

  /** Free the momentum buffers. The optimizer cannot be used afterwards. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of this.#buffers.values()) t.dispose();
    for (const t of this.#unused.values()) t.dispose();
    this.#buffers.clear();
    this.#unused.clear();
  }

  #check(method: string): void {
    if (this.#disposed) throw new Error(`SGD.${method}: the optimizer was disposed`);
  }
}
