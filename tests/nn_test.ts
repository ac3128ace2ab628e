import {
  BlockSparseLinear,
  Embedding,
  LayerNorm,
  Linear,
  LowRank,
  MixerBlock,
  MLP,
  MlpMixer,
  MultiHeadAttention,
  PixelflyLinear,
  Sequential,
  TransformerBlock,
} from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend } from "../src/backends/types.ts";
import { flatBlockButterfly } from "../src/masks/patterns.ts";
import { Module } from "../src/nn/module.ts";
import { Tensor } from "../src/tensor.ts";
import { assertClose, assertEquals, assertOk, assertThrows } from "./_assert.ts";
import { backendsUnderTest, disposing } from "./_backends.ts";
import {
  checkModuleAgainstReference,
  checkModuleFiniteDifferences,
  input,
  type ModuleCase,
} from "./_gradcheck.ts";

/** Token ids wrapped so an Embedding case fits the generic module check. */
class EmbeddingThenSum extends Module {
  readonly emb: Embedding;
  constructor(be: Backend) {
    super();
    this.emb = this.child("emb", new Embedding(5, 3, { seed: 4, backend: be }));
  }
  forward(x: Tensor): Tensor {
    return this.emb.lookup(Array.from({ length: x.size }, (_, i) => (i * 3) % 5));
  }
}

const moduleCases: ModuleCase[] = [
  { name: "Linear", make: (backend) => new Linear(5, 3, { seed: 1, backend }), x: input([4, 5], 1) },
  {
    name: "BlockSparseLinear padded 20->12 (block 4)",
    make: (backend) =>
      new BlockSparseLinear(20, 12, { block: 4, butterflySize: 4, nFactors: 1, seed: 2, backend }),
    x: input([3, 20], 2),
  },
  {
    name: "LowRank",
    make: (backend) => new LowRank(6, 4, { rank: 2, seed: 3, backend }),
    x: input([3, 6], 3),
  },
  {
    name: "PixelflyLinear gated (out <= in: the fused gatedCombine)",
    make: (backend) =>
      new PixelflyLinear(16, 8, { block: 4, butterflySize: 4, nFactors: 1, rank: 2, seed: 4, backend }),
    x: input([2, 3, 16], 4),
  },
  {
    name: "PixelflyLinear gated (out > in: the gate scales x and the low-rank h)",
    make: (backend) =>
      new PixelflyLinear(8, 16, { block: 4, butterflySize: 2, nFactors: 1, rank: 2, seed: 14, backend }),
    x: input([3, 8], 5),
  },
  {
    name: "PixelflyLinear gated (out > in) on an input that takes no gradient (the fused gatedCombine)",
    make: (backend) =>
      new PixelflyLinear(8, 16, { block: 4, butterflySize: 2, nFactors: 1, rank: 2, seed: 15, backend }),
    x: input([3, 8], 6),
    inputGrad: false,
  },
  {
    name: "PixelflyLinear ungated without bias",
    make: (backend) =>
      new PixelflyLinear(16, 16, {
        block: 4,
        butterflySize: 4,
        nFactors: 2,
        rank: 3,
        gating: false,
        bias: false,
        seed: 5,
        backend,
      }),
    x: input([3, 16], 5),
  },
  {
    name: "PixelflyLinear rank 0 (sparse only, as a tight budget may choose)",
    make: (backend) =>
      new PixelflyLinear(16, 8, { block: 4, butterflySize: 4, nFactors: 1, rank: 0, seed: 13, backend }),
    x: input([3, 16], 13),
  },
  { name: "LayerNorm", make: (backend) => new LayerNorm(6, { backend }), x: input([3, 6], 6, { scale: 2 }) },
  {
    name: "MLP with Pixelfly layers",
    make: (backend) =>
      new MLP(8, {
        hidden: 16,
        linear: { kind: "pixelfly", block: 4, butterflySize: 2, nFactors: 1, rank: 2 },
        seed: 7,
        backend,
      }),
    x: input([3, 8], 7),
  },
  {
    name: "MixerBlock (Pixelfly channel mixing)",
    make: (backend) =>
      new MixerBlock(4, 8, {
        tokenHidden: 4,
        channelHidden: 16,
        channelLinear: { kind: "pixelfly", block: 4, butterflySize: 2, nFactors: 1, rank: 2 },
        seed: 8,
        backend,
      }),
    x: input([2, 4, 8], 8),
  },
  {
    name: "MultiHeadAttention causal, butterfly scores, Pixelfly projections",
    make: (backend) =>
      new MultiHeadAttention(8, {
        heads: 2,
        causal: true,
        scoreMask: { block: 2, butterflySize: 4, nFactors: 1 },
        linear: { kind: "pixelfly", block: 4, butterflySize: 2, nFactors: 1, rank: 2 },
        seed: 9,
        backend,
      }),
    x: input([2, 8, 8], 9),
  },
  {
    name: "TransformerBlock",
    make: (backend) => new TransformerBlock(8, { heads: 2, causal: true, mlpHidden: 12, seed: 10, backend }),
    x: input([1, 4, 8], 10),
  },
  {
    name: "MlpMixer",
    make: (backend) =>
      new MlpMixer({ patches: 4, patchDim: 6, channels: 8, depth: 1, classes: 3, seed: 11, backend }),
    x: input([2, 4, 6], 11),
  },
  { name: "Embedding", make: (be) => new EmbeddingThenSum(be), x: input([4], 12), inputGrad: false },
];

