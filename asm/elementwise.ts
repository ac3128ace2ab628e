// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// Elementwise kernels (SIMD128).
import { madd, splat } from "./_common.ts";
import {
  UNARY_RELU,
  UNARY_GELU,
  UNARY_GELU_TANH,
  UNARY_SIGMOID,
  UNARY_TANH,
  UNARY_EXP,
  UNARY_LOG,
  UNARY_NEG,
  UNARY_SQRT,
  BINARY_ADD,
  BINARY_SUB,
  BINARY_MUL,
  BCAST_FULL,
  BCAST_ROW,
  BCAST_COL,
} from "./generated/op_codes.ts";

// f32 SIMD loops, four elements per v128. The tail of a loop (size % 4
// elements) runs the same vector code on a splatted element, so every element
// gets bit-identical arithmetic whatever its position.
// Constants of the elementwise kernels, read with v128.load32_splat from a
// constant address: V8 drops the bounds check of such loads and they cost one
// instruction, while a v128.const inside a loop costs several.
const KT: usize = memory.data<f32>([
  88.0, // 0 exp4 clamp high (2^127 is the largest power it forms)
  -87.33, // 1 exp4 clamp low
  1.44269504088896341, // 2 log2(e)
  -0.693359375, // 3 −ln2, high part
  2.12194440e-4, // 4 −ln2, low part
  1.9875691500e-4, // 5..10 Cephes expf polynomial
  1.3981999507e-3,
  8.3334519073e-3,
  4.1665795894e-2,
  1.6666665459e-1,
  5.0000001201e-1,
  1.0, // 11 (its bits are also 127 << 23, the exponent bias)
  12582912.0, // 12 1.5·2^23: adding it rounds to an integer kept in the low mantissa bits
  2.0, // 13
  1.5957691216057308, // 14 2·sqrt(2/pi)
  0.044715, // 15 GELU's cubic coefficient
  0.134145, // 16 3·0.044715
  -0.0, // 17 the sign bit
  Infinity, // 18
  88.72283, // 19 above: e^x overflows f32
  -103.9721, // 20 below: e^x underflows to 0
  0.0, // 21
  4.0, // 22 erf4 clamp (erf is ±1 in f32 beyond)
  -4.0, // 23
  -2.72614225801306e-10, // 24..30 erf4 numerator (odd), alpha13 .. alpha1 (Eigen / XLA)
  2.77068142495902e-08,
  -2.10102402082508e-06,
  -5.69250639462346e-05,
  -7.34990630326855e-04,
  -2.95459980854025e-03,
  -1.60960333262415e-02,
  -1.45660718464996e-05, // 31..35 erf4 denominator (even), beta8 .. beta0
  -2.13374055278905e-04,
  -1.68282697438203e-03,
  -7.37332916720468e-03,
  -1.42647390514189e-02,
  0.7071067811865476, // 36 1/sqrt(2)
  0.5, // 37
  0.3989422804014327, // 38 1/sqrt(2 pi)
  8.673617379884035e-19, // 39 2^-60: below it GELU's backward takes Φ(x) = 0.5 (y / x loses digits)
  8.0, // 40 above it Φ(x) is 0 or 1 in f32 and x·φ(x) < 1e-13
], 16);

// @ts-ignore: decorator
@inline function kc(i: i32): v128 {
  return v128.load32_splat(KT + (<usize> i << 2));
}

// e^x for x in [-87.3, 88.0] (clamped outside): 2^n · p(r) with x = n·ln2 + r, |r| ≤ ln2/2, Cephes'
// expf polynomial (relative error about 2e-7). NaN stays NaN.
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  x = f32x4.pmax(f32x4.pmin(x, kc(0)), kc(1));
  const t = madd(x, kc(2), kc(12)); // n + 1.5·2^23
  const n = f32x4.sub(t, kc(12));
  let r = madd(n, kc(3), x);
  r = madd(n, kc(4), r);
  let p = madd(kc(5), r, kc(6));
  p = madd(p, r, kc(7));
  p = madd(p, r, kc(8));
  p = madd(p, r, kc(9));
  p = madd(p, r, kc(10));
  p = madd(f32x4.mul(p, r), r, f32x4.add(r, kc(11)));
  // (n + 127) << 23 as the bits of 2^n: the low mantissa bits of t hold n
  const e = i32x4.add(i32x4.shl(t, 23), kc(11));
  return f32x4.mul(p, e);
}

