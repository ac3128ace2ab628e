// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// Reductions and row-wise kernels (softmax, cross-entropy, layer norm, gather/scatter of rows).
import { madd } from "./_common.ts";

/**
 * x is (M,N) with row stride ld, y is (N): `y (+)= Σ_rows x` (float64 accumulators, two lanes per v128).
 * Threads take a range of columns each (x and y offset, ld the full width). With at least SUMROWS_STREAM_M
 * rows a long stride apart x is read row by row ({@link sumRowsStream}, float64 sums in ws); otherwise column strips in registers.
 * Either way each column's sum is the same float64 sum in row order, y added last: the same bits.
 */
export function sumRows(x: usize, y: usize, M: i32, N: i32, beta: i32, ld: i32, ws: usize): void {
  if (M >= SUMROWS_STREAM_M && ld >= SUMROWS_STREAM_LD) sumRowsStream(x, y, M, N, beta, ld, ws);
  else sumRowsStrips(x, y, M, N, beta, ld);
}

// Rows from which sumRows reads x row by row. A strip of 16 columns walks down the rows a row stride apart,
// one cache line per row: at a power-of-two stride every line is a miss that the prefetcher does not
// follow across pages (256x4096 out of cache: about 2 GB/s).
const SUMROWS_STREAM_M: i32 = 16;
// ... and from this row stride (floats): rows closer than that lie nearly contiguous, and the strips in
// registers are faster (2048x128 out of cache: 0.5x the time of the row-by-row read; 256x1024: 2.2x)
const SUMROWS_STREAM_LD: i32 = 1024;
/** Columns per block of {@link sumRowsStream}: its float64 sums (8 KiB) stay in L1. */
export const SUMROWS_BLOCK: i32 = 1024;

/**
 * sumRows reading x row by row: for each block of SUMROWS_BLOCK columns, the float64 sums live in ws and
 * take 4 rows per load and store (added one row after the other: row order kept).
 */
function sumRowsStream(x: usize, y: usize, M: i32, N: i32, beta: i32, ld: i32, ws: usize): void {
  const rowb = <usize> ld << 2;
  for (let j0 = 0; j0 < N; j0 += SUMROWS_BLOCK) {
    const nb = min(SUMROWS_BLOCK, N - j0), n4 = nb & ~3;
    memory.fill(ws, 0, <usize> nb << 3);
    const x0 = x + (<usize> j0 << 2);
    let i = 0;
    for (; i + 4 <= M; i += 4) {
      const r0 = x0 + <usize> i * rowb, r1 = r0 + rowb, r2 = r1 + rowb, r3 = r2 + rowb;
      for (let c = 0; c < n4; c += 4) {
        const o = <usize> c << 2, s = ws + (<usize> c << 3);
        const a0 = v128.load(r0 + o), a1 = v128.load(r1 + o), a2 = v128.load(r2 + o), a3 = v128.load(r3 + o);
        let lo = v128.load(s), hi = v128.load(s, 16);
        lo = f64x2.add(lo, f64x2.promote_low_f32x4(a0));
        hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(a0, a0, 2, 3, 2, 3)));
        lo = f64x2.add(lo, f64x2.promote_low_f32x4(a1));
        hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(a1, a1, 2, 3, 2, 3)));
        lo = f64x2.add(lo, f64x2.promote_low_f32x4(a2));
        hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(a2, a2, 2, 3, 2, 3)));
        lo = f64x2.add(lo, f64x2.promote_low_f32x4(a3));
        hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(a3, a3, 2, 3, 2, 3)));
        v128.store(s, lo);
        v128.store(s, hi, 16);
      }
      for (let c = n4; c < nb; c++) {
        const o = <usize> c << 2, s = ws + (<usize> c << 3);
        let t = load<f64>(s);
        t += <f64> load<f32>(r0 + o);
        t += <f64> load<f32>(r1 + o);
        t += <f64> load<f32>(r2 + o);
        t += <f64> load<f32>(r3 + o);
        store<f64>(s, t);
      }
    }
    for (; i < M; i++) {
      const r = x0 + <usize> i * rowb;
      for (let c = 0; c < nb; c++) {
        const s = ws + (<usize> c << 3);
        store<f64>(s, load<f64>(s) + <f64> load<f32>(r + (<usize> c << 2)));
      }
    }
    const q0 = y + (<usize> j0 << 2);
    for (let c = 0; c < nb; c++) {
      const q = q0 + (<usize> c << 2);
      store<f32>(q, <f32> ((beta ? <f64> load<f32>(q) : 0) + load<f64>(ws + (<usize> c << 3))));
    }
  }
}

