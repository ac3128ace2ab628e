/**
 * The Backend contract: buffers in, buffers out.
 *
 * A backend receives buffers and sizes that the ops layer (`src/ops.ts`) has
 * already checked. It never sees a Tensor, never validates user input and
 * never implements backward. Compute calls enqueue work and return at once;
 * only {@link Backend.read} is async.
 *
 * Every buffer holds float32 values. Integer data (class labels, token ids)
 * travels as float32 too; it is exact up to 2^24.
 *
 * Dimension letters: `M` rows of the batch, `K` in-features, `N` out-features,
 * `b` block size, `nnz` kept blocks.
 *
 * @module
 */
import type { BinaryOp, Broadcast, UnaryOp } from "./op_table.ts";

// The elementwise op names and their codes live in one table (op_table.ts).
export type { BinaryOp, Broadcast, UnaryOp } from "./op_table.ts";

/** An opaque handle to `size` float32 values owned by one backend. */
export interface BackendBuffer {
  /** Number of float32 elements. */
  readonly size: number;
}

/**
 * A block-sparse row (BSR) layout: the kept blocks of a `rows x cols` grid of
 * `block x block` tiles, in row-major order, plus the transposed walk.
 *
 * Values of a weight on this layout are stored as `(nnz, block, block)`:
 * block `e` (the e-th kept block in row-major order) holds rows
 * `rowOf(e)*block ..` and columns `colIdx[e]*block ..` of the dense matrix,
 * row-major inside the block.
 *
 * Produced by `BlockMask.toBSR()`; backends may cache device copies of it in a
 * `WeakMap` keyed on the object, so it must never be mutated.
 */
export interface BlockLayout {
  /** Block rows (dense rows / block). */
  readonly rows: number;
  /** Block columns (dense columns / block). */
  readonly cols: number;
  /** Block edge b. */
  readonly block: number;
  /** Number of kept blocks. */
  readonly nnz: number;
  /** `rows + 1` offsets into `colIdx`. */
  readonly rowPtr: Int32Array;
  /** `nnz` block-column indices, sorted within each block row. */
  readonly colIdx: Int32Array;
  /** Transposed walk: `cols + 1` offsets into `rowIdx` / `blockIdx`. */
  readonly colPtr: Int32Array;
  /** Transposed walk: `nnz` block-row indices, sorted within each block column. */
  readonly rowIdx: Int32Array;
  /** Transposed walk: `nnz` indices of the block in the row-major value order. */
  readonly blockIdx: Int32Array;
}

/** Sizes for {@link Backend.gemm}: `C (+)= alpha * op(A) * op(B)`, batched. */
export interface GemmParams {
  /** Rows of op(A) and C. */
  M: number;
  /** Columns of op(B) and C. */
  N: number;
  /** Columns of op(A), rows of op(B). */
  K: number;
  /** A is stored (K, M) when true, (M, K) otherwise. */
  transA: boolean;
  /** B is stored (N, K) when true, (K, N) otherwise. */
  transB: boolean;
  /** Add into C instead of overwriting it. */
  accumulate: boolean;
  /** Scale of the product (1 when omitted). */
  alpha?: number;
  /** Number of independent products (1 when omitted). */
  batch?: number;
  /** Elements between consecutive A matrices of the batch (the stored matrix size when omitted). */
  strideA?: number;
  /** Elements between consecutive B matrices of the batch. */
  strideB?: number;
  /** Elements between consecutive C matrices of the batch. */
  strideC?: number;
}

/** Sizes for {@link Backend.dds}: dense = dense x sparse. */
export interface DdsParams {
  /** Rows of X and Y. */
  M: number;
  /** The weight's block layout: W is (layout.rows*b, layout.cols*b) = (N, K). */
  layout: BlockLayout;
  /**
   * true: the forward `Y (M,N) (+)= X (M,K) · Wᵀ`.
   * false: the backward `Y (M,K) (+)= X (M,N) · W` (walks the transposed layout).
   */
  transW: boolean;
  /** Add into Y instead of overwriting it. */
  accumulate: boolean;
  /** Number of independent products on the one layout (1 when omitted): attention's batch x heads. */
  batch?: number;
  /** Elements between consecutive X matrices of the batch (the stored matrix size when omitted). */
  strideX?: number;
  /** Elements between consecutive W value sets of the batch (nnz·b² when omitted). */
  strideW?: number;
  /** Elements between consecutive Y matrices of the batch (the stored matrix size when omitted). */
  strideY?: number;
  /**
   * A low-rank term added to Y by the same call (not with `batch`): `Y += H·op(U)`, H (M, rank), op(U) =
   * Uᵀ with U stored (Y's columns, rank) when `transU`, U stored (rank, Y's columns) otherwise. Pixelfly's
   * sparse + low-rank product; a backend may fuse it into the sparse kernel or add it by a gemm after.
   */
  lowRank?: DdsLowRank;
  /**
   * A projection of X made by the same call (not with `batch` or `lowRank`): `H = X·op(U)`, H (M, rank)
   * overwritten, op(U) = Uᵀ with U stored (rank, X's columns) when `transU`, U stored (X's columns, rank)
   * otherwise. A backend may make it while the sparse kernel reads X, or by a gemm.
   */
  project?: DdsLowRank;
}

