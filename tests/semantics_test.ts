/**
 * Semantics that match fly (HazyResearch/fly), issue 10: the weight-decay
 * grouping of every layer, and the sparse initialisation's per-row variance
 * on a mask with dense global rows.
 */
import {
  AdamW,
  BlockSparseLinear,
  Embedding,
  flatBlockButterfly,
  GPT,
  LayerNorm,
  Linear,
  Module,
  PixelflyLinear,
  type Tensor,
  ViT,
  zeros,
} from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import { assertClose, assertEquals, assertOk } from "./_assert.ts";

class Model extends Module {
  constructor() {
    super();
    const backend = new JsBackend();
    this.child("tok", new Embedding(10, 32, { seed: 1, backend }));
    this.child("pos", new Embedding(8, 32, { seed: 2, backend }));
    this.child("norm", new LayerNorm(32, { backend }));
    this.child("fc", new Linear(32, 32, { seed: 3, backend }));
    this.child(
      "sparse",
      new BlockSparseLinear(32, 32, { block: 8, butterflySize: 4, nFactors: 1, seed: 4, backend }),
    );
    this.child(
      "pf",
      new PixelflyLinear(32, 64, { block: 8, butterflySize: 4, nFactors: 1, rank: 4, seed: 5, backend }),
    );
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}

Deno.test("weight decay as in fly: weights, sparse weights and low-rank factors decay; biases, norms, embeddings do not", async () => {
  const m = new Model();
  const noDecay = m.namedParameters().filter(([, p]) => p.noWeightDecay).map(([n]) => n).sort();
  const decay = m.namedParameters().filter(([, p]) => !p.noWeightDecay).map(([n]) => n).sort();
  assertEquals(noDecay, [
    "fc.bias",
    "norm.bias",
    "norm.weight",
    "pf.bias",
    "pf.gate.bias",
    "pos.weight",
    "sparse.bias",
    "tok.weight",
  ]);
  assertEquals(decay, [
    "fc.weight",
    "pf.gate.weight",
    "pf.low_rank.U",
    "pf.low_rank.V",
    "pf.sparse.weight",
    "sparse.weight",
  ]);
  // and AdamW applies it: with zero gradients only the decay moves a parameter, by the factor (1 - lr·wd)
  const opt = new AdamW(m.parameters(), { lr: 0.1, weightDecay: 0.5 });
  const before = new Map<string, Float32Array>();
  for (const [n, p] of m.namedParameters()) {
    before.set(n, await p.data());
    p.grad = zeros(p.shape, { backend: p.backend });
  }
  opt.step();
  for (const [n, p] of m.namedParameters()) {
    const want = before.get(n)!.map((v) => p.noWeightDecay ? v : v * (1 - 0.1 * 0.5));
    assertClose(await p.data(), want, { atol: 1e-7, rtol: 1e-6 });
  }
  opt.dispose();
});

Deno.test("weight decay as in fly on GPT and ViT: every matrix decays; biases, norms, token and position embeddings do not", () => {
  const backend = new JsBackend();
  const pixelfly = { kind: "pixelfly" as const, block: 8, butterflySize: 4, nFactors: 1, rank: 2 };
  const gpt = new GPT({
    vocabSize: 11,
    context: 16,
    dim: 32,
    depth: 1,
    heads: 2,
    linear: pixelfly,
    seed: 1,
    backend,
  });
  const vit = new ViT({
    patches: 4,
    patchDim: 16,
    dim: 32,
    depth: 1,
    heads: 2,
    classes: 3,
    linear: pixelfly,
    seed: 1,
    backend,
  });
  const embeddings = new Set(["wte.weight", "wpe.weight", "pos"]);
  for (const m of [gpt, vit]) {
    for (const [n, p] of m.namedParameters()) {
      const exempt = p.rank < 2 || embeddings.has(n);
      assertEquals(p.noWeightDecay, exempt, `${m.constructor.name} ${n} [${p.shape}]: noWeightDecay`);
    }
    assertOk(m.namedParameters().some(([n]) => embeddings.has(n)), `${m.constructor.name} has an embedding`);
  }
});

Deno.test("sparse init: each block row's variance is the dense one scaled by blockCols/kept, global rows included", async () => {
  // 256x256 at block 16 with 32 global rows/columns: block rows 0-1 keep all 16 tiles, the others fewer
  const mask = flatBlockButterfly({
    outFeatures: 256,
    inFeatures: 256,
    block: 16,
    butterflySize: 16,
    nFactors: 1,
    globalSize: 32,
  });
  const layer = new BlockSparseLinear(256, 256, { mask, seed: 7, backend: new JsBackend() });
  const w = await layer.weight.data(), l = mask.toBSR(), b = 16, bb = b * b;
  const dense = 1 / 256 / 3; // Var U(-1/sqrt(K), 1/sqrt(K))
  const keptPerRow = new Set<number>();
  for (let i = 0; i < mask.rows; i++) {
    const kept = l.rowPtr[i + 1] - l.rowPtr[i];
    keptPerRow.add(kept);
    let s2 = 0, n = 0;
    for (let e = l.rowPtr[i]; e < l.rowPtr[i + 1]; e++) {
      for (let k = 0; k < bb; k++) {
        s2 += w[e * bb + k] ** 2;
        n++;
      }
    }
    const ratio = (s2 / n) / (dense * mask.cols / kept);
    assertOk(Math.abs(ratio - 1) < 0.15, `block row ${i} (kept ${kept}): variance ratio ${ratio.toFixed(3)}`);
    // counting the dropped zeros, every element row has the dense initialisation's variance
    assertOk(Math.abs((s2 / (b * 256)) / dense - 1) < 0.15, `block row ${i}: row variance with zeros`);
  }
  assertOk(keptPerRow.size > 1, `the mask should mix global and butterfly rows: ${[...keptPerRow]}`);
});