// sumRows by column strips, the sums in registers
function sumRowsStrips(x: usize, y: usize, M: i32, N: i32, beta: i32, ld: i32): void {
  const rowb = <usize> ld << 2;
  let j = 0;
  // 16 columns (one cache line of each row) at a time, then 8, then one: each column's sum is the same
  // float64 sum in row order whatever the strip (and the thread) that takes it
  for (; j + 16 <= N; j += 16) {
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
    let s4 = f64x2.splat(0), s5 = f64x2.splat(0), s6 = f64x2.splat(0), s7 = f64x2.splat(0);
    let p = x + (<usize> j << 2);
    for (let i = 0; i < M; i++) {
      const a = v128.load(p), b = v128.load(p, 16), c = v128.load(p, 32), d = v128.load(p, 48);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(a));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3)));
      s2 = f64x2.add(s2, f64x2.promote_low_f32x4(b));
      s3 = f64x2.add(s3, f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3)));
      s4 = f64x2.add(s4, f64x2.promote_low_f32x4(c));
      s5 = f64x2.add(s5, f64x2.promote_low_f32x4(v128.shuffle<f32>(c, c, 2, 3, 2, 3)));
      s6 = f64x2.add(s6, f64x2.promote_low_f32x4(d));
      s7 = f64x2.add(s7, f64x2.promote_low_f32x4(v128.shuffle<f32>(d, d, 2, 3, 2, 3)));
      p += rowb;
    }
    const q = y + (<usize> j << 2);
    if (beta) {
      const a = v128.load(q), b = v128.load(q, 16), c = v128.load(q, 32), d = v128.load(q, 48);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(a));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3)));
      s2 = f64x2.add(s2, f64x2.promote_low_f32x4(b));
      s3 = f64x2.add(s3, f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3)));
      s4 = f64x2.add(s4, f64x2.promote_low_f32x4(c));
      s5 = f64x2.add(s5, f64x2.promote_low_f32x4(v128.shuffle<f32>(c, c, 2, 3, 2, 3)));
      s6 = f64x2.add(s6, f64x2.promote_low_f32x4(d));
      s7 = f64x2.add(s7, f64x2.promote_low_f32x4(v128.shuffle<f32>(d, d, 2, 3, 2, 3)));
    }
    v128.store(q, v128.shuffle<f32>(f32x4.demote_f64x2_zero(s0), f32x4.demote_f64x2_zero(s1), 0, 1, 4, 5));
    v128.store(q, v128.shuffle<f32>(f32x4.demote_f64x2_zero(s2), f32x4.demote_f64x2_zero(s3), 0, 1, 4, 5), 16);
    v128.store(q, v128.shuffle<f32>(f32x4.demote_f64x2_zero(s4), f32x4.demote_f64x2_zero(s5), 0, 1, 4, 5), 32);
    v128.store(q, v128.shuffle<f32>(f32x4.demote_f64x2_zero(s6), f32x4.demote_f64x2_zero(s7), 0, 1, 4, 5), 48);
  }
  for (; j + 8 <= N; j += 8) {
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
    let p = x + (<usize> j << 2);
    for (let i = 0; i < M; i++) {
      const a = v128.load(p), b = v128.load(p, 16);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(a));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3)));
      s2 = f64x2.add(s2, f64x2.promote_low_f32x4(b));
      s3 = f64x2.add(s3, f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3)));
      p += rowb;
    }
    const q = y + (<usize> j << 2);
    if (beta) {
      const a = v128.load(q), b = v128.load(q, 16);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(a));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3)));
      s2 = f64x2.add(s2, f64x2.promote_low_f32x4(b));
      s3 = f64x2.add(s3, f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3)));
    }
    const d0 = f32x4.demote_f64x2_zero(s0), d1 = f32x4.demote_f64x2_zero(s1);
    const d2 = f32x4.demote_f64x2_zero(s2), d3 = f32x4.demote_f64x2_zero(s3);
    v128.store(q, v128.shuffle<f32>(d0, d1, 0, 1, 4, 5));
    v128.store(q, v128.shuffle<f32>(d2, d3, 0, 1, 4, 5), 16);
  }
  for (; j < N; j++) {
    let s: f64 = 0;
    for (let i = 0; i < M; i++) s += <f64> load<f32>(x + (<usize> (i * ld + j) << 2));
    const q = y + (<usize> j << 2);
    store<f32>(q, <f32> ((beta ? <f64> load<f32>(q) : 0) + s));
  }
}