// 1 / (1 + e^-x): exact limits 0 and 1 at both ends, no cancellation.
// @ts-ignore: decorator
@inline function sigmoid4(x: v128): v128 {
  return f32x4.div(kc(11), f32x4.add(kc(11), exp4(f32x4.neg(x))));
}

// 2u where GELU's tanh argument is u = sqrt(2/pi)·(x + 0.044715x³).
// @ts-ignore: decorator
@inline function gelu2u(x: v128): v128 {
  const x2 = f32x4.mul(x, x);
  return f32x4.mul(f32x4.mul(x, kc(14)), madd(x2, kc(15), kc(11)));
}

// tanh(x) = sign(x)·(1 − 2/(e^{2|x|} + 1)); absolute error about 2e-7 near 0.
// @ts-ignore: decorator
@inline function tanh4(x: v128): v128 {
  const ax = f32x4.abs(x);
  const t = f32x4.sub(kc(11), f32x4.div(kc(13), f32x4.add(exp4(f32x4.add(ax, ax)), kc(11))));
  return v128.or(t, v128.and(x, kc(17)));
}

// erf(x): the rational approximation of Eigen and XLA on x clamped to [-4, 4] (odd degree-13
// numerator over even degree-8 denominator; a few ulp, relative error about 4e-7 near 0 too).
// @ts-ignore: decorator
@inline function erf4(a: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(a, kc(22)), kc(23));
  const x2 = f32x4.mul(x, x);
  let p = madd(x2, kc(24), kc(25));
  p = madd(x2, p, kc(26));
  p = madd(x2, p, kc(27));
  p = madd(x2, p, kc(28));
  p = madd(x2, p, kc(29));
  p = madd(x2, p, kc(30));
  let q = madd(x2, kc(31), kc(32));
  q = madd(x2, q, kc(33));
  q = madd(x2, q, kc(34));
  q = madd(x2, q, kc(35));
  return f32x4.div(f32x4.mul(x, p), q);
}

// Φ(x) = 0.5·(1 + erf(x/√2)), the normal CDF of the exact GELU.
// @ts-ignore: decorator
@inline function normalCdf4(x: v128): v128 {
  return f32x4.mul(kc(37), f32x4.add(kc(11), erf4(f32x4.mul(x, kc(36)))));
}

// @ts-ignore: decorator
@inline function unary4(op: i32, x: v128): v128 {
  switch (op) {
    case UNARY_RELU:
      return f32x4.pmax(x, kc(21));
    case UNARY_GELU: // x·Φ(x)
      return f32x4.mul(x, normalCdf4(x));
    case UNARY_GELU_TANH: // gelu(x) = 0.5x(1 + tanh u) = x·sigmoid(2u)
      return f32x4.div(x, f32x4.add(kc(11), exp4(f32x4.neg(gelu2u(x)))));
    case UNARY_SIGMOID:
      return sigmoid4(x);
    case UNARY_TANH:
      return tanh4(x);
    case UNARY_SQRT:
      return f32x4.sqrt(x);
    case UNARY_EXP: {
      // exp: +Inf above the f32 range, 0 far below it
      const e = exp4(x);
      const big = f32x4.gt(x, kc(19));
      const small = f32x4.lt(x, kc(20));
      return v128.andnot(v128.bitselect(kc(18), e, big), small);
    }
    case UNARY_LOG: {
      // log: scalar per lane (not on a hot path)
      return f32x4.replace_lane(
        f32x4.replace_lane(
          f32x4.replace_lane(
            f32x4.splat(Mathf.log(f32x4.extract_lane(x, 0))),
            1,
            Mathf.log(f32x4.extract_lane(x, 1)),
          ),
          2,
          Mathf.log(f32x4.extract_lane(x, 2)),
        ),
        3,
        Mathf.log(f32x4.extract_lane(x, 3)),
      );
    }
    default:
      return f32x4.neg(x);
  }
}