Deno.test("layer gradients match float64 finite differences", async (t) => {
  for (const c of moduleCases) await t.step(c.name, () => checkModuleFiniteDifferences(c));
});

for (const entry of backendsUnderTest) {
  Deno.test(
    { name: `layer gradients on ${entry.label} match the reference`, ignore: entry.ignore },
    async (t) => {
      const be = await entry.make();
      if (be === undefined) return;
      using _dispose = disposing(be);
      for (const c of moduleCases) await t.step(c.name, () => checkModuleAgainstReference(c, be));
    },
  );
}

Deno.test("parameter names follow PyTorch module paths", () => {
  const be = new JsBackend();
  const net = new Sequential(
    new PixelflyLinear(32, 32, { block: 8, butterflySize: 4, rank: 4, seed: 1, backend: be }),
    new Linear(32, 2, { seed: 2, backend: be }),
  );
  assertEquals(net.namedParameters().map(([n]) => n), [
    "0.bias",
    "0.sparse.weight",
    "0.low_rank.V",
    "0.low_rank.U",
    "0.gate.weight",
    "0.gate.bias",
    "1.weight",
    "1.bias",
  ]);
  assertEquals(net.namedBuffers().map(([n, b]) => [n, b.shape]), [["0.sparse.mask", [4, 4]]]);
});

Deno.test("BlockSparseLinear initialisation: masked Kaiming-uniform, rows rescaled by sqrt(cols/kept)", async () => {
  const be = new JsBackend();
  const mask = flatBlockButterfly({
    outFeatures: 256,
    inFeatures: 512,
    block: 32,
    butterflySize: 8,
    nFactors: 2,
  });
  const layer = new BlockSparseLinear(512, 256, { mask, seed: 3, backend: be });
  const w = await layer.weight.data();
  assertEquals(layer.weight.shape, [mask.nnz, 32, 32]);
  assertOk(
    !layer.weight.noWeightDecay && layer.bias!.noWeightDecay,
    "the sparse weight decays, its bias does not (as fly)",
  );
  const L = mask.toBSR(), bound = 1 / Math.sqrt(512);
  for (let i = 0; i < mask.rows; i++) {
    const kept = L.rowPtr[i + 1] - L.rowPtr[i], lim = bound * Math.sqrt(mask.cols / kept);
    let sumSq = 0, n = 0;
    for (let e = L.rowPtr[i]; e < L.rowPtr[i + 1]; e++) {
      for (let k = 0; k < 1024; k++) {
        const v = w[e * 1024 + k];
        assertOk(Math.abs(v) <= lim * (1 + 1e-6), `block row ${i}: |${v}| exceeds ${lim}`);
        sumSq += v * v;
        n++;
      }
    }
    const variance = sumSq / n, expected = (lim * lim) / 3;
    assertOk(Math.abs(variance / expected - 1) < 0.1, `block row ${i}: variance ${variance} vs ${expected}`);
  }
  const bias = await layer.bias!.data();
  assertOk(bias.every((v) => Math.abs(v) <= 1 / Math.sqrt(512)), "bias within ±1/sqrt(in)");
});