/**
 * x is (M,N), y is (M): `y (+)= Σ_cols x`, each row summed in float64 by rowSum (its order is below).
 */
export function sumCols(x: usize, y: usize, M: i32, N: i32, beta: i32): void {
  for (let i = 0; i < M; i++) {
    const q = y + (<usize> i << 2);
    store<f32>(q, <f32> ((beta ? <f64> load<f32>(q) : 0) + rowSum(x + (<usize> (i * N) << 2), N)));
  }
}

/**
 * x is (size), out is (1): `out (+)= Σ x²` in float64, as the in-order sum of the chunks' sums (chunks of
 * `chunk` elements, each summed by {@link sumSquaresChunks}), so splitting the chunks between threads gives
 * the same bits.
 */
export function sumSquares(x: usize, out: usize, size: i32, beta: i32): void {
  let s: f64 = 0;
  for (let o = 0; o < size; o += SQ_CHUNK) s += sumSquares1(x + (<usize> o << 2), min(SQ_CHUNK, size - o));
  store<f32>(out, <f32> ((beta ? <f64> load<f32>(out) : 0) + s));
}

/** The chunk of sumSquares (elements), fixed whatever the thread count. */
export const SQ_CHUNK: i32 = 1 << 16;

/** Chunks [c0, c1) of x (size) in chunks of SQ_CHUNK: partial[c] = Σ x² over chunk c (float64). */
export function sumSquaresChunks(x: usize, partial: usize, size: i32, c0: i32, c1: i32): void {
  for (let c = c0; c < c1; c++) {
    const o = c * SQ_CHUNK;
    store<f64>(partial + (<usize> c << 3), sumSquares1(x + (<usize> o << 2), min(SQ_CHUNK, size - o)));
  }
}

// Σ x² over n elements in float64: four f64x2 partial sums over 8 elements at a time, in a fixed order.
function sumSquares1(p: usize, n: i32): f64 {
  const n8 = n & ~7;
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
  for (let j = 0; j < n8; j += 8) {
    const a = v128.load(p + (<usize> j << 2)), b = v128.load(p + (<usize> j << 2), 16);
    const a0 = f64x2.promote_low_f32x4(a), a1 = f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3));
    const b0 = f64x2.promote_low_f32x4(b), b1 = f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3));
    s0 = f64x2.add(s0, f64x2.mul(a0, a0));
    s1 = f64x2.add(s1, f64x2.mul(a1, a1));
    s2 = f64x2.add(s2, f64x2.mul(b0, b0));
    s3 = f64x2.add(s3, f64x2.mul(b1, b1));
  }
  const t = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
  let s: f64 = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
  for (let j = n8; j < n; j++) {
    const v = <f64> load<f32>(p + (<usize> j << 2));
    s += v * v;
  }
  return s;
}

// Row softmax of x into y; returns log Σ exp(x - max) + max (the logsumexp).
function softmaxRow(x: usize, y: usize, N: i32): f64 {
  let mx: f64 = -Infinity;
  for (let j = 0; j < N; j++) mx = Math.max(mx, <f64> load<f32>(x + (<usize> j << 2)));
  let s: f64 = 0;
  for (let j = 0; j < N; j++) s += Math.exp(<f64> load<f32>(x + (<usize> j << 2)) - mx);
  const lse = mx + Math.log(s);
  for (let j = 0; j < N; j++) {
    const o = <usize> j << 2;
    store<f32>(y + o, <f32> (Math.exp(<f64> load<f32>(x + o) - mx) / s));
  }
  return lse;
}

