/**
 * Budget allocation of Pixelated Butterfly (Chen, Dao et al., ICLR 2022,
 * Section 3.3 and Figure 1): turn a compute budget into flat block butterfly
 * hyper-parameters and a low-rank rank, for one layer (`pixelflyBudget`) and
 * for a whole model (`allocateBudget`).
 *
 * @module
 */
import type { BlockMask } from "./block_mask.ts";
import { flatBlockButterfly } from "./patterns.ts";
import { checkPositiveInt } from "../validate.ts";

/** The paper's defaults: block 32, butterfly size 16, 2 factors, rank 32. */
const DEFAULT_BUTTERFLY_SIZE = 16;
const DEFAULT_N_FACTORS = 2;
const DEFAULT_RANK = 32;

/** Options of {@link pixelflyBudget}. */
export interface PixelflyBudgetOptions {
  /** Columns of the weight (K). */
  inFeatures: number;
  /** Rows of the weight (N). */
  outFeatures: number;
  /** Target cost as a fraction of the dense layer's `outFeatures * inFeatures`, in (0, 1]. */
  budget: number;
  /** Tile edge b (32). */
  block?: number;
}

/** The choice {@link pixelflyBudget} makes for one layer. */
export interface PixelflyChoice {
  /** Tile edge b. */
  block: number;
  /** Side of the butterfly grid (a power of two). */
  butterflySize: number;
  /** Butterfly factors in the union. */
  nFactors: number;
  /** Rank of the low-rank term `U·V` (0 when the budget leaves no room for it). */
  rank: number;
  /** The flat block butterfly mask (from `flatBlockButterfly`). */
  mask: BlockMask;
  /** Cost of the choice: `mask.nnz * block² + rank * (inFeatures + outFeatures)`. */
  params: number;
  /** Cost of the dense layer: `outFeatures * inFeatures`. */
  denseParams: number;
  /** `params / denseParams`, never above the budget. */
  fraction: number;
}

interface Candidate {
  butterflySize: number;
  nFactors: number;
  mask: BlockMask;
  /** Kept elements of the sparse part: nnz * block². */
  sparse: number;
}

/** Check a budget: a number in (0, 1], naming `op` (the layers' `budget` option checks with it too). */
export function checkBudget(op: string, budget: unknown): asserts budget is number {
  if (typeof budget !== "number") throw new TypeError(`${op}: budget must be a number, got ${typeof budget}`);
  if (!(budget > 0 && budget <= 1)) {
    throw new RangeError(`${op}: budget must be a fraction of the dense cost in (0, 1], got ${budget}`);
  }
}

/** How far a (butterflySize, nFactors) pair is from the paper's defaults; smaller is preferred. */
function preference(c: Candidate): [number, number, number] {
  return [
    Math.abs(Math.log2(c.butterflySize) - Math.log2(DEFAULT_BUTTERFLY_SIZE)),
    Math.abs(c.nFactors - DEFAULT_N_FACTORS),
    c.butterflySize,
  ];
}

/** Whether `a` is nearer the paper's defaults than `b` (then: more kept elements, then the smaller grid). */
function better(a: Candidate, b: Candidate): boolean {
  const pa = preference(a), pb = preference(b);
  for (let i = 0; i < 2; i++) if (pa[i] !== pb[i]) return pa[i] < pb[i];
  if (a.sparse !== b.sparse) return a.sparse > b.sparse;
  return pa[2] < pb[2];
}

/** The last shapes' candidates (masks are immutable, so sharing them is safe). */
const CANDIDATES = new Map<string, Candidate[]>();

/**
 * Every flat block butterfly that fits the layer: butterflySize a power of two
 * dividing both padded dimensions and at most the power of two at or above
 * twice the larger tile count (beyond that, tiles pool several grid cells and
 * the masks only repeat sparser ones), and 1 <= nFactors <= log2 of it.
 */