/** The low-rank term or the projection of {@link DdsParams} (U's shape: see those). */
export interface DdsLowRank {
  /** H (M, rank): read by `lowRank`, written by `project`. */
  h: BackendBuffer;
  /** U. */
  u: BackendBuffer;
  /** Columns of H. */
  rank: number;
  /** Whether op(U) is Uᵀ. */
  transU: boolean;
  /** `lowRank` only: H stored (rank, M), read transposed (false when omitted). */
  transH?: boolean;
}

/** Sizes for {@link Backend.sdd}: sparse = dense x dense on the kept blocks. */
export interface SddParams {
  /** The result's block layout: W is (R, C) = (layout.rows*b, layout.cols*b). */
  layout: BlockLayout;
  /** The inner dimension. */
  K: number;
  /** A is stored (K, R) when true, (R, K) otherwise. For dW = dYᵀ·X, A = dY and transA is true. */
  transA: boolean;
  /** B is stored (C, K) when true, (K, C) otherwise. For dW = dYᵀ·X, B = X and transB is false. */
  transB: boolean;
  /** Add into W instead of overwriting it. */
  accumulate: boolean;
  /** Number of independent products on the one layout (1 when omitted): attention's batch x heads. */
  batch?: number;
  /** Elements between consecutive A matrices of the batch (the stored matrix size when omitted). */
  strideA?: number;
  /** Elements between consecutive B matrices of the batch (the stored matrix size when omitted). */
  strideB?: number;
  /** Elements between consecutive W value sets of the batch (nnz·b² when omitted). */
  strideW?: number;
}

/**
 * Sizes for {@link Backend.bsrSoftmax} and {@link Backend.bsrSoftmaxGrad}: a row softmax of
 * `batch` block-sparse (L, S) score matrices stored as (batch, nnz, b, b) on one layout
 * (layout.rows = ceil(L/b), layout.cols = ceil(S/b)).
 */
export interface BsrSoftmaxParams {
  /** The scores' block layout (query tiles x key tiles). */
  layout: BlockLayout;
  /** Number of score matrices (batch x heads). */
  batch: number;
  /** Query positions; rows at or past L are padding and come out 0. */
  L: number;
  /** Key positions; columns at or past S are padding and come out 0. */
  S: number;
  /** Key j never attends query i when j > i (the entry comes out 0). */
  causal: boolean;
  /** The scores are multiplied by this before the softmax. */
  scale: number;
}

/** Hyper-parameters of one AdamW step (decoupled weight decay, bias-corrected). */
export interface AdamWParams {
  /** Elements of the parameter. */
  size: number;
  /** Learning rate. */
  lr: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Added to the root of the second moment. */
  eps: number;
  /** Decoupled weight decay (0 for opted-out parameters). */
  weightDecay: number;
  /** 1-based step number, for bias correction. */
  step: number;
}

/** Hyper-parameters of one SGD step (PyTorch semantics). */
export interface SgdParams {
  /** Elements of the parameter. */
  size: number;
  /** Learning rate. */
  lr: number;
  /** Momentum factor (0 for none). */
  momentum: number;
  /** Dampening of the momentum. */
  dampening: number;
  /** Nesterov momentum. */
  nesterov: boolean;
  /** L2 weight decay added to the gradient. */
  weightDecay: number;
}

/**
 * A compute backend. Every method but `read` enqueues work and returns at
 * once; buffers passed to one call may alias only where a method says so.
 */
export interface Backend {
  /** "js", "wasm" or "webgpu". */
  readonly name: string;