/** x, y are (M,N): row softmax (y may alias x). */
export function softmax(x: usize, y: usize, M: i32, N: i32): void {
  for (let i = 0; i < M; i++) {
    const o = <usize> (i * N) << 2;
    softmaxRow(x + o, y + o, N);
  }
}

/** y, dy, dx are (M,N): `dx (+)= y ⊙ (dy − Σ_row dy⊙y)`. */
export function softmaxGrad(y: usize, dy: usize, dx: usize, M: i32, N: i32, beta: i32): void {
  for (let i = 0; i < M; i++) {
    const r = <usize> (i * N) << 2;
    let dot: f64 = 0;
    for (let j = 0; j < N; j++) {
      const o = r + (<usize> j << 2);
      dot += <f64> load<f32>(dy + o) * <f64> load<f32>(y + o);
    }
    for (let j = 0; j < N; j++) {
      const o = r + (<usize> j << 2);
      const g = <f64> load<f32>(y + o) * (<f64> load<f32>(dy + o) - dot);
      store<f32>(dx + o, <f32> ((beta ? <f64> load<f32>(dx + o) : 0) + g));
    }
  }
}

/** logits, probs are (M,N), labels, losses (M). */
export function crossEntropy(
  logits: usize,
  labels: usize,
  probs: usize,
  losses: usize,
  M: i32,
  N: i32,
): void {
  for (let i = 0; i < M; i++) {
    const o = <usize> (i * N) << 2;
    // read the label's logit first: probs may alias logits
    const lab = <i32> load<f32>(labels + (<usize> i << 2));
    const xl = <f64> load<f32>(logits + o + (<usize> lab << 2));
    const lse = softmaxRow(logits + o, probs + o, N);
    store<f32>(losses + (<usize> i << 2), <f32> (lse - xl));
  }
}

/** probs, dlogits are (M,N), labels and dlosses (M): `dlogits (+)= (probs − onehot) * dlosses[row]`. */
export function crossEntropyGrad(
  probs: usize,
  labels: usize,
  dlosses: usize,
  dlogits: usize,
  M: i32,
  N: i32,
  beta: i32,
): void {
  for (let i = 0; i < M; i++) {
    const lab = <i32> load<f32>(labels + (<usize> i << 2));
    const dl = <f64> load<f32>(dlosses + (<usize> i << 2));
    const r = <usize> (i * N) << 2;
    for (let j = 0; j < N; j++) {
      const o = r + (<usize> j << 2);
      const g = (<f64> load<f32>(probs + o) - (j == lab ? 1.0 : 0.0)) * dl;
      store<f32>(dlogits + o, <f32> ((beta ? <f64> load<f32>(dlogits + o) : 0) + g));
    }
  }
}

// Σ x over a row of n floats in float64: four f64x2 partial sums over 8 elements at a time (element j into
// partial (j % 8) / 2), added in a fixed order, then the last n % 8 in order.
// @ts-ignore: decorator
@inline function rowSum(p: usize, n: i32): f64 {
  const n8 = n & ~7;
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
  for (let j = 0; j < n8; j += 8) {
    const a = v128.load(p + (<usize> j << 2)), b = v128.load(p + (<usize> j << 2), 16);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(a));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3)));
    s2 = f64x2.add(s2, f64x2.promote_low_f32x4(b));
    s3 = f64x2.add(s3, f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3)));
  }
  const t = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
  let s: f64 = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
  for (let j = n8; j < n; j++) s += <f64> load<f32>(p + (<usize> j << 2));
  return s;
}

