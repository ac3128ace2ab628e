/**
 * Every public op and layer constructor with one valid call, for the fuzz
 * and leak suites: `args(be)` builds valid arguments (fresh tensors on `be`),
 * `call(args)` runs the op. The fuzz suite swaps one argument for a bad
 * value; the leak suite runs the valid call many times.
 *
 * @module
 */
import * as pf from "../mod.ts";
import type { Backend } from "../src/backends/types.ts";

/** One public entry point with a valid call. */
export interface Entry {
  /** The name its errors start with. */
  name: string;
  /** Valid arguments on a backend. */
  args: (be: Backend) => unknown[];
  /** Run it. */
  call: (args: unknown[]) => unknown;
  /** Positions that must be integers (sizes): fractional, negative and huge values are refused. */
  sizes?: number[];
  /** Positions that must be finite numbers. */
  numbers?: number[];
}

const t = (be: Backend, shape: number[], seed = 1, requiresGrad = false) =>
  pf.randn(shape, { seed, backend: be, requiresGrad });
const mask = pf.BlockMask.fromFunction(2, 3, 2, (i, j) => (i + j) % 2 === 0); // 4x6, nnz 3
const T = (a: unknown[]) => a as pf.Tensor[];

/** Differentiable ops (tensors in, a tensor out). */
export const OPS: Entry[] = [
  {
    name: "matmul",
    args: (be) => [t(be, [3, 4], 1, true), t(be, [4, 5], 2, true)],
    call: (a) => pf.matmul(T(a)[0], T(a)[1]),
  },
  {
    name: "matmul",
    args: (be) => [t(be, [2, 3, 4], 1, true), t(be, [5, 4], 2, true)],
    call: (a) => pf.matmul(T(a)[0], T(a)[1], { transB: true }),
  },
  {
    name: "dds",
    args: (be) => [t(be, [3, 6], 1, true), t(be, [3, 2, 2], 2, true), mask],
    call: (a) => pf.dds(T(a)[0], T(a)[1], a[2] as pf.BlockMask),
  },
  {
    name: "sdd",
    args: (be) => [t(be, [5, 4], 1, true), t(be, [5, 6], 2, true), mask],
    call: (a) => pf.sdd(T(a)[0], T(a)[1], a[2] as pf.BlockMask, { transA: true }),
  },
  {
    name: "blockSparseLinear",
    args: (be) => [t(be, [3, 6], 1, true), t(be, [3, 2, 2], 2, true), mask, t(be, [4], 3, true)],
    call: (a) => pf.blockSparseLinear(T(a)[0], T(a)[1], a[2] as pf.BlockMask, T(a)[3]),
  },
  ...(["add", "sub", "mul", "div"] as const).map((op): Entry => ({
    name: op,
    args: (be) => [t(be, [3, 4], 1, true), t(be, [4], 2, true)],
    call: (a) => pf[op](T(a)[0], T(a)[1]),
  })),
  ...(["add", "sub", "mul", "div"] as const).map((op): Entry => ({
    name: op,
    args: (be) => [t(be, [3, 4], 1, true), 2.5],
    call: (a) => pf[op](T(a)[0], a[1] as number),
    numbers: [1],
  })),
  {
    name: "affine",
    args: (be) => [t(be, [3, 4], 1, true), 2, -1],
    call: (a) => pf.affine(T(a)[0], a[1] as number, a[2] as number),
    numbers: [1, 2],
  },
  ...(["relu", "gelu", "sigmoid", "tanh", "exp", "neg", "sum", "mean", "softmax", "transpose"] as const).map((
    op,
  ): Entry => ({
    name: op,
    args: (be) => [t(be, [3, 4], 1, true)],
    call: (a) => pf[op](T(a)[0]),
  })),
  { name: "log", args: (be) => [pf.affine(pf.exp(t(be, [3, 4])), 1, 1)], call: (a) => pf.log(T(a)[0]) },
  { name: "sqrt", args: (be) => [pf.affine(pf.exp(t(be, [3, 4])), 1, 1)], call: (a) => pf.sqrt(T(a)[0]) },
  { name: "sumRows", args: (be) => [t(be, [3, 4], 1, true)], call: (a) => pf.sumRows(T(a)[0]) },
  { name: "sumCols", args: (be) => [t(be, [3, 4], 1, true)], call: (a) => pf.sumCols(T(a)[0]) },
  {
    name: "reshape",
    args: (be) => [t(be, [3, 4], 1, true), [2, 6]],
    call: (a) => pf.reshape(T(a)[0], a[1] as number[]),
  },
  {
    name: "padLast",
    args: (be) => [t(be, [3, 4], 1, true), 6],
    call: (a) => pf.padLast(T(a)[0], a[1] as number),
    sizes: [1],
  },
  {
    name: "sliceLast",
    args: (be) => [t(be, [3, 4], 1, true), 2],
    call: (a) => pf.sliceLast(T(a)[0], a[1] as number),
    sizes: [1],
  },
  {
    name: "crossEntropy",
    args: (be) => [t(be, [3, 4], 1, true), pf.tensor([0, 3, 1], [3], { backend: be })],
    call: (a) => pf.crossEntropy(T(a)[0], a[1] as pf.Tensor),
  },
  {
    name: "crossEntropy",
    args: (be) => [t(be, [3, 4], 1, true), [0, 3, 1]],
    call: (a) => pf.crossEntropy(T(a)[0], a[1] as number[]),
  },
  {
    name: "mse",
    args: (be) => [t(be, [3, 4], 1, true), t(be, [3, 4], 2)],
    call: (a) => pf.mse(T(a)[0], T(a)[1]),
  },
  {
    name: "layerNorm",
    args: (be) => [t(be, [3, 4], 1, true), t(be, [4], 2, true), t(be, [4], 3, true), 1e-5],
    call: (a) => pf.layerNorm(T(a)[0], T(a)[1], T(a)[2], a[3] as number),
    numbers: [3],
  },
  {
    name: "gather",
    args: (be) => [t(be, [5, 4], 1, true), pf.tensor([4, 0, 2], [3], { backend: be })],
    call: (a) => pf.gather(T(a)[0], a[1] as pf.Tensor),
  },
  {
    name: "gather",
    args: (be) => [t(be, [5, 4], 1, true), [4, 0, 2]],
    call: (a) => pf.gather(T(a)[0], a[1] as number[]),
  },
];

