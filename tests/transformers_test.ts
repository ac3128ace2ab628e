/**
 * Transformer models: MultiHeadAttention's block-sparse path against its
 * dense path, layer gradients against float64 finite differences, GPT's
 * cached generation against full forwards, determinism under a seed,
 * checkpoints, and a GPT and a ViT learning seeded tasks on every backend.
 */
import {
  AdamW,
  BlockMask,
  crossEntropy,
  GPT,
  load,
  localMask,
  MultiHeadAttention,
  save,
  Tensor,
  tidy,
  toPatches,
  ViT,
} from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend } from "../src/backends/types.ts";
import { Rng } from "../src/random.ts";
import {
  assertClose,
  assertEquals,
  assertNotEquals,
  assertOk,
  assertRejects,
  assertThrows,
} from "./_assert.ts";
import { backendsUnderTest } from "./_backends.ts";
import { checkModuleFiniteDifferences, input } from "./_gradcheck.ts";

/** A GPT on fixed token ids (its input is ignored): ids must be host data, so gradients flow to parameters only. */
class IdsGPT extends GPT {
  override forward(): Tensor {
    return super.forward([[1, 4, 2, 6, 0, 3], [5, 5, 1, 2, 3, 4]]);
  }
}

const pixelfly = { kind: "pixelfly", block: 4, butterflySize: 2, nFactors: 1, rank: 2 } as const;

Deno.test("MultiHeadAttention: a full block mask gives the dense result; a band gives another", async () => {
  const be = new JsBackend();
  const x = new Tensor([2, 12, 8], be, be.upload(input([2, 12, 8], 1).data));
  const mk = (scoreMask?: MultiHeadAttention["scoreMask"]) =>
    new MultiHeadAttention(8, { heads: 2, causal: true, scoreMask, seed: 5, backend: be });
  const dense = await mk().forward(x).data();
  const full = await mk((L) => BlockMask.fromFunction(Math.ceil(L / 4), Math.ceil(L / 4), 4, () => true))
    .forward(x).data();
  assertClose(full, dense, { atol: 1e-5, rtol: 1e-4, label: "full mask vs dense" });
  const band = await mk({ block: 4, local: 1 }).forward(x).data();
  // the first tile row sees the same keys either way; later rows see fewer
  assertClose(band.slice(0, 4 * 8), dense.slice(0, 4 * 8), {
    atol: 1e-5,
    rtol: 1e-4,
    label: "first tile row",
  });
  assertOk(Math.abs(band[11 * 8] - dense[11 * 8]) > 1e-4, "the band changes the last rows");
});

Deno.test("MultiHeadAttention: per-projection kinds and mask factories", () => {
  const att = new MultiHeadAttention(8, {
    heads: 2,
    linear: pixelfly,
    projections: { o: "dense" },
    scoreMask: (L) => localMask({ length: L, block: 4, window: 1 }),
    seed: 1,
    backend: new JsBackend(),
  });
  assertEquals(att.q.constructor.name, "PixelflyLinear");
  assertEquals(att.o.constructor.name, "Linear");
  assertEquals(att.maskFor(12)!.nnz, 3);
  assertThrows(
    () =>
      new MultiHeadAttention(8, { heads: 2, scoreMask: (() => 3) as never, backend: new JsBackend() })
        .maskFor(8),
    TypeError,
    "not a BlockMask",
  );
  // deno-lint-ignore no-explicit-any
  assertThrows(() => new MultiHeadAttention(8, { heads: 2, scoreMask: 5 as any }), TypeError, "scoreMask");
});