  // --- memory -------------------------------------------------------------
  /**
   * A new buffer of `size` zeros; with `{ zero: false }` its values are unspecified (for an output that
   * a kernel overwrites entirely), and a backend may skip the fill.
   */
  alloc(size: number, opts?: { zero?: boolean }): BackendBuffer;
  /** A new buffer holding a copy of `data`. */
  upload(data: Float32Array): BackendBuffer;
  /** Overwrite `buf` from `data` (same length), starting at element `offset` (0). */
  write(buf: BackendBuffer, data: Float32Array, offset?: number): void;
  /** A copy of the buffer's values. */
  read(buf: BackendBuffer): Promise<Float32Array>;
  /** Release the buffer; it must not be used again. */
  free(buf: BackendBuffer): void;
  /** Submit queued work (no-op on synchronous backends). */
  flush(): void;
  /** Release everything the backend holds. */
  dispose(): void;

  // --- products -----------------------------------------------------------
  /** c is (M,N) per batch, a is (M,K) or (K,M), b is (K,N) or (N,K): `C (+)= alpha * op(A)·op(B)`. */
  gemm(a: BackendBuffer, b: BackendBuffer, c: BackendBuffer, p: GemmParams): void;
  /** x is (M,K) [transW] or (M,N), w is (nnz,b,b), y is (M,N) [transW] or (M,K): `Y (+)= X·op(W)`. */
  dds(x: BackendBuffer, w: BackendBuffer, y: BackendBuffer, p: DdsParams): void;
  /** a is (R,K) or (K,R), b is (K,C) or (C,K), w is (nnz,b,b): `W (+)= op(A)·op(B)` on kept blocks only. */
  sdd(a: BackendBuffer, b: BackendBuffer, w: BackendBuffer, p: SddParams): void;

