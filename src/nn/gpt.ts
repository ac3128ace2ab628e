/**
 * GPT: a decoder-only transformer language model (GPT-2 conventions), whose
 * MLPs and attention projections can be Pixelfly layers and whose attention
 * can be block-sparse (Chen, Dao et al., ICLR 2022, Section 5.2 trains
 * Pixelfly GPT-2 on WikiText-103).
 *
 * @module
 */
import { add, crossEntropy, gather, matmul, reshape } from "../ops.ts";
import { noGrad } from "../autograd.ts";
import type { SequenceMaskFactory } from "../masks/sequence.ts";
import { Rng } from "../random.ts";
import { keep, Tensor, tensor, tidy } from "../tensor.ts";
import { linearFlops } from "../train.ts";
import {
  _checkTransformerOptions,
  type ProjectionKinds,
  type ScoreMaskOptions,
  TransformerBlock,
} from "./attention.ts";
import { Dropout, Embedding, LayerNorm, type LinearKind } from "./layers.ts";
import { Linear } from "./linear.ts";
import { allocateTransformer } from "./_budget.ts";
import type { Allocation } from "../masks/budget.ts";
import { checkPositiveInt, type LayerOptions, Module, rngFor } from "./module.ts";

/** Configuration of {@link GPT}. */
export interface GPTConfig extends LayerOptions {
  /** Number of token ids. */
  vocabSize: number;
  /** Longest sequence (learned positions). */
  context: number;
  /** Model width. */
  dim: number;
  /** Number of transformer blocks. */
  depth: number;
  /** Attention heads per block. */
  heads: number;
  /** MLP hidden width (4 × dim). */
  mlpHidden?: number;
  /** The MLPs' and attention projections' linear layers: "dense" (default) or Pixelfly options. */
  linear?: LinearKind;
  /** Per-projection kinds overriding `linear` in attention (fly: `{ o: "dense" }`). */
  projections?: ProjectionKinds;
  /** "dense" (default) or a block-sparse score layout (options or a mask factory); always causal. */
  attention?: "dense" | ScoreMaskOptions | SequenceMaskFactory;
  /** Dropout on the embeddings and each residual branch (0). */
  dropout?: number;
  /**
   * A fraction of the dense model's compute: every projection, MLP layer and attention score matrix gets
   * its butterfly size, factors, rank and score layout from `allocateBudget` (the paper's Figure 1); then
   * `linear`, `projections` and `attention` must be left out. See {@link GPT.budgetReport}.
   */
  budget?: number;
  /** Tile edge of a budget allocation (32). */
  budgetBlock?: number;
}

/** Options of {@link GPT.generate}. */
export interface GenerateOptions {
  /** Tokens to add to each prompt. */
  maxNewTokens: number;
  /** Softmax temperature (1); 0 picks the most likely token. */
  temperature?: number;
  /** Sample only among the k most likely tokens (all). */
  topK?: number;
  /** Seed of the sampling (0): the same seed gives the same tokens. */
  seed?: number;
}

function checkIds(op: string, ids: unknown, vocab: number): { flat: Float32Array; B: number; L: number } {
  const rows = Array.isArray(ids) && ids.length > 0 && Array.isArray(ids[0])
    ? ids as number[][]
    : [ids as number[]];
  if (!Array.isArray(rows[0])) {
    throw new TypeError(`${op}: ids must be a (B, L) Tensor or arrays of token ids, got ${typeof ids}`);
  }
  const B = rows.length, L = rows[0].length;
  if (L === 0) throw new RangeError(`${op}: sequences must not be empty`);
  const flat = new Float32Array(B * L);
  rows.forEach((r, b) => {
    if (!Array.isArray(r) || r.length !== L) {
      throw new RangeError(`${op}: every sequence must have ${L} ids; sequence ${b} has ${r?.length}`);
    }
    r.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0 || v >= vocab) {
        throw new RangeError(`${op}: id ${v} at [${b}, ${i}] is not an integer in [0, ${vocab})`);
      }
      flat[b * L + i] = v;
    });
  });
  return { flat, B, L };
}

