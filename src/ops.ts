/**
 * The public differentiable ops: validate shapes, call the backend, record
 * on the tape. Gradient rules live in `autograd.ts`.
 *
 * @module
 */
import type { Backend, BinaryOp, BlockLayout, Broadcast, UnaryOp } from "./backends/types.ts";
import { isGradEnabled, record } from "./tape.ts";
import { BlockMask, validateLayout } from "./masks/block_mask.ts";
import { allocTensor, checkShape, integerSummary, Tensor, tidy } from "./tensor.ts";
import { describeValue as describe } from "./validate.ts";

// --- helpers ----------------------------------------------------------------

function checkTensor(op: string, name: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor, got ${describe(t)}`);
  if (t.disposed) throw new Error(`${op}: ${name} [${t.shape}] was disposed`);
}

function sameBackend(op: string, names: string[], ...ts: Tensor[]): Backend {
  const be = ts[0].backend;
  ts.forEach((t, i) => {
    if (t.backend !== be) {
      throw new RangeError(
        `${op}: ${names[0]} lives on ${backendLabel(be)} but ${names[i]} on ${backendLabel(t.backend)}; ` +
          `move one with \`await ${names[i]}.to(backend)\` first`,
      );
    }
  });
  return be;
}

const backendIds = new WeakMap<Backend, number>();
let nextBackendId = 1;

/** A backend's name, with an instance number so two backends of one kind read differently. */
function backendLabel(be: Backend): string {
  let id = backendIds.get(be);
  if (id === undefined) backendIds.set(be, id = nextBackendId++);
  return `${be.name} backend #${id}`;
}

function layoutOf(op: string, mask: BlockMask | BlockLayout): BlockLayout {
  return validateLayout(op, mask instanceof BlockMask ? mask.toBSR() : mask);
}

function _zeros(shape: readonly number[], be: Backend, op: string): Tensor {
  return allocTensor(op, shape, be);
}

// An output the op's kernel overwrites entirely (accumulate false): no zero fill.
function _empty(shape: readonly number[], be: Backend, op: string): Tensor {
  return allocTensor(op, shape, be, undefined, false);
}

/**
 * Run an op written as other ops. When nothing is recorded, its
 * intermediates are freed at once (only the result survives); when the tape
 * records, they are inputs of the graph and live as long as it.
 */
function composite(inputs: Tensor[], fn: () => Tensor): Tensor {
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) return fn();
  return tidy(fn);
}

// --- shape ops --------------------------------------------------------------

/**
 * The same values in another shape (shares the buffer).
 *
 * @example
 * ```ts
 * import { reshape, tensor } from "@pixelfly/pixelfly";
 * console.log(reshape(tensor([1, 2, 3, 4]), [2, 2]).shape); // [2, 2]
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor("reshape", "x", x);
  const size = checkShape("reshape", shape);
  if (size !== x.size) {
    throw new RangeError(
      `reshape: cannot reshape x [${x.shape}] (${x.size} values) to [${shape}] (${size} values)`,
    );
  }
  if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return x;
  return record(x.view(shape), "reshape", [x], {});
}

/**
 * Swap the last two axes: (M, N) -> (N, M), or (B, M, N) -> (B, N, M).
 *
 * @example
 * ```ts
 * import { tensor, transpose } from "@pixelfly/pixelfly";
 * console.log(await transpose(tensor([1, 2, 3, 4, 5, 6], [2, 3])).data()); // Float32Array(6) [1, 4, 2, 5, 3, 6]
 * ```
 */
export function transpose(x: Tensor): Tensor {
  checkTensor("transpose", "x", x);
  if (x.rank < 2) {
    throw new RangeError(`transpose: x must have at least 2 dimensions, got shape [${x.shape}]`);
  }
  const M = x.shape.at(-2)!, N = x.shape.at(-1)!, B = x.size / (M * N || 1);
  const out = _empty([...x.shape.slice(0, -2), N, M], x.backend, "transpose");
  x.backend.transpose(x.buffer, out.buffer, { B, M, N });
  return record(out, "transpose", [x], {});
}

// --- products ---------------------------------------------------------------

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use A transposed (A stored (K, M)). */
  transA?: boolean;
  /** Use B transposed (B stored (N, K)). */
  transB?: boolean;
}

/**
 * Matrix product `op(A)·op(B)`. 2-D × 2-D; 3-D × 3-D batched; or 3-D × 2-D
 * with the 2-D matrix shared across the batch (as a linear layer on (B, L, K)).
 *
 * @example
 * ```ts
 * import { matmul, tensor } from "@pixelfly/pixelfly";
 * const a = tensor([1, 2, 3, 4], [2, 2]), b = tensor([1, 0, 0, 1], [2, 2]);
 * console.log(await matmul(a, b, { transA: true }).data()); // Float32Array(4) [1, 3, 2, 4]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, { transA = false, transB = false }: MatmulOptions = {}): Tensor {
  const op = "matmul";
  checkTensor(op, "a", a);
  checkTensor(op, "b", b);
  const be = sameBackend(op, ["a", "b"], a, b);
  if (a.rank === 3 && b.rank === 2 && !transA) {
    const [B, M, K] = a.shape;
    return composite([a, b], () => {
      const y = matmul(reshape(a, [B * M, K]), b, { transB });
      return reshape(y, [B, M, y.shape[1]]);
    });
  }
  const batched = a.rank === 3 && b.rank === 3;
  if (!batched && !(a.rank === 2 && b.rank === 2)) {
    throw new RangeError(
      `${op}: expects 2-D or batched 3-D operands, got shapes [${a.shape}] and [${b.shape}]`,
    );
  }
  const batch = batched ? a.shape[0] : 1;
  if (batched && b.shape[0] !== batch) {
    throw new RangeError(`${op}: batch sizes differ: a [${a.shape}] and b [${b.shape}]`);
  }
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar, K = transA ? ar : ac;
  const Kb = transB ? bc : br, N = transB ? br : bc;
  if (K !== Kb) {
    throw new RangeError(
      `${op}: inner dimensions differ: op(a) is ${M}x${K} (a [${a.shape}]${transA ? " transposed" : ""}) ` +
        `and op(b) is ${Kb}x${N} (b [${b.shape}]${transB ? " transposed" : ""})`,
    );
  }
  const out = _empty(batched ? [batch, M, N] : [M, N], be, op);
  if (M * N > 0) {
    be.gemm(a.buffer, b.buffer, out.buffer, { M, N, K, transA, transB, accumulate: false, batch });
  }
  return record(out, "matmul", [a, b], { transA, transB });
}

/**
 * Dense × block-sparse: `Y = X·Wᵀ` (transW, the forward of a layer, default)
 * or `Y = X·W` (the backward dX = dY·W). W holds the kept blocks as
 * (nnz, b, b) in the mask's BSR order.
 *
 * @example
 * ```ts
 * import { BlockMask, dds, ones } from "@pixelfly/pixelfly";
 * const mask = BlockMask.fromFunction(2, 2, 2, (i, j) => i === j);
 * const y = dds(ones([1, 4]), ones([2, 2, 2]), mask);
 * console.log(await y.data()); // Float32Array(4) [2, 2, 2, 2]
 * ```
 */