// Σ (x − mu)² over a row of n floats, in float64 (the order of rowSum).
// @ts-ignore: decorator
@inline function rowSqDev(p: usize, n: i32, mu: f64): f64 {
  const n4 = n & ~3, m = f64x2.splat(mu);
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  for (let j = 0; j < n4; j += 4) {
    const a = v128.load(p + (<usize> j << 2));
    const d0 = f64x2.sub(f64x2.promote_low_f32x4(a), m);
    const d1 = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3)), m);
    s0 = f64x2.add(s0, f64x2.mul(d0, d0));
    s1 = f64x2.add(s1, f64x2.mul(d1, d1));
  }
  const t = f64x2.add(s0, s1);
  let s: f64 = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
  for (let j = n4; j < n; j++) {
    const d = <f64> load<f32>(p + (<usize> j << 2)) - mu;
    s += d * d;
  }
  return s;
}

/**
 * x, y are (M,N), gamma, beta (N), mean, rstd (M): per row, mean and variance in float64 (two passes), then
 * `y = (x − mean)·(rstd·gamma) + beta` in f32x4 (the last N % 4 columns by the same vector arithmetic on
 * a splatted element).
 */
export function layerNorm(
  x: usize,
  gamma: usize,
  bt: usize,
  y: usize,
  mean: usize,
  rstd: usize,
  M: i32,
  N: i32,
  eps: f64,
): void {
  const n4 = N & ~3;
  for (let i = 0; i < M; i++) {
    const r = <usize> (i * N) << 2;
    const mu = rowSum(x + r, N) / <f64> N;
    const rs = 1 / Math.sqrt(rowSqDev(x + r, N, mu) / <f64> N + eps);
    store<f32>(mean + (<usize> i << 2), <f32> mu);
    store<f32>(rstd + (<usize> i << 2), <f32> rs);
    const muv = f32x4.splat(<f32> mu), rsv = f32x4.splat(<f32> rs);
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize> j << 2;
      const v = madd(f32x4.sub(v128.load(x + r + o), muv), f32x4.mul(rsv, v128.load(gamma + o)), v128.load(bt + o));
      v128.store(y + r + o, v);
    }
    for (; j < N; j++) {
      const o = <usize> j << 2;
      const v = madd(
        f32x4.sub(v128.load32_splat(x + r + o), muv),
        f32x4.mul(rsv, v128.load32_splat(gamma + o)),
        v128.load32_splat(bt + o),
      );
      store<f32>(y + r + o, f32x4.extract_lane(v, 0));
    }
  }
}

/**
 * The LayerNorm backward: dx (+)= for rows r0 <= i < r1; dgamma +=, dbeta += for columns c0 <= j < c1
 * (summed over all M rows in row order, in f32). Threads take one row range and one column range each
 * (c0 a multiple of 4). Per row, with xh = (x − mean)·rstd and g = dy·gamma: Σ g and Σ g·xh in float64
 * (the order of rowSum), dx = rstd·(g − mean(g) − xh·mean(g·xh)) in f32x4.
 */
