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