export function dds(
  x: Tensor,
  w: Tensor,
  mask: BlockMask | BlockLayout,
  { transW = true }: { transW?: boolean } = {},
): Tensor {
  const op = "dds";
  checkTensor(op, "x", x);
  checkTensor(op, "w", w);
  const layout = layoutOf(op, mask);
  const be = sameBackend(op, ["x", "w"], x, w);
  const b = layout.block, N = layout.rows * b, K = layout.cols * b;
  // batched: x (batch, M, ·) and w (batch, nnz, b, b), one product per batch entry on the one layout
  const batched = x.rank === 3 && w.rank === 4;
  const batch = batched ? x.shape[0] : 1;
  if (batched && w.shape[0] !== batch) {
    throw new RangeError(`${op}: batch sizes differ: x [${x.shape}] and w [${w.shape}]`);
  }
  checkBlockWeight(op, w, layout, batched ? 1 : 0);
  const inCols = transW ? K : N, outCols = transW ? N : K;
  if (x.rank !== (batched ? 3 : 2) || x.shape.at(-1) !== inCols) {
    throw new RangeError(
      `${op}: x [${x.shape}] must be (M, ${inCols}) (or (batch, M, ${inCols}) with w (batch, nnz, b, b)) ` +
        `for a ${N}x${K} block-sparse weight${transW ? "" : " (transW false)"}`,
    );
  }
  const M = x.shape.at(-2)!;
  const out = _empty(batched ? [batch, M, outCols] : [M, outCols], be, op);
  if (M * batch > 0) be.dds(x.buffer, w.buffer, out.buffer, { M, layout, transW, accumulate: false, batch });
  return record(out, "dds", [x, w], { layout, transW });
}

/**
 * Pixelfly's sparse plus low-rank product in one op: `Y = X·Wᵀ + H·Uᵀ`, with W (nnz, b, b) the kept blocks
 * of an (N, K) weight in the mask's BSR order, X (M, K), H (M, rank) and U (N, rank) (Chen, Dao et al.,
 * ICLR 2022, Section 3: the low-rank term `(X·Vᵀ)·Uᵀ` with H = X·Vᵀ). The wasm backend adds the low-rank
 * term inside the block-sparse kernel at block 16 (one pass over Y instead of three); the gradients are
 * those of `add(dds(x, w, mask), matmul(h, u, { transB: true }))`.
 *
 * @example
 * ```ts
 * import { BlockMask, ddsLowRank, ones } from "@pixelfly/pixelfly";
 * const mask = BlockMask.fromFunction(2, 2, 2, (i, j) => i === j);
 * const y = ddsLowRank(ones([1, 4]), ones([2, 2, 2]), mask, ones([1, 1]), ones([4, 1]));
 * console.log(await y.data()); // Float32Array(4) [3, 3, 3, 3]
 * ```
 */
export function ddsLowRank(
  x: Tensor,
  w: Tensor,
  mask: BlockMask | BlockLayout,
  h: Tensor,
  u: Tensor,
): Tensor {
  const op = "ddsLowRank";
  checkTensor(op, "x", x);
  checkTensor(op, "w", w);
  checkTensor(op, "h", h);
  checkTensor(op, "u", u);
  const layout = layoutOf(op, mask);
  const be = sameBackend(op, ["x", "w", "h", "u"], x, w, h, u);
  const b = layout.block, N = layout.rows * b, K = layout.cols * b;
  checkBlockWeight(op, w, layout);
  if (x.rank !== 2 || x.shape[1] !== K) {
    throw new RangeError(`${op}: x [${x.shape}] must be (M, ${K}) for a ${N}x${K} block-sparse weight`);
  }
  const M = x.shape[0];
  if (h.rank !== 2 || h.shape[0] !== M) {
    throw new RangeError(`${op}: h [${h.shape}] must be (${M}, rank): one row per row of x [${x.shape}]`);
  }
  const rank = h.shape[1];
  if (u.rank !== 2 || u.shape[0] !== N || u.shape[1] !== rank) {
    throw new RangeError(`${op}: u [${u.shape}] must be (${N}, ${rank}): N rows of h's rank ${rank}`);
  }
  const out = _empty([M, N], be, op);
  if (M > 0) {
    be.dds(x.buffer, w.buffer, out.buffer, {
      M,
      layout,
      transW: true,
      accumulate: false,
      lowRank: { h: h.buffer, u: u.buffer, rank, transU: true },
    });
  }
  return record(out, "ddsLowRank", [x, w, h, u], { layout });
}

