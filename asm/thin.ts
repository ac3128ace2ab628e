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
 * With N >= 4, blocks of 2 rows x 5 columns (10 accumulators: 7 loads per 10 multiply-adds, against 2
 * per one a dot at a time); each element is then one chain over k/4 in k order, its four lanes summed,
 * then the last K mod 4 products added: the same in a block of 2 rows or 1 (an odd last row, a thread's
 * range), so any split of the rows gives the same bits.
 */
export function gemmDot(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, lda: i32, ldb: i32, ldc: i32, alpha: f32, acc: i32,
): void {
  if (N >= 4) {
    gemmDotBlocks(a, b, c, M, N, K, lda, ldb, ldc, alpha, acc);
    return;
  }
  let i = 0;
  if (N == 1) {
    // one column (a gate's logit): two rows at a time share B's loads (1.5 loads per multiply-add, not 2);
    // each element the same 4 chains as one row alone
    const bn = b, rb = <usize> lda << 2;
    for (; i + 2 <= M; i += 2) {
      const a0 = a + <usize> i * rb, a1 = a0 + rb;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
      let k = 0;
      for (; k + 16 <= K; k += 16) {
        const o = <usize> k << 2;
        let y = v128.load(bn + o);
        s0 = madd(v128.load(a0 + o), y, s0);
        t0 = madd(v128.load(a1 + o), y, t0);
        y = v128.load(bn + o, 16);
        s1 = madd(v128.load(a0 + o, 16), y, s1);
        t1 = madd(v128.load(a1 + o, 16), y, t1);
        y = v128.load(bn + o, 32);
        s2 = madd(v128.load(a0 + o, 32), y, s2);
        t2 = madd(v128.load(a1 + o, 32), y, t2);
        y = v128.load(bn + o, 48);
        s3 = madd(v128.load(a0 + o, 48), y, s3);
        t3 = madd(v128.load(a1 + o, 48), y, t3);
      }
      for (; k + 4 <= K; k += 4) {
        const o = <usize> k << 2, y = v128.load(bn + o);
        s0 = madd(v128.load(a0 + o), y, s0);
        t0 = madd(v128.load(a1 + o), y, t0);
      }
      const u = f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3));
      const v = f32x4.add(f32x4.add(t0, t1), f32x4.add(t2, t3));
      let su = (f32x4.extract_lane(u, 0) + f32x4.extract_lane(u, 1)) +
        (f32x4.extract_lane(u, 2) + f32x4.extract_lane(u, 3));
      let sv = (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) +
        (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
      for (let q = k; q < K; q++) su += load<f32>(a0 + (<usize> q << 2)) * load<f32>(bn + (<usize> q << 2));
      for (let q = k; q < K; q++) sv += load<f32>(a1 + (<usize> q << 2)) * load<f32>(bn + (<usize> q << 2));
      put1(c + (<usize> (i * ldc) << 2), su, alpha, acc);
      put1(c + (<usize> ((i + 1) * ldc) << 2), sv, alpha, acc);
    }
  }
  for (; i < M; i++) {
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

// One element of a gemmDot block: the lanes of s summed, the last K mod 4 products of rows p, q added.
// @ts-ignore: decorator
@inline function dotEnd(s: v128, p: usize, q: usize, k4: i32, K: i32): f32 {
  let r = (f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1)) + (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
  for (let k = k4; k < K; k++) r += load<f32>(p + (<usize> k << 2)) * load<f32>(q + (<usize> k << 2));
  return r;
}

// gemmDot for N >= 4: 2 rows x 5 columns per block (a last odd row repeats itself, a last narrower block
// its last column; their sums are dropped).
function gemmDotBlocks(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, lda: i32, ldb: i32, ldc: i32, alpha: f32, acc: i32,
): void {
  const k4 = K & ~3, rb = <usize> ldb << 2, ra = <usize> lda << 2, rc = <usize> ldc << 2;
  for (let i = 0; i < M; i += 2) {
    const two = i + 1 < M;
    const a0 = a + <usize> i * ra, a1 = two ? a0 + ra : a0, c0 = c + <usize> i * rc, c1 = c0 + rc;
    for (let n = 0; n < N; n += 5) {
      const w = min(5, N - n);
      const b0 = b + <usize> n * rb, b1 = b0 + rb * <usize> min(1, w - 1), b2 = b0 + rb * <usize> min(2, w - 1);
      const b3 = b0 + rb * <usize> min(3, w - 1), b4 = b0 + rb * <usize> min(4, w - 1);
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
      let s04 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0);
      let s13 = f32x4.splat(0), s14 = f32x4.splat(0);
      for (let o: usize = 0; o < <usize> k4 << 2; o += 16) {
        const x0 = v128.load(a0 + o), x1 = v128.load(a1 + o);
        let y = v128.load(b0 + o);
        s00 = madd(x0, y, s00);
        s10 = madd(x1, y, s10);
        y = v128.load(b1 + o);
        s01 = madd(x0, y, s01);
        s11 = madd(x1, y, s11);
        y = v128.load(b2 + o);
        s02 = madd(x0, y, s02);
        s12 = madd(x1, y, s12);
        y = v128.load(b3 + o);
        s03 = madd(x0, y, s03);
        s13 = madd(x1, y, s13);
        y = v128.load(b4 + o);
        s04 = madd(x0, y, s04);
        s14 = madd(x1, y, s14);
      }
      const q = c0 + (<usize> n << 2), q1 = c1 + (<usize> n << 2);
      put1(q, dotEnd(s00, a0, b0, k4, K), alpha, acc);
      if (two) put1(q1, dotEnd(s10, a1, b0, k4, K), alpha, acc);
      if (w > 1) {
        put1(q + 4, dotEnd(s01, a0, b1, k4, K), alpha, acc);
        if (two) put1(q1 + 4, dotEnd(s11, a1, b1, k4, K), alpha, acc);
      }
      if (w > 2) {
        put1(q + 8, dotEnd(s02, a0, b2, k4, K), alpha, acc);
        if (two) put1(q1 + 8, dotEnd(s12, a1, b2, k4, K), alpha, acc);
      }
      if (w > 3) {
        put1(q + 12, dotEnd(s03, a0, b3, k4, K), alpha, acc);
        if (two) put1(q1 + 12, dotEnd(s13, a1, b3, k4, K), alpha, acc);
      }
      if (w > 4) {
        put1(q + 16, dotEnd(s04, a0, b4, k4, K), alpha, acc);
        if (two) put1(q1 + 16, dotEnd(s14, a1, b4, k4, K), alpha, acc);
      }
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
  if (M < 4) {
    // one to three rows (a gate's weight gradient): 16 columns at a time, whole cache lines of B (8 took
    // half of each line, the other half re-read after B's rows, a power of two apart, had evicted it);
    // the same chain per element as below
    for (; j + 16 <= N; j += 16) {
      for (let m = 0; m < M; m++) {
        let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
        let q = b + (<usize> j << 2), p = a + (<usize> (m * sam) << 2);
        for (let k = 0; k < K; k++) {
          const x = splat(load<f32>(p));
          s0 = madd(x, v128.load(q), s0);
          s1 = madd(x, v128.load(q, 16), s1);
          s2 = madd(x, v128.load(q, 32), s2);
          s3 = madd(x, v128.load(q, 48), s3);
          q += bstep;
          p += astep;
        }
        const o = c + (<usize> (m * ldc + j) << 2);
        put(o, s0, al, acc);
        put(o + 16, s1, al, acc);
        put(o + 32, s2, al, acc);
        put(o + 48, s3, al, acc);
      }
    }
  }
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

// ---- register-tiled thin products: one row tile (6 rows) x one 8-column strip of B, reading A in place --

// One row of a tile: c (+)= alpha·(s0|s1) for the first nr (1..8) columns.
// @ts-ignore: decorator
@inline function putRow(q: usize, s0: v128, s1: v128, nr: i32, al: v128, acc: i32): void {
  if (nr === 8) {
    put(q, s0, al, acc);
    put(q + 16, s1, al, acc);
  } else {
    putPart(q, s0, nr, al, acc);
    if (nr > 4) putPart(q + 16, s1, nr - 4, al, acc);
  }
}

// The first n (1..4) lanes of c (+)= alpha·s (lane by lane: the same rounding as put).
// @ts-ignore: decorator
@inline function putPart(q: usize, s: v128, n: i32, al: v128, acc: i32): void {
  if (n >= 4) {
    put(q, s, al, acc);
    return;
  }
  const v = f32x4.mul(s, al);
  store<f32>(q, acc ? load<f32>(q) + f32x4.extract_lane(v, 0) : f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(q + 4, acc ? load<f32>(q + 4) + f32x4.extract_lane(v, 1) : f32x4.extract_lane(v, 1));
  if (n > 2) store<f32>(q + 8, acc ? load<f32>(q + 8) + f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 2));
}

// Rows i..i+mr (mr 1..6) x one strip of 8 columns (nr of them kept), over K values of k: A(r,k) at
// a + r·rs + k·ks (bytes), B's strip at b, row step bs (bytes). Rows past mr repeat row mr - 1 (their sums
// are dropped). phase & 1: start from the partial sums at w (row stride ws bytes) instead of 0; phase & 2:
// finish into C, else store the partial sums to w (so a k-blocked chain is the unblocked one, bit for bit).
function tile6x8(
  a: usize, rs: usize, ks: usize, b: usize, bs: usize, c: usize, ldc: usize, K: i32, mr: i32, nr: i32,
  al: v128, acc: i32, w: usize, ws: usize, phase: i32,
): void {
  const o1 = rs * <usize> min(1, mr - 1), o2 = rs * <usize> min(2, mr - 1), o3 = rs * <usize> min(3, mr - 1);
  const o4 = rs * <usize> min(4, mr - 1), o5 = rs * <usize> min(5, mr - 1);
  let c0 = f32x4.splat(0), d0 = f32x4.splat(0), c1 = f32x4.splat(0), d1 = f32x4.splat(0);
  let c2 = f32x4.splat(0), d2 = f32x4.splat(0), c3 = f32x4.splat(0), d3 = f32x4.splat(0);
  let c4 = f32x4.splat(0), d4 = f32x4.splat(0), c5 = f32x4.splat(0), d5 = f32x4.splat(0);
  if (phase & 1) {
    c0 = v128.load(w);
    d0 = v128.load(w + 16);
    if (mr > 1) {
      c1 = v128.load(w + ws);
      d1 = v128.load(w + ws + 16);
    }
    if (mr > 2) {
      c2 = v128.load(w + 2 * ws);
      d2 = v128.load(w + 2 * ws + 16);
    }
    if (mr > 3) {
      c3 = v128.load(w + 3 * ws);
      d3 = v128.load(w + 3 * ws + 16);
    }
    if (mr > 4) {
      c4 = v128.load(w + 4 * ws);
      d4 = v128.load(w + 4 * ws + 16);
    }
    if (mr > 5) {
      c5 = v128.load(w + 5 * ws);
      d5 = v128.load(w + 5 * ws + 16);
    }
  }
  let p = a, q = b, k = 0;
  if (mr == 6 && rs == 4) {
    // a full tile of Aᵀ read in place (its 6 rows side by side): constant offsets, 2 k per pass
    // (1.1-1.4x over the loop below)
    for (; k + 2 <= K; k += 2) {
      const p0 = p, q0 = q;
      let b0 = v128.load(q0);
      let b1 = v128.load(q0 + 16);
      let s = v128.load32_splat(p0);
      c0 = madd(s, b0, c0);
      d0 = madd(s, b1, d0);
      s = v128.load32_splat(p0 + 4);
      c1 = madd(s, b0, c1);
      d1 = madd(s, b1, d1);
      s = v128.load32_splat(p0 + 8);
      c2 = madd(s, b0, c2);
      d2 = madd(s, b1, d2);
      s = v128.load32_splat(p0 + 12);
      c3 = madd(s, b0, c3);
      d3 = madd(s, b1, d3);
      s = v128.load32_splat(p0 + 16);
      c4 = madd(s, b0, c4);
      d4 = madd(s, b1, d4);
      s = v128.load32_splat(p0 + 20);
      c5 = madd(s, b0, c5);
      d5 = madd(s, b1, d5);
      const p1 = p + ks, q1 = q + bs;
      b0 = v128.load(q1);
      b1 = v128.load(q1 + 16);
      s = v128.load32_splat(p1);
      c0 = madd(s, b0, c0);
      d0 = madd(s, b1, d0);
      s = v128.load32_splat(p1 + 4);
      c1 = madd(s, b0, c1);
      d1 = madd(s, b1, d1);
      s = v128.load32_splat(p1 + 8);
      c2 = madd(s, b0, c2);
      d2 = madd(s, b1, d2);
      s = v128.load32_splat(p1 + 12);
      c3 = madd(s, b0, c3);
      d3 = madd(s, b1, d3);
      s = v128.load32_splat(p1 + 16);
      c4 = madd(s, b0, c4);
      d4 = madd(s, b1, d4);
      s = v128.load32_splat(p1 + 20);
      c5 = madd(s, b0, c5);
      d5 = madd(s, b1, d5);
      p = p1 + ks;
      q = q1 + bs;
    }
  }
  for (; k < K; k++) {
    const b0 = v128.load(q), b1 = v128.load(q + 16);
    let s = v128.load32_splat(p);
    c0 = madd(s, b0, c0);
    d0 = madd(s, b1, d0);
    s = v128.load32_splat(p + o1);
    c1 = madd(s, b0, c1);
    d1 = madd(s, b1, d1);
    s = v128.load32_splat(p + o2);
    c2 = madd(s, b0, c2);
    d2 = madd(s, b1, d2);
    s = v128.load32_splat(p + o3);
    c3 = madd(s, b0, c3);
    d3 = madd(s, b1, d3);
    s = v128.load32_splat(p + o4);
    c4 = madd(s, b0, c4);
    d4 = madd(s, b1, d4);
    s = v128.load32_splat(p + o5);
    c5 = madd(s, b0, c5);
    d5 = madd(s, b1, d5);
    p += ks;
    q += bs;
  }
  if (phase & 2) {
    putRow(c, c0, d0, nr, al, acc);
    if (mr > 1) putRow(c + ldc, c1, d1, nr, al, acc);
    if (mr > 2) putRow(c + 2 * ldc, c2, d2, nr, al, acc);
    if (mr > 3) putRow(c + 3 * ldc, c3, d3, nr, al, acc);
    if (mr > 4) putRow(c + 4 * ldc, c4, d4, nr, al, acc);
    if (mr > 5) putRow(c + 5 * ldc, c5, d5, nr, al, acc);
  } else {
    v128.store(w, c0);
    v128.store(w + 16, d0);
    if (mr > 1) {
      v128.store(w + ws, c1);
      v128.store(w + ws + 16, d1);
    }
    if (mr > 2) {
      v128.store(w + 2 * ws, c2);
      v128.store(w + 2 * ws + 16, d2);
    }
    if (mr > 3) {
      v128.store(w + 3 * ws, c3);
      v128.store(w + 3 * ws + 16, d3);
    }
    if (mr > 4) {
      v128.store(w + 4 * ws, c4);
      v128.store(w + 4 * ws + 16, d4);
    }
    if (mr > 5) {
      v128.store(w + 5 * ws, c5);
      v128.store(w + 5 * ws + 16, d5);
    }
  }
}

/**
 * A(i,k) is a[i·sai + k·sak] (either layout, read in place), B is (K,N) in two parts: ns strips of 8
 * columns at b (row stride ldb, in place), then nt columns at bt (row stride ldbt, zero-padded to a
 * multiple of 8 wide: gemmThinPack), C is (M, 8·ns + nt) at stride ldc:
 * `C (+)= alpha·A·B` with 6x8 register tiles (12 accumulators), for products with a small N (a weight
 * gradient Aᵀ·B with A read in place: sai = 1, where full tiles run 2 k per pass). k runs in blocks of kb (so a block's rows of A and B stay in cache while every tile passes over them),
 * the partial sums kept at w (M rows of 8·(ns + ceil(nt / 8)) floats; unused when K <= kb). Every element
 * is one multiply-add chain in k order whatever its tile or block, so any split of rows between threads
 * gives the same bits.
 */
export function gemmThin(
  a: usize, sai: i32, sak: i32, b: usize, ldb: i32, ns: i32, bt: usize, ldbt: i32, nt: i32, c: usize, ldc: i32,
  M: i32, K: i32, alpha: f32, acc: i32, w: usize, kb: i32,
): void {
  const al = f32x4.splat(alpha), rs = <usize> sai << 2, ks = <usize> sak << 2;
  const bs = <usize> ldb << 2, bts = <usize> ldbt << 2, cs = <usize> ldc << 2;
  const st = (nt + 7) >> 3, wl = <usize> (ns + st) << 5;
  if (kb <= 0 || kb > K) kb = K;
  for (let k0 = 0; k0 < K; k0 += kb) {
    const kl = min(kb, K - k0), phase = (k0 > 0 ? 1 : 0) | (k0 + kl >= K ? 2 : 0);
    const ak = a + <usize> k0 * ks, bk = b + <usize> k0 * bs, btk = bt + <usize> k0 * bts;
    for (let i = 0; i < M; i += 6) {
      const mr = min(6, M - i), ai = ak + <usize> i * rs, ci = c + <usize> i * cs, wi = w + <usize> i * wl;
      for (let j = 0; j < ns; j++) {
        const o = <usize> j << 5;
        tile6x8(ai, rs, ks, bk + o, bs, ci + o, cs, kl, mr, 8, al, acc, wi + o, wl, phase);
      }
      for (let t = 0; t < st; t++) {
        const o = <usize> (ns + t) << 5;
        tile6x8(ai, rs, ks, btk + (<usize> t << 5), bts, ci + o, cs, kl, mr, min(8, nt - 8 * t), al, acc, wi + o, wl,
          phase);
      }
    }
  }
}

/**
 * B(k,n) is b[k·sbk + n·sbn] (either layout): writes columns j0..N of B to dst as (K, w) rows, w the
 * column count rounded up to a multiple of 8, zero-padded (the bt operand of gemmThin).
 */
export function gemmThinPack(b: usize, sbk: i32, sbn: i32, dst: usize, K: i32, N: i32, j0: i32): void {
  const n = N - j0, w = (n + 7) & ~7;
  for (let k = 0; k < K; k++) {
    const d = dst + (<usize> (k * w) << 2), s = b + (<usize> (k * sbk + j0 * sbn) << 2), sn = <usize> sbn << 2;
    let j = 0;
    for (; j < n; j++) store<f32>(d + (<usize> j << 2), load<f32>(s + <usize> j * sn));
    for (; j < w; j++) store<f32>(d + (<usize> j << 2), 0);
  }
}

/**
 * T is (N,M) rows (the product computed transposed), C is (M,N) at stride ldc:
 * `C (+)= alpha·Tᵀ` (multiply then add: the same rounding as gemmThin's own stores).
 */
export function gemmThinUntranspose(t: usize, c: usize, M: i32, N: i32, ldc: i32, alpha: f32, acc: i32): void {
  const step = <usize> M << 2;
  for (let i = 0; i < M; i++) {
    const ci = c + (<usize> (i * ldc) << 2), ti = t + (<usize> i << 2);
    for (let j = 0; j < N; j++) put1(ci + (<usize> j << 2), load<f32>(ti + <usize> j * step), alpha, acc);
  }
}