// dy·f'(x) given x, y = f(x) and dy.
// @ts-ignore: decorator
@inline function unaryGrad4(op: i32, x: v128, y: v128, dy: v128): v128 {
  switch (op) {
    case UNARY_RELU:
      return v128.and(dy, f32x4.gt(x, kc(21)));
    case UNARY_GELU: {
      // Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π). Φ(x) = y / x from the forward's output y = x·Φ(x)
      // (within 2 ulp of the forward's Φ, no second erf): 0.5 for |x| < 2^-60, the step 0 or 1 with
      // x·φ(x) dropped for |x| > 8 (so ±Inf give 1 and 0, not NaN); NaN stays NaN.
      const ax = f32x4.abs(x);
      const small = f32x4.lt(ax, kc(39)), big = f32x4.gt(ax, kc(40));
      const pdf = f32x4.mul(kc(38), exp4(f32x4.neg(f32x4.mul(kc(37), f32x4.mul(x, x)))));
      const cdf = v128.bitselect(
        v128.and(f32x4.gt(x, kc(21)), kc(11)),
        v128.bitselect(kc(37), f32x4.div(y, x), small),
        big,
      );
      return f32x4.mul(dy, madd(v128.andnot(x, big), pdf, cdf));
    }
    case UNARY_SQRT:
      return f32x4.div(f32x4.mul(dy, kc(37)), y);
    case UNARY_GELU_TANH: {
      // with s = sigmoid(2u): 0.5(1 + tanh u) = s and 0.5x(1 − tanh²u)·u' = 2x·s(1 − s)·u'
      const x2 = f32x4.mul(x, x);
      const s = f32x4.div(kc(11), f32x4.add(kc(11), exp4(f32x4.neg(gelu2u(x)))));
      const du2 = f32x4.mul(madd(x2, kc(16), kc(11)), kc(14));
      const d = madd(f32x4.mul(f32x4.mul(x, du2), s), f32x4.sub(kc(11), s), s);
      return f32x4.mul(dy, d);
    }
    case UNARY_SIGMOID:
      return f32x4.mul(dy, f32x4.mul(y, f32x4.sub(kc(11), y)));
    case UNARY_TANH:
      return f32x4.mul(dy, f32x4.sub(kc(11), f32x4.mul(y, y)));
    case UNARY_EXP:
      return f32x4.mul(dy, y);
    case UNARY_LOG:
      return f32x4.div(dy, x);
    default:
      return f32x4.neg(dy);
  }
}

/** a, out are (M,N); b is (M,N) [BCAST_FULL], (N) [BCAST_ROW], (M) [BCAST_COL] or (1) [BCAST_SCALAR]; op a BINARY_* code. */
export function binary(op: i32, a: usize, b: usize, out: usize, M: i32, N: i32, bcast: i32): void {
  const n4 = N & ~3;
  for (let i = 0; i < M; i++) {
    const ar = a + (<usize> (i * N) << 2), orow = out + (<usize> (i * N) << 2);
    if (bcast == BCAST_FULL || bcast == BCAST_ROW) {
      const br = bcast == BCAST_FULL ? b + (<usize> (i * N) << 2) : b;
      let j = 0;
      for (; j < n4; j += 4) {
        const o = <usize> j << 2;
        v128.store(orow + o, binary4(op, v128.load(ar + o), v128.load(br + o)));
      }
      for (; j < N; j++) {
        const o = <usize> j << 2;
        const r = binary4(op, f32x4.splat(load<f32>(ar + o)), f32x4.splat(load<f32>(br + o)));
        store<f32>(orow + o, f32x4.extract_lane(r, 0));
      }
    } else {
      const bv = v128.load32_splat(bcast == BCAST_COL ? b + (<usize> i << 2) : b);
      let j = 0;
      for (; j < n4; j += 4) {
        const o = <usize> j << 2;
        v128.store(orow + o, binary4(op, v128.load(ar + o), bv));
      }
      for (; j < N; j++) {
        const o = <usize> j << 2;
        store<f32>(orow + o, f32x4.extract_lane(binary4(op, f32x4.splat(load<f32>(ar + o)), bv), 0));
      }
    }
  }
}