/**
 * Pixelfly's gated layer product in one op: `Y = (1 − g)·(X·Wᵀ) + g·((X·Vᵀ)·Uᵀ) + bias` with the gate
 * `g = sigmoid(X·aᵀ + c)`, one per row; W (nnz, b, b) the kept blocks of an (N, K) weight in the mask's BSR
 * order, X (M, K), V (rank, K), U (N, rank), a (1, K), c (1) and bias (N) (Chen, Dao et al., ICLR 2022,
 * Section 3). The wasm backend makes X·Vᵀ while its block-16 sparse kernel reads X, and its backward adds
 * dH·V + dz·a inside the sparse kernel and makes dV and da in one product; the gradients are those of
 * `gatedCombine(dds(x, w, mask), matmul(matmul(x, v, { transB: true }), u, { transB: true }),
 * sigmoid(add(matmul(x, a, { transB: true }), c)), bias)`.
 *
 * @example
 * ```ts
 * import { BlockMask, ddsGatedLowRank, ones, zeros } from "@pixelfly/pixelfly";
 * const mask = BlockMask.fromFunction(2, 2, 2, (i, j) => i === j);
 * const y = ddsGatedLowRank(ones([1, 4]), ones([2, 2, 2]), mask, ones([1, 4]), ones([4, 1]), zeros([1, 4]), zeros([1]));
 * console.log(await y.data()); // Float32Array(4) [3, 3, 3, 3]
 * ```
 */
export function ddsGatedLowRank(
  x: Tensor,
  w: Tensor,
  mask: BlockMask | BlockLayout,
  v: Tensor,
  u: Tensor,
  a: Tensor,
  c: Tensor,
  bias?: Tensor,
): Tensor {
  const op = "ddsGatedLowRank";
  const named = [["x", x], ["w", w], ["v", v], ["u", u], ["a", a], ["c", c]] as const;
  for (const [n, t] of named) checkTensor(op, n, t);
  if (bias !== undefined) checkTensor(op, "bias", bias);
  const layout = layoutOf(op, mask);
  const ts = bias === undefined ? [x, w, v, u, a, c] : [x, w, v, u, a, c, bias];
  const be = sameBackend(op, ["x", "w", "v", "u", "a", "c", "bias"].slice(0, ts.length), ...ts);
  const b = layout.block, N = layout.rows * b, K = layout.cols * b;
  checkBlockWeight(op, w, layout);
  if (x.rank !== 2 || x.shape[1] !== K) {
    throw new RangeError(`${op}: x [${x.shape}] must be (M, ${K}) for a ${N}x${K} block-sparse weight`);
  }
  const M = x.shape[0];
  if (v.rank !== 2 || v.shape[1] !== K) {
    throw new RangeError(`${op}: v [${v.shape}] must be (rank, ${K}): rows of x's ${K} columns`);
  }
  const rank = v.shape[0];
  if (u.rank !== 2 || u.shape[0] !== N || u.shape[1] !== rank) {
    throw new RangeError(`${op}: u [${u.shape}] must be (${N}, ${rank}): N rows of v's rank ${rank}`);
  }
  if (a.rank !== 2 || a.shape[0] !== 1 || a.shape[1] !== K) {
    throw new RangeError(`${op}: a [${a.shape}] must be (1, ${K}): the gate's weight over x's ${K} columns`);
  }
  if (c.rank !== 1 || c.size !== 1) {
    throw new RangeError(`${op}: c [${c.shape}] must be (1): the gate's bias`);
  }
  if (bias !== undefined && (bias.rank !== 1 || bias.size !== N)) {
    throw new RangeError(`${op}: bias [${bias.shape}] must be (${N}) for ${N} out-features`);
  }
  // g = sigmoid(X·aᵀ + c); S = X·Wᵀ and H = X·Vᵀ in one call; L = H·Uᵀ; then the gated combination
  // (S, L, H and g kept for the backward)
  const g = _empty([M, 1], be, op), s = _empty([M, N], be, op), h = _empty([M, rank], be, op);
  const l = _empty([M, N], be, op), y = _empty([M, N], be, op);
  if (M > 0) {
    be.gemm(x.buffer, a.buffer, g.buffer, { M, N: 1, K, transA: false, transB: true, accumulate: false });
    be.binary("add", g.buffer, c.buffer, g.buffer, { M: 1, N: M, bcast: "scalar" });
    be.unary("sigmoid", g.buffer, g.buffer, { size: M });
    be.dds(x.buffer, w.buffer, s.buffer, {
      M,
      layout,
      transW: true,
      accumulate: false,
      project: { h: h.buffer, u: v.buffer, rank, transU: true },
    });
    if (rank > 0) {
      be.gemm(h.buffer, u.buffer, l.buffer, {
        M,
        N,
        K: rank,
        transA: false,
        transB: true,
        accumulate: false,
      });
    } else be.fill(l.buffer, { size: M * N, value: 0 });
    be.gatedCombine(s.buffer, l.buffer, g.buffer, (bias ?? s).buffer, y.buffer, {
      M,
      N,
      bias: bias !== undefined,
    });
  }
  const saved = [s, l, h, g];
  return record(y, "ddsGatedLowRank", ts, { layout, bias: bias !== undefined }, { saved, owned: saved });
}

function checkBlockWeight(op: string, w: Tensor, layout: BlockLayout, lead = 0): void {
  const b = layout.block, s = w.shape.slice(lead);
  if (s.length !== 3 || s[0] !== layout.nnz || s[1] !== b || s[2] !== b) {
    throw new RangeError(
      `${op}: weight [${w.shape}] must be (nnz, block, block) = (${layout.nnz}, ${b}, ${b}) for the mask`,
    );
  }
}

