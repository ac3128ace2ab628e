/**
 * One PixelflyLinear training step at the kernel level, shared by the
 * benches (wasm and webgpu) and the wasm memory test: the forward
 * `y = x·Wᵀ (sparse, dds) + (x·Vᵀ)·Uᵀ (low rank)` and, given dy, the backward
 * `dx = dy·W (dds) + (dy·U)·V`, `dW = dyᵀ·x (sdd)`, `dU = dyᵀ·h`, `dV = dhᵀ·x`.
 * Sizes follow the style guide: x (M,K), y and dy (M,N), w (nnz,b,b) on
 * `layout`, u (N,r), v (r,K), h and dh (M,r).
 *
 * @module
 */
import type { Backend, BackendBuffer, BlockLayout } from "../src/backends/types.ts";

/** The sizes of one step. */
export interface PixelflyStepSizes {
  /** Rows of the batch. */
  M: number;
  /** In-features. */
  K: number;
  /** Out-features. */
  N: number;
  /** Rank of the low-rank term. */
  rank: number;
  /** The sparse weight's layout (N = layout.rows·b, K = layout.cols·b). */
  layout: BlockLayout;
}

/** The buffers of one step: parameters, activations and gradients. */
export interface PixelflyStepBuffers {
  x: BackendBuffer;
  w: BackendBuffer;
  u: BackendBuffer;
  v: BackendBuffer;
  y: BackendBuffer;
  h: BackendBuffer;
  dy: BackendBuffer;
  dx: BackendBuffer;
  dw: BackendBuffer;
  dh: BackendBuffer;
  du: BackendBuffer;
  dv: BackendBuffer;
}

/** Allocate every buffer of a step; `fill(n)` gives the values of x, w, u, v and dy. */
export function pixelflyStepBuffers(
  be: Backend,
  s: PixelflyStepSizes,
  fill: (n: number) => Float32Array,
): PixelflyStepBuffers {
  const { M, K, N, rank: r, layout: l } = s, wSize = l.nnz * l.block * l.block;
  return {
    x: be.upload(fill(M * K)),
    w: be.upload(fill(wSize)),
    u: be.upload(fill(N * r)),
    v: be.upload(fill(r * K)),
    dy: be.upload(fill(M * N)),
    y: be.alloc(M * N),
    h: be.alloc(M * r),
    dx: be.alloc(M * K),
    dw: be.alloc(wSize),
    dh: be.alloc(M * r),
    du: be.alloc(N * r),
    dv: be.alloc(r * K),
  };
}

/** The forward: y = x·Wᵀ + (x·Vᵀ)·Uᵀ, keeping h = x·Vᵀ. */
export function pixelflyForward(be: Backend, b: PixelflyStepBuffers, s: PixelflyStepSizes): void {
  const { M, K, N, rank: r, layout } = s;
  be.dds(b.x, b.w, b.y, { M, layout, transW: true, accumulate: false });
  be.gemm(b.x, b.v, b.h, { M, N: r, K, transA: false, transB: true, accumulate: false });
  be.gemm(b.h, b.u, b.y, { M, N, K: r, transA: false, transB: true, accumulate: true });
}

/** The backward from dy: dx, dW, dU, dV. */
export function pixelflyBackward(be: Backend, b: PixelflyStepBuffers, s: PixelflyStepSizes): void {
  const { M, K, N, rank: r, layout } = s;
  be.dds(b.dy, b.w, b.dx, { M, layout, transW: false, accumulate: false });
  be.sdd(b.dy, b.x, b.dw, { layout, K: M, transA: true, transB: false, accumulate: false });
  be.gemm(b.dy, b.u, b.dh, { M, N: r, K: N, transA: false, transB: false, accumulate: false });
  be.gemm(b.dy, b.h, b.du, { M: N, N: r, K: M, transA: true, transB: false, accumulate: false });
  be.gemm(b.dh, b.x, b.dv, { M: r, N: K, K: M, transA: true, transB: false, accumulate: false });
  be.gemm(b.dh, b.v, b.dx, { M, N: K, K: r, transA: false, transB: false, accumulate: true });
}

/** Forward then backward. */
export function pixelflyStep(be: Backend, b: PixelflyStepBuffers, s: PixelflyStepSizes): void {
  pixelflyForward(be, b, s);
  pixelflyBackward(be, b, s);
}