Deno.test("layer gradients match float64 finite differences: sparse attention, GPT, ViT", async (t) => {
  await t.step(
    "MultiHeadAttention, butterfly + local scores, Pixelfly q/k/v, dense o",
    () =>
      checkModuleFiniteDifferences({
        name: "MHA sparse",
        make: (backend) =>
          new MultiHeadAttention(8, {
            heads: 2,
            causal: true,
            linear: pixelfly,
            projections: { o: "dense" },
            scoreMask: { block: 2, nFactors: 1, local: 1 },
            seed: 3,
            backend,
          }),
        x: input([2, 7, 8], 3),
      }),
  );
  await t.step("GPT with block-sparse attention and Pixelfly layers", () =>
    checkModuleFiniteDifferences({
      name: "GPT",
      make: (backend) =>
        new IdsGPT({
          vocabSize: 7,
          context: 8,
          dim: 8,
          depth: 2,
          heads: 2,
          mlpHidden: 8,
          linear: pixelfly,
          attention: { block: 2, nFactors: 1, local: 1 },
          seed: 4,
          backend,
        }),
      x: { shape: [1], data: Float32Array.of(0), grad: false },
      inputGrad: false,
    }, { maxPerParam: 3 }));
  await t.step("ViT with a class token and sparse attention", () =>
    checkModuleFiniteDifferences({
      name: "ViT",
      make: (backend) =>
        new ViT({
          patches: 5,
          patchDim: 6,
          dim: 8,
          depth: 1,
          heads: 2,
          classes: 3,
          attention: { block: 2, local: 1, global: 1 },
          seed: 6,
          backend,
        }),
      x: input([2, 5, 6], 7),
    }, { maxPerParam: 3 }));
});

function tinyGPT(be: Backend, sparse: boolean, seed = 1): GPT {
  return new GPT({
    vocabSize: 11,
    context: 8,
    dim: 16,
    depth: 2,
    heads: 2,
    mlpHidden: 32,
    linear: sparse ? pixelfly : "dense",
    attention: sparse ? { block: 2, nFactors: 1, local: 1 } : "dense",
    seed,
    backend: be,
  });
}

/** Greedy decoding by full forwards (no cache): the oracle of cached generation. */
async function greedyByForward(gpt: GPT, prompt: number[], n: number): Promise<number[]> {
  const seq = [...prompt], C = gpt.config.context, V = gpt.config.vocabSize;
  for (let s = 0; s < n; s++) {
    const win = seq.slice(Math.max(0, seq.length - C));
    const logits = await tidy(() => gpt.forward([win])).data();
    const last = logits.subarray((win.length - 1) * V, win.length * V);
    let best = 0;
    for (let j = 1; j < V; j++) if (last[j] > last[best]) best = j;
    seq.push(best);
  }
  return seq;
}

Deno.test("GPT: cached greedy generation equals full forwards (dense and block-sparse, past the context)", async () => {
  for (const sparse of [false, true]) {
    const gpt = tinyGPT(new JsBackend(), sparse);
    gpt.eval();
    const want = await greedyByForward(gpt, [3, 1, 4], 9); // 12 tokens > context 8: the window slides
    const got = await gpt.generate([[3, 1, 4]], { maxNewTokens: 9, temperature: 0 });
    assertEquals(got[0], want, `sparse=${sparse}`);
    gpt.dispose();
  }
});

Deno.test("GPT: sampling is deterministic under a seed; bad input is refused", async () => {
  const gpt = tinyGPT(new JsBackend(), true);
  const a = await gpt.generate([[1, 2], [3, 4]], { maxNewTokens: 6, temperature: 1, topK: 5, seed: 7 });
  const b = await gpt.generate([[1, 2], [3, 4]], { maxNewTokens: 6, temperature: 1, topK: 5, seed: 7 });
  const c = await gpt.generate([[1, 2], [3, 4]], { maxNewTokens: 6, temperature: 1, seed: 8 });
  assertEquals(a, b);
  assertNotEquals(a, c);
  assertEquals(a.map((s) => s.length), [8, 8]);
  assertThrows(() => gpt.forward([[1, 11]]), RangeError, "not an integer in [0, 11)");
  assertThrows(() => gpt.forward([[1, 2], [3]]), RangeError, "every sequence");
  assertThrows(() => gpt.forward([Array(9).fill(1)]), RangeError, "longer than the context");
  await assertRejects(() => gpt.generate([[1]], { maxNewTokens: -1 }), RangeError, "maxNewTokens");
  await assertRejects(() => gpt.generate([[1]], { maxNewTokens: 1, topK: 0 }), RangeError, "topK");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => new GPT({ vocabSize: 5, context: 0 } as any), RangeError, "context");
  gpt.dispose();
});