/**
 * Block-sparse = dense × dense on the mask's kept blocks: `W = op(A)·op(B)`
 * where op(A) is (R, K) and op(B) is (K, C). The weight gradient of a layer is
 * `sdd(dY, X, mask, { transA: true })` = dYᵀ·X.
 *
 * @example
 * ```ts
 * import { BlockMask, ones, sdd } from "@pixelfly/pixelfly";
 * const mask = BlockMask.fromFunction(2, 2, 1, (i, j) => i === j);
 * console.log(await sdd(ones([3, 2]), ones([3, 2]), mask, { transA: true }).data()); // Float32Array(2) [3, 3]
 * ```
 */
export function sdd(
  a: Tensor,
  b: Tensor,
  mask: BlockMask | BlockLayout,
  { transA = false, transB = false }: { transA?: boolean; transB?: boolean } = {},
): Tensor {
  const op = "sdd";
  checkTensor(op, "a", a);
  checkTensor(op, "b", b);
  const layout = layoutOf(op, mask);
  const be = sameBackend(op, ["a", "b"], a, b);
  const blk = layout.block, R = layout.rows * blk, C = layout.cols * blk;
  // batched: a and b (batch, ·, ·) give w (batch, nnz, b, b), one product per batch entry on the one layout
  const batched = a.rank === 3 && b.rank === 3;
  if (!batched && (a.rank !== 2 || b.rank !== 2)) {
    throw new RangeError(
      `${op}: a and b must be 2-D (or both 3-D, batched), got shapes [${a.shape}] and [${b.shape}]`,
    );
  }
  const batch = batched ? a.shape[0] : 1;
  if (batched && b.shape[0] !== batch) {
    throw new RangeError(`${op}: batch sizes differ: a [${a.shape}] and b [${b.shape}]`);
  }
  const [a0, a1] = a.shape.slice(-2), [b0, b1] = b.shape.slice(-2);
  const aR = transA ? a1 : a0, K = transA ? a0 : a1;
  const bK = transB ? b1 : b0, bC = transB ? b0 : b1;
  if (aR !== R || bC !== C || bK !== K) {
    throw new RangeError(
      `${op}: op(a) is ${aR}x${K} and op(b) is ${bK}x${bC}, but the mask needs ${R}xK times Kx${C}`,
    );
  }
  const out = _empty(batched ? [batch, layout.nnz, blk, blk] : [layout.nnz, blk, blk], be, op);
  if (layout.nnz * batch > 0) {
    be.sdd(a.buffer, b.buffer, out.buffer, { layout, K, transA, transB, accumulate: false, batch });
  }
  return record(out, "sdd", [a, b], { layout, transA, transB });
}

/**
 * The block-sparse linear layer as a function: `x·Wᵀ + bias`, with x (M, K)
 * (or (..., K)), W (nnz, block, block) in the mask's BSR order and bias (N).
 *
 * @example
 * ```ts
 * import { blockSparseLinear, flatBlockButterfly, ones, zeros } from "@pixelfly/pixelfly";
 * const mask = flatBlockButterfly({ outFeatures: 64, inFeatures: 64, block: 8, butterflySize: 8, nFactors: 1 });
 * const y = blockSparseLinear(ones([2, 64]), ones([mask.nnz, 8, 8]), mask, zeros([64]));
 * console.log(y.shape, (await y.data())[0]); // [2, 64] 16
 * ```
 */
export function blockSparseLinear(x: Tensor, weight: Tensor, mask: BlockMask, bias?: Tensor): Tensor {
  const op = "blockSparseLinear";
  checkTensor(op, "x", x);
  checkTensor(op, "weight", weight);
  const layout = layoutOf(op, mask);
  const K = layout.cols * layout.block, N = layout.rows * layout.block;
  if (x.rank < 1 || x.shape.at(-1) !== K) {
    throw new RangeError(
      `${op}: x [${x.shape}] has ${x.shape.at(-1)} columns but the layer takes ${K} in-features`,
    );
  }
  checkBlockWeight(op, weight, layout);
  if (bias !== undefined) {
    checkTensor(op, "bias", bias);
    if (bias.size !== N || bias.rank !== 1) {
      throw new RangeError(`${op}: bias [${bias.shape}] must be (${N}) for ${N} out-features`);
    }
  }
  const lead = x.shape.slice(0, -1);
  return composite([x, weight, ...(bias ? [bias] : [])], () => {
    let y = dds(reshape(x, [x.size / K, K]), weight, layout);
    if (bias) y = add(y, bias);
    return reshape(y, [...lead, N]);
  });
}

// --- elementwise ------------------------------------------------------------

function broadcastKind(op: string, a: Tensor, b: Tensor): { bcast: Broadcast; M: number; N: number } {
  const same = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
  if (same) return { bcast: "full", M: 1, N: a.size };
  if (b.size === 1) return { bcast: "scalar", M: 1, N: a.size };
  const last = a.shape.at(-1) ?? 1;
  if (b.rank === 1 && b.shape[0] === last) return { bcast: "row", M: a.size / last, N: last };
  if (
    b.rank === a.rank && b.shape.at(-1) === 1 && a.shape.slice(0, -1).every((d, i) => d === b.shape[i])
  ) {
    return { bcast: "col", M: a.size / last, N: last };
  }
  throw new RangeError(
    `${op}: cannot broadcast b [${b.shape}] over a [${a.shape}]; b must match a, be (${last}), ` +
      `be [${[...a.shape.slice(0, -1), 1]}], or hold one value`,
  );
}

