/**
 * The shape table shared by the kernel benches and `bench/gflops.ts`.
 *
 * Dimension letters: `M` batch rows, `K` in-features, `N` out-features.
 *
 * @module
 */
import type { BlockLayout } from "../src/backends/types.ts";
import { flatBlockButterfly, randomMask } from "../src/masks/patterns.ts";

/** A dense product shape. */
export interface Shape {
  M: number;
  K: number;
  N: number;
}

/** The dense shapes of the issue: a 1024->4096 layer at batch 256, a square 1024, a 768 layer at batch 64. */
export const SHAPES: Shape[] = [
  { M: 256, K: 1024, N: 4096 },
  { M: 1024, K: 1024, N: 1024 },
  { M: 64, K: 768, N: 768 },
];

/** `MxKxN`. */
export function shapeName(s: Shape): string {
  return `${s.M}x${s.K}x${s.N}`;
}

/** Block-sparse bench settings: the shape, block 32, and flat butterfly (B, f) of each density. */
export const SPARSE = {
  shape: SHAPES[0],
  block: 32,
  densities: [
    { d: 0.25, butterflySize: 16, nFactors: 3 },
    { d: 0.125, butterflySize: 32, nFactors: 3 },
  ],
};

/** The PixelflyLinear-shaped layer: flat butterfly B=16, f=2 at block 32 plus a rank-32 low-rank term. */
export const PIXELFLY = { shape: SHAPES[0], block: 32, butterflySize: 16, nFactors: 2, rank: 32 };

/** The butterfly layout of a sparse setting. */
export function butterflyLayout(
  s: Shape,
  block: number,
  butterflySize: number,
  nFactors: number,
): BlockLayout {
  return flatBlockButterfly({ outFeatures: s.N, inFeatures: s.K, block, butterflySize, nFactors }).toBSR();
}

/** A random layout of the same density (seed 1). */
export function randomLayout(s: Shape, block: number, density: number): BlockLayout {
  return randomMask({ outFeatures: s.N, inFeatures: s.K, block, density, seed: 1 }).toBSR();
}

/** Kept fraction of a layout. */
export function densityOf(l: BlockLayout): number {
  return l.nnz / (l.rows * l.cols);
}

/**
 * Floating-point operations of one bench, from its group and name as
 * `bench/kernels_bench.ts` writes them: groups start with `gemm`, `dds fwd`,
 * `dds bwd`, `sdd` or `pixelfly`, then `MxKxN`; sparse entries carry `(d=...)`.
 */
export function flopsOf(group: string, name: string): number {
  const m = group.match(/(\d+)x(\d+)x(\d+)/);
  if (!m) return NaN;
  const [M, K, N] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dense = 2 * M * K * N;
  if (group.startsWith("pixelfly")) {
    if (name.startsWith("dense")) return 3 * dense;
    const d = Number(name.match(/d=([\d.]+)/)?.[1]);
    const r = PIXELFLY.rank;
    return 3 * dense * d + 3 * 2 * M * r * (K + N);
  }
  const d = name.match(/d=([\d.]+)/);
  return d ? dense * Number(d[1]) : dense;
}
