/**
 * Small models of each kind (MLP, Mixer, attention) learn a tiny seeded task
 * on every backend: the loss falls.
 */
import {
  AdamW,
  affine,
  crossEntropy,
  Embedding,
  Linear,
  manualSeed,
  MLP,
  MlpMixer,
  Module,
  PixelflyLinear,
  reshape,
  Sequential,
  sumCols,
  type Tensor,
  tensor,
  tidy,
  TransformerBlock,
  transpose,
} from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend } from "../src/backends/types.ts";
import { Rng } from "../src/random.ts";
import { assertOk } from "./_assert.ts";
import { backendsUnderTest, disposing } from "./_backends.ts";

/** A seeded task: inputs (n, ...shape) and labels from a random teacher. */
function task(n: number, features: number, classes: number, seed: number) {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: n * features }, () => rng.normal());
  const w = Float32Array.from({ length: features * classes }, () => rng.normal());
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0, bestV = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = 0;
      for (let f = 0; f < features; f++) s += x[i * features + f] * w[f * classes + c];
      if (s > bestV) [best, bestV] = [c, s];
    }
    y[i] = best;
  }
  return { x, y };
}

/** Token mean-pooling classifier head over a transformer block (GPT-style pieces). */
class TinyTransformer extends Module {
  readonly emb: Embedding;
  readonly block: TransformerBlock;
  readonly head: Linear;
  constructor(readonly L: number, backend: Backend) {
    super();
    this.emb = this.child("emb", new Embedding(8, 16, { backend }));
    this.block = this.child(
      "block",
      new TransformerBlock(16, { heads: 2, causal: true, mlpHidden: 32, backend }),
    );
    this.head = this.child("head", new Linear(16, 2, { backend }));
  }
  forward(ids: Tensor): Tensor {
    const B = ids.size / this.L;
    const h = this.block.forward(reshape(this.emb.forward(ids), [B, this.L, 16]));
    const pooled = affine(sumCols(reshape(transpose(h), [B * 16, this.L])), 1 / this.L, 0);
    return this.head.forward(reshape(pooled, [B, 16]));
  }
}

async function lossDrop(
  be: Backend,
  model: Module,
  x: Float32Array,
  shape: number[],
  y: Int32Array,
  steps: number,
) {
  const opt = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0 });
  const xt = tensor(x, shape, { backend: be });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const l = tidy(() => {
      const l = crossEntropy(model.forward(xt), y);
      l.backward();
      opt.step();
      return l;
    });
    losses.push(await l.item());
    l.dispose();
  }
  xt.dispose();
  opt.dispose();
  model.dispose();
  return { first: losses[0], last: losses.at(-1)! };
}

const kinds: {
  name: string;
  run: (be: Backend) => Promise<{ first: number; last: number }>;
  factor: number;
}[] = [
  {
    name: "Pixelfly MLP",
    factor: 4,
    run: (be) => {
      manualSeed(1);
      const { x, y } = task(64, 32, 4, 1);
      const m = new Sequential(
        new PixelflyLinear(32, 64, { block: 8, butterflySize: 4, nFactors: 1, rank: 4, backend: be }),
        new MLP(64, {
          hidden: 64,
          linear: { kind: "pixelfly", block: 8, butterflySize: 4, rank: 4 },
          backend: be,
        }),
        new Linear(64, 4, { backend: be }),
      );
      return lossDrop(be, m, x, [64, 32], y, 60);
    },
  },
  {
    name: "Pixelfly MLP-Mixer",
    factor: 3,
    run: (be) => {
      manualSeed(2);
      const { x, y } = task(32, 4 * 8, 3, 2);
      const m = new MlpMixer({
        patches: 4,
        patchDim: 8,
        channels: 16,
        depth: 2,
        classes: 3,
        linear: { kind: "pixelfly", block: 4, butterflySize: 4, nFactors: 1, rank: 2 },
        backend: be,
      });
      return lossDrop(be, m, x, [32, 4, 8], y, 60);
    },
  },
  {
    name: "causal attention (transformer block)",
    factor: 3,
    run: (be) => {
      manualSeed(3);
      // label: does token 7 occur in the sequence?
      const rng = new Rng(3), B = 32, L = 6;
      const ids = new Float32Array(B * L), y = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < L; t++) ids[b * L + t] = rng.int(7);
        if (b % 2 === 0) ids[b * L + rng.int(L)] = 7;
        y[b] = ids.subarray(b * L, b * L + L).includes(7) ? 1 : 0;
      }
      return lossDrop(be, new TinyTransformer(L, be), ids, [B * L], y, 60);
    },
  },
];

for (const k of kinds) {
  Deno.test(`${k.name} lowers its loss on a seeded task (js)`, async () => {
    const { first, last } = await k.run(new JsBackend());
    assertOk(last < first / k.factor, `${k.name}: loss ${first} -> ${last}, expected a ${k.factor}x drop`);
  });
}

for (const entry of backendsUnderTest) {
  Deno.test({ name: `small models learn on ${entry.label}`, ignore: entry.ignore }, async (t) => {
    const be = await entry.make();
    if (be === undefined) return;
    using _dispose = disposing(be);
    for (const k of kinds) {
      await t.step(k.name, async () => {
        const { first, last } = await k.run(be);
        assertOk(last < first / k.factor, `${k.name} on ${entry.label}: loss ${first} -> ${last}`);
      });
    }
  });
}