Deno.test("layers with the same seed build the same weights", async () => {
  const a = new PixelflyLinear(64, 64, { block: 16, butterflySize: 4, seed: 42 });
  const b = new PixelflyLinear(64, 64, { block: 16, butterflySize: 4, seed: 42 });
  for (const [[n, p], [, q]] of a.namedParameters().map((x, i) => [x, b.namedParameters()[i]] as const)) {
    assertEquals(Array.from(await p.data()), Array.from(await q.data()), n);
  }
});

Deno.test("PixelflyLinear: a budget's choice builds the layer", async () => {
  const { pixelflyBudget } = await import("../src/masks/budget.ts");
  const choice = pixelflyBudget({ inFeatures: 1024, outFeatures: 1024, budget: 0.25 });
  const layer = new PixelflyLinear(1024, 1024, { ...choice, seed: 1 });
  assertEquals(layer.sparse.mask.nnz, choice.mask.nnz);
  assertEquals(layer.lowRank!.rank, choice.rank);
  const { sparse, lowRank } = layer.parameterBreakdown;
  assertEquals(sparse + lowRank, choice.params);
  layer.dispose();
});

Deno.test("layers reject bad inputs with clear errors", () => {
  const be = new JsBackend();
  const x = new Tensor([2, 7], be, be.alloc(14));
  assertThrows(
    () => new Linear(8, 2, { backend: be }).forward(x),
    RangeError,
    "Linear: x [2,7] has 7 features",
  );
  assertThrows(() => new Linear(0, 2), RangeError, "Linear: inFeatures must be a positive integer, got 0");
  assertThrows(() => new Linear(2.5, 2), RangeError, "got 2.5");
  assertThrows(
    () => new BlockSparseLinear(64, 64, { block: 16, butterflySize: 4, backend: be }).forward(x),
    RangeError,
    "BlockSparseLinear: x [2,7] has 7 features",
  );
  assertThrows(
    () =>
      new BlockSparseLinear(64, 64, {
        mask: flatBlockButterfly({
          outFeatures: 32,
          inFeatures: 64,
          block: 16,
          butterflySize: 2,
          nFactors: 1,
        }),
      }),
    RangeError,
    "mask is 2x4 tiles of 16, but a 64x64 weight needs 4x4",
  );
  assertThrows(
    () => new BlockSparseLinear(64, 64, { block: 16, butterflySize: 12 }),
    RangeError,
    "power of two, got 12",
  );
  assertThrows(() => new LowRank(4, 4, { rank: 0 }), RangeError, "LowRank: rank must be a positive integer");
  assertThrows(
    () => new LowRank(4, 4, { rank: 2.5 }),
    RangeError,
    "rank must be an integer when >= 1, got 2.5",
  );
  assertThrows(
    () => new PixelflyLinear(64, 64, { block: 16, butterflySize: 4, backend: be }).forward(x),
    RangeError,
    "PixelflyLinear: x [2,7]",
  );
  assertThrows(
    () => new LayerNorm(8, { backend: be }).forward(x),
    RangeError,
    "LayerNorm: x [2,7] must end in 8 features",
  );
  assertThrows(
    () => new MultiHeadAttention(8, { heads: 3 }),
    RangeError,
    "heads must divide dim; got dim 8 and heads 3",
  );
  assertThrows(
    () => new MultiHeadAttention(8, { heads: 2, backend: be }).forward(x),
    RangeError,
    "must be (batch, length, 8)",
  );
  assertThrows(
    () => new MixerBlock(4, 8, { tokenHidden: 4, channelHidden: 8, backend: be }).forward(x),
    RangeError,
    "MixerBlock: x [2,7]",
  );
  assertThrows(
    () => new Sequential(new Linear(2, 2), 5 as unknown as Module),
    TypeError,
    "Sequential: argument 1 must be a Module",
  );
  assertThrows(
    () => new MLP(4, { hidden: -1 }),
    RangeError,
    "MLP: hidden must be a positive integer, got -1",
  );
  assertThrows(
    () => new Embedding(3, 2, { backend: be }).lookup([3]),
    RangeError,
    "gather: idx[0] is 3, but the table has rows [0, 3)",
  );
});