Deno.test("GPT and ViT checkpoints round-trip", async () => {
  const be = new JsBackend();
  const a = tinyGPT(be, true, 1), b = tinyGPT(be, true, 2);
  await load(b, await save(a));
  assertEquals(await b.forward([[1, 2, 3]]).data(), await a.forward([[1, 2, 3]]).data());
  const mkVit = (seed: number) =>
    new ViT({
      patches: 4,
      patchDim: 4,
      dim: 8,
      depth: 1,
      heads: 2,
      classes: 3,
      linear: pixelfly,
      seed,
      backend: be,
    });
  const va = mkVit(1), vb = mkVit(2), x = new Tensor([1, 4, 4], be, be.upload(input([1, 4, 4], 1).data));
  await load(vb, await save(va));
  assertEquals(await vb.forward(x).data(), await va.forward(x).data());
  await assertRejects(async () => await load(tinyGPT(be, false), await save(a)), Error);
});

/** Next-token task: sequences counting up by a per-sequence step mod V (the step is inferable from context). */
function countingTask(B: number, L: number, V: number, seed: number) {
  const rng = new Rng(seed), ids: number[][] = [], tgt: number[][] = [];
  for (let b = 0; b < B; b++) {
    const step = 1 + rng.int(2), start = rng.int(V);
    const s = Array.from({ length: L + 1 }, (_, i) => (start + i * step) % V);
    ids.push(s.slice(0, L));
    tgt.push(s.slice(1));
  }
  return { ids, tgt };
}

async function train(model: { parameters(): Tensor[] }, lossOf: () => Tensor, steps: number, lr: number) {
  const opt = new AdamW(model.parameters(), { lr, weightDecay: 0 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const l = tidy(() => {
      const l = lossOf();
      l.backward();
      opt.step();
      return l;
    });
    losses.push(await l.item());
    l.dispose();
  }
  opt.dispose();
  return { first: losses[0], last: losses.at(-1)! };
}

/** Label: the patch holding the bright spot (one of 4). */
function spotTask(B: number, seed: number) {
  const rng = new Rng(seed), img = new Float32Array(B * 64), y: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < 64; i++) img[b * 64 + i] = rng.normal() * 0.3;
    const c = rng.int(4), py = (c >> 1) * 4 + 1 + rng.int(2), px = (c & 1) * 4 + 1 + rng.int(2);
    img[b * 64 + py * 8 + px] += 3;
    y.push(c);
  }
  return { x: toPatches(img, { height: 8, width: 8, patch: 4 }), y };
}

const learners: {
  name: string;
  run: (be: Backend) => Promise<{ first: number; last: number }>;
  factor: number;
}[] = [
  ...[false, true].map((sparse) => ({
    name: `GPT ${sparse ? "Pixelfly + block-sparse attention" : "dense"}`,
    factor: 3,
    run: async (be: Backend) => {
      const gpt = tinyGPT(be, sparse, 3), { ids, tgt } = countingTask(16, 8, 11, 3);
      const r = await train(gpt, () => gpt.loss(ids, tgt), 60, 1e-2);
      gpt.dispose();
      return r;
    },
  })),
  ...(["cls", "mean"] as const).map((pool) => ({
    name: `ViT Pixelfly, ${pool} pooling`,
    factor: 3,
    run: async (be: Backend) => {
      const vit = new ViT({
        patches: 4,
        patchDim: 16,
        dim: 16,
        depth: 1,
        heads: 2,
        classes: 4,
        linear: pixelfly,
        pool,
        seed: 4,
        backend: be,
      });
      const { x, y } = spotTask(32, 4), xt = new Tensor([32, 4, 16], be, be.upload(x));
      const r = await train(vit, () => crossEntropy(vit.forward(xt), y), 40, 1e-2);
      vit.dispose();
      xt.dispose();
      return r;
    },
  })),
];

for (const k of learners) {
  Deno.test(`${k.name} lowers its loss on a seeded task (js)`, async () => {
    const { first, last } = await k.run(new JsBackend());
    assertOk(last < first / k.factor, `${k.name}: loss ${first} -> ${last}, expected a ${k.factor}x drop`);
  });
}