// @ts-ignore: decorator
@inline function binary4(op: i32, a: v128, b: v128): v128 {
  if (op == BINARY_ADD) return f32x4.add(a, b);
  if (op == BINARY_SUB) return f32x4.sub(a, b);
  if (op == BINARY_MUL) return f32x4.mul(a, b);
  return f32x4.div(a, b);
}

// The loops take op as an argument of an inlined function, called with literal ops below, so each op
// gets its own loop with the switch folded away.
// @ts-ignore: decorator
@inline function unaryLoop(op: i32, x: usize, y: usize, size: i32): void {
  const s4 = size & ~3;
  let i = 0;
  for (; i < s4; i += 4) {
    const o = <usize> i << 2;
    v128.store(y + o, unary4(op, v128.load(x + o)));
  }
  for (; i < size; i++) {
    const o = <usize> i << 2;
    store<f32>(y + o, f32x4.extract_lane(unary4(op, v128.load32_splat(x + o)), 0));
  }
}

/** x, y are (size): `y = f(x)`; op a UNARY_* code (src/backends/op_table.ts). */
export function unary(op: i32, x: usize, y: usize, size: i32): void {
  switch (op) {
    case UNARY_RELU:
      unaryLoop(UNARY_RELU, x, y, size);
      break;
    case UNARY_GELU:
      unaryLoop(UNARY_GELU, x, y, size);
      break;
    case UNARY_GELU_TANH:
      unaryLoop(UNARY_GELU_TANH, x, y, size);
      break;
    case UNARY_SIGMOID:
      unaryLoop(UNARY_SIGMOID, x, y, size);
      break;
    case UNARY_TANH:
      unaryLoop(UNARY_TANH, x, y, size);
      break;
    case UNARY_EXP:
      unaryLoop(UNARY_EXP, x, y, size);
      break;
    case UNARY_LOG:
      unaryLoop(UNARY_LOG, x, y, size);
      break;
    case UNARY_SQRT:
      unaryLoop(UNARY_SQRT, x, y, size);
      break;
    default:
      unaryLoop(UNARY_NEG, x, y, size);
  }
}

// @ts-ignore: decorator
@inline function unaryGradLoop(op: i32, x: usize, y: usize, dy: usize, dx: usize, size: i32, beta: i32): void {
  const s4 = size & ~3;
  let i = 0;
  for (; i < s4; i += 4) {
    const o = <usize> i << 2;
    let g = unaryGrad4(op, v128.load(x + o), v128.load(y + o), v128.load(dy + o));
    if (beta) g = f32x4.add(v128.load(dx + o), g);
    v128.store(dx + o, g);
  }
  for (; i < size; i++) {
    const o = <usize> i << 2;
    let g = unaryGrad4(op, v128.load32_splat(x + o), v128.load32_splat(y + o), v128.load32_splat(dy + o));
    if (beta) g = f32x4.add(v128.load32_splat(dx + o), g);
    store<f32>(dx + o, f32x4.extract_lane(g, 0));
  }
}

/** All (size): `dx (+)= dy * f'(x)` (y = f(x) is given). */
export function unaryGrad(op: i32, x: usize, y: usize, dy: usize, dx: usize, size: i32, beta: i32): void {
  switch (op) {
    case UNARY_RELU:
      unaryGradLoop(UNARY_RELU, x, y, dy, dx, size, beta);
      break;
    case UNARY_GELU:
      unaryGradLoop(UNARY_GELU, x, y, dy, dx, size, beta);
      break;
    case UNARY_GELU_TANH:
      unaryGradLoop(UNARY_GELU_TANH, x, y, dy, dx, size, beta);
      break;
    case UNARY_SIGMOID:
      unaryGradLoop(UNARY_SIGMOID, x, y, dy, dx, size, beta);
      break;
    case UNARY_TANH:
      unaryGradLoop(UNARY_TANH, x, y, dy, dx, size, beta);
      break;
    case UNARY_EXP:
      unaryGradLoop(UNARY_EXP, x, y, dy, dx, size, beta);
      break;
    case UNARY_LOG:
      unaryGradLoop(UNARY_LOG, x, y, dy, dx, size, beta);
      break;
    case UNARY_SQRT:
      unaryGradLoop(UNARY_SQRT, x, y, dy, dx, size, beta);
      break;
    default:
      unaryGradLoop(UNARY_NEG, x, y, dy, dx, size, beta);
  }
}