function candidates(op: string, outFeatures: number, inFeatures: number, block: number): Candidate[] {
  const key = `${outFeatures}x${inFeatures}/${block}`;
  const hit = CANDIDATES.get(key);
  if (hit) return hit;
  const outP = Math.ceil(outFeatures / block) * block, inP = Math.ceil(inFeatures / block) * block;
  const maxSize = 2 ** Math.ceil(Math.log2((2 * Math.max(outP, inP)) / block));
  const list: Candidate[] = [];
  for (let size = 2; size <= maxSize && outP % size === 0 && inP % size === 0; size *= 2) {
    for (let f = 1; f <= Math.log2(size); f++) {
      const mask = flatBlockButterfly({ outFeatures, inFeatures, block, butterflySize: size, nFactors: f });
      list.push({ butterflySize: size, nFactors: f, mask, sparse: mask.nnz * block * block });
    }
  }
  if (list.length === 0) {
    throw new RangeError(
      `${op}: a ${outFeatures}x${inFeatures} layer with block ${block} pads to ${outP}x${inP}, which no ` +
        `butterflySize >= 2 divides; use a shape whose padded sizes are even`,
    );
  }
  if (CANDIDATES.size >= 64) CANDIDATES.delete(CANDIDATES.keys().next().value!);
  CANDIDATES.set(key, list);
  return list;
}

/** The cheapest choice for a layer (sparsest butterfly, rank 0), in kept elements. */
function minimumParams(list: Candidate[]): number {
  let min = Infinity;
  for (const c of list) min = Math.min(min, c.sparse);
  return min;
}

function choose(
  op: string,
  list: Candidate[],
  outFeatures: number,
  inFeatures: number,
  block: number,
  target: number,
  budget: number,
  lowRank = true,
): PixelflyChoice {
  const dense = outFeatures * inFeatures, perRank = inFeatures + outFeatures;
  // 1. The low-rank part is promised the paper's rank 32, but at most half the budget (none without one).
  const reserved = lowRank
    ? Math.min(DEFAULT_RANK, Math.min(inFeatures, outFeatures), Math.floor(target / 2 / perRank))
    : 0;
  // 2. The sparse part: among the butterflies that fit in the rest (or, when none does, in the whole
  //    budget), those within 32 rank steps of the one keeping the most elements; of these, the nearest
  //    the paper's defaults.
  let best: Candidate | undefined;
  for (const limit of [target - reserved * perRank, target]) {
    let most = -1;
    for (const c of list) if (c.sparse <= limit) most = Math.max(most, c.sparse);
    if (most < 0) continue;
    const floor = most - DEFAULT_RANK * perRank;
    for (const c of list) if (c.sparse <= limit && c.sparse >= floor && (!best || better(c, best))) best = c;
    break;
  }
  if (!best) {
    let min = list[0];
    for (const c of list) if (c.sparse < min.sparse || (c.sparse === min.sparse && better(c, min))) min = c;
    throw new RangeError(
      `${op}: budget ${budget} of a ${outFeatures}x${inFeatures} layer allows ${Math.floor(target)} ` +
        `parameters, fewer than the sparsest flat block butterfly with block ${block} keeps ` +
        `(butterflySize ${min.butterflySize}, nFactors ${min.nFactors}: ${min.mask.nnz} blocks, ${min.sparse} ` +
        `parameters); the budget must be at least ${min.sparse / dense}`,
    );
  }
  // 3. What is left goes to the low-rank term, so the cost ends within one rank step of the budget.
  const rank = lowRank
    ? Math.min(Math.min(inFeatures, outFeatures), Math.floor((target - best.sparse) / perRank))
    : 0;
  const params = best.sparse + rank * perRank;
  return {
    block,
    butterflySize: best.butterflySize,
    nFactors: best.nFactors,
    rank,
    mask: best.mask,
    params,
    denseParams: dense,
    fraction: params / dense,
  };
}