function binary(op: BinaryOp, a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === "number" && typeof b === "number") {
    throw new TypeError(`${op}: at least one operand must be a Tensor, got two numbers`);
  }
  for (const [name, v] of [["a", a], ["b", b]] as const) {
    if (typeof v === "number" && !Number.isFinite(v)) {
      throw new RangeError(`${op}: scalar ${name} must be finite, got ${v}`);
    }
  }
  if (typeof b === "number") {
    checkTensor(op, "a", a);
    const t = a as Tensor;
    switch (op) {
      case "add":
        return affine(t, 1, b);
      case "sub":
        return affine(t, 1, -b);
      case "mul":
        return affine(t, b, 0);
      case "div":
        if (b === 0) throw new RangeError(`div: divisor must not be 0`);
        return affine(t, 1 / b, 0);
    }
  }
  if (typeof a === "number") {
    checkTensor(op, "b", b);
    switch (op) {
      case "add":
        return affine(b, 1, a);
      case "sub":
        return affine(b, -1, a);
      case "mul":
        return affine(b, a, 0);
      case "div":
        throw new TypeError(`div: a number divided by a Tensor is not supported; use div(full(...), t)`);
    }
  }
  checkTensor(op, "a", a);
  checkTensor(op, "b", b);
  const be = sameBackend(op, ["a", "b"], a, b);
  const { bcast, M, N } = broadcastKind(op, a, b);
  const out = _empty(a.shape, be, op);
  if (a.size > 0) be.binary(op, a.buffer, b.buffer, out.buffer, { M, N, bcast });
  return record(out, "binary", [a, b], { op, bcast });
}

/**
 * `a + b`, with b of a's shape, a row vector of a's last dimension, a column
 * (a's shape with last dimension 1), one value, or a number.
 *
 * @example
 * ```ts
 * import { add, tensor } from "@pixelfly/pixelfly";
 * console.log(await add(tensor([1, 2, 3, 4], [2, 2]), tensor([10, 20])).data()); // Float32Array(4) [11, 22, 13, 24]
 * ```
 */
export function add(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("add", a, b);
}

/**
 * `a - b`, broadcasting as {@link add}.
 *
 * @example
 * ```ts
 * import { sub, tensor } from "@pixelfly/pixelfly";
 * console.log(await sub(1, tensor([0.25, 1])).data()); // Float32Array(2) [0.75, 0]
 * ```
 */
export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("sub", a, b);
}

/**
 * `a * b` elementwise, broadcasting as {@link add}.
 *
 * @example
 * ```ts
 * import { mul, tensor } from "@pixelfly/pixelfly";
 * console.log(await mul(tensor([1, 2, 3, 4], [2, 2]), tensor([2, 3], [2, 1])).data()); // Float32Array(4) [2, 4, 9, 12]
 * ```
 */
export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("mul", a, b);
}

/**
 * `a / b` elementwise, broadcasting as {@link add}.
 *
 * @example
 * ```ts
 * import { div, tensor } from "@pixelfly/pixelfly";
 * console.log(await div(tensor([1, 2]), 4).data()); // Float32Array(2) [0.25, 0.5]
 * ```
 */
export function div(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("div", a, b);
}

/**
 * `alpha * x + beta`.
 *
 * @example
 * ```ts
 * import { affine, tensor } from "@pixelfly/pixelfly";
 * console.log(await affine(tensor([1, 2]), 2, 1).data()); // Float32Array(2) [3, 5]
 * ```
 */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  checkTensor("affine", "x", x);
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) {
    throw new RangeError(`affine: alpha and beta must be finite, got ${alpha} and ${beta}`);
  }
  const out = _empty(x.shape, x.backend, "affine");
  if (x.size > 0) x.backend.scale(x.buffer, out.buffer, { size: x.size, alpha, beta, accumulate: false });
  return record(out, "affine", [x], { alpha });
}

function unary(op: UnaryOp, x: Tensor): Tensor {
  checkTensor(op, "x", x);
  const out = _empty(x.shape, x.backend, op);
  if (x.size > 0) x.backend.unary(op, x.buffer, out.buffer, { size: x.size });
  return record(out, "unary", [x], { op }, { saved: [out] });
}

/**
 * `max(x, 0)`.
 *
 * @example
 * ```ts
 * import { relu, tensor } from "@pixelfly/pixelfly";
 * console.log(await relu(tensor([-1, 2])).data()); // Float32Array(2) [0, 2]
 * ```
 */
export function relu(x: Tensor): Tensor {
  return unary("relu", x);
}

/** Options of {@link gelu}. */
export interface GeluOptions {
  /**
   * `"none"` (default): the exact GELU `x·Φ(x) = 0.5·x·(1 + erf(x/√2))`, as PyTorch's
   * `F.gelu` and `nn.GELU()` (which the Pixelfly reference MLPs use). `"tanh"`: the
   * approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (PyTorch's
   * `approximate="tanh"`, GPT-2's).
   */
  approximate?: "none" | "tanh";
}

/**
 * GELU, exact (erf) by default as in PyTorch; `{ approximate: "tanh" }` for the
 * tanh approximation.
 *
 * @example
 * ```ts
 * import { gelu, tensor } from "@pixelfly/pixelfly";
 * console.log((await gelu(tensor([1])).data())[0].toFixed(4)); // "0.8413"
 * console.log((await gelu(tensor([1]), { approximate: "tanh" }).data())[0].toFixed(4)); // "0.8412"
 * ```
 */
export function gelu(x: Tensor, opts: GeluOptions = {}): Tensor {
  const a = opts?.approximate ?? "none";
  if (a !== "none" && a !== "tanh") {
    throw new RangeError(`gelu: approximate must be "none" or "tanh", got ${JSON.stringify(a)}`);
  }
  return unary(a === "tanh" ? "geluTanh" : "gelu", x);
}

/**
 * `1 / (1 + exp(-x))`.
 *
 * @example
 * ```ts
 * import { sigmoid, tensor } from "@pixelfly/pixelfly";
 * console.log((await sigmoid(tensor([0])).data())[0]); // 0.5
 * ```
 */
export function sigmoid(x: Tensor): Tensor {
  return unary("sigmoid", x);
}

/**
 * Hyperbolic tangent.
 *
 * @example
 * ```ts
 * import { tanh, tensor } from "@pixelfly/pixelfly";
 * console.log((await tanh(tensor([0])).data())[0]); // 0
 * ```
 */
export function tanh(x: Tensor): Tensor {
  return unary("tanh", x);
}

