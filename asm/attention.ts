// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// Block-sparse attention: the row softmax of (batch, nnz, b, b) score tiles on one block layout
// (rowPtr, colIdx as int32 in linear memory), and its backward. Tile e = (i, j) holds queries
// i·b.. and keys j·b..; in a tile row the visible keys (j < S, and j <= i when causal) are a prefix,
// so each tile row is a SIMD loop over its prefix and zeros after it.
import { exp4 } from "./elementwise.ts";

// @ts-ignore: decorator
@inline function hmax(v: v128): f32 {
  const a = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max(f32x4.extract_lane(a, 0), f32x4.extract_lane(a, 1));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  const a = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1);
}

/**
 * x, y are (batch,nnz,b,b) on the layout (rows block rows, rowPtr, colIdx): `y = softmax(scale·x)` over
 * each row's visible kept entries, max-subtracted; everything else 0. y may alias x.
 */
export function bsrSoftmax(
  x: usize, y: usize, rowPtr: usize, colIdx: usize, rows: i32, nnz: i32, b: i32, batch: i32,
  L: i32, S: i32, causal: i32, scale: f32,
): void {
  const bb = <usize> (b * b) << 2, rowb = <usize> b << 2;
  const vs = f32x4.splat(scale), ninf = f32x4.splat(-Infinity), zero = f32x4.splat(0);
  for (let t = 0; t < batch; t++) {
    const bx = x + <usize> t * <usize> nnz * bb, by = y + <usize> t * <usize> nnz * bb;
    for (let bi = 0; bi < rows; bi++) {
      const e0 = load<i32>(rowPtr + (<usize> bi << 2)), e1 = load<i32>(rowPtr + (<usize> (bi + 1) << 2));
      for (let r = 0; r < b; r++) {
        const i = bi * b + r;
        // pass 1: the row max of scale·x over visible entries
        let mv = ninf;
        let m: f32 = -Infinity;
        for (let e = e0; e < e1; e++) {
          const j0 = load<i32>(colIdx + (<usize> e << 2)) * b;
          let n = i < L ? min(b, S - j0) : 0;
          if (causal) n = min(n, i - j0 + 1);
          const px = bx + <usize> e * bb + <usize> r * rowb;
          let c = 0;
          for (; c + 4 <= n; c += 4) mv = f32x4.max(mv, f32x4.mul(v128.load(px + (<usize> c << 2)), vs));
          for (; c < n; c++) m = max(m, load<f32>(px + (<usize> c << 2)) * scale);
        }
        m = max(m, hmax(mv));
        // pass 2: y = e^(scale·x − max), its sum; zeros past the prefix
        const ms = f32x4.splat(m);
        let sv = zero;
        let s: f32 = 0;
        for (let e = e0; e < e1; e++) {
          const j0 = load<i32>(colIdx + (<usize> e << 2)) * b;
          let n = i < L ? min(b, S - j0) : 0;
          if (causal) n = min(n, i - j0 + 1);
          if (n < 0) n = 0;
          const o = <usize> e * bb + <usize> r * rowb;
          const px = bx + o, py = by + o;
          let c = 0;
          for (; c + 4 <= n; c += 4) {
            const v = exp4(f32x4.sub(f32x4.mul(v128.load(px + (<usize> c << 2)), vs), ms));
            v128.store(py + (<usize> c << 2), v);
            sv = f32x4.add(sv, v);
          }
          for (; c < n; c++) {
            const v = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(px + (<usize> c << 2)) * scale - m)), 0);
            store<f32>(py + (<usize> c << 2), v);
            s += v;
          }
          for (; c < b; c++) store<f32>(py + (<usize> c << 2), 0);
        }
        s += hsum(sv);
        // pass 3: normalise (a row with no visible entry stays 0)
        if (s > 0) {
          const inv: f32 = 1 / s, iv = f32x4.splat(inv);
          for (let e = e0; e < e1; e++) {
            const py = by + <usize> e * bb + <usize> r * rowb;
            let c = 0;
            for (; c + 4 <= b; c += 4) {
              const q = py + (<usize> c << 2);
              v128.store(q, f32x4.mul(v128.load(q), iv));
            }
            for (; c < b; c++) {
              const q = py + (<usize> c << 2);
              store<f32>(q, load<f32>(q) * inv);
            }
          }
        }
      }
    }
  }
}

/** y, dy, dx are (batch,nnz,b,b): `dx (+)= scale · y ⊙ (dy − Σ_row dy⊙y)` over each row's kept entries. */
export function bsrSoftmaxGrad(
  y: usize, dy: usize, dx: usize, rowPtr: usize, rows: i32, nnz: i32, b: i32, batch: i32,
  scale: f32, beta: i32,
): void {
  const bb = <usize> (b * b) << 2, rowb = <usize> b << 2;
  const vs = f32x4.splat(scale), zero = f32x4.splat(0);
  for (let t = 0; t < batch; t++) {
    const base = <usize> t * <usize> nnz * bb;
    for (let bi = 0; bi < rows; bi++) {
      const e0 = load<i32>(rowPtr + (<usize> bi << 2)), e1 = load<i32>(rowPtr + (<usize> (bi + 1) << 2));
      for (let r = 0; r < b; r++) {
        let dv = zero;
        let dot: f32 = 0;
        for (let e = e0; e < e1; e++) {
          const o = base + <usize> e * bb + <usize> r * rowb;
          let c = 0;
          for (; c + 4 <= b; c += 4) {
            const q = <usize> c << 2;
            dv = f32x4.add(dv, f32x4.mul(v128.load(dy + o + q), v128.load(y + o + q)));
          }
          for (; c < b; c++) dot += load<f32>(dy + o + (<usize> c << 2)) * load<f32>(y + o + (<usize> c << 2));
        }
        dot += hsum(dv);
        const dd = f32x4.splat(dot);
        for (let e = e0; e < e1; e++) {
          const o = base + <usize> e * bb + <usize> r * rowb;
          let c = 0;
          for (; c + 4 <= b; c += 4) {
            const q = <usize> c << 2;
            let g = f32x4.mul(vs, f32x4.mul(v128.load(y + o + q), f32x4.sub(v128.load(dy + o + q), dd)));
            if (beta) g = f32x4.add(g, v128.load(dx + o + q));
            v128.store(dx + o + q, g);
          }
          for (; c < b; c++) {
            const q = o + (<usize> c << 2);
            let g = scale * load<f32>(y + q) * (load<f32>(dy + q) - dot);
            if (beta) g += load<f32>(dx + q);
            store<f32>(dx + q, g);
          }
        }
      }
    }
  }
}