/** Creation helpers and layer constructors (sizes in, a tensor or module out). */
export const MAKERS: Entry[] = [
  {
    name: "tensor",
    args: () => [[1, 2, 3, 4], [2, 2]],
    call: (a) => pf.tensor(a[0] as number[], a[1] as number[]),
  },
  {
    name: "zeros",
    args: (be) => [[2, 3], { backend: be }],
    call: (a) => pf.zeros(a[0] as number[], a[1] as pf.CreateOptions),
  },
  {
    name: "full",
    args: (be) => [[2, 3], 1.5, { backend: be }],
    call: (a) => pf.full(a[0] as number[], a[1] as number, a[2] as pf.CreateOptions),
  },
  {
    name: "randn",
    args: (be) => [[2, 3], { seed: 1, backend: be }],
    call: (a) => pf.randn(a[0] as number[], a[1] as pf.RandomOptions),
  },
  {
    name: "Linear",
    args: (be) => [4, 3, { seed: 1, backend: be }],
    call: (a) => new pf.Linear(a[0] as number, a[1] as number, a[2] as pf.LinearOptions),
    sizes: [0, 1],
  },
  {
    name: "BlockSparseLinear",
    args: (be) => [16, 8, { block: 4, butterflySize: 2, nFactors: 1, seed: 1, backend: be }],
    call: (a) =>
      new pf.BlockSparseLinear(a[0] as number, a[1] as number, a[2] as pf.BlockSparseLinearOptions),
    sizes: [0, 1],
  },
  {
    name: "LowRank",
    args: (be) => [8, 6, { rank: 2, seed: 1, backend: be }],
    call: (a) => new pf.LowRank(a[0] as number, a[1] as number, a[2] as pf.LowRankOptions),
    sizes: [0, 1],
  },
  {
    name: "PixelflyLinear",
    args: (be) => [16, 8, { block: 4, butterflySize: 2, nFactors: 1, rank: 2, seed: 1, backend: be }],
    call: (a) => new pf.PixelflyLinear(a[0] as number, a[1] as number, a[2] as pf.PixelflyLinearOptions),
    sizes: [0, 1],
  },
  {
    name: "LayerNorm",
    args: (be) => [4, { backend: be }],
    call: (a) => new pf.LayerNorm(a[0] as number, a[1] as { backend: Backend }),
    sizes: [0],
  },
  {
    name: "Embedding",
    args: (be) => [5, 3, { seed: 1, backend: be }],
    call: (a) => new pf.Embedding(a[0] as number, a[1] as number, a[2] as pf.LayerOptions),
    sizes: [0, 1],
  },
  {
    name: "MLP",
    args: (be) => [4, { hidden: 8, seed: 1, backend: be }],
    call: (a) => new pf.MLP(a[0] as number, a[1] as pf.MLPOptions),
    sizes: [0],
  },
  {
    name: "MultiHeadAttention",
    args: (be) => [8, { heads: 2, seed: 1, backend: be }],
    call: (a) => new pf.MultiHeadAttention(a[0] as number, a[1] as pf.MultiHeadAttentionOptions),
    sizes: [0],
  },
  {
    name: "MixerBlock",
    args: (be) => [4, 6, { tokenHidden: 4, channelHidden: 8, seed: 1, backend: be }],
    call: (a) => new pf.MixerBlock(a[0] as number, a[1] as number, a[2] as pf.MixerBlockOptions),
    sizes: [0, 1],
  },
  {
    name: "BlockMask",
    args: () => [2, 2, 4, [1, 0, 0, 1]],
    call: (a) => new pf.BlockMask(a[0] as number, a[1] as number, a[2] as number, a[3] as number[]),
    sizes: [0, 1, 2],
  },
];
