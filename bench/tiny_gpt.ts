/**
 * The tiny GPT-like model of issue 10 ("a training loop written the way
 * PyTorch users write it"): token and position embeddings, two pre-LN
 * transformer blocks whose projections and MLPs are Pixelfly layers, a
 * LayerNorm and a linear head; batch 8 x 32 tokens, width 64. The memory
 * test and `bench/memory_loop.ts` share it.
 *
 * @module
 */
import {
  AdamW,
  add,
  crossEntropy,
  Embedding,
  LayerNorm,
  Linear,
  Module,
  reshape,
  type Tensor,
  tensor,
  TransformerBlock,
} from "../mod.ts";
import type { Backend } from "../src/backends/types.ts";

/** Sizes of the loop. */
export const GPT = { vocab: 64, width: 64, heads: 4, batch: 8, tokens: 32, depth: 2 } as const;

/** Token + position embeddings, transformer blocks, final norm and a head over the vocabulary. */
export class TinyGpt extends Module {
  readonly tok: Embedding;
  readonly pos: Embedding;
  readonly blocks: TransformerBlock[];
  readonly norm: LayerNorm;
  readonly head: Linear;
  readonly #positions: number[];

  constructor(backend: Backend, seed = 1) {
    super();
    const { vocab, width, heads, tokens, depth, batch } = GPT;
    this.tok = this.child("tok", new Embedding(vocab, width, { backend, seed }));
    this.pos = this.child("pos", new Embedding(tokens, width, { backend, seed: seed + 1 }));
    const linear = { kind: "pixelfly" as const, block: 8, butterflySize: 8, nFactors: 1, rank: 4 };
    this.blocks = Array.from({ length: depth }, (_, i) =>
      this.child(
        `blocks.${i}`,
        new TransformerBlock(width, {
          heads,
          causal: true,
          linear,
          mlpHidden: 2 * width,
          backend,
          seed: seed + 2 + i,
        }),
      ));
    this.norm = this.child("norm", new LayerNorm(width, { backend }));
    this.head = this.child("head", new Linear(width, vocab, { backend, seed: seed + 9 }));
    this.#positions = Array.from({ length: batch * tokens }, (_, i) => i % tokens);
  }

  /** `ids` holds batch x tokens token ids; returns (batch·tokens, vocab) logits. */
  forward(ids: Tensor): Tensor {
    const { batch, tokens, width } = GPT;
    let h = reshape(add(this.tok.forward(ids), this.pos.lookup(this.#positions)), [batch, tokens, width]);
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(reshape(this.norm.forward(h), [batch * tokens, width]));
  }
}

/** A seeded stream of next-token batches: the sequence counts up modulo the vocabulary from a random start. */
export function batchAt(step: number): { ids: number[]; targets: number[] } {
  const { vocab, batch, tokens } = GPT;
  const ids: number[] = [], targets: number[] = [];
  for (let b = 0; b < batch; b++) {
    const start = (step * 7919 + b * 104729) % vocab;
    for (let t = 0; t < tokens; t++) {
      ids.push((start + t) % vocab);
      targets.push((start + t + 1) % vocab);
    }
  }
  return { ids, targets };
}

/**
 * The loop as a PyTorch user writes it: no tidy, no dispose. `onStep` sees
 * the step number and the loss tensor after `opt.step()`.
 */
export async function pytorchStyleLoop(
  be: Backend,
  steps: number,
  onStep: (step: number, loss: Tensor) => void | Promise<void>,
): Promise<void> {
  const model = new TinyGpt(be);
  const opt = new AdamW(model.parameters(), { lr: 3e-3 });
  try {
    for (let step = 0; step < steps; step++) {
      const { ids, targets } = batchAt(step);
      const x = tensor(ids, [ids.length], { backend: be }); // torch.tensor(batch)
      const loss = crossEntropy(model.forward(x), targets);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      await onStep(step, loss);
    }
  } finally {
    opt.dispose();
    model.dispose();
  }
}