/** x, y are (size): `y (+)= alpha * x + beta`. */
export function scale(x: usize, y: usize, size: i32, alpha: f64, b: f64, acc: i32): void {
  const av = splat(<f32> alpha), bv = splat(<f32> b);
  const s4 = size & ~3;
  let i = 0;
  for (; i < s4; i += 4) {
    const o = <usize> i << 2;
    let r = madd(av, v128.load(x + o), bv);
    if (acc) r = f32x4.add(v128.load(y + o), r);
    v128.store(y + o, r);
  }
  for (; i < size; i++) {
    const o = <usize> i << 2;
    let r = madd(av, v128.load32_splat(x + o), bv);
    if (acc) r = f32x4.add(v128.load32_splat(y + o), r);
    store<f32>(y + o, f32x4.extract_lane(r, 0));
  }
}

/** x is (size): every element set to value. */
export function fill(x: usize, size: i32, value: f32): void {
  const v = f32x4.splat(value);
  let i = 0;
  for (; i + 4 <= size; i += 4) v128.store(x + (<usize> i << 2), v);
  for (; i < size; i++) store<f32>(x + (<usize> i << 2), value);
}

/** Copies size floats (the ranges may overlap). */
export function copy(src: usize, dst: usize, size: i32): void {
  memory.copy(dst, src, <usize> size << 2);
}

/**
 * x is (B,M,N), y is (B,N,M). 32x32 tiles (a tile's source and destination rows stay in L1), each
 * moved as 4x4 blocks through registers (four v128 loads, eight shuffles, four stores); the edges of
 * M and N that are not whole 4x4 blocks move one element at a time.
 */
export function transpose(x: usize, y: usize, B: i32, M: i32, N: i32): void {
  const mn = <usize> (M * N) << 2;
  const xr = <usize> N << 2, yr = <usize> M << 2;
  const m4 = M & ~3, n4 = N & ~3;
  for (let t = 0; t < B; t++) {
    const xs = x + <usize> t * mn, ys = y + <usize> t * mn;
    for (let i0 = 0; i0 < m4; i0 += 32) {
      const i1 = min(m4, i0 + 32);
      for (let j0 = 0; j0 < n4; j0 += 32) {
        const j1 = min(n4, j0 + 32);
        for (let i = i0; i < i1; i += 4) {
          let p = xs + (<usize> (i * N + j0) << 2), q = ys + (<usize> (j0 * M + i) << 2);
          for (let j = j0; j < j1; j += 4) {
            const a = v128.load(p), b = v128.load(p + xr), c = v128.load(p + 2 * xr), d = v128.load(p + 3 * xr);
            const ab0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5), ab1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
            const cd0 = v128.shuffle<f32>(c, d, 0, 4, 1, 5), cd1 = v128.shuffle<f32>(c, d, 2, 6, 3, 7);
            v128.store(q, v128.shuffle<f32>(ab0, cd0, 0, 1, 4, 5));
            v128.store(q + yr, v128.shuffle<f32>(ab0, cd0, 2, 3, 6, 7));
            v128.store(q + 2 * yr, v128.shuffle<f32>(ab1, cd1, 0, 1, 4, 5));
            v128.store(q + 3 * yr, v128.shuffle<f32>(ab1, cd1, 2, 3, 6, 7));
            p += 16;
            q += 4 * yr;
          }
        }
      }
    }
    // the last M % 4 rows (all columns) and the last N % 4 columns (the other rows)
    for (let i = m4; i < M; i++) {
      for (let j = 0; j < N; j++) {
        store<f32>(ys + (<usize> (j * M + i) << 2), load<f32>(xs + (<usize> (i * N + j) << 2)));
      }
    }
    for (let i = 0; i < m4; i++) {
      for (let j = n4; j < N; j++) {
        store<f32>(ys + (<usize> (j * M + i) << 2), load<f32>(xs + (<usize> (i * N + j) << 2)));
      }
    }
  }
}
