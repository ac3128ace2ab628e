/**
 * The js reference kernels of block-sparse attention: the row softmax of
 * (batch, nnz, b, b) score tiles on one layout, and its backward. Every sum
 * runs in float64 (the oracle of the conformance suite).
 *
 * @module
 */
import type { BsrSoftmaxParams } from "./types.ts";

type Values = Float32Array | Float64Array;

/** Whether score (i, j) of a tile row is a real, visible entry. */
function visible(i: number, j: number, p: BsrSoftmaxParams): boolean {
  return i < p.L && j < p.S && !(p.causal && j > i);
}

/** x, y are (batch,nnz,b,b): `y = softmax(scale·x)` over each row's kept, visible entries. */
export function bsrSoftmaxRef(X: Values, Y: Values, p: BsrSoftmaxParams): void {
  const { layout: l, batch, scale } = p;
  const b = l.block, bb = b * b, sW = l.nnz * bb;
  for (let t = 0; t < batch; t++) {
    const base = t * sW;
    for (let bi = 0; bi < l.rows; bi++) {
      const e0 = l.rowPtr[bi], e1 = l.rowPtr[bi + 1];
      for (let r = 0; r < b; r++) {
        const i = bi * b + r;
        let mx = -Infinity;
        for (let e = e0; e < e1; e++) {
          const j0 = l.colIdx[e] * b, o = base + e * bb + r * b;
          for (let c = 0; c < b; c++) if (visible(i, j0 + c, p)) mx = Math.max(mx, scale * X[o + c]);
        }
        let s = 0;
        for (let e = e0; e < e1; e++) {
          const j0 = l.colIdx[e] * b, o = base + e * bb + r * b;
          for (let c = 0; c < b; c++) if (visible(i, j0 + c, p)) s += Math.exp(scale * X[o + c] - mx);
        }
        for (let e = e0; e < e1; e++) {
          const j0 = l.colIdx[e] * b, o = base + e * bb + r * b;
          for (let c = 0; c < b; c++) {
            Y[o + c] = visible(i, j0 + c, p) ? Math.exp(scale * X[o + c] - mx) / s : 0;
          }
        }
      }
    }
  }
}

/** y, dy, dx are (batch,nnz,b,b): `dx (+)= scale · y ⊙ (dy − Σ_row dy⊙y)`. */
export function bsrSoftmaxGradRef(
  Y: Values,
  DY: Values,
  DX: Values,
  p: BsrSoftmaxParams & { accumulate: boolean },
): void {
  const { layout: l, batch, scale, accumulate } = p;
  const b = l.block, bb = b * b, sW = l.nnz * bb;
  for (let t = 0; t < batch; t++) {
    const base = t * sW;
    for (let bi = 0; bi < l.rows; bi++) {
      const e0 = l.rowPtr[bi], e1 = l.rowPtr[bi + 1];
      for (let r = 0; r < b; r++) {
        let dot = 0;
        for (let e = e0; e < e1; e++) {
          const o = base + e * bb + r * b;
          for (let c = 0; c < b; c++) dot += DY[o + c] * Y[o + c];
        }
        for (let e = e0; e < e1; e++) {
          const o = base + e * bb + r * b;
          for (let c = 0; c < b; c++) {
            const g = scale * Y[o + c] * (DY[o + c] - dot);
            DX[o + c] = (accumulate ? DX[o + c] : 0) + g;
          }
        }
      }
    }
  }
}