/**
 * `e^x`.
 *
 * @example
 * ```ts
 * import { exp, tensor } from "@pixelfly/pixelfly";
 * console.log((await exp(tensor([0])).data())[0]); // 1
 * ```
 */
export function exp(x: Tensor): Tensor {
  return unary("exp", x);
}

/**
 * Natural logarithm.
 *
 * @example
 * ```ts
 * import { log, tensor } from "@pixelfly/pixelfly";
 * console.log((await log(tensor([1])).data())[0]); // 0
 * ```
 */
export function log(x: Tensor): Tensor {
  return unary("log", x);
}

/**
 * `-x`.
 *
 * @example
 * ```ts
 * import { neg, tensor } from "@pixelfly/pixelfly";
 * console.log(await neg(tensor([1, -2])).data()); // Float32Array(2) [-1, 2]
 * ```
 */
export function neg(x: Tensor): Tensor {
  return unary("neg", x);
}

/**
 * The square root, elementwise (NaN below 0; the gradient is infinite at 0, as in PyTorch).
 *
 * @example
 * ```ts
 * import { sqrt, tensor } from "@pixelfly/pixelfly";
 * console.log(await sqrt(tensor([4, 9])).data()); // Float32Array(2) [2, 3]
 * ```
 */
export function sqrt(x: Tensor): Tensor {
  return unary("sqrt", x);
}

// --- reductions -------------------------------------------------------------

/**
 * The sum of all elements, as a one-element tensor of shape [1].
 *
 * @example
 * ```ts
 * import { sum, tensor } from "@pixelfly/pixelfly";
 * console.log(await sum(tensor([1, 2, 3])).item()); // 6
 * ```
 */
export function sum(x: Tensor): Tensor {
  checkTensor("sum", "x", x);
  const out = _zeros([1], x.backend, "sum");
  if (x.size > 0) x.backend.sumRows(x.buffer, out.buffer, { M: x.size, N: 1, accumulate: false });
  return record(out, "sum", [x], {});
}

/**
 * The mean of all elements, as a one-element tensor of shape [1].
 *
 * @example
 * ```ts
 * import { mean, tensor } from "@pixelfly/pixelfly";
 * console.log(await mean(tensor([1, 2, 3])).item()); // 2
 * ```
 */
export function mean(x: Tensor): Tensor {
  checkTensor("mean", "x", x);
  if (x.size === 0) throw new RangeError(`mean: x [${x.shape}] is empty`);
  return composite([x], () => affine(sum(x), 1 / x.size, 0));
}

/**
 * Column sums of a 2-D (M, N) tensor: shape (N) (the bias gradient).
 *
 * @example
 * ```ts
 * import { sumRows, tensor } from "@pixelfly/pixelfly";
 * console.log(await sumRows(tensor([1, 2, 3, 4], [2, 2])).data()); // Float32Array(2) [4, 6]
 * ```
 */
export function sumRows(x: Tensor): Tensor {
  checkTensor("sumRows", "x", x);
  if (x.rank !== 2) throw new RangeError(`sumRows: x must be 2-D (M, N), got shape [${x.shape}]`);
  const [M, N] = x.shape;
  const out = _zeros([N], x.backend, "sumRows");
  x.backend.sumRows(x.buffer, out.buffer, { M, N, accumulate: false });
  return record(out, "sumRows", [x], {});
}

/**
 * Row sums of a 2-D (M, N) tensor: shape (M).
 *
 * @example
 * ```ts
 * import { sumCols, tensor } from "@pixelfly/pixelfly";
 * console.log(await sumCols(tensor([1, 2, 3, 4], [2, 2])).data()); // Float32Array(2) [3, 7]
 * ```
 */
export function sumCols(x: Tensor): Tensor {
  checkTensor("sumCols", "x", x);
  if (x.rank !== 2) throw new RangeError(`sumCols: x must be 2-D (M, N), got shape [${x.shape}]`);
  const [M, N] = x.shape;
  const out = _zeros([M], x.backend, "sumCols");
  x.backend.sumCols(x.buffer, out.buffer, { M, N, accumulate: false });
  return record(out, "sumCols", [x], {});
}

// --- rows -------------------------------------------------------------------

function rowsOf(op: string, x: Tensor): [number, number] {
  if (x.rank < 1 || x.size === 0) {
    throw new RangeError(`${op}: x must be a non-empty tensor, got shape [${x.shape}]`);
  }
  const N = x.shape.at(-1)!;
  return [x.size / N, N];
}

/**
 * Softmax over the last axis.
 *
 * @example
 * ```ts
 * import { softmax, tensor } from "@pixelfly/pixelfly";
 * console.log(await softmax(tensor([0, 0])).data()); // Float32Array(2) [0.5, 0.5]
 * ```
 */
export function softmax(x: Tensor): Tensor {
  checkTensor("softmax", "x", x);
  const [M, N] = rowsOf("softmax", x);
  const out = _empty(x.shape, x.backend, "softmax");
  x.backend.softmax(x.buffer, out.buffer, { M, N });
  return record(out, "softmax", [x], {}, { saved: [out] });
}

/**
 * Integer data (class labels, row ids) entering a kernel: checked here, on the
 * host, before any backend sees it. An array is checked element by element;
 * a Tensor must hold host-checked values (one made by `tensor()` or another
 * creation helper from host data and never written in place): its summary
 * names the first bad position. Returns the tensor the kernel reads and
 * whether the op made it (then the op owns it).
 */
