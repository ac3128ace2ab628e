/**
 * The argument checks every layer, mask and op shares: one positive-integer
 * rule and one way to describe a bad value in a message.
 *
 * @module
 */

/**
 * A short description of a value for error messages: `null`, `an array`,
 * the class name of an object, or the type and value of a primitive.
 *
 * @example
 * ```ts
 * import { describeValue } from "./validate.ts";
 * console.log(describeValue(-1), describeValue([1])); // "number -1" "an array"
 * ```
 */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return (v as object).constructor?.name ?? "an object";
  if (typeof v === "function") return "a function";
  return `${typeof v} ${String(v)}`;
}

/**
 * Check that `v` is a positive integer: a `TypeError` when it is not a
 * number, a `RangeError` naming the op, the argument and the value otherwise.
 *
 * @example
 * ```ts
 * import { checkPositiveInt } from "./validate.ts";
 * console.log(checkPositiveInt("Linear", "inFeatures", 4)); // 4
 * try { checkPositiveInt("Linear", "inFeatures", 2.5); } catch (e) { console.log((e as Error).message); }
 * // Linear: inFeatures must be a positive integer, got 2.5
 * ```
 */
export function checkPositiveInt(op: string, name: string, v: unknown): number {
  if (typeof v !== "number") {
    throw new TypeError(`${op}: ${name} must be a number (a positive integer), got ${describeValue(v)}`);
  }
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`${op}: ${name} must be a positive integer, got ${v}`);
  }
  return v;
}
