/**
 * AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), with
 * PyTorch's `torch.optim.AdamW` semantics and a per-parameter weight-decay
 * opt-out.
 *
 * @module
 */
import { keep, type Tensor, zeros } from "../tensor.ts";
import { checkGrad, checkInRange, checkNonNegative, collectParams, StepScope } from "./_common.ts";

/** Options of {@link AdamW}. */
export interface AdamWOptions {
  /** Learning rate, a finite number >= 0 (1e-3). */
  lr?: number;
  /** Decay rates of the first and second moment estimates, each in [0, 1) ([0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator for numerical stability, >= 0 (1e-8). */
  eps?: number;
  /** Decoupled weight decay, >= 0 (0.01); parameters with `noWeightDecay` get 0. */
  weightDecay?: number;
}

interface AdamState {
  m: Tensor;
  v: Tensor;
  step: number;
}

/**
 * AdamW, applied in place to each parameter that has a gradient (parameters
 * whose `grad` is undefined are skipped and their step count does not
 * advance). With `t` the parameter's own 1-based step count:
 *
 * ```text
 * p = p · (1 − lr · weightDecay)
 * m = β1 · m + (1 − β1) · g
 * v = β2 · v + (1 − β2) · g²
 * p = p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + eps)
 * ```
 *
 * Parameters whose `noWeightDecay` flag is set get weight decay 0. The
 * layers set it as fly's optimizer grouping does (after minGPT): biases,
 * LayerNorm parameters and embeddings do not decay; dense weights, sparse
 * weights and low-rank factors do. The moments live on the parameter's
 * backend, are created at its first step, are exempt from `tidy`, and are
 * freed by {@link AdamW.dispose}.
 *
 * @example
 * ```ts
 * import { AdamW, matmul, mse, tensor } from "@pixelfly/pixelfly";
 * // fit y = x·w with x (2,2), w (2,1); the first step moves every weight by about lr
 * const x = tensor([2, 1, 1, 3], [2, 2]), y = tensor([4, 7], [2, 1]);
 * const w = tensor([0, 0], [2, 1], { requiresGrad: true });
 * const opt = new AdamW([w], { lr: 0.1, weightDecay: 0 });
 * mse(matmul(x, w), y).backward();
 * opt.step();
 * console.log(Array.from(await w.data(), (v) => v.toFixed(3))); // ["0.100", "0.100"]
 * for (let i = 0; i < 300; i++) {
 *   opt.zeroGrad();
 *   mse(matmul(x, w), y).backward();
 *   opt.step();
 * }
 * console.log(Array.from(await w.data(), (v) => v.toFixed(2))); // ["1.00", "2.00"]
 * opt.dispose();
 * ```
 */
export class AdamW {
  #params: Tensor[];
  #lr: number;
  #beta1: number;
  #beta2: number;
  #eps: number;
  #weightDecay: number;
  #state = new Map<Tensor, AdamState>();
  #disposed = false;
  #scope = new StepScope("AdamW");

  /** Optimise `params` (each a Tensor, no duplicates). */
  constructor(params: Iterable<Tensor>, options: AdamWOptions = {}) {
    const op = "AdamW";
    this.#params = collectParams(op, params);
    if (options === null || typeof options !== "object") {
      throw new TypeError(`${op}: options must be an object, got ${options}`);
    }
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01 } = options;
    this.#lr = checkNonNegative(op, "lr", lr);
    if (!Array.isArray(betas) || betas.length !== 2) {
      throw new TypeError(`${op}: betas must be an array of two numbers, got ${betas}`);
    }
    this.#beta1 = checkInRange(op, "betas[0]", betas[0], 0, 1);
    this.#beta2 = checkInRange(op, "betas[1]", betas[1], 0, 1);
    this.#eps = checkNonNegative(op, "eps", eps);
    this.#weightDecay = checkNonNegative(op, "weightDecay", weightDecay);
  }

  /** The learning rate; set it between steps (for example from a schedule). */
  get lr(): number {
    return this.#lr;
  }
  set lr(value: number) {
    this.#lr = checkNonNegative("AdamW", "lr", value);
  }

  /** The moment decay rates [β1, β2]. */
  get betas(): readonly [number, number] {
    return [this.#beta1, this.#beta2];
  }
  /** The denominator's stabiliser. */
  get eps(): number {
    return this.#eps;
  }
  /** The decoupled weight decay. */
  get weightDecay(): number {
    return this.#weightDecay;
  }
  /** The parameters, in the order given. */
  get params(): readonly Tensor[] {
    return this.#params;
  }

  /** How many steps `param` has taken (0 before its first). */
  stepCount(param: Tensor): number {
    return this.#state.get(param)?.step ?? 0;
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
      checkGrad("AdamW.step", p, g);
      const be = p.backend;
      let s = this.#state.get(p);
      if (s === undefined) {
        s = { m: keep(zeros([p.size], { backend: be })), v: keep(zeros([p.size], { backend: be })), step: 0 };
        this.#state.set(p, s);
      }
      s.step++;
      be.adamw(p.buffer, g.buffer, s.m.buffer, s.v.buffer, {
        size: p.size,
        lr: this.#lr,
        beta1: this.#beta1,
        beta2: this.#beta2,
        eps: this.#eps,
        weightDecay: p.noWeightDecay ? 0 : this.#weightDecay,
        step: s.step,
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

  /** Free the moment estimates. The optimizer cannot be used afterwards. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const s of this.#state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.#state.clear();
  }

  #check(method: string): void {
    if (this.#disposed) throw new Error(`AdamW.${method}: the optimizer was disposed`);
  }
}