/**
 * The paper's per-layer allocation step (Pixelated Butterfly, Section 3.3):
 * given a budget as a fraction of the dense layer's cost `outFeatures *
 * inFeatures`, choose the flat block butterfly (`butterflySize`, `nFactors`)
 * and the rank of the low-rank term so that the cost `mask.nnz * block² +
 * rank * (inFeatures + outFeatures)` is at most the budget and as close to it
 * as possible.
 *
 * The rule, in the paper's spirit of a simple fixed split:
 * 1. the low-rank term is promised the paper's rank 32 (capped at half the
 *    budget and at min(inFeatures, outFeatures));
 * 2. the sparse part: of the flat block butterflies that fit in the rest
 *    (kept elements counted after padding and pooling), those at most 32 rank
 *    steps (`32 * (inFeatures + outFeatures)` parameters) below the densest
 *    one are acceptable, and the acceptable one nearest the paper's defaults
 *    wins: butterflySize nearest 16, then nFactors nearest 2, then more kept
 *    elements, then the smaller grid. When none fits in the rest, the same
 *    rule runs on the whole budget (rank 0 promised);
 * 3. whatever is left raises the rank, so the cost lands within one rank step
 *    (`inFeatures + outFeatures` parameters) below the budget.
 *
 * So when the defaults fit (block 32, butterflySize 16, nFactors 2, rank 32
 * cost at most the budget) and nothing much denser does, the defaults come
 * back, with the rank raised to spend the rest; larger budgets buy denser
 * butterflies and larger ranks. As the cost always lies within one rank step
 * below the budget, raising the budget by more than one rank step never
 * lowers the cost.
 *
 * Throws a RangeError naming the values when the budget is below the sparsest
 * flat block butterfly of the shape, or when no butterflySize divides the
 * padded shape.
 *
 * @example
 * ```ts
 * import { pixelflyBudget } from "@pixelfly/pixelfly";
 * const c = pixelflyBudget({ inFeatures: 1024, outFeatures: 1024, budget: 0.25 });
 * console.log(c.butterflySize, c.nFactors, c.rank, c.fraction); // 16 2 32 0.25
 * console.log(c.mask.nnz); // 192
 * ```
 */
export function pixelflyBudget(opts: PixelflyBudgetOptions): PixelflyChoice {
  const op = "pixelflyBudget";
  if (opts === null || typeof opts !== "object") throw new TypeError(`${op}: options must be an object`);
  const { inFeatures, outFeatures, budget, block = 32 } = opts;
  checkPositiveInt(op, "inFeatures", inFeatures);
  checkPositiveInt(op, "outFeatures", outFeatures);
  checkPositiveInt(op, "block", block);
  checkBudget(op, budget);
  const list = candidates(op, outFeatures, inFeatures, block);
  return choose(op, list, outFeatures, inFeatures, block, budget * outFeatures * inFeatures, budget);
}

/** One matrix multiply of a model, as {@link allocateBudget} reads it. */
export interface LayerSchema {
  /** A unique name for the table. */
  name: string;
  /**
   * `"mlp"` and `"projection"`: a weight of `outFeatures x inFeatures`.
   * `"attention"` with `seqLen`: the attention score matrix (`seqLen x seqLen`) of a layer whose
   * queries/keys are `inFeatures` wide and values `outFeatures` wide; without `seqLen`, a weight like the others.
   */
  kind: "mlp" | "attention" | "projection";
  /** Input width (K). */
  inFeatures: number;
  /** Output width (N). */
  outFeatures: number;
  /** Sequence length, for `"attention"` only. */
  seqLen?: number;
  /**
   * How many times the layer runs per token of the model (1): its cost is multiplied by it. A Mixer's
   * token-mixing layers run once per channel of an example and its channel-mixing layers once per patch,
   * so there the unit is an example, and the uses are the channels and the patches.
   */
  uses?: number;
}

