/**
 * The peak probe of `bench/_peak.ts` computes what its loops say (so the
 * ceiling it reports is real arithmetic, not a loop the engine folded away),
 * and rejects bad options.
 */
import { peakModuleBytes, peakProbe, TILE_FLOPS } from "../bench/_peak.ts";
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

Deno.test("peak probe: tile runs the 6x8 micro-kernel step over its panels (lane 0 against float64)", async () => {
  assertEquals(TILE_FLOPS, 384);
  const p = await peakProbe();
  const f = new Float32Array(p.memory.buffer);
  // small dyadic values: every product and sum is exact in float32, so float64 gives the same bits
  for (let i = 0; i < 4096; i++) f[i] = ((i * 5) % 11 - 5) / 8;
  for (const n of [1, 3, 50]) {
    const b = 0.25, acc = Array.from({ length: 12 }, (_, i) => b + i);
    for (let t = 0; t < n; t++) {
      const pa = (t * 96) & 0xfff, pb = 4096 + ((t * 128) & 0x1fff);
      for (let kk = 0; kk < 4; kk++) {
        for (let r = 0; r < 6; r++) {
          const s = f[(pa + kk * 24 + r * 4) / 4];
          // lane 0 of row r's two vectors: B's columns 0 and 4 of this k
          acc[2 * r] += s * f[(pb + kk * 32) / 4];
          acc[2 * r + 1] += s * f[(pb + kk * 32 + 16) / 4];
        }
      }
    }
    assertEquals(p.tile(n, 0, b), acc.reduce((x, y) => x + y, 0), `tile(${n})`);
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