Deno.test("train/eval mode reaches every child; dropout is identity in eval", async () => {
  const { Dropout } = await import("../src/nn/layers.ts");
  const be = new JsBackend();
  const net = new Sequential(new Linear(4, 4, { seed: 1, backend: be }), new Dropout(0.5, { seed: 2 }));
  net.eval();
  assertOk(net.layers.every((l) => !l.training));
  const x = new Tensor([1, 4], be, be.upload(Float32Array.of(1, 2, 3, 4)));
  assertEquals(Array.from(await net.forward(x).data()), Array.from(await net.layers[0].forward(x).data()));
  net.train();
  assertOk(net.layers.every((l) => l.training));
});

Deno.test("GELU: exact (erf) by default as PyTorch, tanh on request; bad options are RangeErrors", async () => {
  const { GELU, gelu, tensor } = await import("../mod.ts");
  const x = tensor([-2, -0.5, 0.5, 1, 3]);
  const exact = await new GELU().forward(x).data();
  const approx = await new GELU({ approximate: "tanh" }).forward(x).data();
  // PyTorch's two definitions in float64 (Python: x/2·erfc(−x/√2) and 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))))
  const wantExact = [
    -0.04550026389635844,
    -0.15426876936299344,
    0.34573123063700656,
    0.8413447460685429,
    2.99595030590511,
  ];
  const wantTanh = [
    -0.04540230591222494,
    -0.15428599017485606,
    0.34571400982514394,
    0.8411919906082768,
    2.996362607918227,
  ];
  assertClose(exact, Float32Array.from(wantExact), { atol: 1e-6, rtol: 1e-6, label: "exact" });
  assertClose(approx, Float32Array.from(wantTanh), { atol: 1e-6, rtol: 1e-6, label: "tanh" });
  assertThrows(
    () => gelu(x, { approximate: "fast" as "tanh" }),
    RangeError,
    'gelu: approximate must be "none" or "tanh", got "fast"',
  );
  assertThrows(() => new GELU({ approximate: "erf" as "none" }), RangeError, "GELU: approximate");
});

Deno.test("gatedCombine: equals (1 − g)·s + g·l + bias written as separate ops; clear errors on bad shapes", async () => {
  const { add, gatedCombine, mul, affine, randn, ones } = await import("../mod.ts");
  const s = randn([2, 3, 5], { seed: 1 }), l = randn([2, 3, 5], { seed: 2 });
  const g = randn([2, 3, 1], { seed: 3 }), bias = randn([5], { seed: 4 });
  const want = add(add(mul(s, affine(g, -1, 1)), mul(l, g)), bias);
  assertClose(await gatedCombine(s, l, g, bias).data(), await want.data(), {
    atol: 1e-6,
    label: "with bias",
  });
  assertClose(await gatedCombine(s, l, g).data(), await add(mul(s, affine(g, -1, 1)), mul(l, g)).data(), {
    atol: 1e-6,
    label: "without bias",
  });
  assertThrows(
    () => gatedCombine(s, ones([2, 3, 4]), g),
    RangeError,
    "gatedCombine: l [2,3,4] must have the shape",
  );
  assertThrows(
    () => gatedCombine(s, l, ones([5])),
    RangeError,
    "gatedCombine: g [5] must hold one gate per row of s [2,3,5] (6 values)",
  );
  assertThrows(() => gatedCombine(s, l, g, ones([6])), RangeError, "gatedCombine: bias [6] must be (5)");
  assertThrows(
    () => gatedCombine(s, l, 0.5 as unknown as Tensor),
    TypeError,
    "gatedCombine: g must be a Tensor",
  );
  assertThrows(() => gatedCombine(ones([0, 5]), ones([0, 5]), ones([0])), RangeError, "non-empty");
});