function indexData(
  op: string,
  name: string,
  v: Tensor | ArrayLike<number>,
  limit: number,
  rule: string,
  be: Backend,
): { t: Tensor; made: boolean } {
  if (v instanceof Tensor) {
    checkTensor(op, name, v);
    const s = integerSummary(v);
    if (s === undefined) {
      throw new TypeError(
        `${op}: ${name} (${v}) was computed on the backend or written in place, so its values cannot be ` +
          `checked before the kernel reads them; pass an array or a tensor made with tensor(...)`,
      );
    }
    if (s.bad >= 0) throw new RangeError(`${op}: ${name}[${s.bad}] is ${s.badValue}, but ${rule}`);
    if (s.size > 0 && s.min < 0) throw new RangeError(`${op}: ${name}[${s.minAt}] is ${s.min}, but ${rule}`);
    if (s.size > 0 && s.max >= limit) {
      throw new RangeError(`${op}: ${name}[${s.maxAt}] is ${s.max}, but ${rule}`);
    }
    return { t: v, made: false };
  }
  if (v === null || typeof v !== "object" || typeof v.length !== "number") {
    throw new TypeError(`${op}: ${name} must be a Tensor or an array of integers, got ${describe(v)}`);
  }
  const f = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x >= limit) {
      throw new RangeError(`${op}: ${name}[${i}] is ${typeof x === "number" ? x : describe(x)}, but ${rule}`);
    }
    f[i] = x;
  }
  return { t: allocTensor(op, [f.length], be, f), made: true };
}

/**
 * Mean cross-entropy of (M, N) logits against M class labels (softmax fused,
 * computed stably with log-sum-exp).
 *
 * @example
 * ```ts
 * import { crossEntropy, tensor } from "@pixelfly/pixelfly";
 * const loss = crossEntropy(tensor([0, 0, 0, 0], [2, 2]), [0, 1]);
 * console.log((await loss.item()).toFixed(4)); // 0.6931
 * ```
 */
export function crossEntropy(logits: Tensor, labels: Tensor | ArrayLike<number>): Tensor {
  const op = "crossEntropy";
  checkTensor(op, "logits", logits);
  if (logits.rank !== 2 || logits.size === 0) {
    throw new RangeError(`${op}: logits must be 2-D (M, N) and non-empty, got shape [${logits.shape}]`);
  }
  const [M, N] = logits.shape, be = logits.backend;
  if (labels instanceof Tensor) {
    checkTensor(op, "labels", labels);
    sameBackend(op, ["logits", "labels"], logits, labels);
    if (labels.size !== M) {
      throw new RangeError(`${op}: labels [${labels.shape}] must hold ${M} entries, one per row of logits`);
    }
  } else if (labels !== null && typeof labels === "object" && labels.length !== M) {
    throw new RangeError(`${op}: got ${labels.length} labels for ${M} rows of logits`);
  }
  const { t: lab, made } = indexData(op, "labels", labels, N, `classes are integers in [0, ${N})`, be);
  const probs = _empty([M, N], be, op), losses = _empty([M], be, op);
  be.crossEntropy(logits.buffer, lab.buffer, probs.buffer, losses.buffer, { M, N });
  const out = _zeros([1], be, op);
  be.sumRows(losses.buffer, out.buffer, { M, N: 1, accumulate: false });
  be.scale(out.buffer, out.buffer, { size: 1, alpha: 1 / M, beta: 0, accumulate: false });
  losses.dispose();
  return record(out, "crossEntropy", [logits], {}, {
    saved: [probs, lab],
    owned: made ? [probs, lab] : [probs],
  });
}

/**
 * Mean squared error `mean((pred − target)²)`.
 *
 * @example
 * ```ts
 * import { mse, tensor } from "@pixelfly/pixelfly";
 * console.log(await mse(tensor([1, 2]), tensor([1, 4])).item()); // 2
 * ```
 */
export function mse(pred: Tensor, target: Tensor): Tensor {
  checkTensor("mse", "pred", pred);
  checkTensor("mse", "target", target);
  if (pred.shape.join() !== target.shape.join()) {
    throw new RangeError(`mse: pred [${pred.shape}] and target [${target.shape}] must have the same shape`);
  }
  return composite([pred, target], () => {
    const d = sub(pred, target);
    return mean(mul(d, d));
  });
}

/**
 * LayerNorm over the last axis: `(x − mean) / sqrt(var + eps) * gamma + beta`.
 *
 * @example
 * ```ts
 * import { layerNorm, ones, tensor, zeros } from "@pixelfly/pixelfly";
 * const y = layerNorm(tensor([1, 3]), ones([2]), zeros([2]));
 * console.log(Array.from(await y.data(), (v) => Math.round(v))); // [-1, 1]
 * ```
 */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const op = "layerNorm";
  checkTensor(op, "x", x);
  checkTensor(op, "gamma", gamma);
  checkTensor(op, "beta", beta);
  const be = sameBackend(op, ["x", "gamma", "beta"], x, gamma, beta);
  const [M, N] = rowsOf(op, x);
  if (gamma.size !== N || beta.size !== N) {
    throw new RangeError(
      `${op}: gamma [${gamma.shape}] and beta [${beta.shape}] must be (${N}) for x [${x.shape}]`,
    );
  }
  if (typeof eps !== "number" || !Number.isFinite(eps) || !(eps > 0)) {
    throw new RangeError(`${op}: eps must be a positive finite number, got ${eps}`);
  }
  const y = _empty(x.shape, be, op), mu = _empty([M], be, op), rs = _empty([M], be, op);
  be.layerNorm(x.buffer, gamma.buffer, beta.buffer, y.buffer, mu.buffer, rs.buffer, { M, N, eps });
  return record(y, "layerNorm", [x, gamma, beta], { eps }, { saved: [mu, rs], owned: [mu, rs] });
}

/**
 * Pixelfly's gated combine of its sparse and low-rank terms (Chen, Dao et al., ICLR 2022, Section 3):
 * `(1 − g)·s + g·l + bias` with one gate value per row, in one pass (its backward is one pass too).
 * s and l have one shape (..., N); g holds one value per row (M = s.size / N values, for example the
 * (..., 1) output of a gate layer); bias, when given, is (N).
 *
 * @example
 * ```ts
 * import { gatedCombine, tensor } from "@pixelfly/pixelfly";
 * const s = tensor([1, 2, 3, 4], [2, 2]), l = tensor([5, 6, 7, 8], [2, 2]);
 * const y = gatedCombine(s, l, tensor([0, 0.5], [2, 1]), tensor([10, 20]));
 * console.log(await y.data()); // Float32Array(4) [11, 22, 15, 26]
 * ```
 */
