import { add, keep, ones, tensor, tidy, zeros } from "../mod.ts";
import { assertEquals, assertOk, assertRejects, assertThrows } from "./_assert.ts";

Deno.test("tensor creation validates shapes and data lengths", () => {
  assertThrows(
    () => tensor([1, 2, 3], [2, 2]),
    RangeError,
    "tensor: data has 3 values but shape [2,2] needs 4",
  );
  assertThrows(
    () => zeros([2, -1]),
    RangeError,
    "zeros: shape [2,-1] must hold non-negative integers, got -1",
  );
  assertThrows(() => tensor("abc" as unknown as number[]), TypeError, "tensor: data must be an array");
  assertThrows(() => ones([2]).view([3]), RangeError, "view: cannot view [2] (2 values) as [3] (3 values)");
});

Deno.test("tidy frees what a step made, keeps what it returns, and frees everything when the step throws", () => {
  const a = ones([2]);
  let inner: ReturnType<typeof add> | undefined;
  const kept = tidy(() => {
    inner = add(a, a);
    return add(inner, a);
  });
  assertOk(inner!.disposed && !kept.disposed && !a.disposed);
  let made: ReturnType<typeof add> | undefined, saved: ReturnType<typeof add> | undefined;
  assertThrows(
    () =>
      tidy(() => {
        made = add(a, a);
        saved = keep(add(a, a));
        throw new RangeError("step failed");
      }),
    RangeError,
    "step failed",
  );
  assertOk(made!.disposed, "a tensor made before the error is freed");
  assertOk(!saved!.disposed, "a kept tensor survives");
  assertThrows(() => made!.buffer, Error, "was disposed");
});

Deno.test("data() and item() copy values back", async () => {
  const t = tensor([1.5, -2], [2]);
  assertEquals(Array.from(await t.data()), [1.5, -2]);
  await assertRejects(() => t.item(), RangeError, "item: tensor has 2 elements, expected 1");
});