/** One row of {@link allocateBudget}'s table. */
export interface LayerAllocation {
  /** The layer's name. */
  name: string;
  /** The layer's kind. */
  kind: LayerSchema["kind"];
  /** The sparsified matrix, `[rows, cols]` in elements: the weight, or `[seqLen, seqLen]` for attention scores. */
  shape: [number, number];
  /** Side of the butterfly grid. */
  butterflySize: number;
  /** Butterfly factors in the union. */
  nFactors: number;
  /** Rank of the low-rank term. */
  rank: number;
  /** Kept fraction of the mask's tiles. */
  density: number;
  /** Kept entries of the matrix: `mask.nnz * block² + rank * (rows + cols)`. */
  params: number;
  /** `params / (rows * cols)`: this layer's own fraction of its dense cost. */
  fraction: number;
  /** Multiply-adds per token of the layer as chosen (`fraction * denseCost`). */
  cost: number;
  /** Multiply-adds per token of the dense layer. */
  denseCost: number;
  /** The mask. */
  mask: BlockMask;
}

/** The result of {@link allocateBudget}. */
export interface Allocation {
  /** The requested budget (fraction of the dense model's cost). */
  budget: number;
  /** One row per schema entry, in schema order. */
  layers: LayerAllocation[];
  /** Total multiply-adds per token as chosen. */
  cost: number;
  /** Total multiply-adds per token of the dense model. */
  denseCost: number;
  /** `cost / denseCost`, never above the budget. */
  fraction: number;
  /** The table, aligned, with a totals line. */
  toString(): string;
}

const KINDS = ["mlp", "attention", "projection"] as const;

/** Multiply-adds per token of the dense layer, and the matrix that gets the mask. */
function layerCost(l: LayerSchema): { dense: number; rows: number; cols: number } {
  const uses = l.uses ?? 1;
  if (l.kind === "attention" && l.seqLen !== undefined) {
    // Q·Kᵀ costs seqLen·inFeatures and A·V seqLen·outFeatures per token: seqLen² per sequence.
    return { dense: uses * l.seqLen * (l.inFeatures + l.outFeatures), rows: l.seqLen, cols: l.seqLen };
  }
  return { dense: uses * l.outFeatures * l.inFeatures, rows: l.outFeatures, cols: l.inFeatures };
}

function checkSchema(op: string, schema: unknown): asserts schema is LayerSchema[] {
  if (!Array.isArray(schema)) {
    throw new TypeError(`${op}: schema must be an array of layers, got ${typeof schema}`);
  }
  if (schema.length === 0) throw new RangeError(`${op}: schema must list at least one layer, got 0`);
  const names = new Set<string>();
  schema.forEach((l, i) => {
    if (l === null || typeof l !== "object") throw new TypeError(`${op}: schema[${i}] must be an object`);
    if (typeof l.name !== "string") {
      throw new TypeError(`${op}: schema[${i}].name must be a string, got ${l.name}`);
    }
    if (names.has(l.name)) throw new RangeError(`${op}: schema[${i}].name "${l.name}" is used twice`);
    names.add(l.name);
    if (!KINDS.includes(l.kind)) {
      throw new RangeError(`${op}: schema[${i}].kind must be one of ${KINDS.join(", ")}, got ${l.kind}`);
    }
    checkPositiveInt(op, `schema[${i}].inFeatures`, l.inFeatures);
    checkPositiveInt(op, `schema[${i}].outFeatures`, l.outFeatures);
    if (l.uses !== undefined) checkPositiveInt(op, `schema[${i}].uses`, l.uses);
    if (l.seqLen !== undefined) {
      checkPositiveInt(op, `schema[${i}].seqLen`, l.seqLen);
      if (l.kind !== "attention") {
        throw new RangeError(`${op}: schema[${i}].seqLen is for attention layers only, got kind ${l.kind}`);
      }
    }
  });
}

