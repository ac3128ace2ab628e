// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// pixelfly's WASM kernels: the entry file that asm/build.ts compiles; every export here is a
// WebAssembly export. Raw pointers only: TypeScript (src/backends/wasm.ts) owns the memory layout and
// passes byte addresses of float32 data. Sizes are element counts unless a name ends in "b" (bytes).
// The kernels live by the Backend's sections:
//   gemm.ts         packing and the dense GEMM (micro-kernel: generated/micro.ts from _gen_micro.ts)
//   thin.ts         products with one small dimension (gemmThin; gemmDot, gemmRows, gemmCols), unpacked
//   sparse.ts       the block-sparse products dds and sdd
//   dds_rows.ts     dds' forward for a few rows, the weight read in place (ddsRows)
//   rows.ts         reductions and row kernels (softmax, cross-entropy, layer norm, gather/scatter)
//   elementwise.ts  binary, unary, unaryGrad, scale, fill, copy, transpose
//   optim.ts        adamw, sgd, clipScale
//   attention.ts    bsrSoftmax, bsrSoftmaxGrad (block-sparse attention's row softmax)
import { gemmWorkspace, gemm, gemmPackedBytes, gemmPackB } from "./gemm.ts";
import { gemmDot, gemmRows, gemmCols, gemmThin, gemmThinPack, gemmThinUntranspose } from "./thin.ts";
import { ddsWorkspace, ddsLowRankWorkspace, dds, ddsPackedBytes, ddsPackW, sddWorkspace, sddSharedBytes, sddFlagBytes, sdd } from "./sparse.ts";
import { ddsRows } from "./dds_rows.ts";
import {
  sumRows,
  sumCols,
  sumSquares,
  sumSquaresChunks,
  softmax,
  softmaxGrad,
  crossEntropy,
  crossEntropyGrad,
  layerNorm,
  layerNormGrad,
  gatedCombine,
  gatedCombineGrad,
  gatherRows,
  scatterAddRows,
} from "./rows.ts";
import { binary, unary, unaryGrad, scale, fill, copy, transpose } from "./elementwise.ts";
import { adamw, sgd, clipScale } from "./optim.ts";
import { bsrSoftmax, bsrSoftmaxGrad } from "./attention.ts";

export {
  gemmWorkspace,
  gemm,
  gemmPackedBytes,
  gemmPackB,
  gemmDot,
  gemmRows,
  gemmCols,
  gemmThin,
  gemmThinPack,
  gemmThinUntranspose,
  ddsWorkspace,
  ddsLowRankWorkspace,
  dds,
  ddsPackedBytes,
  ddsPackW,
  ddsRows,
  sddWorkspace,
  sddSharedBytes,
  sddFlagBytes,
  sdd,
  sumRows,
  sumCols,
  sumSquares,
  sumSquaresChunks,
  softmax,
  softmaxGrad,
  crossEntropy,
  crossEntropyGrad,
  layerNorm,
  layerNormGrad,
  gatedCombine,
  gatedCombineGrad,
  gatherRows,
  scatterAddRows,
  binary,
  unary,
  unaryGrad,
  scale,
  fill,
  copy,
  transpose,
  adamw,
  sgd,
  clipScale,
  bsrSoftmax,
  bsrSoftmaxGrad,
};

/** Start of the memory TypeScript may manage. */
export function heapBase(): usize {
  return (__heap_base + 63) & ~63;
}