// A budget allocation's table rows: name -> [shape, rank, density, params, cost] (see allocateBudget's toString).
function budgetRows(
  report: string,
): Map<string, { rank: number; density: number; params: number; cost: number }> {
  const rows = new Map<string, { rank: number; density: number; params: number; cost: number }>();
  for (const line of report.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 10 || f[1] !== "mlp") continue;
    rows.set(f[0], { rank: Number(f[5]), density: Number(f[6]), params: Number(f[7]), cost: Number(f[9]) });
  }
  return rows;
}

Deno.test("MlpMixer with a budget: every mixing layer as allocated, costs per example (a layer's uses), within budget", async () => {
  const { allocateBudget } = await import("../mod.ts");
  const backend = new JsBackend();
  const [P, C, Ht, Hc] = [64, 64, 32, 256];
  const m = new MlpMixer({
    patches: P,
    patchDim: 12,
    channels: C,
    depth: 1,
    classes: 5,
    budget: 0.35,
    budgetBlock: 16,
    seed: 2,
    backend,
  });
  const report = m.budgetReport();
  // the dense cost per example, counted independently: token mixing runs once per channel, channel mixing
  // once per patch
  const dense = 2 * C * P * Ht + 2 * P * C * Hc;
  assertOk(report.includes(`of dense ${dense} multiply-adds per example`), report);
  const frac = Number(/fraction (0\.\d+) <= budget 0\.35/.exec(report)?.[1]);
  assertOk(frac > 0.3 && frac <= 0.35, report);
  const rows = budgetRows(report);
  assertEquals(rows.size, 4);
  const blk = m.blocks[0];
  const layers: [string, unknown, number][] = [
    ["blocks.0.token_mixing.fc1", blk.tokenMixing.fc1, C],
    ["blocks.0.token_mixing.fc2", blk.tokenMixing.fc2, C],
    ["blocks.0.channel_mixing.fc1", blk.channelMixing.fc1, P],
    ["blocks.0.channel_mixing.fc2", blk.channelMixing.fc2, P],
  ];
  for (const [name, layer, uses] of layers) {
    const row = rows.get(name)!;
    assertOk(layer instanceof PixelflyLinear, `${name} is ${(layer as object).constructor.name}`);
    const l = layer as PixelflyLinear;
    assertClose([l.sparse.mask.density], [row.density], { atol: 1e-4, label: name });
    assertEquals(l.lowRank?.rank ?? 0, row.rank, name);
    assertEquals(row.cost, row.params * uses, `${name}: cost = kept entries x uses`);
  }
  // the same schema through allocateBudget directly gives the same table
  const plan = allocateBudget([
    { name: "blocks.0.token_mixing.fc1", kind: "mlp", inFeatures: P, outFeatures: Ht, uses: C },
    { name: "blocks.0.token_mixing.fc2", kind: "mlp", inFeatures: Ht, outFeatures: P, uses: C },
    { name: "blocks.0.channel_mixing.fc1", kind: "mlp", inFeatures: C, outFeatures: Hc, uses: P },
    { name: "blocks.0.channel_mixing.fc2", kind: "mlp", inFeatures: Hc, outFeatures: C, uses: P },
  ], { budget: 0.35, block: 16, unit: "example" });
  assertOk(report.startsWith(plan.toString()), report);
  const [built, denseParams] = /built: (\d+) parameters \(dense (\d+)\)/.exec(report)!.slice(1).map(Number);
  assertEquals(built, m.parameterCount());
  assertOk(built < 0.6 * denseParams, `budget model ${built} vs dense ${denseParams} parameters`);
  const x = new Tensor([2, P, 12], backend, backend.upload(input([2, P, 12], 4).data));
  const loss = m.forward(x);
  assertEquals(loss.shape, [2, 5]);
  (await import("../mod.ts")).sum(loss).backward();
  for (const p of m.parameters()) assertOk((await p.grad!.data()).every(Number.isFinite));
  m.dispose();

  // token mixing over 16 patches is narrower than a 32 tile: those layers stay dense, and the table says so
  const small = new MlpMixer({
    patches: 16,
    patchDim: 4,
    channels: 64,
    depth: 2,
    classes: 3,
    budget: 0.5,
    backend,
  });
  const r2 = small.budgetReport();
  assertOk(
    r2.includes(
      "dense, outside the budget (a side shorter than budgetBlock 32): blocks.0.token_mixing.fc1 32x16",
    ),
    r2,
  );
  assertEquals(small.blocks[1].tokenMixing.fc2.constructor.name, "Linear");
  assertEquals(small.blocks[1].channelMixing.fc2.constructor.name, "PixelflyLinear");
  small.dispose();

  const base = { patches: 16, patchDim: 4, channels: 64, depth: 1, classes: 3, backend };
  assertThrows(
    () => new MlpMixer({ ...base, budget: 0.5, tokenLinear: "dense" }),
    RangeError,
    "budget chooses every layer",
  );
  assertThrows(
    () => new MlpMixer({ ...base, budget: 0 }),
    RangeError,
    "MlpMixer: budget must be a fraction of the dense cost in (0, 1], got 0",
  );
  assertThrows(
    () => new MlpMixer({ ...base, budget: 0.5, budgetBlock: 0 }),
    RangeError,
    "MlpMixer: budgetBlock",
  );
  assertThrows(
    () => new MlpMixer({ ...base, budgetBlock: 16 }),
    RangeError,
    "MlpMixer: budgetBlock 16 needs a budget",
  );
  assertThrows(
    () => new MlpMixer({ ...base, channels: 16, budget: 0.5 }),
    RangeError,
    "MlpMixer: budget 0.5 has no layer to share",
  );
  assertThrows(() => new MlpMixer({ ...base, budget: 0.05 }), RangeError, "multiply-adds per example");
  assertThrows(
    () =>
      allocateBudget([{ name: "a", kind: "mlp", inFeatures: 64, outFeatures: 64, uses: 0 }], { budget: 0.5 }),
    RangeError,
    "schema[0].uses",
  );
  assertThrows(
    () =>
      allocateBudget([{ name: "a", kind: "mlp", inFeatures: 64, outFeatures: 64 }], {
        budget: 0.5,
        unit: "",
      }),
    TypeError,
    "allocateBudget: unit must be a non-empty string",
  );
});