  // --- reductions ---------------------------------------------------------
  /** x is (M,N), y is (N): `y (+)= Σ_rows x` (the bias gradient). */
  sumRows(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void;
  /** x is (M,N), y is (M): `y (+)= Σ_cols x`. */
  sumCols(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void;
  /** x is (size), out is (1): `out (+)= Σ x²` (for gradient-norm clipping). */
  sumSquares(x: BackendBuffer, out: BackendBuffer, p: { size: number; accumulate: boolean }): void;

  // --- elementwise --------------------------------------------------------
  /** a is (M,N), b is broadcast per `bcast`, out is (M,N): `out = a op b`. out may alias a. */
  binary(
    op: BinaryOp,
    a: BackendBuffer,
    b: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number; bcast: Broadcast },
  ): void;
  /** x, y are (size): `y = f(x)`. y may alias x. */
  unary(op: UnaryOp, x: BackendBuffer, y: BackendBuffer, p: { size: number }): void;
  /** All (size): `dx (+)= dy * f'(x)`, given x and y = f(x). */
  unaryGrad(
    op: UnaryOp,
    x: BackendBuffer,
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { size: number; accumulate: boolean },
  ): void;
  /** x, y are (size): `y (+)= alpha * x + beta`. y may alias x when accumulate is false. */
  scale(
    x: BackendBuffer,
    y: BackendBuffer,
    p: { size: number; alpha: number; beta: number; accumulate: boolean },
  ): void;
  /** x is (size): every element set to `value`. */
  fill(x: BackendBuffer, p: { size: number; value: number }): void;
  /** `dst[dstOffset + i] = src[srcOffset + i]` for i < size. */
  copy(
    src: BackendBuffer,
    dst: BackendBuffer,
    p: { size: number; srcOffset: number; dstOffset: number },
  ): void;
  /** x is (B,M,N), y is (B,N,M): a batched transpose. */
  transpose(x: BackendBuffer, y: BackendBuffer, p: { B: number; M: number; N: number }): void;

  // --- rows ---------------------------------------------------------------
  /** x, y are (M,N): row softmax. y may alias x. */
  softmax(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number }): void;
  /** y, dy, dx are (M,N): `dx (+)= y ⊙ (dy − Σ_row dy⊙y)`. */
  softmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void;
  /**
   * x, y are (batch,nnz,b,b) on `p.layout`: `y = softmax(scale·x)` over each row's kept entries
   * (max-subtracted; padded, causal-masked and dropped entries are 0; a row with none is all 0).
   * y may alias x.
   */
  bsrSoftmax(x: BackendBuffer, y: BackendBuffer, p: BsrSoftmaxParams): void;
  /** y, dy, dx are (batch,nnz,b,b): `dx (+)= scale · y ⊙ (dy − Σ_row dy⊙y)` over each row's kept entries. */
  bsrSoftmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: BsrSoftmaxParams & { accumulate: boolean },
  ): void;
  /**
   * logits, probs are (M,N), labels and losses (M): `probs = softmax(logits)`,
   * `losses[i] = logsumexp(logits[i]) − logits[i, labels[i]]`, computed stably.
   */
  crossEntropy(
    logits: BackendBuffer,
    labels: BackendBuffer,
    probs: BackendBuffer,
    losses: BackendBuffer,
    p: { M: number; N: number },
  ): void;
  /** probs, dlogits are (M,N), labels and dlosses (M): `dlogits (+)= (probs − onehot(labels)) * dlosses[row]`. */
  crossEntropyGrad(
    probs: BackendBuffer,
    labels: BackendBuffer,
    dlosses: BackendBuffer,
    dlogits: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void;
  /**
   * x, y are (M,N), gamma and beta (N), mean and rstd (M):
   * `y = (x − mean) * rstd * gamma + beta`, saving mean and rstd (1/sqrt(var + eps), biased var).
   */
  layerNorm(
    x: BackendBuffer,
    gamma: BackendBuffer,
    beta: BackendBuffer,
    y: BackendBuffer,
    mean: BackendBuffer,
    rstd: BackendBuffer,
    p: { M: number; N: number; eps: number },
  ): void;
  /** The LayerNorm backward: `dx (+)=`, `dgamma +=`, `dbeta +=` (dgamma and dbeta always accumulate). */
  layerNormGrad(
    dy: BackendBuffer,
    x: BackendBuffer,
    gamma: BackendBuffer,
    mean: BackendBuffer,
    rstd: BackendBuffer,
    dx: BackendBuffer,
    dgamma: BackendBuffer,
    dbeta: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void;
  /**
   * s, l, y are (M,N), g (M), bias (N): `y = (1 − g)·s + g·l + bias` with one gate value per row (Pixelfly's
   * combine of its sparse and low-rank terms, Chen, Dao et al., ICLR 2022, Section 3). With `bias: false`
   * the bias buffer is not read (any buffer may stand in).
   */
  gatedCombine(
    s: BackendBuffer,
    l: BackendBuffer,
    g: BackendBuffer,
    bias: BackendBuffer,
    y: BackendBuffer,
    p: { M: number; N: number; bias: boolean },
  ): void;
  /**
   * The gatedCombine backward: `ds (+)= (1 − g)·dy`, `dl (+)= g·dy`, `dg (+)= Σ_row dy·(l − s)` (the bias
   * gradient is `sumRows(dy)`).
   */
  gatedCombineGrad(
    dy: BackendBuffer,
    s: BackendBuffer,
    l: BackendBuffer,
    g: BackendBuffer,
    ds: BackendBuffer,
    dl: BackendBuffer,
    dg: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void;
  /** table is (rows,N), idx (M) holds row numbers, out is (M,N): `out[i] = table[idx[i]]`. */
  gatherRows(
    table: BackendBuffer,
    idx: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number },
  ): void;
  /** The gatherRows backward: `dtable[idx[i]] += dout[i]` (repeated indices add up). */
  scatterAddRows(
    dout: BackendBuffer,
    idx: BackendBuffer,
    dtable: BackendBuffer,
    p: { M: number; N: number },
  ): void;

  // --- optimizers ---------------------------------------------------------
  /** One AdamW step on param p with gradient g and moments m, v (all (size)). */
  adamw(
    param: BackendBuffer,
    grad: BackendBuffer,
    m: BackendBuffer,
    v: BackendBuffer,
    p: AdamWParams,
  ): void;
  /**
   * One SGD step on param p with gradient g and momentum buffer (all (size)); `first` marks the first step
   * (buffer = grad). With momentum 0 the buffer is neither read nor written (it may be a 1-element placeholder).
   */
  sgd(
    param: BackendBuffer,
    grad: BackendBuffer,
    momentum: BackendBuffer,
    p: SgdParams & { first: boolean },
  ): void;
  /** `g *= min(1, maxNorm / (sqrt(normSq[0]) + 1e-6))`: gradient clipping without a read-back (PyTorch's rule). */
  clipScale(g: BackendBuffer, normSq: BackendBuffer, p: { size: number; maxNorm: number }): void;
}

/** The names accepted by `setBackend`. */
export type BackendName = "js" | "wasm" | "webgpu" | "auto";
