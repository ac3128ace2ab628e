/**
 * The one place tests get their assertions from. Backed by `node:assert/strict`
 * (JSR's `@std/assert` is not reachable from this project's machines); moving
 * to `@std/assert` later means editing this file only.
 *
 * @module
 */
import assert from "node:assert/strict";

export const assertEquals: (actual: unknown, expected: unknown, message?: string) => void =
  assert.deepStrictEqual;
export const assertStrictEquals: (actual: unknown, expected: unknown, message?: string) => void =
  assert.strictEqual;
export const assertNotEquals: (actual: unknown, expected: unknown, message?: string) => void =
  assert.notDeepStrictEqual;

/** Assert that `cond` is truthy. */
export function assertOk(cond: unknown, message?: string): asserts cond {
  assert.ok(cond, message);
}

/** Assert that `fn` throws an error of class `cls` whose message includes `includes`. */
export function assertThrows(
  fn: () => unknown,
  cls: new (...args: any[]) => Error,
  includes?: string,
): Error {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  return checkError(err, cls, includes);
}

/** Assert that the promise rejects with an error of class `cls` whose message includes `includes`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls: new (...args: any[]) => Error,
  includes?: string,
): Promise<Error> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  return checkError(err, cls, includes);
}

function checkError(err: unknown, cls: new (...args: any[]) => Error, includes?: string): Error {
  if (err === undefined) assert.fail(`expected ${cls.name} to be thrown, but nothing was thrown`);
  if (!(err instanceof cls)) {
    assert.fail(`expected ${cls.name}, got ${(err as Error)?.constructor?.name}: ${err}`);
  }
  if (includes !== undefined && !err.message.includes(includes)) {
    assert.fail(`expected the ${cls.name} message to include "${includes}", got "${err.message}"`);
  }
  return err;
}

/**
 * Assert `|actual[i] - expected[i]| <= atol + rtol * |expected[i]|` for every i;
 * the failure names the first bad index and both values.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4, label = "" }: { atol?: number; rtol?: number; label?: string } = {},
): void {
  if (actual.length !== expected.length) {
    assert.fail(`${label}: length ${actual.length} differs from expected ${expected.length}`);
  }
  let bad = 0, first = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a) : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad > 0) {
    assert.fail(
      `${label}: ${bad} of ${actual.length} values differ; first at index ${first}: got ${actual[first]}, ` +
        `expected ${expected[first]} (atol ${atol}, rtol ${rtol})`,
    );
  }
}
