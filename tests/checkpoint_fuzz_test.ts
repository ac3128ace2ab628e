/**
 * Checkpoint fuzz (issue 10): thousands of seeded mutations and truncations
 * of valid safetensors bytes (length field, header bytes, JSON structure,
 * dtypes, shapes, offsets, huge declared sizes, data bytes). Each either
 * loads, and the model then holds exactly what an independent reading of the
 * bytes says, or throws a RangeError naming the operation with the model
 * bit-identical; no case allocates more than 4x the file size (+64 KiB).
 * Runs `_checkpoint_fuzz.ts` in a child Deno with `--expose-gc` so each
 * case's allocation can be measured.
 */
import { assertEquals, assertOk } from "./_assert.ts";

Deno.test("checkpoint fuzz: 3000 mutated files load exactly or fail cleanly, within 4x the file size", async () => {
  const script = new URL("./_checkpoint_fuzz.ts", import.meta.url).pathname;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--v8-flags=--expose-gc", script, "3000", "1"],
    env: { NO_COLOR: "1" },
  }).output();
  const err = new TextDecoder().decode(res.stderr);
  assertOk(res.success, `the fuzz process failed: ${err}`);
  const s = JSON.parse(new TextDecoder().decode(res.stdout));
  assertEquals(s.failures, []);
  assertEquals(s.cases, 3000);
  // the mutations reach both outcomes, and every kind ran
  assertOk(s.loaded > 100 && s.rejected > 2000, `loaded ${s.loaded}, rejected ${s.rejected}`);
  for (
    const kind of [
      "truncate",
      "length field",
      "header bytes",
      "data bytes",
      "dtype",
      "shape",
      "offsets",
      "huge declared size",
      "huge offsets",
      "entry added",
      "duplicate key",
    ]
  ) {
    assertOk((s.kinds[kind]?.rejected ?? 0) > 0, `no rejected "${kind}" case: ${JSON.stringify(s.kinds)}`);
  }
  assertOk(s.maxAllocated <= 4 * s.fileBytes + 65536, `allocated up to ${s.maxAllocated} bytes`);
});
