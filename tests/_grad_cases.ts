/**
 * The table of differentiable ops checked by finite differences and across
 * backends: one entry per op and variant.
 *
 * @module
 */
import * as ops from "../src/ops.ts";
import { BINARY_OPS, BROADCASTS, UNARY_OPS, type UnaryOp } from "../src/backends/op_table.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import { flatBlockButterfly } from "../src/masks/patterns.ts";
import type { Tensor } from "../src/tensor.ts";
import { type GradInput, input } from "./_gradcheck.ts";

/** One differentiable computation with its inputs. */
export interface GradCase {
  name: string;
  build: (xs: Tensor[]) => Tensor;
  inputs: GradInput[];
}

const mask = flatBlockButterfly({ outFeatures: 16, inFeatures: 16, block: 4, butterflySize: 4, nFactors: 1 });
const rect = BlockMask.fromFunction(2, 3, 4, (i, j) => (i + j) % 2 === 0);
const mask16 = BlockMask.fromFunction(3, 2, 16, (i, j) => i !== j);

let seed = 1;
const s = () => seed++;

/** The public op behind each unary op of the table (a new table entry fails to type-check until added). */
const unaryPublic: Record<UnaryOp, (x: Tensor) => Tensor> = {
  relu: ops.relu,
  gelu: (x) => ops.gelu(x),
  geluTanh: (x) => ops.gelu(x, { approximate: "tanh" }),
  sqrt: ops.sqrt,
  sigmoid: ops.sigmoid,
  tanh: ops.tanh,
  exp: ops.exp,
  log: ops.log,
  neg: ops.neg,
};
const bcastShape = { full: [3, 4], row: [4], col: [3, 1], scalar: [1] } as const;