/**
 * The paper's whole-model step (Pixelated Butterfly, Figure 1): for each
 * matrix multiply of a model schema, allocate a share of the compute budget
 * by dimension and layer type, map it to flat block butterfly
 * hyper-parameters with {@link pixelflyBudget}, and output the mask.
 *
 * Cost model, in multiply-adds per token: an `"mlp"` or `"projection"` layer
 * (or an `"attention"` layer without `seqLen`) costs `outFeatures *
 * inFeatures`; an `"attention"` layer with `seqLen` costs `seqLen *
 * (inFeatures + outFeatures)` (Q·Kᵀ and A·V, so `seqLen²` per sequence) and
 * its mask covers the `seqLen x seqLen` score matrix, with rank 0: pixelfly's
 * attention computes the kept score tiles and has no low-rank term, so the
 * layer's share buys only its layout. A layer's `uses` (1)
 * multiply its cost (a layer that runs several times per token, or per
 * example when that is the unit, as in a Mixer); `unit` names what the
 * costs are per in the table and the errors ("token").
 *
 * The rule: the budget is split in proportion to each layer's dense cost, so
 * bigger layers get more and attention's share grows with the sequence
 * length; a layer whose sparsest butterfly is above its share is pinned at
 * that minimum and the others share the rest (water-filling). Each layer then
 * gets its {@link pixelflyBudget} choice, and what rounding leaves over is
 * offered to the layers from the most expensive down. The total is never
 * above the budget; a RangeError names the minimum budget when even the
 * sparsest choice of every layer does not fit.
 *
 * @example
 * ```ts
 * import { allocateBudget } from "@pixelfly/pixelfly";
 * const plan = allocateBudget([
 *   { name: "attn", kind: "attention", inFeatures: 768, outFeatures: 768, seqLen: 1024 },
 *   { name: "fc1", kind: "mlp", inFeatures: 768, outFeatures: 3072 },
 *   { name: "fc2", kind: "mlp", inFeatures: 3072, outFeatures: 768 },
 * ], { budget: 0.25 });
 * console.log(plan.fraction <= 0.25, plan.layers.map((l) => l.name)); // true [ "attn", "fc1", "fc2" ]
 * console.log(plan.toString());
 * ```
 */
