// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// Thin products: C = alpha·op(A)·op(B) (+ C) with one small dimension (a gate's one output column, a
// head's ten classes, a low-rank factor's rank), where the packed GEMM's 8- to 16-wide register tile
// and its packing mostly go to waste. Unpacked, straight from the operands. Every output element is
// summed in k order by one thread, so a split of the rows (or columns) gives the same bits.
import { madd, splat } from "./_common.ts";

// c = alpha·s (+ c), one v128 (mul then add: the same rounding as the scalar tail)
// @ts-ignore: decorator
@inline function put(q: usize, s: v128, alpha: v128, acc: i32): void {
  const v = f32x4.mul(s, alpha);
  v128.store(q, acc ? f32x4.add(v128.load(q), v) : v);
}

// @ts-ignore: decorator
@inline function put1(q: usize, s: f32, alpha: f32, acc: i32): void {
  const v = s * alpha;
  store<f32>(q, acc ? load<f32>(q) + v : v);
}

/**
 * A is (M,K) rows at stride lda, B is (N,K) rows at stride ldb, C is (M,N) at stride ldc:
 * `C (+)= alpha·A·Bᵀ`, each element a dot product of two contiguous rows (small N: a gate, a head).
 */
export function gemmDot(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, lda: i32, ldb: i32, ldc: i32, alpha: f32, acc: i32,
): void {
  for (let i = 0; i < M; i++) {
    const ai = a + (<usize> (i * lda) << 2);
    for (let n = 0; n < N; n++) {
      const bn = b + (<usize> (n * ldb) << 2);
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let k = 0;
      for (; k + 16 <= K; k += 16) {
        const o = <usize> k << 2;
        s0 = madd(v128.load(ai + o), v128.load(bn + o), s0);
        s1 = madd(v128.load(ai + o, 16), v128.load(bn + o, 16), s1);
        s2 = madd(v128.load(ai + o, 32), v128.load(bn + o, 32), s2);
        s3 = madd(v128.load(ai + o, 48), v128.load(bn + o, 48), s3);
      }
      for (; k + 4 <= K; k += 4) {
        const o = <usize> k << 2;
        s0 = madd(v128.load(ai + o), v128.load(bn + o), s0);
      }
      const t = f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3));
      let s = (f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1)) +
        (f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3));
      for (; k < K; k++) s += load<f32>(ai + (<usize> k << 2)) * load<f32>(bn + (<usize> k << 2));
      put1(c + (<usize> (i * ldc + n) << 2), s, alpha, acc);
    }
  }
}

/**
 * A(i,k) is a[i·sai + k·sak] (either layout), B is (K,N) rows at stride ldb, C is (M,N) at stride ldc:
 * `C (+)= alpha·A·B`, each row of C a sum of K scaled rows of B (small K, or small N: B stays in cache).
 */
export function gemmRows(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, sai: i32, sak: i32, ldb: i32, ldc: i32, alpha: f32,
  acc: i32,
): void {
  const al = f32x4.splat(alpha), bstep = <usize> ldb << 2, astep = <usize> sak << 2;
  const n8 = N & ~7, rowa = <usize> sai << 2, rowc = <usize> ldc << 2;
  let i = 0;
  // 4 rows x 8 columns of C in registers: per k, 4 splats of A and 2 loads of B feed 8 multiply-adds
  for (; i + 4 <= M; i += 4) {
    const a0 = a + (<usize> (i * sai) << 2), c0 = c + (<usize> (i * ldc) << 2);
    for (let j = 0; j < n8; j += 8) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let s4 = f32x4.splat(0), s5 = f32x4.splat(0), s6 = f32x4.splat(0), s7 = f32x4.splat(0);
      let p = a0, q = b + (<usize> j << 2);
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(q), b1 = v128.load(q, 16);
        const x0 = splat(load<f32>(p)), x1 = splat(load<f32>(p + rowa));
        const x2 = splat(load<f32>(p + 2 * rowa)), x3 = splat(load<f32>(p + 3 * rowa));
        s0 = madd(x0, b0, s0);
        s1 = madd(x0, b1, s1);
        s2 = madd(x1, b0, s2);
        s3 = madd(x1, b1, s3);
        s4 = madd(x2, b0, s4);
        s5 = madd(x2, b1, s5);
        s6 = madd(x3, b0, s6);
        s7 = madd(x3, b1, s7);
        p += astep;
        q += bstep;
      }
      const o = c0 + (<usize> j << 2);
      put(o, s0, al, acc);
      put(o + 16, s1, al, acc);
      put(o + rowc, s2, al, acc);
      put(o + rowc + 16, s3, al, acc);
      put(o + 2 * rowc, s4, al, acc);
      put(o + 2 * rowc + 16, s5, al, acc);
      put(o + 3 * rowc, s6, al, acc);
      put(o + 3 * rowc + 16, s7, al, acc);
    }
    // their last columns (fewer than 8): one row at a time below
    if (n8 < N) {
      gemmRowsOne(a0, b + (<usize> n8 << 2), c0 + (<usize> n8 << 2), 4, N - n8, K, sai, sak, ldb, ldc, alpha, acc);
    }
  }
  gemmRowsOne(a + (<usize> (i * sai) << 2), b, c + (<usize> (i * ldc) << 2), M - i, N, K, sai, sak, ldb, ldc,
    alpha, acc);
}

