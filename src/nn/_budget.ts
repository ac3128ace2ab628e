/**
 * The paper's Figure 1 pipeline for transformers: describe every matrix
 * multiply of the blocks as a schema, let `allocateBudget` share the compute
 * budget among them, and turn each row of its table into that layer's kind.
 *
 * @module
 */
import {
  allocateBudget,
  type Allocation,
  checkBudget,
  type LayerAllocation,
  type LayerSchema,
} from "../masks/budget.ts";
import type { BlockMask } from "../masks/block_mask.ts";
import type { ProjectionKinds } from "./attention.ts";
import type { LinearKind } from "./layers.ts";
import { checkPositiveInt } from "../validate.ts";

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

/** One linear layer a budget may sparsify (see {@link allocateLinears}). */
export interface BudgetLinear {
  /** The layer's path in the model (the table's name). */
  name: string;
  inFeatures: number;
  outFeatures: number;
  /** Times the layer runs per unit of the model's cost (1; see `LayerSchema.uses`). */
  uses?: number;
}

/**
 * The paper's Figure 1 pipeline for MLPs and Mixers: allocate `budget` over the linear layers whose both
 * sides are at least `block` (each gets its Pixelfly kind, by name); a layer with a side shorter than a
 * tile stays dense and outside the allocation, as embeddings and heads do (no flat block butterfly of it
 * would cost less than the dense layer). A RangeError names `op` when no layer is that large. `report`
 * prints the allocation table, the layers left dense, and the built against the dense parameter count.
 */
export function allocateLinears(
  op: string,
  layers: BudgetLinear[],
  o: { budget: number; block: number; unit?: string },
): { kinds: Map<string, LinearKind>; report: (built: number, dense: number) => string } {
  checkBudget(op, o.budget);
  checkPositiveInt(op, "budgetBlock", o.block);
  const big = layers.filter((l) => l.inFeatures >= o.block && l.outFeatures >= o.block);
  if (big.length === 0) {
    throw new RangeError(
      `${op}: budget ${o.budget} has no layer to share: every linear layer has a side shorter than ` +
        `budgetBlock ${o.block} (${
          layers.map((l) => `${l.name} ${l.outFeatures}x${l.inFeatures}`).join(", ")
        })`,
    );
  }
  const schema: LayerSchema[] = big.map((l) => ({
    name: l.name,
    kind: "mlp",
    inFeatures: l.inFeatures,
    outFeatures: l.outFeatures,
    ...(l.uses === undefined ? {} : { uses: l.uses }),
  }));
  const allocation = allocateBudget(schema, { budget: o.budget, block: o.block, unit: o.unit });
  const small = layers.filter((l) => !big.includes(l));
  const report = (built: number, dense: number) =>
    [
      allocation.toString(),
      ...(small.length === 0 ? [] : [
        `dense, outside the budget (a side shorter than budgetBlock ${o.block}): ` +
        small.map((l) => `${l.name} ${l.outFeatures}x${l.inFeatures}`).join(", "),
      ]),
      `built: ${built} parameters (dense ${dense})`,
    ].join("\n");
  return { kinds: new Map(allocation.layers.map((l) => [l.name, kindOf(l)])), report };
}