export function allocateBudget(
  schema: LayerSchema[],
  opts: { budget: number; block?: number; unit?: string },
): Allocation {
  const op = "allocateBudget";
  checkSchema(op, schema);
  if (opts === null || typeof opts !== "object") throw new TypeError(`${op}: options must be an object`);
  const { budget, block = 32, unit = "token" } = opts;
  checkBudget(op, budget);
  if (typeof unit !== "string" || unit.length === 0) {
    throw new TypeError(
      `${op}: unit must be a non-empty string (what the costs are per), got ${String(unit)}`,
    );
  }
  checkPositiveInt(op, "block", block);

  const shapes = schema.map(layerCost);
  const lists = shapes.map((s, i) => {
    try {
      return candidates(op, s.rows, s.cols, block);
    } catch (e) {
      throw new RangeError(`${(e as Error).message} (layer ${schema[i].name})`);
    }
  });
  // Work in multiply-adds per token; a layer's kept entries cost `scale[i]` each.
  const scale = shapes.map((s) => s.dense / (s.rows * s.cols));
  const mins = lists.map((list, i) => minimumParams(list) * scale[i]);
  const denseCost = shapes.reduce((a, s) => a + s.dense, 0);
  const total = budget * denseCost;
  const minCost = mins.reduce((a, m) => a + m, 0);
  if (minCost > total) {
    throw new RangeError(
      `${op}: budget ${budget} allows ${
        Math.floor(total)
      } multiply-adds per ${unit}, fewer than the sparsest ` +
        `flat block butterfly of every layer needs (${Math.ceil(minCost)}); the budget must be at least ` +
        `${minCost / denseCost}`,
    );
  }
  // A hair under the exact share, so that float rounding never lifts the total above the budget.
  const SAFE = 1 - 1e-12;
  // Water-filling: shares proportional to dense cost; a layer that cannot go that low is pinned at its
  // minimum (also one whose minimum is its share exactly: the hair under it would not fit it).
  const pinned = new Array<boolean>(schema.length).fill(false);
  let share = budget;
  for (let changed = true; changed;) {
    let rest = total, free = 0;
    shapes.forEach((s, i) => pinned[i] ? (rest -= mins[i]) : (free += s.dense));
    share = free > 0 ? rest / free : 0;
    changed = false;
    shapes.forEach((s, i) => {
      if (!pinned[i] && mins[i] > share * s.dense * SAFE) pinned[i] = changed = true;
    });
  }
  // attention scores (with seqLen) have no low-rank term here: their share goes to the layout alone
  const lowRank = schema.map((l) => !(l.kind === "attention" && l.seqLen !== undefined));
  const pick = (i: number, targetCost: number) =>
    choose(op, lists[i], shapes[i].rows, shapes[i].cols, block, targetCost / scale[i], budget, lowRank[i]);
  const choices = shapes.map((s, i) =>
    pinned[i]
      ? choose(op, lists[i], s.rows, s.cols, block, minimumParams(lists[i]), budget, lowRank[i])
      : pick(i, share * s.dense * SAFE)
  );
  const costOf = (i: number) => choices[i].params * scale[i];
  // Offer what rounding left over to the layers, most expensive first.
  let slack = total - shapes.reduce((a, _, i) => a + costOf(i), 0);
  const order = shapes.map((_, i) => i).sort((a, b) => shapes[b].dense - shapes[a].dense);
  for (const i of order) {
    const old = costOf(i);
    if (slack * SAFE < scale[i]) continue; // not even one more kept entry
    const c = pick(i, Math.min(shapes[i].dense, old + slack * SAFE));
    if (c.params * scale[i] > old) {
      choices[i] = c;
      slack -= costOf(i) - old;
    }
  }

  const layers: LayerAllocation[] = schema.map((l, i) => {
    const c = choices[i], s = shapes[i];
    return {
      name: l.name,
      kind: l.kind,
      shape: [s.rows, s.cols],
      butterflySize: c.butterflySize,
      nFactors: c.nFactors,
      rank: c.rank,
      density: c.mask.density,
      params: c.params,
      fraction: c.fraction,
      cost: costOf(i),
      denseCost: s.dense,
      mask: c.mask,
    };
  });
  const cost = layers.reduce((a, l) => a + l.cost, 0);
  return {
    budget,
    layers,
    cost,
    denseCost,
    fraction: cost / denseCost,
    toString: () => formatTable(layers, budget, cost, denseCost, unit),
  };
}

function formatTable(
  layers: LayerAllocation[],
  budget: number,
  cost: number,
  denseCost: number,
  unit: string,
): string {
  const head = [
    "name",
    "kind",
    "shape",
    "butterfly",
    "factors",
    "rank",
    "density",
    "params",
    "fraction",
    "cost",
  ];
  const right = [false, false, true, true, true, true, true, true, true, true];
  const rows = layers.map((l) => [
    l.name,
    l.kind,
    `${l.shape[0]}x${l.shape[1]}`,
    String(l.butterflySize),
    String(l.nFactors),
    String(l.rank),
    l.density.toFixed(4),
    String(l.params),
    l.fraction.toFixed(4),
    String(Math.round(l.cost)),
  ]);
  const totals = [
    "total",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    (cost / denseCost).toFixed(4),
    String(Math.round(cost)),
  ];
  const all = [head, ...rows, totals];
  const widths = head.map((_, j) => Math.max(...all.map((r) => r[j].length)));
  const line = (r: string[]) =>
    r.map((v, j) => right[j] ? v.padStart(widths[j]) : v.padEnd(widths[j])).join("  ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [
    line(head),
    rule,
    ...rows.map(line),
    rule,
    line(totals),
    `cost ${Math.round(cost)} of dense ${denseCost} multiply-adds per ${unit}: fraction ${
      (cost / denseCost).toFixed(4)
    } <= budget ${budget}`,
  ].join("\n");
}
