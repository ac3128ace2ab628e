/**
 * scaledDotProductAttention: the dense and block-sparse paths against an
 * independent float64 reference written from the definition, gradients
 * against float64 finite differences, every backend against the js
 * reference, bad input; and the sequence layouts of `src/masks/sequence.ts`.
 */
import { JsBackend } from "../src/backends/js.ts";
import { scaledDotProductAttention } from "../src/attention.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import {
  attentionMask,
  bigBirdMask,
  butterflySequenceMask,
  causalMask,
  globalTokensMask,
  localMask,
  randomTilesMask,
} from "../src/masks/sequence.ts";
import { Tensor } from "../src/tensor.ts";
import { assertClose } from "./_assert.ts";
import { assertEquals, assertOk, assertThrows } from "./_assert.ts";
import { backendsUnderTest } from "./_backends.ts";
import { checkAgainstReference, checkFiniteDifferences, type GradInput, input } from "./_gradcheck.ts";

/** Attention from its definition, in float64: entry (i, j) is kept when its tile is and (causal) j <= i. */
function reference(
  q: GradInput,
  k: GradInput,
  v: GradInput,
  { mask, causal = false, scale }: { mask?: BlockMask; causal?: boolean; scale?: number },
): Float64Array {
  const [N, L, dh] = q.shape, S = k.shape[1], dv = v.shape[2];
  const sc = scale ?? 1 / Math.sqrt(dh);
  const out = new Float64Array(N * L * dv);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < L; i++) {
      const s: number[] = [], keep: number[] = [];
      for (let j = 0; j < S; j++) {
        if (causal && j > i) continue;
        if (mask && !mask.has(Math.floor(i / mask.block), Math.floor(j / mask.block))) continue;
        let d = 0;
        for (let c = 0; c < dh; c++) d += q.data[(n * L + i) * dh + c] * k.data[(n * S + j) * dh + c];
        s.push(sc * d);
        keep.push(j);
      }
      if (keep.length === 0) continue;
      const mx = Math.max(...s), e = s.map((x) => Math.exp(x - mx)), z = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t < keep.length; t++) {
        for (let c = 0; c < dv; c++) {
          out[(n * L + i) * dv + c] += (e[t] / z) * v.data[(n * S + keep[t]) * dv + c];
        }
      }
    }
  }
  return out;
}

interface Case {
  name: string;
  N: number;
  L: number;
  S: number;
  dh: number;
  dv: number;
  mask?: (L: number, S: number) => BlockMask;
  causal?: boolean;
  scale?: number;
}

const cases: Case[] = [
  { name: "dense N=1", N: 1, L: 5, S: 5, dh: 3, dv: 2 },
  { name: "dense causal N=3 L≠S", N: 3, L: 6, S: 7, dh: 4, dv: 3, causal: true },
  {
    name: "one tile, L below b",
    N: 2,
    L: 5,
    S: 5,
    dh: 3,
    dv: 4,
    mask: () => BlockMask.fromFunction(1, 1, 8, () => true),
  },
  {
    name: "one tile causal",
    N: 1,
    L: 4,
    S: 4,
    dh: 3,
    dv: 2,
    causal: true,
    mask: () => BlockMask.fromFunction(1, 1, 4, () => true),
  },
  {
    name: "L not a multiple of b, empty tile row, L≠S",
    N: 2,
    L: 14,
    S: 11,
    dh: 5,
    dv: 3,
    mask: () => BlockMask.fromFunction(4, 3, 4, (i, j) => i !== 1 && (i + j) % 2 === 0),
  },
  {
    name: "butterfly + local causal, N=3",
    N: 3,
    L: 30,
    S: 30,
    dh: 4,
    dv: 4,
    causal: true,
    scale: 0.4,
    mask: (L) => attentionMask(L, { block: 4, nFactors: 2, local: 1 }),
  },
  {
    name: "local + global, L=13 b=4",
    N: 2,
    L: 13,
    S: 13,
    dh: 3,
    dv: 2,
    mask: (L) => attentionMask(L, { block: 4, local: 2, global: 1 }),
  },
];

function inputs(c: Case, seed: number): GradInput[] {
  return [
    input([c.N, c.L, c.dh], seed),
    input([c.N, c.S, c.dh], seed + 1),
    input([c.N, c.S, c.dv], seed + 2),
  ];
}

Deno.test("scaledDotProductAttention matches the float64 definition on the reference backend", async (t) => {
  const be = new JsBackend({ float64: true });
  let seed = 10;
  for (const c of cases) {
    await t.step(c.name, async () => {
      const ins = inputs(c, seed += 3), mask = c.mask?.(c.L, c.S);
      const [q, k, v] = ins.map((i) => new Tensor(i.shape, be, be.upload(i.data)));
      const out = scaledDotProductAttention(q, k, v, { mask, causal: c.causal, scale: c.scale });
      assertEquals(out.shape, [c.N, c.L, c.dv]);
      const want = reference(ins[0], ins[1], ins[2], { mask, causal: c.causal, scale: c.scale });
      assertClose(await out.data(), want, { atol: 1e-6, rtol: 1e-5, label: c.name });
    });
  }
});

Deno.test("scaledDotProductAttention: an empty tile row gives zero outputs", async () => {
  const be = new JsBackend();
  const mask = BlockMask.fromFunction(2, 2, 2, (i) => i === 0);
  const q = new Tensor([1, 4, 2], be, be.upload(new Float32Array(8).fill(1)));
  const out = await scaledDotProductAttention(q, q, q, { mask }).data();
  assertEquals(Array.from(out.slice(4)), [0, 0, 0, 0]);
  assertOk(out[0] === 1, `rows of the kept tile average v: got ${out[0]}`);
});

