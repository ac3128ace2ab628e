/**
 * Validation and state helpers shared by the optimizers (private to src/optim).
 *
 * @module
 */
import { markWritten, releaseCreatedBetween, Tensor, tensorWatermark } from "../tensor.ts";

/** Collect and check an optimizer's parameters: Tensors, at least one, no duplicates. */
export function collectParams(op: string, params: Iterable<Tensor>): Tensor[] {
  if (
    params === null || typeof params !== "object" || typeof (params as any)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(`${op}: params must be an iterable of Tensors, got ${params}`);
  }
  const list = Array.from(params);
  if (list.length === 0) throw new RangeError(`${op}: params is empty; pass at least one parameter`);
  const seen = new Set<Tensor>();
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new TypeError(`${op}: params[${i}] must be a Tensor, got ${p}`);
    if (seen.has(p)) throw new RangeError(`${op}: params[${i}] (${p}) appears more than once`);
    seen.add(p);
  });
  list.forEach(markWritten); // the optimizer writes them in place
  return list;
}

/** A finite number >= 0 (the learning rate may be 0, as a warm-up schedule gives at step 0). */
export function checkNonNegative(op: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new RangeError(`${op}: ${name} must be a finite number >= 0, got ${v}`);
  }
  return v;
}

/** A finite number in [lo, hi) (or [lo, hi] when `closed`). */
export function checkInRange(
  op: string,
  name: string,
  v: unknown,
  lo: number,
  hi: number,
  closed = false,
): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || (closed ? v > hi : v >= hi)) {
    throw new RangeError(`${op}: ${name} must be in [${lo}, ${hi}${closed ? "]" : ")"}, got ${v}`);
  }
  return v;
}

/** Check that a parameter's gradient matches it (size and backend) before a step. */
export function checkGrad(op: string, p: Tensor, g: Tensor): void {
  if (g.size !== p.size) {
    throw new RangeError(`${op}: the gradient of ${p} has ${g.size} values but the parameter has ${p.size}`);
  }
  if (g.backend !== p.backend) {
    throw new RangeError(
      `${op}: the gradient of ${p} lives on a different backend (${g.backend.name}) than the parameter (${p.backend.name})`,
    );
  }
}

/**
 * The implicit per-step scope of an optimizer (memory without ceremony).
 *
 * Each `step()` marks the tensor ids created since the previous one; at
 * step k, what was created between steps k-2 and k-1 (the previous
 * iteration: its inputs, activations, loss) is released, unless `keep` exempts it.
 * A tensor made in one iteration is therefore valid through the next
 * `step()` (read the loss after `step()` as usual) and freed at the one
 * after; using it later throws an error naming the step that released it.
 * Nothing created before the first step is ever released (the model, the
 * data you made up front), and parameters, gradients and optimizer state
 * are kept. A loop of forward, backward, step, zeroGrad thus holds at most
 * two iterations' tensors, with no `tidy` and no `dispose`.
 */
export class StepScope {
  #name: string;
  #steps = 0;
  #prev: number | undefined;
  #last: number | undefined;

  constructor(name: string) {
    this.#name = name;
  }

  /** Close the scope of the iteration before last; called at the start of every step. */
  step(): void {
    this.#steps++;
    const now = tensorWatermark();
    if (now === this.#last) return; // nothing new since the last step (a second optimizer, or an empty step)
    if (this.#prev !== undefined && this.#last !== undefined) {
      releaseCreatedBetween(this.#prev, this.#last, `${this.#name}.step() (its step ${this.#steps})`);
    }
    this.#prev = this.#last;
    this.#last = now;
  }
}