/**
 * A GPT language model: token embedding + learned positions, `depth` pre-LN
 * causal transformer blocks, final LayerNorm, and an LM head tied to the
 * token embedding, GELU in GPT-2's tanh form. GPT-2 initialisation (std 0.02, residual projections
 * scaled by 1/sqrt(2·depth) on dense layers; Pixelfly layers keep their own
 * initialisation, residual ones scaled the same way); weight decay as in fly
 * (weight matrices decay; biases, norms and embeddings do not).
 *
 * @example
 * ```ts
 * import { GPT } from "@pixelfly/pixelfly";
 * const gpt = new GPT({ vocabSize: 16, context: 8, dim: 16, depth: 1, heads: 2, seed: 0 });
 * console.log(gpt.forward([[1, 2, 3]]).shape); // [1, 3, 16]
 * console.log((await gpt.generate([[1, 2]], { maxNewTokens: 3, seed: 1 }))[0].length); // 5
 * ```
 */
export class GPT extends Module {
  /** The configuration it was built with. */
  readonly config: Readonly<GPTConfig>;
  /** Token embedding (also the LM head). */
  readonly wte: Embedding;
  /** Learned positions. */
  readonly wpe: Embedding;
  /** The transformer blocks. */
  readonly blocks: TransformerBlock[];
  /** The final LayerNorm. */
  readonly lnF: LayerNorm;
  readonly #drop: Dropout | undefined;
  #allocation: Allocation | undefined;

  /** Build the model; see {@link GPTConfig}. */
  constructor(config: GPTConfig) {
    super();
    const op = "GPT";
    if (config === null || typeof config !== "object") throw new TypeError(`${op}: config must be an object`);
    const vocab = checkPositiveInt(op, "vocabSize", config.vocabSize);
    const context = checkPositiveInt(op, "context", config.context);
    const dim = checkPositiveInt(op, "dim", config.dim);
    const depth = checkPositiveInt(op, "depth", config.depth);
    _checkTransformerOptions(op, dim, { ...config });
    this.config = Object.freeze({ ...config });
    const rng = rngFor(config), backend = config.backend;
    this.wte = this.child("wte", new Embedding(vocab, dim, { backend, seed: rng.nextUint32() }));
    this.wpe = this.child("wpe", new Embedding(context, dim, { backend, seed: rng.nextUint32() }));
    this.#drop = config.dropout
      ? this.child("drop", new Dropout(config.dropout, { seed: rng.nextUint32() }))
      : undefined;
    const att = config.attention === "dense" ? undefined : config.attention;
    let choices: ReturnType<typeof allocateTransformer>["blocks"] | undefined;
    if (config.budget !== undefined) {
      if (config.linear !== undefined || config.projections !== undefined || config.attention !== undefined) {
        throw new RangeError(
          `${op}: budget chooses every layer; leave linear, projections and attention out`,
        );
      }
      const plan = allocateTransformer({
        depth,
        dim,
        hidden: config.mlpHidden ?? 4 * dim,
        seqLen: context,
        budget: config.budget,
        block: config.budgetBlock ?? 32,
      });
      this.#allocation = plan.allocation;
      choices = plan.blocks;
    }
    this.blocks = [];
    for (let i = 0; i < depth; i++) {
      const c = choices?.[i], scores = c?.scores;
      this.blocks.push(this.child(
        `h${i}`,
        new TransformerBlock(dim, {
          heads: config.heads,
          causal: true,
          linear: config.linear,
          projections: c ? c.projections : config.projections,
          mlpLinear: c?.mlp,
          scoreMask: c ? (scores ? () => scores : undefined) : att,
          context,
          mlpHidden: config.mlpHidden,
          activation: "gelu-tanh", // GPT-2's gelu_new
          dropout: config.dropout,
          backend,
          seed: rng.nextUint32(),
        }),
      ));
    }
    this.lnF = this.child("ln_f", new LayerNorm(dim, { backend }));
    this.#gpt2Init(rng, depth);
  }

