// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// dds' forward for a few rows of X, reading the BSR weight in place: no packed copy of W (sparse.ts'
// dds packs every kept block panel-major first, 3 MB of fresh memory written and read for a 1024 -> 4096
// layer, which a layer's first forward on one row, or a small batch, should not pay).
//
// Each output element is the same multiply-add chain as sparse.ts' dds (micro-kernel, generated/micro.ts):
// acc = 0, then for every kept block of the block row in walk order and k = 0 .. b-1 in order,
// acc = madd(x[m,k], w[n,k], acc), then y = acc (or y + acc when accumulating). So a row's output has the
// same bits whatever the kernel, the batch it is in or the thread count.
import { madd } from "./_common.ts";

/**
 * x is (M, inBlocks*b), w is (nnz,b,b) read in place, y is (M, outBlocks*b): `Y (+)= X·Wᵀ` over the
 * block rows o0 <= o < o1 of W (output block columns of y), walking ptr = rowPtr and idx = colIdx.
 * b must be a multiple of 4; beta = 1 accumulates. Four output columns of one block at a time, each
 * lane's chain over k as the packed kernel's: for four rows of X, four rows of the W block loaded as v128
 * (4 k each) and transposed in registers; for one row, each k's four values gathered by lane loads.
 */
export function ddsRows(
  x: usize,
  w: usize,
  y: usize,
  M: i32,
  inBlocks: i32,
  outBlocks: i32,
  b: i32,
  ptr: usize,
  idx: usize,
  beta: i32,
  o0: i32,
  o1: i32,
): void {
  if (M <= 0 || o1 <= o0 || (b & 3) != 0) return;
  const ldx = <usize> (inBlocks * b) << 2, ldy = <usize> (outBlocks * b) << 2;
  const ldw = <usize> b << 2, blockBytes = <usize> (b * b) << 2;
  for (let o = o0; o < o1; o++) {
    const e0 = load<i32>(ptr + (<usize> o << 2)), e1 = load<i32>(ptr + (<usize> (o + 1) << 2));
    for (let n = 0; n < b; n += 4) {
      const wn = w + <usize> n * ldw, yn = y + (<usize> (o * b + n) << 2);
      // Four rows at a time share each transposed group; the rest one at a time (separate loops, no
      // branch in the k loop: V8's baseline compiler spills every live vector at a branch). rows1 has two
      // callers, so Binaryen keeps it a function of its own: V8 moves a function to its optimising tier
      // at its next call (WASM has no on-stack replacement), so a call long enough to spend V8's tiering
      // budget switches tier part way (per b/4 columns of a block row) instead of at the next dds. (A
      // 1024 -> 4096 layer's first one-row forward is not that long: it runs in the baseline tier.)
      if (M == 1) {
        // sixteen columns at a time where the block has them left: four independent chains
        if (n + 16 <= b) {
          rows1x16(x, wn, ldw, blockBytes, b, idx, e0, e1, yn, beta);
          n += 12;
        } else rows1(x, wn, ldw, blockBytes, b, idx, e0, e1, yn, beta);
      } else {
        let m = 0;
        for (; m + 4 <= M; m += 4) rows4(x + <usize> m * ldx, ldx, wn, ldw, blockBytes, b, idx, e0, e1, yn + <usize> m * ldy, ldy, beta);
        for (; m < M; m++) rows1(x + <usize> m * ldx, wn, ldw, blockBytes, b, idx, e0, e1, yn + <usize> m * ldy, beta);
      }
    }
  }
}

// w[n..n+3, k..k+3] transposed: lane i of kj is w[n+i, k+j] (rows ldw bytes apart from p).
// @ts-ignore: decorator
@inline function tr0(r0: v128, r1: v128): v128 {
  return i32x4.shuffle(r0, r1, 0, 4, 1, 5);
}
// @ts-ignore: decorator
@inline function tr1(r0: v128, r1: v128): v128 {
  return i32x4.shuffle(r0, r1, 2, 6, 3, 7);
}

// w[n..n+3, k] at p (rows ldw bytes apart) as one vector, lane i = w[n+i, k]: four lane loads. For one row
// of X this beats transposing 4 x 4 tiles by shuffles (rows4's way, which shares each transposed tile
// between four rows), which V8's baseline tier compiles to about ten instructions each. One row through a
// 1024 -> 4096 layer's weight (density 3/16, 2-vCPU VM, against the shuffles): about 0.6x the time in the
// baseline tier alone, 0.8x in the optimising tier, and a first call (the tiers mixed) 2.75 against 3.27 ms,
// medians of 15 processes.
// @ts-ignore: decorator
@inline function column(p: usize, ldw: usize): v128 {
  let v = v128.load32_zero(p);
  v = v128.load32_lane(p + ldw, v, 1);
  v = v128.load32_lane(p + (ldw << 1), v, 2);
  return v128.load32_lane(p + ldw * 3, v, 3);
}

