/**
 * pixelfly: Pixelated Butterfly structured-sparse training and inference for
 * Deno, with block-sparse kernels on WASM SIMD and WebGPU.
 *
 * A flat block butterfly mask, a block-sparse product and its gradient:
 *
 * ```ts
 * import { blockSparseLinear, flatBlockButterfly, mean, randn, setBackend } from "./mod.ts";
 *
 * await setBackend("js"); // or "wasm", "webgpu", "auto"
 * const mask = flatBlockButterfly({ outFeatures: 256, inFeatures: 256, block: 32, butterflySize: 8, nFactors: 2 });
 * console.log(mask.density); // 0.375
 * const x = randn([4, 256], { seed: 1 });
 * const w = randn([mask.nnz, 32, 32], { seed: 2, std: 0.05, requiresGrad: true });
 * const loss = mean(blockSparseLinear(x, w, mask));
 * loss.backward();
 * console.log(w.grad!.shape); // [24, 32, 32]
 * ```
 *
 * @module
 */
export {
  type CreateOptions,
  full,
  keep,
  memory,
  type MemoryInfo,
  ones,
  randn,
  type RandomOptions,
  randu,
  Tensor,
  tensor,
  tidy,
  zeros,
} from "./src/tensor.ts";
export {
  add,
  affine,
  blockSparseLinear,
  crossEntropy,
  dds,
  ddsGatedLowRank,
  ddsLowRank,
  div,
  exp,
  gatedCombine,
  gather,
  gelu,
  type GeluOptions,
  layerNorm,
  log,
  matmul,
  type MatmulOptions,
  mean,
  mse,
  mul,
  neg,
  padLast,
  relu,
  reshape,
  sdd,
  sigmoid,
  sliceLast,
  softmax,
  sqrt,
  sub,
  sum,
  sumCols,
  sumRows,
  tanh,
  transpose,
} from "./src/ops.ts";
export { backward, type BackwardOptions } from "./src/autograd.ts";
export {
  isGradEnabled,
  noGrad,
  type OpAttrs,
  type OpName,
  type TapeNode,
  type TapeNodeOf,
} from "./src/tape.ts";
export { BlockMask, validateLayout } from "./src/masks/block_mask.ts";
export {
  blockDiagonal,
  butterflyFactor,
  flatBlockButterfly,
  type FlatBlockButterflyOptions,
  flatButterflyGrid,
  globalMask,
  randomMask,
  union,
} from "./src/masks/patterns.ts";
export {
  allocateBudget,
  type Allocation,
  type LayerAllocation,
  type LayerSchema,
  pixelflyBudget,
  type PixelflyBudgetOptions,
  type PixelflyChoice,
} from "./src/masks/budget.ts";
export {
  availableBackends,
  type BackendInfo,
  backendInfo,
  createWebGpuBackend,
  getBackend,
  loadBackend,
  setBackend,
} from "./src/backends/select.ts";
export type {
  AdamWParams,
  Backend,
  BackendBuffer,
  BackendName,
  BinaryOp,
  BlockLayout,
  Broadcast,
  BsrSoftmaxParams,
  DdsLowRank,
  DdsParams,
  GemmParams,
  SddParams,
  SgdParams,
  UnaryOp,
} from "./src/backends/types.ts";
export type { ConcreteName } from "./src/backends/select.ts";
export { BINARY_OPS, BROADCASTS, UNARY_OPS } from "./src/backends/op_table.ts";
export {
  createWasmBackend,
  type WasmBackend,
  type WasmBackendInfo,
  type WasmBackendOptions,
  type WasmVariant,
} from "./src/backends/wasm.ts";
export type { WebGpuOptions } from "./src/backends/webgpu.ts";
export type { Family as WebGpuKernelFamily } from "./src/backends/_webgpu_tiles.ts";
export { type FillUniformOptions, manualSeed, nextSeed, Rng } from "./src/random.ts";
export { fromArray, type LayerOptions, Module, type NamedBuffer } from "./src/nn/module.ts";
export {
  BlockSparseLinear,
  type BlockSparseLinearOptions,
  Linear,
  type LinearOptions,
  LowRank,
  type LowRankOptions,
  PixelflyLinear,
  type PixelflyLinearOptions,
} from "./src/nn/linear.ts";
export {
  Dropout,
  Embedding,
  GELU,
  LayerNorm,
  type LinearKind,
  makeLinear,
  MLP,
  type MLPOptions,
  ReLU,
  Sequential,
} from "./src/nn/layers.ts";
export {
  type AttentionCache,
  MultiHeadAttention,
  type MultiHeadAttentionOptions,
  type ProjectionKinds,
  type ScoreMaskOptions,
  TransformerBlock,
  type TransformerBlockOptions,
} from "./src/nn/attention.ts";
export { MixerBlock, type MixerBlockOptions, MlpMixer, type MlpMixerOptions } from "./src/nn/mixer.ts";
export * from "./src/io/mod.ts";
export { SGD, type SGDOptions } from "./src/optim/sgd.ts";
export { AdamW, type AdamWOptions } from "./src/optim/adamw.ts";
export { clipGradNorm, gradNorm } from "./src/optim/clip.ts";
export { cosineSchedule, type CosineScheduleOptions } from "./src/optim/schedule.ts";
export { accuracy, argmax, linearFlops } from "./src/train.ts";
export { type AttentionOptions, scaledDotProductAttention } from "./src/attention.ts";
export { type GenerateOptions, GPT, type GPTConfig } from "./src/nn/gpt.ts";
export { toPatches, ViT, type ViTConfig } from "./src/nn/vit.ts";
export {
  attentionMask,
  type AttentionMaskOptions,
  bigBirdMask,
  butterflySequenceMask,
  causalMask,
  globalTokensMask,
  localMask,
  randomTilesMask,
  type SequenceMaskFactory,
} from "./src/masks/sequence.ts";