export function gatedCombine(s: Tensor, l: Tensor, g: Tensor, bias?: Tensor): Tensor {
  const op = "gatedCombine";
  checkTensor(op, "s", s);
  checkTensor(op, "l", l);
  checkTensor(op, "g", g);
  if (bias !== undefined) checkTensor(op, "bias", bias);
  const be = bias === undefined
    ? sameBackend(op, ["s", "l", "g"], s, l, g)
    : sameBackend(op, ["s", "l", "g", "bias"], s, l, g, bias);
  const [M, N] = rowsOf(op, s);
  if (l.shape.join() !== s.shape.join()) {
    throw new RangeError(`${op}: l [${l.shape}] must have the shape of s [${s.shape}]`);
  }
  if (g.size !== M) {
    throw new RangeError(`${op}: g [${g.shape}] must hold one gate per row of s [${s.shape}] (${M} values)`);
  }
  if (bias !== undefined && (bias.rank !== 1 || bias.size !== N)) {
    throw new RangeError(`${op}: bias [${bias.shape}] must be (${N}) for s [${s.shape}]`);
  }
  const y = _empty(s.shape, be, op);
  be.gatedCombine(s.buffer, l.buffer, g.buffer, (bias ?? s).buffer, y.buffer, {
    M,
    N,
    bias: bias !== undefined,
  });
  const inputs = bias === undefined ? [s, l, g] : [s, l, g, bias];
  return record(y, "gatedCombine", inputs, { bias: bias !== undefined });
}

/**
 * Rows of a (rows, N) table picked by integer indices: an embedding lookup.
 * Result shape is `[...idx shape, N]`.
 *
 * @example
 * ```ts
 * import { gather, tensor } from "@pixelfly/pixelfly";
 * console.log(await gather(tensor([1, 2, 3, 4], [2, 2]), [1, 1, 0]).data()); // Float32Array(6) [3, 4, 3, 4, 1, 2]
 * ```
 */
export function gather(table: Tensor, idx: ArrayLike<number> | Tensor): Tensor {
  const op = "gather";
  checkTensor(op, "table", table);
  if (table.rank !== 2) {
    throw new RangeError(`${op}: table must be 2-D (rows, N), got shape [${table.shape}]`);
  }
  const [rows, N] = table.shape, be = table.backend;
  if (idx instanceof Tensor) {
    checkTensor(op, "idx", idx);
    sameBackend(op, ["table", "idx"], table, idx);
  }
  const { t: ix, made } = indexData(op, "idx", idx, rows, `the table has rows [0, ${rows})`, be);
  const lead = idx instanceof Tensor ? idx.shape : [ix.size];
  const M = ix.size;
  const out = _empty([...lead, N], be, op);
  if (M > 0) be.gatherRows(table.buffer, ix.buffer, out.buffer, { M, N });
  return record(out, "gather", [table], {}, { saved: [ix], owned: made ? [ix] : [] });
}

// --- padding ------------------------------------------------------------------

/** Copy the first `k` of `n` columns of an (M, n) buffer into an (M, k) tensor, or the reverse (pad). */
function resizeLast(op: string, x: Tensor, n: number): Tensor {
  const k = x.shape.at(-1)!, M = x.size / k, be = x.backend;
  const out = _zeros([...x.shape.slice(0, -1), n], be, op);
  if (M === 0) return out;
  // Columns become rows after a transpose, so the kept part is one contiguous copy.
  const xt = _zeros([k, M], be, op), ot = _zeros([n, M], be, op);
  be.transpose(x.buffer, xt.buffer, { B: 1, M, N: k });
  be.copy(xt.buffer, ot.buffer, { size: Math.min(k, n) * M, srcOffset: 0, dstOffset: 0 });
  be.transpose(ot.buffer, out.buffer, { B: 1, M: n, N: M });
  xt.dispose();
  ot.dispose();
  return out;
}

/**
 * Pad the last axis with zeros up to `n` (layers use it to reach whole blocks).
 *
 * @example
 * ```ts
 * import { padLast, tensor } from "@pixelfly/pixelfly";
 * console.log(await padLast(tensor([1, 2, 3, 4], [2, 2]), 3).data()); // Float32Array(6) [1, 2, 0, 3, 4, 0]
 * ```
 */
export function padLast(x: Tensor, n: number): Tensor {
  checkTensor("padLast", "x", x);
  const k = x.shape.at(-1) ?? 0;
  if (!Number.isInteger(n) || n < k) {
    throw new RangeError(`padLast: n must be an integer >= the last dimension ${k}, got ${n}`);
  }
  if (n === k) return x;
  return record(resizeLast("padLast", x, n), "padLast", [x], { k });
}

/**
 * Keep the first `k` entries of the last axis (the inverse of {@link padLast}).
 *
 * @example
 * ```ts
 * import { sliceLast, tensor } from "@pixelfly/pixelfly";
 * console.log(await sliceLast(tensor([1, 2, 0, 3, 4, 0], [2, 3]), 2).data()); // Float32Array(4) [1, 2, 3, 4]
 * ```
 */
export function sliceLast(x: Tensor, k: number): Tensor {
  checkTensor("sliceLast", "x", x);
  const n = x.shape.at(-1) ?? 0;
  if (!Number.isInteger(k) || k < 1 || k > n) {
    throw new RangeError(`sliceLast: k must be an integer in [1, ${n}], got ${k}`);
  }
  if (n === k) return x;
  return record(resizeLast("sliceLast", x, k), "sliceLast", [x], { n });
}