Deno.test("scaledDotProductAttention gradients match float64 finite differences", async (t) => {
  let seed = 100;
  for (const c of cases) {
    await t.step(c.name, () => {
      const mask = c.mask?.(c.L, c.S);
      checkFiniteDifferences(
        c.name,
        ([q, k, v]) => scaledDotProductAttention(q, k, v, { mask, causal: c.causal, scale: c.scale }),
        inputs(c, seed += 3),
      );
    });
  }
});

for (const entry of backendsUnderTest) {
  Deno.test(`scaledDotProductAttention on ${entry.label}: outputs and gradients match the reference`, async (t) => {
    const be = await entry.make();
    if (be === undefined) return;
    try {
      let seed = 200;
      for (const c of cases) {
        await t.step(c.name, async () => {
          const mask = c.mask?.(c.L, c.S), ins = inputs(c, seed += 3);
          const build = ([q, k, v]: Tensor[]) =>
            scaledDotProductAttention(q, k, v, { mask, causal: c.causal, scale: c.scale });
          const [q, k, v] = ins.map((i) => new Tensor(i.shape, be, be.upload(i.data)));
          const want = reference(ins[0], ins[1], ins[2], { mask, causal: c.causal, scale: c.scale });
          assertClose(await build([q, k, v]).data(), want, {
            atol: 1e-5,
            rtol: 1e-4,
            label: `${entry.label} ${c.name}`,
          });
          await checkAgainstReference(c.name, be, build, ins);
        });
      }
    } finally {
      be.dispose();
    }
  });
}

Deno.test("scaledDotProductAttention rejects bad input with the rule", () => {
  const be = new JsBackend();
  const t = (shape: number[]) => new Tensor(shape, be, be.alloc(shape.reduce((a, b) => a * b, 1)));
  const q = t([2, 8, 4]), k = t([2, 8, 4]), v = t([2, 8, 3]);
  assertThrows(() => scaledDotProductAttention(q, t([2, 8, 5]), v), RangeError, "(N, S, dh)");
  assertThrows(() => scaledDotProductAttention(q, k, t([2, 7, 3])), RangeError, "shapes disagree");
  assertThrows(() => scaledDotProductAttention(t([8, 4]), k, v), RangeError, "3-D");
  assertThrows(() => scaledDotProductAttention(q, k, v, { scale: NaN }), RangeError, "scale");
  assertThrows(
    () => scaledDotProductAttention(q, k, v, { mask: BlockMask.fromFunction(3, 2, 4, () => true) }),
    RangeError,
    "ceil(L/b) x ceil(S/b) = 2x2",
  );
  // deno-lint-ignore no-explicit-any
  assertThrows(() => scaledDotProductAttention(q, k, v, { mask: {} as any }), TypeError, "BlockMask");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => scaledDotProductAttention(q, k, v, { causal: 1 as any }), TypeError, "causal");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => scaledDotProductAttention([] as any, k, v), TypeError, "q must be a Tensor");
});

Deno.test("sequence masks: local band, global tokens, butterfly, random, BigBird, causal, unions", () => {
  const loc = localMask({ length: 100, block: 10, window: 2 });
  assertEquals([loc.rows, loc.nnz], [10, 10 + 2 * 9]);
  assertOk(loc.has(3, 4) && !loc.has(3, 5));
  const g = globalTokensMask({ length: 64, block: 16, global: 1 });
  assertEquals(g.nnz, 7);
  const bf = butterflySequenceMask({ length: 256, block: 32, nFactors: 3 });
  assertOk(bf.has(0, 4) && bf.has(0, 1) && bf.has(5, 5) && !bf.has(0, 3));
  const r = randomTilesMask({ length: 64, block: 8, perRow: 2, seed: 3 });
  assertEquals(r.nnz, 16);
  for (let i = 0; i < 8; i++) assertEquals([0, 1, 2, 3, 4, 5, 6, 7].filter((j) => r.has(i, j)).length, 2);
  const bb = bigBirdMask({ length: 256, block: 16, window: 3, global: 1, random: 1, seed: 1 });
  for (let i = 0; i < 16; i++) assertOk(bb.has(i, i) && bb.has(i, 0) && bb.has(0, i));
  const c = causalMask(bb);
  for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) assertEquals(c.has(i, j), j <= i && bb.has(i, j));
  const u = attentionMask(2048, { block: 64, nFactors: 2, local: 1, global: 1 });
  assertOk(u.density > 0.1 && u.density < 0.16, `butterfly+local+global at 2048/64: density ${u.density}`);
  const uc = attentionMask(2048, { block: 64, nFactors: 2, local: 1, global: 1, causal: true });
  assertOk(!uc.has(0, 1) && uc.has(1, 0));
  assertThrows(() => localMask({ length: 64, block: 8, window: 0 }), RangeError, "window");
  assertThrows(
    () => butterflySequenceMask({ length: 96, block: 32, nFactors: 1 }),
    RangeError,
    "power of two",
  );
  assertThrows(() => butterflySequenceMask({ length: 128, block: 32, nFactors: 3 }), RangeError, "nFactors");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => localMask({ length: "8" as any, block: 8, window: 1 }), TypeError, "length");
});