// gemmRows one row of C at a time (the same arithmetic per element as the 4-row blocks).
function gemmRowsOne(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, sai: i32, sak: i32, ldb: i32, ldc: i32, alpha: f32,
  acc: i32,
): void {
  const al = f32x4.splat(alpha), bstep = <usize> ldb << 2, astep = <usize> sak << 2;
  for (let i = 0; i < M; i++) {
    const ci = c + (<usize> (i * ldc) << 2), ai = a + (<usize> (i * sai) << 2);
    let j = 0;
    for (; j + 16 <= N; j += 16) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let p = ai, q = b + (<usize> j << 2);
      for (let k = 0; k < K; k++) {
        const x = splat(load<f32>(p));
        s0 = madd(x, v128.load(q), s0);
        s1 = madd(x, v128.load(q, 16), s1);
        s2 = madd(x, v128.load(q, 32), s2);
        s3 = madd(x, v128.load(q, 48), s3);
        p += astep;
        q += bstep;
      }
      const o = ci + (<usize> j << 2);
      put(o, s0, al, acc);
      put(o + 16, s1, al, acc);
      put(o + 32, s2, al, acc);
      put(o + 48, s3, al, acc);
    }
    for (; j + 4 <= N; j += 4) {
      let s0 = f32x4.splat(0);
      let p = ai, q = b + (<usize> j << 2);
      for (let k = 0; k < K; k++) {
        s0 = madd(splat(load<f32>(p)), v128.load(q), s0);
        p += astep;
        q += bstep;
      }
      put(ci + (<usize> j << 2), s0, al, acc);
    }
    for (; j < N; j++) {
      let s: f32 = 0;
      let p = ai, q = b + (<usize> j << 2);
      for (let k = 0; k < K; k++) {
        s = f32x4.extract_lane(madd(splat(load<f32>(p)), splat(load<f32>(q)), splat(s)), 0);
        p += astep;
        q += bstep;
      }
      put1(ci + (<usize> j << 2), s, alpha, acc);
    }
  }
}

/**
 * A(m,k) is a[m·sam + k·sak] (either layout), B is (K,N) rows at stride ldb, C is (M,N) at stride ldc:
 * `C (+)= alpha·A·B` for small M (a gate's or a head's weight gradient), walking B once per 4 rows of C.
 * Threads take ranges of columns (b and c offset).
 */
export function gemmCols(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, sam: i32, sak: i32, ldb: i32, ldc: i32, alpha: f32,
  acc: i32,
): void {
  const al = f32x4.splat(alpha), bstep = <usize> ldb << 2, astep = <usize> sak << 2;
  let j = 0;
  for (; j + 8 <= N; j += 8) {
    let m = 0;
    for (; m + 4 <= M; m += 4) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let s4 = f32x4.splat(0), s5 = f32x4.splat(0), s6 = f32x4.splat(0), s7 = f32x4.splat(0);
      let q = b + (<usize> j << 2);
      let p0 = a + (<usize> (m * sam) << 2), p1 = p0 + (<usize> sam << 2);
      let p2 = p1 + (<usize> sam << 2), p3 = p2 + (<usize> sam << 2);
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(q), b1 = v128.load(q, 16);
        const x0 = splat(load<f32>(p0)), x1 = splat(load<f32>(p1));
        const x2 = splat(load<f32>(p2)), x3 = splat(load<f32>(p3));
        s0 = madd(x0, b0, s0);
        s1 = madd(x0, b1, s1);
        s2 = madd(x1, b0, s2);
        s3 = madd(x1, b1, s3);
        s4 = madd(x2, b0, s4);
        s5 = madd(x2, b1, s5);
        s6 = madd(x3, b0, s6);
        s7 = madd(x3, b1, s7);
        q += bstep;
        p0 += astep;
        p1 += astep;
        p2 += astep;
        p3 += astep;
      }
      const o = c + (<usize> (m * ldc + j) << 2), row = <usize> ldc << 2;
      put(o, s0, al, acc);
      put(o + 16, s1, al, acc);
      put(o + row, s2, al, acc);
      put(o + row + 16, s3, al, acc);
      put(o + 2 * row, s4, al, acc);
      put(o + 2 * row + 16, s5, al, acc);
      put(o + 3 * row, s6, al, acc);
      put(o + 3 * row + 16, s7, al, acc);
    }
    for (; m < M; m++) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
      let q = b + (<usize> j << 2), p = a + (<usize> (m * sam) << 2);
      for (let k = 0; k < K; k++) {
        const x = splat(load<f32>(p));
        s0 = madd(x, v128.load(q), s0);
        s1 = madd(x, v128.load(q, 16), s1);
        q += bstep;
        p += astep;
      }
      const o = c + (<usize> (m * ldc + j) << 2);
      put(o, s0, al, acc);
      put(o + 16, s1, al, acc);
    }
  }
  // the last columns (fewer than 8): the row kernel's loops, one row of C at a time
  if (j < N) {
    for (let m = 0; m < M; m++) {
      gemmRowsOne(a + (<usize> (m * sam) << 2), b + (<usize> j << 2), c + (<usize> (m * ldc + j) << 2), 1, N - j, K,
        0, sak, ldb, ldc, alpha, acc);
    }
  }
}