for (const entry of backendsUnderTest) {
  Deno.test(`GPT and ViT learn on ${entry.label}`, async (t) => {
    const be = await entry.make();
    if (be === undefined) return;
    try {
      for (const k of learners) {
        await t.step(k.name, async () => {
          const { first, last } = await k.run(be);
          assertOk(last < first / k.factor, `${k.name} on ${entry.label}: loss ${first} -> ${last}`);
        });
      }
    } finally {
      be.dispose();
    }
  });
}

Deno.test("GPT and ViT with a budget: every layer from allocateBudget, the report, the total within budget", async () => {
  const be = new JsBackend();
  const gpt = new GPT({
    vocabSize: 20,
    context: 64,
    dim: 64,
    depth: 1,
    heads: 2,
    budget: 0.3,
    budgetBlock: 16,
    seed: 1,
    backend: be,
  });
  const report = gpt.budgetReport();
  assertOk(/fraction 0\.\d+ <= budget 0\.3/.test(report) && report.includes("h0.attn.scores"), report);
  assertEquals(gpt.blocks[0].attn.q.constructor.name, "PixelflyLinear");
  assertEquals(gpt.blocks[0].mlp.fc2.constructor.name, "PixelflyLinear");
  assertOk(gpt.blocks[0].attn.maskFor(64)!.density < 1, "the score layout is sparse");
  const built = Number(/built: (\d+) parameters \(dense (\d+)\)/.exec(report)![1]);
  const dense = Number(/built: (\d+) parameters \(dense (\d+)\)/.exec(report)![2]);
  assertOk(built < 0.6 * dense, `budget model ${built} vs dense ${dense} parameters`);
  assertEquals(gpt.forward([[1, 2, 3]]).shape, [1, 3, 20]);
  const l = gpt.loss([[1, 2, 3, 4]], [[2, 3, 4, 5]]);
  l.backward();
  assertOk(Number.isFinite(await l.item()));
  assertThrows(
    () =>
      new GPT({
        vocabSize: 20,
        context: 64,
        dim: 64,
        depth: 1,
        heads: 2,
        budget: 0.3,
        linear: pixelfly,
        backend: be,
      }),
    RangeError,
    "budget chooses every layer",
  );
  const vit = new ViT({
    patches: 4,
    patchDim: 16,
    dim: 64,
    depth: 1,
    heads: 2,
    classes: 3,
    budget: 0.4,
    budgetBlock: 16,
    backend: be,
  });
  assertOk(
    vit.budgetReport().includes("blocks") || vit.budgetReport().includes("h0.mlp.fc1"),
    vit.budgetReport(),
  );
  assertEquals(vit.forward(new Tensor([2, 4, 16], be, be.upload(input([2, 4, 16], 3).data))).shape, [2, 3]);
});

Deno.test("GPT's MLP uses GELU in GPT-2's tanh form; TransformerBlock defaults to exact GELU", async () => {
  const { GPT, TransformerBlock, gelu, noGrad, randn } = await import("../mod.ts");
  const backend = new JsBackend();
  const g = new GPT({ vocabSize: 7, context: 8, dim: 16, depth: 1, heads: 2, seed: 3, backend });
  const blk = new TransformerBlock(16, { heads: 2, seed: 3, backend });
  const x = randn([4, 16], { seed: 9, std: 3, backend });
  for (const [mlp, approximate] of [[g.blocks[0].mlp, "tanh"], [blk.mlp, "none"]] as const) {
    const [got, want, other] = noGrad(() => {
      const h = mlp.fc1.forward(x);
      return [
        mlp.forward(x),
        mlp.fc2.forward(gelu(h, { approximate })),
        mlp.fc2.forward(gelu(h, { approximate: approximate === "tanh" ? "none" : "tanh" })),
      ];
    });
    const a = await got.data(), b = await want.data(), c = await other.data();
    assertEquals(Array.from(a), Array.from(b), `${approximate}: the MLP applies this GELU`);
    assertOk(a.some((v, i) => v !== c[i]), `${approximate}: the other GELU differs on this input`);
  }
});