export function layerNormGrad(
  dy: usize,
  x: usize,
  gamma: usize,
  mean: usize,
  rstd: usize,
  dx: usize,
  dgamma: usize,
  dbeta: usize,
  M: i32,
  N: i32,
  beta: i32,
  r0: i32,
  r1: i32,
  c0: i32,
  c1: i32,
): void {
  if (c1 > c0) {
    const e4 = c0 + ((c1 - c0) & ~3);
    for (let i = 0; i < M; i++) {
      const r = <usize> (i * N) << 2;
      const muv = v128.load32_splat(mean + (<usize> i << 2)), rsv = v128.load32_splat(rstd + (<usize> i << 2));
      let j = c0;
      for (; j < e4; j += 4) {
        const o = <usize> j << 2;
        const d = v128.load(dy + r + o);
        const xh = f32x4.mul(f32x4.sub(v128.load(x + r + o), muv), rsv);
        v128.store(dgamma + o, madd(d, xh, v128.load(dgamma + o)));
        v128.store(dbeta + o, f32x4.add(v128.load(dbeta + o), d));
      }
      for (; j < c1; j++) {
        const o = <usize> j << 2;
        const d = v128.load32_splat(dy + r + o);
        const xh = f32x4.mul(f32x4.sub(v128.load32_splat(x + r + o), muv), rsv);
        store<f32>(dgamma + o, f32x4.extract_lane(madd(d, xh, v128.load32_splat(dgamma + o)), 0));
        store<f32>(dbeta + o, f32x4.extract_lane(f32x4.add(v128.load32_splat(dbeta + o), d), 0));
      }
    }
  }
  const n4 = N & ~3, invN: f64 = 1 / <f64> N;
  for (let i = r0; i < r1; i++) {
    const r = <usize> (i * N) << 2;
    const muv = v128.load32_splat(mean + (<usize> i << 2)), rsv = v128.load32_splat(rstd + (<usize> i << 2));
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0), b0 = f64x2.splat(0), b1 = f64x2.splat(0);
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize> j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(x + r + o), muv), rsv);
      const g = f32x4.mul(v128.load(dy + r + o), v128.load(gamma + o));
      const gx = f32x4.mul(g, xh);
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(g));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<f32>(g, g, 2, 3, 2, 3)));
      b0 = f64x2.add(b0, f64x2.promote_low_f32x4(gx));
      b1 = f64x2.add(b1, f64x2.promote_low_f32x4(v128.shuffle<f32>(gx, gx, 2, 3, 2, 3)));
    }
    const ta = f64x2.add(a0, a1), tb = f64x2.add(b0, b1);
    let sd: f64 = f64x2.extract_lane(ta, 0) + f64x2.extract_lane(ta, 1);
    let sdx: f64 = f64x2.extract_lane(tb, 0) + f64x2.extract_lane(tb, 1);
    for (; j < N; j++) {
      const o = <usize> j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load32_splat(x + r + o), muv), rsv);
      const g = f32x4.mul(v128.load32_splat(dy + r + o), v128.load32_splat(gamma + o));
      sd += <f64> f32x4.extract_lane(g, 0);
      sdx += <f64> f32x4.extract_lane(f32x4.mul(g, xh), 0);
    }
    const sdv = f32x4.splat(<f32> (sd * invN)), sxv = f32x4.splat(<f32> (sdx * invN));
    j = 0;
    for (; j < n4; j += 4) {
      const o = <usize> j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(x + r + o), muv), rsv);
      const g = f32x4.mul(v128.load(dy + r + o), v128.load(gamma + o));
      let v = f32x4.mul(rsv, f32x4.sub(f32x4.sub(g, sdv), f32x4.mul(xh, sxv)));
      if (beta) v = f32x4.add(v128.load(dx + r + o), v);
      v128.store(dx + r + o, v);
    }
    for (; j < N; j++) {
      const o = <usize> j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load32_splat(x + r + o), muv), rsv);
      const g = f32x4.mul(v128.load32_splat(dy + r + o), v128.load32_splat(gamma + o));
      let v = f32x4.mul(rsv, f32x4.sub(f32x4.sub(g, sdv), f32x4.mul(xh, sxv)));
      if (beta) v = f32x4.add(v128.load32_splat(dx + r + o), v);
      store<f32>(dx + r + o, f32x4.extract_lane(v, 0));
    }
  }
}

// One row of gatedCombine; hasBias is a literal at each call, so each variant gets its own loop.
// @ts-ignore: decorator
@inline function gatedCombineRow(s: usize, l: usize, bias: usize, y: usize, gv: v128, N: i32, hasBias: bool): void {
  const ov = f32x4.sub(f32x4.splat(1), gv), n4 = N & ~3;
  let j = 0;
  for (; j < n4; j += 4) {
    const o = <usize> j << 2;
    let v = madd(gv, v128.load(l + o), f32x4.mul(ov, v128.load(s + o)));
    if (hasBias) v = f32x4.add(v, v128.load(bias + o));
    v128.store(y + o, v);
  }
  for (; j < N; j++) {
    const o = <usize> j << 2;
    let v = madd(gv, v128.load32_splat(l + o), f32x4.mul(ov, v128.load32_splat(s + o)));
    if (hasBias) v = f32x4.add(v, v128.load32_splat(bias + o));
    store<f32>(y + o, f32x4.extract_lane(v, 0));
  }
}

/**
 * s, l, y are (M,N), g (M), bias (N): `y = (1 − g)·s + g·l + bias`, one gate value per row (bias read only
 * when hasBias). Threads take ranges of rows.
 */
