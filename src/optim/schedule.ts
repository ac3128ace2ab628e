/**
 * Learning-rate schedules: plain functions from a step number to a rate.
 *
 * @module
 */

/** Options of {@link cosineSchedule}. */
export interface CosineScheduleOptions {
  /** The peak learning rate, reached at the end of the warm-up (finite, > 0). */
  baseLr: number;
  /** Steps of linear warm-up from 0 to baseLr (an integer >= 0; 0: start at baseLr). */
  warmupSteps: number;
  /** The step at which the cosine reaches minLr (an integer > warmupSteps). */
  totalSteps: number;
  /** The final learning rate, in [0, baseLr] (0). */
  minLr?: number;
}

/**
 * A cosine learning-rate schedule with linear warm-up:
 *
 * ```text
 * lr(s) = baseLr · s / warmupSteps                                  for s < warmupSteps
 * lr(s) = minLr + (baseLr − minLr) · (1 + cos(π · q)) / 2,
 *         q = (s − warmupSteps) / (totalSteps − warmupSteps)         for warmupSteps <= s <= totalSteps
 * lr(s) = minLr                                                      for s > totalSteps
 * ```
 *
 * The step is 0-based (the rate for the first step is `lr(0)`, which is 0
 * when there is a warm-up) and may be fractional (for per-epoch schedules).
 *
 * @example
 * ```ts
 * import { cosineSchedule } from "@pixelfly/pixelfly";
 * const lr = cosineSchedule({ baseLr: 0.1, warmupSteps: 10, totalSteps: 110, minLr: 0.001 });
 * console.log(lr(0), lr(5), lr(10), lr(60).toFixed(4), lr(110), lr(500)); // 0 0.05 0.1 "0.0505" 0.001 0.001
 * // with an optimizer: opt.lr = lr(step) before each opt.step()
 * ```
 */
export function cosineSchedule(options: CosineScheduleOptions): (step: number) => number {
  const op = "cosineSchedule";
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${op}: options must be an object with baseLr, warmupSteps and totalSteps, got ${options}`,
    );
  }
  const { baseLr, warmupSteps, totalSteps, minLr = 0 } = options;
  if (typeof baseLr !== "number" || !Number.isFinite(baseLr) || baseLr <= 0) {
    throw new RangeError(`${op}: baseLr must be a positive finite number, got ${baseLr}`);
  }
  if (typeof warmupSteps !== "number" || !Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`${op}: warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  }
  if (typeof totalSteps !== "number" || !Number.isInteger(totalSteps) || totalSteps <= warmupSteps) {
    throw new RangeError(
      `${op}: totalSteps must be an integer greater than warmupSteps (${warmupSteps}), got ${totalSteps}`,
    );
  }
  if (typeof minLr !== "number" || !Number.isFinite(minLr) || minLr < 0 || minLr > baseLr) {
    throw new RangeError(`${op}: minLr must be in [0, baseLr] = [0, ${baseLr}], got ${minLr}`);
  }
  const decaySteps = totalSteps - warmupSteps;
  return (step: number): number => {
    if (typeof step !== "number" || !Number.isFinite(step) || step < 0) {
      throw new RangeError(`${op}: step must be a finite number >= 0, got ${step}`);
    }
    if (step < warmupSteps) return (baseLr * step) / warmupSteps;
    if (step >= totalSteps) return minLr;
    const q = (step - warmupSteps) / decaySteps;
    return minLr + (baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * q));
  };
}
