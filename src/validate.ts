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
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return (v as object).constructor?.name ?? "an object";
  if (typeof v === "function") return "a function";
  return `${typeof v} ${String(v)}`;
}

/**
 * The largest size (features, heads, tiles, counts) a layer or mask takes:
 * 2^24, the last integer float32 holds exactly (ids and labels travel as float32).
 */
export const MAX_SIZE = 2 ** 24;

/**
 * Check that `v` is a positive integer at most {@link MAX_SIZE}: a
 * `TypeError` when it is not a number, a `RangeError` naming the op, the
 * argument and the value otherwise.
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
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${op}: ${name} must be a positive integer, got ${v}`);
  }
  if (v > MAX_SIZE) {
    throw new RangeError(`${op}: ${name} must be a positive integer at most ${MAX_SIZE} (2^24), got ${v}`);
  }
  return v;
}

/** The most values a host-side array of a layer or creation helper may hold (4 GiB of float32). */
export const MAX_HOST_VALUES = 2 ** 30;

/**
 * A zeroed Float32Array of `n` values for `op`, or a RangeError naming the op
 * when `n` is beyond what the host should allocate (instead of the engine's
 * bare "Array buffer allocation failed").
 *
 * @example
 * ```ts
 * import { hostValues } from "./validate.ts";
 * console.log(hostValues("Linear", 6).length); // 6
 * ```
 */
export function hostValues(op: string, n: number): Float32Array {
  checkHostCount(op, n);
  return new Float32Array(n);
}

/**
 * A RangeError naming the op when `n` values are beyond what a layer may draw (as {@link hostValues}).
 *
 * @example
 * ```ts
 * import { checkHostCount } from "./validate.ts";
 * checkHostCount("Linear", 6); // fine
 * ```
 */
export function checkHostCount(op: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_HOST_VALUES) {
    throw new RangeError(
      `${op}: ${n} values are more than the ${MAX_HOST_VALUES} a layer may draw on the host`,
    );
  }
}

/**
 * Check that an options argument is an object (or omitted), naming the op, and that its `backend`
 * field, when given, is a Backend (every layer's options may carry one).
 *
 * @example
 * ```ts
 * import { checkOptions } from "./validate.ts";
 * checkOptions("Linear", { seed: 1 }); // fine
 * try { checkOptions("Linear", null); } catch (e) { console.log((e as Error).message); }
 * // Linear: options must be an object, got null
 * ```
 */
export function checkOptions(op: string, opts: unknown, required = false): void {
  if (
    !((opts === undefined && !required) ||
      (opts !== null && typeof opts === "object" && !Array.isArray(opts)))
  ) {
    throw new TypeError(`${op}: options must be an object, got ${describeValue(opts)}`);
  }
  const be = (opts as { backend?: unknown } | undefined)?.backend;
  if (be !== undefined) checkBackend(op, be);
}

/**
 * Check that a value is a Backend (an object with the backend methods, e.g. from
 * `createWasmBackend`), naming the op. Layers check their `backend` option with it, and every
 * tensor allocation checks the backend it allocates on.
 *
 * @example
 * ```ts
 * import { checkBackend } from "./validate.ts";
 * try { checkBackend("zeros", "wasm"); } catch (e) { console.log((e as Error).message); }
 * // zeros: backend must be a Backend (e.g. from createWasmBackend), got string wasm
 * ```
 */
export function checkBackend(op: string, be: unknown): void {
  if (
    be === null || typeof be !== "object" || typeof (be as { alloc?: unknown }).alloc !== "function" ||
    typeof (be as { upload?: unknown }).upload !== "function"
  ) {
    throw new TypeError(
      `${op}: backend must be a Backend (e.g. from createWasmBackend), got ${describeValue(be)}`,
    );
  }
}

/**
 * Check that a product's output is none of its inputs (a product reads its
 * inputs after it has begun writing the output, so an aliased output gives a
 * wrong answer): a `RangeError` naming the op and the aliased argument.
 *
 * @example
 * ```ts
 * import { checkNoAlias } from "./validate.ts";
 * const a = {}, b = {};
 * checkNoAlias("gemm", "c", b, { a }); // fine
 * try { checkNoAlias("gemm", "c", a, { a }); } catch (e) { console.log((e as Error).message); }
 * // gemm: the output c is also the input a; a product's output must be a buffer of its own
 * ```
 */
export function checkNoAlias(
  op: string,
  outName: string,
  out: unknown,
  inputs: Record<string, unknown>,
): void {
  for (const [name, buf] of Object.entries(inputs)) {
    if (buf === out) {
      throw new RangeError(
        `${op}: the output ${outName} is also the input ${name}; a product's output must be a buffer of its own`,
      );
    }
  }
}
