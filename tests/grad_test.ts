import { assertEquals, assertOk } from "./_assert.ts";
import { backendsUnderTest, disposing } from "./_backends.ts";
import { checkAgainstReference, checkFiniteDifferences } from "./_gradcheck.ts";
import { gradCases } from "./_grad_cases.ts";

Deno.test("gradients match float64 finite differences on the reference backend", async (t) => {
  for (const c of gradCases) {
    await t.step(c.name, () => checkFiniteDifferences(c.name, c.build, c.inputs));
  }
});

for (const entry of backendsUnderTest) {
  Deno.test({ name: `gradients on ${entry.label} match the reference`, ignore: entry.ignore }, async (t) => {
    const be = await entry.make();
    if (be === undefined) return;
    using _dispose = disposing(be);
    for (const c of gradCases) {
      await t.step(c.name, () => checkAgainstReference(c.name, be, c.build, c.inputs));
    }
  });
}

Deno.test("backward: every leaf gets a gradient buffer of its own, whether adopted from a rule or copied", async () => {
  const { add, matmul, memory, mul, reshape, sum, tensor, tidy } = await import("../mod.ts");
  // the implicit output gradient's constant is made once per backend: make it before counting
  const z = tensor([1]);
  z.requiresGrad = true;
  z.backward();
  z.dispose();
  const before = memory().buffers;
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]), b = tensor([1, 0, 1, 0, 1, 0], [2, 3]);
  const x = tensor([1, 2, 3, 4], [2, 2]), w = tensor([1, 2, 3, 4, 5, 6]);
  for (const t of [a, b, w]) t.requiresGrad = true;
  // add passes its output gradient to both operands (copied for each leaf); the product's gradient of w is
  // the rule's own tensor (adopted), reached through a reshape of the leaf
  tidy(() => sum(add(add(a, b), matmul(x, reshape(w, [2, 3])))).backward());
  assertOk(a.grad!.buffer !== b.grad!.buffer, "a and b share a gradient buffer");
  assertEquals(w.grad!.shape, [6]);
  assertEquals(Array.from(await w.grad!.data()), [4, 4, 4, 6, 6, 6]); // xᵀ·1: column sums of x
  // a second backward adds into a.grad only: b.grad must not move
  b.requiresGrad = false;
  tidy(() => sum(mul(a, b)).backward());
  assertEquals(Array.from(await a.grad!.data()), [2, 1, 2, 1, 2, 1]);
  assertEquals(Array.from(await b.grad!.data()), [1, 1, 1, 1, 1, 1]);
  // the leaf itself as the root: its gradient is a copy of the implicit ones, not the shared constant
  const s = tensor([2]);
  s.requiresGrad = true;
  s.backward();
  s.backward();
  assertEquals(Array.from(await s.grad!.data()), [2]);
  // nothing but the leaves and their gradients is left
  assertEquals(memory().buffers - before, 9);
  for (const t of [a, b, x, w, s]) t.dispose();
  assertEquals(memory().buffers, before);
});