// One row of X: y[0..3] (+)= the chains over the kept blocks e0 <= e < e1 of four output columns.
function rows1(
  x: usize, wn: usize, ldw: usize, blockBytes: usize, b: i32, idx: usize, e0: i32, e1: i32, y: usize, beta: i32,
): void {
  let c0 = f32x4.splat(0);
  for (let e = e0; e < e1; e++) {
    let wr = wn + <usize> e * blockBytes;
    let xr = x + (<usize> (load<i32>(idx + (<usize> e << 2)) * b) << 2);
    const xEnd = xr + (<usize> b << 2);
    while (xr < xEnd) {
      c0 = madd(v128.load32_splat(xr), column(wr, ldw), c0);
      wr += 4;
      xr += 4;
    }
  }
  storeRow(y, c0, beta);
}

// One row of X, sixteen output columns (four groups of rows1's four): the groups' chains are independent,
// so the core overlaps them (one chain of dependent multiply-adds left rows1 at about one multiply-add per
// cycle, and the baseline tier, which keeps the chain in a stack slot, at a fraction of that). Each chain
// is rows1's, so the bits are the same.
function rows1x16(
  x: usize, wn: usize, ldw: usize, blockBytes: usize, b: i32, idx: usize, e0: i32, e1: i32, y: usize, beta: i32,
): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  const ld4 = ldw << 2;
  for (let e = e0; e < e1; e++) {
    let wr = wn + <usize> e * blockBytes;
    let xr = x + (<usize> (load<i32>(idx + (<usize> e << 2)) * b) << 2);
    const xEnd = xr + (<usize> b << 2);
    while (xr < xEnd) {
      const xv = v128.load32_splat(xr);
      c0 = madd(xv, column(wr, ldw), c0);
      c1 = madd(xv, column(wr + ld4, ldw), c1);
      c2 = madd(xv, column(wr + (ld4 << 1), ldw), c2);
      c3 = madd(xv, column(wr + ld4 * 3, ldw), c3);
      wr += 4;
      xr += 4;
    }
  }
  storeRow(y, c0, beta);
  storeRow(y + 16, c1, beta);
  storeRow(y + 32, c2, beta);
  storeRow(y + 48, c3, beta);
}

// Four rows of X (ldx bytes apart), each as rows1, sharing the transposed groups of W.
function rows4(
  x: usize, ldx: usize, wn: usize, ldw: usize, blockBytes: usize, b: i32, idx: usize, e0: i32, e1: i32,
  y: usize, ldy: usize, beta: i32,
): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  for (let e = e0; e < e1; e++) {
    let wr = wn + <usize> e * blockBytes;
    let xr = x + (<usize> (load<i32>(idx + (<usize> e << 2)) * b) << 2);
    const xEnd = xr + (<usize> b << 2);
    while (xr < xEnd) {
      const r0 = v128.load(wr), r1 = v128.load(wr + ldw);
      const r2 = v128.load(wr + (ldw << 1)), r3 = v128.load(wr + ldw * 3);
      const a = tr0(r0, r1), bq = tr0(r2, r3), c = tr1(r0, r1), d = tr1(r2, r3);
      const k0 = i64x2.shuffle(a, bq, 0, 2), k1 = i64x2.shuffle(a, bq, 1, 3);
      const k2 = i64x2.shuffle(c, d, 0, 2), k3 = i64x2.shuffle(c, d, 1, 3);
      const x1 = xr + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
      c0 = madd(v128.load32_splat(xr), k0, c0);
      c0 = madd(v128.load32_splat(xr + 4), k1, c0);
      c0 = madd(v128.load32_splat(xr + 8), k2, c0);
      c0 = madd(v128.load32_splat(xr + 12), k3, c0);
      c1 = madd(v128.load32_splat(x1), k0, c1);
      c1 = madd(v128.load32_splat(x1 + 4), k1, c1);
      c1 = madd(v128.load32_splat(x1 + 8), k2, c1);
      c1 = madd(v128.load32_splat(x1 + 12), k3, c1);
      c2 = madd(v128.load32_splat(x2), k0, c2);
      c2 = madd(v128.load32_splat(x2 + 4), k1, c2);
      c2 = madd(v128.load32_splat(x2 + 8), k2, c2);
      c2 = madd(v128.load32_splat(x2 + 12), k3, c2);
      c3 = madd(v128.load32_splat(x3), k0, c3);
      c3 = madd(v128.load32_splat(x3 + 4), k1, c3);
      c3 = madd(v128.load32_splat(x3 + 8), k2, c3);
      c3 = madd(v128.load32_splat(x3 + 12), k3, c3);
      wr += 16;
      xr += 16;
    }
  }
  storeRow(y, c0, beta);
  storeRow(y + ldy, c1, beta);
  storeRow(y + (ldy << 1), c2, beta);
  storeRow(y + ldy * 3, c3, beta);
}

// y = c, or y + c when beta = 1.
// @ts-ignore: decorator
@inline function storeRow(p: usize, c: v128, beta: i32): void {
  v128.store(p, beta ? f32x4.add(v128.load(p), c) : c);
}