Deno.test("MLP with a budget: both layers shared out, a layer narrower than a tile stays dense, errors", async () => {
  const backend = new JsBackend();
  const mlp = new MLP(784, { hidden: 512, outFeatures: 10, budget: 0.3, seed: 1, backend });
  const report = mlp.budgetReport();
  assertOk(/fraction 0\.\d+ <= budget 0\.3/.test(report), report);
  assertOk(report.includes("of dense 401408 multiply-adds per token"), report); // fc1 alone: 512 x 784
  assertOk(report.includes("budgetBlock 32): fc2 10x512"), report);
  assertOk(mlp.fc1 instanceof PixelflyLinear && mlp.fc2 instanceof Linear, report);
  const [built, dense] = /built: (\d+) parameters \(dense (\d+)\)/.exec(report)!.slice(1).map(Number);
  assertEquals([built, dense], [mlp.parameterCount(), 784 * 512 + 512 + 512 * 10 + 10]);
  const y = mlp.forward(new Tensor([3, 784], backend, backend.upload(input([3, 784], 5).data)));
  assertEquals(y.shape, [3, 10]);
  assertOk((await y.data()).every(Number.isFinite));
  mlp.dispose();
  const two = new MLP(256, { hidden: 512, budget: 0.4, budgetBlock: 16, backend });
  assertOk(two.fc1 instanceof PixelflyLinear && two.fc2 instanceof PixelflyLinear);
  assertOk(new MLP(8, { hidden: 8 }).budgetReport().startsWith("MLP: built without a budget"));
  two.dispose();
  assertThrows(
    () => new MLP(256, { hidden: 512, budget: 0.4, fc2Linear: "dense", backend }),
    RangeError,
    "MLP: budget chooses both layers",
  );
  assertThrows(() => new MLP(256, { hidden: 512, budget: 1.5, backend }), RangeError, "MLP: budget must be");
  assertThrows(
    () => new MLP(8, { hidden: 16, budget: 0.5, backend }),
    RangeError,
    "MLP: budget 0.5 has no layer",
  );
});
