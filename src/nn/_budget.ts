/**
 * The paper's Figure 1 pipeline for transformers: describe every matrix
 * multiply of the blocks as a schema, let `allocateBudget` share the compute
 * budget among them, and turn each row of its table into that layer's kind.
 *
 * @module
 */
import { allocateBudget, type Allocation, type LayerAllocation, type LayerSchema } from "../masks/budget.ts";
import type { BlockMask } from "../masks/block_mask.ts";
import type { ProjectionKinds } from "./attention.ts";
import type { LinearKind } from "./layers.ts";

/** What one transformer block gets from an allocation. */
export interface BlockChoice {
  projections: Required<ProjectionKinds>;
  mlp: [LinearKind, LinearKind];
  /** The score layout over the whole context (undefined: dense scores). */
  scores: BlockMask | undefined;
}

function kindOf(row: LayerAllocation): LinearKind {
  return { kind: "pixelfly", block: row.mask.block, mask: row.mask, rank: row.rank };
}

/**
 * Allocate `budget` over `depth` blocks of width `dim` and MLP width `hidden`; attention scores take part when
 * `seqLen` is given (a causal or bidirectional context of that length).
 */
export function allocateTransformer(
  o: { depth: number; dim: number; hidden: number; seqLen?: number; budget: number; block: number },
): { allocation: Allocation; blocks: BlockChoice[] } {
  const schema: LayerSchema[] = [];
  for (let i = 0; i < o.depth; i++) {
    for (const p of ["q", "k", "v", "o"]) {
      schema.push({ name: `h${i}.attn.${p}`, kind: "projection", inFeatures: o.dim, outFeatures: o.dim });
    }
    if (o.seqLen !== undefined) {
      schema.push({
        name: `h${i}.attn.scores`,
        kind: "attention",
        inFeatures: o.dim,
        outFeatures: o.dim,
        seqLen: o.seqLen,
      });
    }
    schema.push({ name: `h${i}.mlp.fc1`, kind: "mlp", inFeatures: o.dim, outFeatures: o.hidden });
    schema.push({ name: `h${i}.mlp.fc2`, kind: "mlp", inFeatures: o.hidden, outFeatures: o.dim });
  }
  const allocation = allocateBudget(schema, { budget: o.budget, block: o.block });
  const row = new Map(allocation.layers.map((l) => [l.name, l]));
  const blocks: BlockChoice[] = [];
  for (let i = 0; i < o.depth; i++) {
    const k = (n: string) => kindOf(row.get(`h${i}.${n}`)!);
    blocks.push({
      projections: { q: k("attn.q"), k: k("attn.k"), v: k("attn.v"), o: k("attn.o") },
      mlp: [k("mlp.fc1"), k("mlp.fc2")],
      scores: row.get(`h${i}.attn.scores`)?.mask,
    });
  }
  return { allocation, blocks };
}