export const gradCases: GradCase[] = [
  ...([[false, false], [true, false], [false, true], [true, true]] as const).map(([transA, transB]) => ({
    name: `matmul transA=${transA} transB=${transB}`,
    build: ([a, b]: Tensor[]) => ops.matmul(a, b, { transA, transB }),
    inputs: [input(transA ? [4, 3] : [3, 4], s()), input(transB ? [5, 4] : [4, 5], s())],
  })),
  {
    name: "matmul batched",
    build: ([a, b]) => ops.matmul(a, b, { transB: true }),
    inputs: [input([2, 3, 4], s()), input([2, 5, 4], s())],
  },
  {
    name: "matmul (B,L,K) x (K,N) shared",
    build: ([a, b]) => ops.matmul(a, b),
    inputs: [input([2, 3, 4], s()), input([4, 5], s())],
  },
  {
    name: "dds forward (X·Wᵀ)",
    build: ([x, w]) => ops.dds(x, w, mask),
    inputs: [input([3, 16], s()), input([mask.nnz, 4, 4], s())],
  },
  {
    name: "dds backward direction (X·W), rectangular",
    build: ([x, w]) => ops.dds(x, w, rect, { transW: false }),
    inputs: [input([3, 8], s()), input([rect.nnz, 4, 4], s())],
  },
  {
    name: "ddsLowRank (X·Wᵀ + H·Uᵀ)",
    build: ([x, w, h, u]) => ops.ddsLowRank(x, w, mask, h, u),
    inputs: [input([3, 16], s()), input([mask.nnz, 4, 4], s()), input([3, 2], s()), input([16, 2], s())],
  },
  {
    // block 16 and more than 8 rows: the wasm backend adds the low-rank term inside the sparse kernel
    name: "ddsLowRank at block 16 (fused on wasm)",
    build: ([x, w, h, u]) => ops.ddsLowRank(x, w, mask16, h, u),
    inputs: [input([9, 32], s()), input([mask16.nnz, 16, 16], s()), input([9, 4], s()), input([48, 4], s())],
  },
  {
    name: "ddsGatedLowRank with bias",
    build: ([x, w, v, u, a, c, bias]) => ops.ddsGatedLowRank(x, w, mask, v, u, a, c, bias),
    inputs: [
      input([3, 16], s()),
      input([mask.nnz, 4, 4], s()),
      input([2, 16], s()),
      input([16, 2], s()),
      input([1, 16], s()),
      input([1], s()),
      input([16], s()),
    ],
  },
  {
    // block 16 and more than 8 rows: the wasm backend makes x·Vᵀ and adds dH·V inside the sparse kernel
    name: "ddsGatedLowRank at block 16, no bias (fused on wasm)",
    build: ([x, w, v, u, a, c]) => ops.ddsGatedLowRank(x, w, mask16, v, u, a, c),
    inputs: [
      input([9, 32], s()),
      input([mask16.nnz, 16, 16], s()),
      input([4, 32], s()),
      input([48, 4], s()),
      input([1, 32], s()),
      input([1], s()),
    ],
  },
  ...([[true, false], [false, false], [false, true], [true, true]] as const).map(([transA, transB]) => ({
    name: `sdd transA=${transA} transB=${transB}`,
    build: ([a, b]: Tensor[]) => ops.sdd(a, b, rect, { transA, transB }),
    inputs: [input(transA ? [3, 8] : [8, 3], s()), input(transB ? [12, 3] : [3, 12], s())],
  })),
  {
    name: "blockSparseLinear with bias on (B, L, K)",
    build: ([x, w, b]) => ops.blockSparseLinear(x, w, mask, b),
    inputs: [input([2, 3, 16], s()), input([mask.nnz, 4, 4], s()), input([16], s())],
  },
  ...BINARY_OPS.flatMap((op) =>
    BROADCASTS.map((bc) => ({
      name: `${op} ${bc}`,
      build: ([a, b]: Tensor[]) => ops[op](a, b),
      inputs: [
        input([3, 4], s()),
        input([...bcastShape[bc]], s(), op === "div" ? { awayFromZero: 0.5 } : {}),
      ],
    }))
  ),
  { name: "add number", build: ([a]) => ops.add(ops.sub(1, a), 2), inputs: [input([5], s())] },
  { name: "affine", build: ([a]) => ops.affine(a, -3, 2), inputs: [input([5], s())] },
  ...UNARY_OPS.map((op) => ({
    name: op,
    build: ([a]: Tensor[]) => unaryPublic[op](a),
    inputs: [input([7], s(), op === "log" || op === "sqrt" ? { positive: true } : { awayFromZero: 0.05 })],
  })),
  { name: "sum", build: ([a]) => ops.sum(a), inputs: [input([3, 4], s())] },
  { name: "mean", build: ([a]) => ops.mean(a), inputs: [input([3, 4], s())] },
  { name: "sumRows", build: ([a]) => ops.sumRows(a), inputs: [input([3, 4], s())] },
  { name: "sumCols", build: ([a]) => ops.sumCols(a), inputs: [input([3, 4], s())] },
  { name: "reshape", build: ([a]) => ops.reshape(a, [4, 3]), inputs: [input([3, 4], s())] },
  { name: "padLast", build: ([a]) => ops.padLast(a, 6), inputs: [input([2, 3, 4], s())] },
  { name: "sliceLast", build: ([a]) => ops.sliceLast(a, 3), inputs: [input([3, 5], s())] },
  { name: "transpose 2-D", build: ([a]) => ops.transpose(a), inputs: [input([3, 4], s())] },
  { name: "transpose 3-D", build: ([a]) => ops.transpose(a), inputs: [input([2, 3, 4], s())] },
  { name: "softmax", build: ([a]) => ops.softmax(a), inputs: [input([3, 5], s())] },
  {
    name: "crossEntropy",
    build: ([a]) => ops.crossEntropy(a, [1, 0, 4]),
    inputs: [input([3, 5], s(), { scale: 3 })],
  },
  { name: "mse", build: ([a, b]) => ops.mse(a, b), inputs: [input([6], s()), input([6], s())] },
  {
    name: "layerNorm",
    build: ([x, g, b]) => ops.layerNorm(x, g, b),
    inputs: [input([3, 6], s(), { scale: 2 }), input([6], s()), input([6], s())],
  },
  {
    name: "gatedCombine with bias",
    build: ([a, b, g, bias]) => ops.gatedCombine(a, b, g, bias),
    inputs: [input([3, 5], s()), input([3, 5], s()), input([3, 1], s()), input([5], s())],
  },
  {
    name: "gatedCombine (B,L,N), no bias",
    build: ([a, b, g]) => ops.gatedCombine(a, b, g),
    inputs: [input([2, 3, 6], s()), input([2, 3, 6], s()), input([2, 3], s())],
  },
  {
    name: "gather (repeated rows)",
    build: ([t]) => ops.gather(t, [2, 0, 2, 1]),
    inputs: [input([3, 4], s())],
  },
  {
    name: "a tensor used twice",
    build: ([a, b]) => ops.mul(ops.add(a, a), ops.matmul(a, b)),
    inputs: [input([3, 3], s()), input([3, 3], s())],
  },
  {
    // x's gradient starts in one rule and the others add into it in place (gemm, dds, layerNormGrad and
    // unaryGrad with accumulate on); w feeds a matmul twice, both operands of the second
    name: "one input into matmul, dds, layerNorm and gelu (gradients added in place)",
    build: ([x, w, v, g, b]) =>
      ops.add(
        ops.add(ops.matmul(ops.gelu(x), w), ops.dds(x, v, mask)),
        ops.add(ops.matmul(ops.layerNorm(x, g, b), ops.matmul(w, w, { transB: true })), ops.matmul(x, w)),
      ),
    inputs: [
      input([3, 16], s()),
      input([16, 16], s(), { scale: 0.5 }),
      input([mask.nnz, 4, 4], s()),
      input([16], s()),
      input([16], s()),
    ],
  },
  {
    // each product sees its own reshape view of x: the later ones add into x's gradient through the views
    name: "a 3-D input through three reshaped products (gradients added in place through views)",
    build: ([x, w, v]) =>
      ops.add(
        ops.add(ops.matmul(x, w), ops.blockSparseLinear(x, v, mask)),
        ops.reshape(ops.matmul(ops.reshape(x, [6, 16]), w, { transB: true }), [2, 3, 16]),
      ),
    inputs: [input([2, 3, 16], s()), input([16, 16], s(), { scale: 0.5 }), input([mask.nnz, 4, 4], s())],
  },
  {
    name: "constant input gets no gradient",
    build: ([a, b]) => ops.mul(a, b),
    inputs: [input([4], s()), input([4], s(), { grad: false })],
  },
];
