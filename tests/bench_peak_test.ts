/**
 * The peak probe of `bench/_peak.ts` computes what its loops say (so the
 * ceiling it reports is real arithmetic, not a loop the engine folded away),
 * and rejects bad options.
 */
import { peakModuleBytes, peakProbe } from "../bench/_peak.ts";
import { assertEquals, assertOk, assertThrows } from "./_assert.ts";

Deno.test("peak probe: the module validates and both loops compute their recurrences", async () => {
  assertOk(WebAssembly.validate(peakModuleBytes() as BufferSource), "probe module does not validate");
  for (const [fmaChains, mulAddChains, unroll] of [[10, 12, 1], [3, 5, 4]]) {
    const p = await peakProbe({ fmaChains, mulAddChains, unroll });
    assertEquals(p.fmaFlops, fmaChains * unroll * 8);
    assertEquals(p.mulAddFlops, mulAddChains * unroll * 8);
    const n = 7, a = 0.5, b = 0.25;
    // fma: chain i starts at b + i and adds a·b per step (exact in float32 for these values)
    let fma = 0;
    for (let i = 0; i < fmaChains; i++) fma += b + i + n * unroll * a * b;
    assertEquals(p.fma(n, a, b), fma);
    // muladd: chain i starts at b + i, then x = x·a + b, in float32, summed in chain order
    let sum = 0;
    for (let i = 0; i < mulAddChains; i++) {
      let x = Math.fround(b + i);
      for (let s = 0; s < n * unroll; s++) x = Math.fround(Math.fround(x * a) + b);
      sum = i === 0 ? x : Math.fround(sum + x);
    }
    assertEquals(p.muladd(n, a, b), sum);
  }
});

Deno.test("peak probe: chain and unroll counts out of range are RangeErrors naming the value", () => {
  assertThrows(
    () => peakModuleBytes({ fmaChains: 0 }),
    RangeError,
    "fmaChains must be an integer in 1..64, got 0",
  );
  assertThrows(() => peakModuleBytes({ mulAddChains: 2.5 }), RangeError, "mulAddChains must be an integer");
  assertThrows(
    () => peakModuleBytes({ unroll: 65 }),
    RangeError,
    "unroll must be an integer in 1..64, got 65",
  );
});