export function gatedCombine(s: usize, l: usize, g: usize, bias: usize, y: usize, M: i32, N: i32, hasBias: i32): void {
  for (let i = 0; i < M; i++) {
    const r = <usize> (i * N) << 2, gv = v128.load32_splat(g + (<usize> i << 2));
    if (hasBias) gatedCombineRow(s + r, l + r, bias, y + r, gv, N, true);
    else gatedCombineRow(s + r, l + r, bias, y + r, gv, N, false);
  }
}

/**
 * The gatedCombine backward, dy, s, l, ds, dl (M,N), g, dg (M): `ds (+)= (1 − g)·dy`, `dl (+)= g·dy`,
 * `dg (+)= Σ_row dy·(l − s)` (the products in f32, their sum in float64 in the order of rowSum). Threads
 * take ranges of rows.
 */
export function gatedCombineGrad(
  dy: usize,
  s: usize,
  l: usize,
  g: usize,
  ds: usize,
  dl: usize,
  dg: usize,
  M: i32,
  N: i32,
  beta: i32,
): void {
  const n4 = N & ~3;
  for (let i = 0; i < M; i++) {
    const r = <usize> (i * N) << 2;
    const gv = v128.load32_splat(g + (<usize> i << 2)), ov = f32x4.sub(f32x4.splat(1), gv);
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
    let j = 0;
    for (; j < n4; j += 4) {
      const o = r + (<usize> j << 2);
      const d = v128.load(dy + o);
      const t = f32x4.mul(d, f32x4.sub(v128.load(l + o), v128.load(s + o)));
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(t));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<f32>(t, t, 2, 3, 2, 3)));
      let vs = f32x4.mul(ov, d), vl = f32x4.mul(gv, d);
      if (beta) {
        vs = f32x4.add(v128.load(ds + o), vs);
        vl = f32x4.add(v128.load(dl + o), vl);
      }
      v128.store(ds + o, vs);
      v128.store(dl + o, vl);
    }
    const ta = f64x2.add(a0, a1);
    let sum: f64 = f64x2.extract_lane(ta, 0) + f64x2.extract_lane(ta, 1);
    for (; j < N; j++) {
      const o = r + (<usize> j << 2);
      const d = v128.load32_splat(dy + o);
      const t = f32x4.mul(d, f32x4.sub(v128.load32_splat(l + o), v128.load32_splat(s + o)));
      sum += <f64> f32x4.extract_lane(t, 0);
      let vs = f32x4.mul(ov, d), vl = f32x4.mul(gv, d);
      if (beta) {
        vs = f32x4.add(v128.load32_splat(ds + o), vs);
        vl = f32x4.add(v128.load32_splat(dl + o), vl);
      }
      store<f32>(ds + o, f32x4.extract_lane(vs, 0));
      store<f32>(dl + o, f32x4.extract_lane(vl, 0));
    }
    const q = dg + (<usize> i << 2);
    store<f32>(q, <f32> ((beta ? <f64> load<f32>(q) : 0) + sum));
  }
}

/** table is (rows,N), idx (M), out (M,N): out[i] = table[idx[i]]. */
export function gatherRows(table: usize, idx: usize, out: usize, M: i32, N: i32): void {
  const rowb = <usize> N << 2;
  for (let i = 0; i < M; i++) {
    const t = <i32> load<f32>(idx + (<usize> i << 2));
    memory.copy(out + <usize> i * rowb, table + <usize> t * rowb, rowb);
  }
}

/**
 * dtable[idx[i]] += dout[i] over N columns; dout and dtable have row stride ld. Threads take a range of
 * columns each (dout and dtable offset, ld the full width), so rows repeated in idx never race.
 */
export function scatterAddRows(dout: usize, idx: usize, dtable: usize, M: i32, N: i32, ld: i32): void {
  for (let i = 0; i < M; i++) {
    const t = <usize> <i32> load<f32>(idx + (<usize> i << 2));
    const src = dout + (<usize> (i * ld) << 2), dst = dtable + ((t * <usize> ld) << 2);
    for (let j = 0; j < N; j++) {
      const o = <usize> j << 2;
      store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
    }
  }
}