  #gpt2Init(rng: Rng, depth: number): void {
    const resid = 1 / Math.sqrt(2 * depth);
    const init = (m: Module, scale: number) => {
      for (const [, c] of m.namedChildren()) init(c, scale);
      if (m instanceof Linear) {
        const w = new Float32Array(m.weight.size);
        for (let i = 0; i < w.length; i++) w[i] = rng.normal(0, 0.02 * scale);
        m.weight.backend.write(m.weight.buffer, w);
        if (m.bias) m.bias.backend.fill(m.bias.buffer, { size: m.bias.size, value: 0 });
      }
    };
    const scaleAll = (m: Module, s: number) => {
      for (const [, p] of m.namedParameters()) {
        if (p.rank >= 2) {
          p.backend.scale(p.buffer, p.buffer, { size: p.size, alpha: s, beta: 0, accumulate: false });
        }
      }
    };
    for (const b of this.blocks) {
      for (const m of [b.attn.q, b.attn.k, b.attn.v, b.mlp.fc1]) init(m, 1);
      for (const m of [b.attn.o, b.mlp.fc2]) {
        if (m instanceof Linear) init(m, resid);
        else scaleAll(m, resid); // Pixelfly: its own initialisation, scaled like GPT-2's residual projections
      }
    }
  }

  /**
   * With a `budget`: the allocation table (what each layer got, its kept entries and cost per token) and the
   * built model's real parameter count and FLOPs per token against the dense model's.
   */
  budgetReport(): string {
    const a = this.#allocation;
    if (!a) return "GPT: built without a budget (every layer as configured)";
    const { vocabSize, context, dim, depth, heads, mlpHidden } = this.config;
    const dense = new GPT({
      vocabSize,
      context,
      dim,
      depth,
      heads,
      mlpHidden,
      seed: 0,
      backend: this.config.backend,
    });
    const lines = [
      a.toString(),
      `built: ${this.parameterCount()} parameters (dense ${dense.parameterCount()}), ` +
      `${this.flopsPerToken().toFixed(0)} FLOPs/token (dense ${dense.flopsPerToken().toFixed(0)})`,
    ];
    dense.dispose();
    return lines.join("\n");
  }

  /** Token ids as a (B, L) tensor on the model's backend. */
  #idTensor(op: string, ids: Tensor | number[][] | number[]): Tensor {
    const be = this.wte.weight.backend;
    if (ids instanceof Tensor) {
      if (ids.rank !== 2) throw new RangeError(`${op}: ids [${ids.shape}] must be (batch, length)`);
      return ids;
    }
    const { flat, B, L } = checkIds(op, ids, this.config.vocabSize);
    return tensor(flat, [B, L], { backend: be });
  }

  /** Logits (B, L, vocabSize) for token ids (B, L): a tensor or nested arrays. */
  forward(ids: Tensor | number[][] | number[]): Tensor {
    const op = "GPT.forward";
    const idx = this.#idTensor(op, ids);
    const [B, L] = idx.shape, D = this.config.dim, V = this.config.vocabSize;
    if (L > this.config.context) {
      throw new RangeError(`${op}: length ${L} is longer than the context ${this.config.context}`);
    }
    const tok = gather(this.wte.weight, idx); // (B, L, D)
    const pos = gather(this.wpe.weight, Array.from({ length: L }, (_, i) => i)); // (L, D)
    let h = reshape(add(reshape(tok, [B, L * D]), reshape(pos, [L * D])), [B, L, D]);
    if (this.#drop) h = this.#drop.forward(h);
    for (const b of this.blocks) h = b.forward(h);
    h = this.lnF.forward(h);
    return reshape(matmul(reshape(h, [B * L, D]), this.wte.weight, { transB: true }), [B, L, V]);
  }

  /** Mean next-token cross-entropy of `ids` (B, L) against `targets` (B, L) (usually ids shifted by one). */
  loss(ids: Tensor | number[][], targets: Tensor | number[][]): Tensor {
    const logits = this.forward(ids);
    const [B, L, V] = logits.shape;
    const t = this.#idTensor("GPT.loss", targets);
    if (t.size !== B * L) {
      throw new RangeError(`GPT.loss: targets [${t.shape}] must be (${B}, ${L}) like ids`);
    }
    return crossEntropy(reshape(logits, [B * L, V]), reshape(t, [B * L]));
  }

  /**
   * Multiply-adds x 2 per token of a forward pass at sequence length L: every linear layer, the
   * attention scores and their weighted sum over the kept positions, and the LM head.
   */
  flopsPerToken(L: number = this.config.context): number {
    const { dim, vocabSize } = this.config;
    let f = linearFlops(this) + 2 * dim * vocabSize;
    for (const b of this.blocks) {
      const m = b.attn.maskFor(L);
      let kept = 0; // visible (query, key) pairs, causal
      for (let i = 0; i < L; i++) {
        for (let j = 0; j <= i; j++) {
          if (!m || m.has(Math.floor(i / m.block), Math.floor(j / m.block))) kept++;
        }
      }
      f += (2 * 2 * dim * kept) / L;
    }
    return f;
  }

  /**
   * Extend each prompt by `maxNewTokens` sampled tokens. Keys and values are cached, so each new token
   * costs O(context), not O(L²); past the context the window slides and the cache is rebuilt.
   * Deterministic for a seed.
   */
  async generate(prompts: number[][] | number[], opts: GenerateOptions): Promise<number[][]> {
    const op = "GPT.generate";
    const { flat, B, L } = checkIds(op, prompts, this.config.vocabSize);
    const { maxNewTokens, temperature = 1, topK, seed = 0 } = opts ?? {} as GenerateOptions;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
      throw new RangeError(`${op}: maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
    }
    if (typeof temperature !== "number" || !(temperature >= 0) || temperature === Infinity) {
      throw new RangeError(`${op}: temperature must be a finite number >= 0, got ${temperature}`);
    }
    if (typeof seed !== "number" || !Number.isFinite(seed)) {
      throw new RangeError(`${op}: seed must be a finite number, got ${seed}`);
    }
    if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) {
      throw new RangeError(`${op}: topK must be a positive integer, got ${topK}`);
    }
    const seqs = Array.from({ length: B }, (_, b) => Array.from(flat.subarray(b * L, (b + 1) * L)));
    const rng = new Rng(seed), C = this.config.context, V = this.config.vocabSize, D = this.config.dim;
    const wasTraining = this.training;
    this.eval();
    let caches = this.blocks.map((b) => b.attn.newCache(B, C));
    let cached = 0, cacheStart = 0; // positions in the cache, and the token at its position 0
    try {
      for (let step = 0; step < maxNewTokens; step++) {
        const s0 = Math.max(0, seqs[0].length - C), n = seqs[0].length - s0;
        if (s0 !== cacheStart) {
          // past the context the window slides: positions shift, so the cache is rebuilt
          for (const c of caches) c.k.dispose(), c.v.dispose();
          caches = this.blocks.map((b) => b.attn.newCache(B, C));
          cached = 0;
          cacheStart = s0;
        }
        let logits: Float32Array | undefined;
        for (; cached < n; cached++) {
          const toks = seqs.map((s) => s[s0 + cached]);
          const last = cached === n - 1;
          const out = tidy(() =>
            noGrad(() => {
              const x = add(
                reshape(gather(this.wte.weight, toks), [B, D]),
                reshape(gather(this.wpe.weight, [cached]), [D]),
              );
              let h = reshape(x, [B, 1, D]);
              this.blocks.forEach((b, i) => h = b.step(h, caches[i], cached));
              if (!last) return undefined;
              h = this.lnF.forward(reshape(h, [B, D]));
              return keep(matmul(h, this.wte.weight, { transB: true }));
            })
          );
          if (out) {
            logits = await out.data();
            out.dispose();
          }
        }
        for (let b = 0; b < B; b++) {
          seqs[b].push(sample(logits!.subarray(b * V, (b + 1) * V), temperature, topK, rng));
        }
      }
    } finally {
      for (const c of caches) c.k.dispose(), c.v.dispose();
      this.train(wasTraining);
    }
    return seqs;
  }
}

/** One token from logits: argmax at temperature 0, else a draw from the (top-k) softmax. */
function sample(logits: Float32Array, temperature: number, topK: number | undefined, rng: Rng): number {
  const V = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[j] > logits[best]) best = j;
    return best;
  }
  let order = Array.from({ length: V }, (_, j) => j);
  if (topK !== undefined && topK < V) order = order.sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  const mx = Math.max(...order.map((j) => logits[j]));
  const w = order.map((j) => Math.exp((logits[j] - mx) / temperature));
  let u = rng.uniform() * w.reduce((a, b) => a + b, 0);
  for (let t = 0; t < order.length; t++) {
    u -= w[t];
    if (u <= 0) return order[t];
  }
  return order[order.length - 1];
}
