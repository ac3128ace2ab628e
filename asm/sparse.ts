// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// The block-sparse products: dds (dense = dense x sparse) and sdd (sparse = dense x dense on the kept
// blocks), over BSR layouts, built on the packing and micro-kernel of gemm.ts.
import { cdiv } from "./_common.ts";
import { packA, packB } from "./gemm.ts";
import { micro, microRows, MR, NR } from "./generated/micro.ts";

// Bytes of X one sweep over the block rows reads (rows of X per sweep: about DDS_XBYTES / row bytes, whole
// MR-row panels, at least one), so that slice of X stays in L2 while every W block passes once.
// Measured at 256x1024x4096 b32 (bench layouts, one thread, interleaved against this kernel, machine
// shared) and not kept: 96 and 128 KiB sweeps (forward 1.04-1.16x the time), 448 KiB (no change); the
// backward in k-chunks of 4 or 8 KiB of each row (more rows per sweep, each W panel reused by more of
// them, sums continued from y between chunks: 1.0-1.19x); X panels laid out block column by block column
// across the sweep (random layouts 0.93-0.97x, butterfly 1.03-1.07x); rows copied to a stride off the
// power of two and read in place by microRows (1.0-1.1x); adjacent kept blocks merged into one segment
// (no change).
const DDS_XBYTES: i32 = 256 << 10;
// NR-column panels of a block that meet each MR-row panel of a sweep in turn (all 4 of a 32-wide block:
// each output row's lines written whole while in L1, each MR-row panel's X read once from L2 per group;
// the group's W panels stay in L1 across the sweep at low density). At 256x1024x4096 b32 on one thread,
// against one panel at a time: forward 0.945-0.975x the time at densities 1/8 and 3/16 (random), 0.99-1.02x
// at 1/4, backward 0.99-1.0x; two panels 0.98-1.03x (interleaved in one process, machine shared).
const DDS_PGROUP: i32 = 4;
// Pack each sweep's rows of X as MR-row panels (1) instead of reading them in place (0), but for the
// block-16 path. In place, the MR rows of a tile lie a row apart (4 KiB in a 1024 -> 4096 forward, 16 KiB
// in its backward) and all map onto the same L1 sets. Packed, at 256x1024x4096 b32 on one thread, the
// bench layouts ran 0.88-0.97x the time of in place in the forward, 0.89-1.0x in the backward
// (interleaved in one process, CPU time, 2-vCPU VM shared with other work).
const DDS_PACKX: i32 = 1;
const DDS16_ROWS_OUTER: bool = true;

/** Workspace bytes `dds` needs. */
export function ddsWorkspace(M: i32, inBlocks: i32, nnz: i32, b: i32): usize {
  const bq = cdiv(b, 4);
  // X is packed a sweep at a time when b is a multiple of 4 (the block-16 path reads it in place, but for
  // the last M % MR rows: one packed panel), all of it otherwise
  const xRows = (b & 3) == 0 ? (DDS_PACKX && !(b == 16 && DDS16_ROWS_OUTER) ? ddsChunk(inBlocks * b) * 3 / 2 + 1 : 1) * MR : cdiv(M, MR) * MR;
  const xp = xRows * inBlocks * bq * 4;
  const wp = nnz * cdiv(b, NR) * NR * bq * 4;
  return (<usize> (xp + wp) << 2) + <usize> (nnz * cdiv(b, NR) * 24) + 64;
}

// MR-row panels of X per sweep over the block rows.
// @ts-ignore: decorator
@inline function ddsChunk(inCols: i32): i32 {
  return max(1, DDS_XBYTES / (MR * inCols * 4));
}

/** `dds` mode bits: add a low-rank term (block 16), make a projection, op(U) transposed, H transposed. */
export const DDS_LOW_RANK: i32 = 1;
export const DDS_PROJECT: i32 = 2;
export const DDS_TRANS: i32 = 4;
export const DDS_TRANS_H: i32 = 8;

/**
 * Workspace bytes `dds`' low-rank term or projection needs beyond `ddsWorkspace` (block 16 only): h
 * (M, rank) packed as MR-row panels and op(u) (rank, outBlocks*b) as NR-column panels, or op(u)
 * (inBlocks*b, rank) as NR-column panels; one segment descriptor.
 */
export function ddsLowRankWorkspace(M: i32, inBlocks: i32, outBlocks: i32, b: i32, rank: i32): usize {
  const r4 = cdiv(rank, 4) * 4;
  const lr = cdiv(M, MR) * MR * r4 + cdiv(outBlocks * b, NR) * NR * r4;
  const proj = cdiv(inBlocks * b, 4) * 4 * cdiv(rank, NR) * NR;
  return (<usize> max(lr, proj) << 2) + 64;
}

/** Bytes `ddsPackW` writes: every kept block as NR-column panels. */
export function ddsPackedBytes(nnz: i32, b: i32): usize {
  return <usize> (nnz * cdiv(b, NR) * NR * cdiv(b, 4) * 4) << 2;
}

// Packs W blocks e0 <= e < e1 of a walk of nE blocks starting at block eBase (transW 1: e is the block;
// 0: blk[e] is) as NR-column panels of op(W block): panel p of block e at dst + (p * nE + e - eBase)
// panels, so the panels one output panel p of a block column walks lie contiguous (block by block they
// would lie npb panels apart, 4 KiB at b = 32, and map onto the same L1 sets: 16 of them cannot stay in
// L1 across the rows of X). A range [e0, e1) of the walk writes only its own panels: ranges split
// between threads write disjoint bytes, the same as one pack of the whole walk.
function packW(w: usize, blk: usize, b: i32, transW: i32, e0: i32, e1: i32, nE: i32, eBase: i32, dst: usize): void {
  const bb = b * b, wPanel = <usize> (NR * cdiv(b, 4) * 4) << 2, npb = cdiv(b, NR);
  for (let e = e0; e < e1; e++) {
    const wb = transW ? e : load<i32>(blk + (<usize> e << 2));
    const src = w + (<usize> (wb * bb) << 2);
    for (let p = 0; p < npb; p++) {
      const d = dst + <usize> (p * nE + e - eBase) * wPanel, nr = min(NR, b - p * NR);
      if (transW) packB(d, src + (<usize> (p * NR * b) << 2), 1, b, b, nr);
      else packB(d, src + (<usize> (p * NR) << 2), b, 1, b, nr);
    }
  }
}

// np panels of 6 whole rows of a row-major source (rows ldx bytes apart, k4 groups of 4 columns) as
// packA lays them out ([k][6] per panel, panel ip at dst + ip * pstride), each group of 4 k as six
// aligned v128 (packA's row-major path writes four unaligned v128 and four 8-byte halves per group).
function packRows6(dst: usize, src: usize, ldx: usize, np: i32, k4: i32, pstride: usize): void {
  for (let ip = 0; ip < np; ip++) {
    let s = src + <usize> (ip * 6) * ldx, d = dst + <usize> ip * pstride;
    let s3 = s + ldx * 3;
    const ldx2 = ldx << 1;
    for (let q = 0; q < k4; q++) {
      const r0 = v128.load(s), r1 = v128.load(s + ldx), r2 = v128.load(s + ldx2);
      const r3 = v128.load(s3), r4 = v128.load(s3 + ldx), r5 = v128.load(s3 + ldx2);
      const lo01 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), hi01 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
      const lo23 = i32x4.shuffle(r2, r3, 0, 4, 1, 5), hi23 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
      const lo45 = i32x4.shuffle(r4, r5, 0, 4, 1, 5), hi45 = i32x4.shuffle(r4, r5, 2, 6, 3, 7);
      // t_k: rows 0-3 of column k
      const t1 = i32x4.shuffle(lo01, lo23, 2, 3, 6, 7), t3 = i32x4.shuffle(hi01, hi23, 2, 3, 6, 7);
      v128.store(d, i32x4.shuffle(lo01, lo23, 0, 1, 4, 5));
      v128.store(d, i32x4.shuffle(lo45, t1, 0, 1, 4, 5), 16);
      v128.store(d, i32x4.shuffle(t1, lo45, 2, 3, 6, 7), 32);
      v128.store(d, i32x4.shuffle(hi01, hi23, 0, 1, 4, 5), 48);
      v128.store(d, i32x4.shuffle(hi45, t3, 0, 1, 4, 5), 64);
      v128.store(d, i32x4.shuffle(t3, hi45, 2, 3, 6, 7), 80);
      s += 16;
      s3 += 16;
      d += 96;
    }
  }
}

/**
 * w is (nnz,b,b): packs the kept blocks e0 <= e < e1 of the walk dds takes (see dds' transW; blk is the
 * whole walk's blockIdx) into dst (`ddsPackedBytes(nnz, b)` for the whole walk), at the places a pack of
 * all nnz blocks puts them, so repeated dds calls on an unchanged weight pass it with transW | 2. Threads
 * take disjoint ranges [e0, e1): their writes are disjoint and together equal one pack of 0..nnz.
 */
export function ddsPackW(w: usize, blk: usize, b: i32, nnz: i32, transW: i32, dst: usize, e0: i32, e1: i32): void {
  packW(w, blk, b, transW, max(0, e0), min(nnz, e1), nnz, 0, dst);
}

/**
 * Block-sparse dense = dense x sparse over a BSR weight w (nnz,b,b).
 * transW = 1, the forward: x is (M, inBlocks*b), y is (M, outBlocks*b), walking
 *   ptr = rowPtr, idx = colIdx (blk unused): `Y (+)= X·Wᵀ`.
 * transW = 0, the backward: x is (M, inBlocks*b) = (M,N), y is (M,K), walking
 *   ptr = colPtr, idx = rowIdx, blk = blockIdx: `Y (+)= X·W`.
 * transW | 2: w is not the weight but all its blocks already packed by `ddsPackW` (the same transW).
 * Only output block columns o0 <= o < o1 of y are written (two threads take one range each).
 * Block 16 only, in the workspace past `ddsWorkspace` (`ddsLowRankWorkspace` bytes), by mode:
 * - mode & DDS_LOW_RANK: also `Y += H·op(U)`, h (M, rank), op(U) = Uᵀ with u (outBlocks*b, rank) when
 *   mode & DDS_TRANS, U with u (rank, outBlocks*b) otherwise: a low-rank term added to each register tile
 *   while it is in L1 (Pixelfly's sparse + low-rank, Chen, Dao et al., ICLR 2022, Section 3); with
 *   mode & DDS_TRANS_H, h is stored (rank, M);
 * - mode & DDS_PROJECT: also `H = X·op(U)` for the rows of this part's share of the MR-row panels (part
 *   of parts: threads take one share each), h (M, rank), op(U) = Uᵀ with u (rank, inBlocks*b) when mode & DDS_TRANS, U with u
 *   (inBlocks*b, rank) otherwise: a projection of X made while its rows are in L1. At other blocks that
 *   are multiples of 4 (X packed per sweep), the projection only, of all M rows of the call (the caller
 *   splits rows, not block columns, between threads), from each sweep's packed panels of X.
 */
export function dds(
  x: usize,
  w: usize,
  y: usize,
  M: i32,
  inBlocks: i32,
  outBlocks: i32,
  b: i32,
  nnz: i32,
  ptr: usize,
  idx: usize,
  blk: usize,
  transW: i32,
  beta: i32,
  ws: usize,
  o0: i32,
  o1: i32,
  h: usize,
  rank: i32,
  u: usize,
  mode: i32,
  part: i32,
  parts: i32,
): void {
  // (a part with no block columns still makes its share of a projection)
  if (M <= 0 || (o1 <= o0 && (mode & DDS_PROJECT) == 0)) return;
  const prepacked = transW & 2;
  transW &= 1;
  const bq = cdiv(b, 4), npb = cdiv(b, NR);
  const inCols = inBlocks * b, outCols = outBlocks * b;
  const ldx = <usize> inCols << 2;
  const kTot4 = inBlocks * bq;
  const pstride = <usize> (kTot4 * MR) << 4;
  // X is packed as MR-row panels a sweep at a time (see DDS_PACKX; the block-16 path reads it in place,
  // MR rows at a time) when its blocks are whole k/4 groups; the last M % MR rows of the in-place path, or
  // all of X otherwise, are packed first (each block column padded to whole k/4 groups, zero rows below M).
  const inPlace = (b & 3) == 0;
  const full = inPlace ? M / MR : 0;
  const xp = ws;
  const packedRows = M - full * MR;
  // (X packed per sweep: the sweep's panels at xp, see below)
  const packX = DDS_PACKX != 0 && inPlace && !(b == 16 && DDS16_ROWS_OUTER);
  const wp = xp + <usize> (packX ? ddsChunk(inCols) * 3 / 2 + 1 : cdiv(packedRows, MR)) * pstride;
  const segsP = wp + (<usize> (nnz * npb * NR * bq * 4) << 2);
  const segsR = segsP + <usize> (nnz * npb * 12);
  const x0 = x + <usize> (full * MR) * ldx;
  if (packedRows > 0 && !packX) {
    for (let j = 0; j < inBlocks; j++) {
      packA(xp + (<usize> (j * bq * MR) << 4), x0 + (<usize> (j * b) << 2), inCols, 1, packedRows, b, pstride);
    }
  }
  // The W blocks this range walks, as NR-column panels of op(W block), in walk order (block e at
  // wBase + (p * nW + e - eBase) panels, see packW); already packed when prepacked.
  const wPanel = <usize> (NR * bq * 4) << 2;
  const e0 = load<i32>(ptr + (<usize> o0 << 2)), e1 = load<i32>(ptr + (<usize> o1 << 2));
  const wBase = prepacked ? w : wp, eBase = prepacked ? 0 : e0, nW = prepacked ? nnz : e1 - e0;
  if (!prepacked) packW(w, blk, b, transW, e0, e1, e1 - e0, e0, wp);
  const ldc = <usize> outCols << 2;
  const mps = cdiv(M, MR);
  if (b == 16 && DDS16_ROWS_OUTER) {
    // all block columns' segment tables first (block e of the walk, panel p at ((e - e0) * npb + p * ns + t)),
    // then each MR-row panel of X meets every block column while its rows stay in L1
    for (let o = o0; o < o1; o++) {
      const s0 = load<i32>(ptr + (<usize> o << 2)), s1 = load<i32>(ptr + (<usize> (o + 1) << 2));
      const ns = s1 - s0;
      for (let t = 0; t < ns; t++) {
        const e = s0 + t;
        const inBlk = load<i32>(idx + (<usize> e << 2));
        for (let p = 0; p < npb; p++) {
          const bp = <u32> (wBase + <usize> (p * nW + e - eBase) * wPanel);
          const q = <usize> (((s0 - e0) * npb + p * ns + t) * 12);
          store<u32>(segsP + q, <u32> (inBlk * bq * MR) << 4);
          store<u32>(segsP + q, bp, 4);
          store<u32>(segsP + q, <u32> bq, 8);
          store<u32>(segsR + q, <u32> (inBlk * b) << 2);
          store<u32>(segsR + q, bp, 4);
          store<u32>(segsR + q, <u32> bq, 8);
        }
      }
    }
    // the low-rank term: h as MR-row panels (all rows), op(u) as NR-column panels (this range's columns)
    const lr = (mode & DDS_LOW_RANK) != 0 && rank > 0, proj = (mode & DDS_PROJECT) != 0 && rank > 0;
    const transU = mode & DDS_TRANS;
    const r4 = cdiv(rank, 4), hStride = <usize> (r4 * MR) << 4, uPanel = <usize> (r4 * NR) << 4;
    const lrWs = (ws + ddsWorkspace(M, inBlocks, nnz, b) + 15) & ~(<usize> 15);
    const seg = lrWs, hp = lrWs + 16, up = hp + <usize> mps * hStride;
    if (lr) {
      // h is (M, rank), or (rank, M) with DDS_TRANS_H
      if (mode & DDS_TRANS_H) packA(hp, h, 1, M, M, rank, hStride);
      else packA(hp, h, rank, 1, M, rank, hStride);
      const c0 = o0 * b, nc = (o1 - o0) * b;
      if (transU) packB(up, u + (<usize> (c0 * rank) << 2), 1, rank, rank, nc);
      else packB(up, u + (<usize> c0 << 2), outCols, 1, rank, nc);
      store<u32>(seg, 0);
      store<u32>(seg, <u32> r4, 8);
    }
    // the projection: op(U) (inCols, rank) as NR-column panels over all of k, one segment per panel
    const kq = inBlocks * bq, pPanel = <usize> (kq * NR) << 4, npr = cdiv(rank, NR), ldh = <usize> rank << 2;
    const p0 = <i32> ((<i64> mps * part) / max(1, parts)), p1 = <i32> ((<i64> mps * (part + 1)) / max(1, parts));
    if (proj && p1 > p0) {
      if (transU) packB(lrWs + 16, u, 1, inCols, inCols, rank);
      else packB(lrWs + 16, u, rank, 1, inCols, rank);
      store<u32>(seg, 0);
      store<u32>(seg, <u32> kq, 8);
    }
    for (let ip = 0; ip < mps; ip++) {
      const mr = min(MR, M - ip * MR);
      if (proj && ip >= p0 && ip < p1) {
        for (let jp = 0; jp < npr; jp++) {
          store<u32>(seg, <u32> (seg + 16 + <usize> jp * pPanel), 4);
          const hc = h + <usize> (ip * MR) * ldh + (<usize> (jp * NR) << 2), nr = min(NR, rank - jp * NR);
          if (ip < full) microRows(x + <usize> (ip * MR) * ldx, ldx, seg, 1, hc, ldh, 1, 0, MR, nr);
          else micro(xp + <usize> (ip - full) * pstride, seg, 1, hc, ldh, 1, 0, mr, nr);
        }
      }
      for (let o = o0; o < o1; o++) {
        const s0 = load<i32>(ptr + (<usize> o << 2)), s1 = load<i32>(ptr + (<usize> (o + 1) << 2));
        const ns = s1 - s0;
        for (let p = 0; p < npb; p++) {
          const q = <usize> (((s0 - e0) * npb + p * ns) * 12);
          const cp = y + (<usize> (ip * MR * outCols + o * b + p * NR) << 2);
          if (ip < full) {
            microRows(x + <usize> (ip * MR) * ldx, ldx, segsR + q, ns, cp, ldc, 1, beta, MR, NR);
          } else {
            micro(xp + <usize> (ip - full) * pstride, segsP + q, ns, cp, ldc, 1, beta, mr, NR);
          }
          if (lr) {
            // the tile was just written: add H·op(U) for it while it is in L1
            store<u32>(seg, <u32> (up + <usize> ((o - o0) * npb + p) * uPanel), 4);
            micro(hp + <usize> ip * hStride, seg, 1, cp, ldc, 1, 1, mr, NR);
          }
        }
      }
    }
    return;
  }
  // The projection when X is packed per sweep (the caller asks for it only then, on its rows of X and H,
  // H stored (M, rank)): H = X·op(U) from each packed MR-row panel of X, all of k, while the panel is in
  // L2 (no pass over X of its own: the backward's dX and dH at 256x1024x4096 b32, rank 32, 0.96x the time
  // of dds and a gemm on 1 and 2 threads). Adding the low-rank term to each tile as the block-16 path does
  // ran 1.02-1.03x the time of dds and a gemm after, so block 32 keeps the gemm (interleaved, idle VM).
  const proj = packX && (mode & DDS_PROJECT) != 0 && rank > 0;
  const transU = mode & DDS_TRANS;
  const seg = (ws + ddsWorkspace(M, inBlocks, nnz, b) + 15) & ~(<usize> 15);
  const kq = inBlocks * bq, pPanel = <usize> (kq * NR) << 4, npr = cdiv(rank, NR), ldh = <usize> rank << 2;
  if (proj) {
    if (transU) packB(seg + 16, u, 1, inCols, inCols, rank);
    else packB(seg + 16, u, rank, 1, inCols, rank);
    store<u32>(seg, 0);
    store<u32>(seg, <u32> kq, 8);
  }
  // equal sweeps, as many as the nearest whole number of DDS_XBYTES slices (a sweep up to 1.5x as long
  // saves a pass of all of W over a last, short sweep)
  const chunk = cdiv(mps, max(1, (mps + (ddsChunk(inCols) >> 1)) / ddsChunk(inCols)));
  for (let mc = 0; mc < mps; mc += chunk) {
    const mcEnd = min(mps, mc + chunk);
    // packed: this sweep's rows as MR-row panels at xp (panel ip at xp + (ip - mc) * pstride)
    if (packX) {
      const r0 = mc * MR, nrows = min(M, mcEnd * MR) - r0;
      if (MR == 6) {
        // whole panels by packRows6, the last rows of M (a panel of fewer rows) by packA
        const np = nrows / 6;
        packRows6(xp, x + <usize> r0 * ldx, ldx, np, kTot4, pstride);
        if (np * 6 < nrows) {
          packA(xp + <usize> np * pstride, x + <usize> (r0 + np * 6) * ldx, inCols, 1, nrows - np * 6, inCols, pstride);
        }
      } else packA(xp, x + <usize> r0 * ldx, inCols, 1, nrows, inCols, pstride);
    }
    const pFull = packX ? 0 : full, pFirst = packX ? mc : full;
    if (proj) {
      for (let ip = mc; ip < mcEnd; ip++) {
        const mr = min(MR, M - ip * MR);
        for (let jp = 0; jp < npr; jp++) {
          store<u32>(seg, <u32> (seg + 16 + <usize> jp * pPanel), 4);
          const hc = h + <usize> (ip * MR) * ldh + (<usize> (jp * NR) << 2);
          micro(xp + <usize> (ip - mc) * pstride, seg, 1, hc, ldh, 1, 0, mr, min(NR, rank - jp * NR));
        }
      }
    }
    for (let o = o0; o < o1; o++) {
      const s0 = load<i32>(ptr + (<usize> o << 2)), s1 = load<i32>(ptr + (<usize> (o + 1) << 2));
      const ns = s1 - s0;
      // segment tables of this block column, one per NR-column panel p of the block (ns entries each)
      for (let t = 0; t < ns; t++) {
        const e = s0 + t;
        const inBlk = load<i32>(idx + (<usize> e << 2));
        for (let p = 0; p < npb; p++) {
          const bp = <u32> (wBase + <usize> (p * nW + e - eBase) * wPanel);
          const q = <usize> ((p * ns + t) * 12);
          store<u32>(segsP + q, <u32> (inBlk * bq * MR) << 4);
          store<u32>(segsP + q, bp, 4);
          store<u32>(segsP + q, <u32> bq, 8);
          store<u32>(segsR + q, <u32> (inBlk * b) << 2);
          store<u32>(segsR + q, bp, 4);
          store<u32>(segsR + q, <u32> bq, 8);
        }
      }
      // DDS_PGROUP panels of the block at a time meet every MR-row panel of the sweep in turn
      for (let g0 = 0; g0 < npb; g0 += DDS_PGROUP) {
        const g1 = min(npb, g0 + DDS_PGROUP);
        for (let ip = mc; ip < mcEnd; ip++) {
          for (let p = g0; p < g1; p++) {
            const nr = min(NR, b - p * NR), q = <usize> (p * ns * 12);
            const cp = y + (<usize> (ip * MR * outCols + o * b + p * NR) << 2);
            if (ip < pFull) {
              microRows(x + <usize> (ip * MR) * ldx, ldx, segsR + q, ns, cp, ldc, 1, beta, MR, nr);
            } else {
              micro(xp + <usize> (ip - pFirst) * pstride, segsP + q, ns, cp, ldc, 1, beta, min(MR, M - ip * MR), nr);
            }
          }
        }
      }
    }
  }
}

// Block rows of A packed together when A is stored transposed (its block row is b floats of each of K
// rows, `rowsA` floats apart): one sweep over the rows of A reads SDD_GROUP_FLOATS contiguous floats per
// row (at b = 16, 64 B a row, a row a page apart, ran at about 1 GB/s; 1 KiB against 256 B: the Mixer's
// b16 sdd 128->512, K 2048, 0.91-0.96x the time, block 32 at 256x1024x4096 unchanged; measured interleaved).
const SDD_GROUP_FLOATS: i32 = 256;
// Bytes between packed panels of A past their data: one cache line, so the 48 panels a group pack
// writes side by side (8 block rows x 6 panels at b = 32, 6 KiB apart) do not map onto 2 L1 sets.
// With SDD_PACK_K = 8 (and against packGroup four k at a time, unpadded): 0.96-0.98x the time of the
// bench's sdd (256x1024x4096 b32, all six layouts, one thread; three interleaved runs of 40-60 rounds,
// CPU time, shared VM). Four or sixteen k at a time, or one k at a time, were no faster (one k: 1.05x).
const SDD_APAD: i32 = 64;
// Rows of A (k) sddPackAT packs per sweep over a group's panels (a multiple of 4).
const SDD_PACK_K: i32 = 8;
// k of one pass of sdd (see sdd)
const SDD_KC: i32 = 256;

// @ts-ignore: decorator
@inline function sddGroup(b: i32): i32 {
  return max(1, SDD_GROUP_FLOATS / b);
}

// Packs n block rows of A stored transposed (block row i: b floats of each of kc rows of A, rs floats
// apart, from src + i*b floats) as MR-row panels of [k][MR] (panel ip of block row i at
// d + i*blockA + ip*aPanel bytes; rows past b and k past kc zero), SDD_PACK_K rows of A at a time: each
// row is read once, n*b contiguous floats, and each panel gets SDD_PACK_K*MR contiguous floats at once.
function sddPackAT(d: usize, src: usize, rs: i32, b: i32, kc: i32, n: i32, aPanel: usize, blockA: usize): void {
  const full = b / MR, edge = b - full * MR, kp = cdiv(kc, 4) << 2;
  const rsb = <usize> rs << 2, bb = <usize> b << 2, mrb = <usize> MR << 2, o = <usize> (MR - 4) << 2;
  for (let k0 = 0; k0 < kp; k0 += SDD_PACK_K) {
    // rows k0 <= k < k1 of A exist; k1 <= k < k2 are zeros (the kernel runs whole groups of 4 k)
    const k1 = min(kc, k0 + SDD_PACK_K), k2 = min(kp, k0 + SDD_PACK_K);
    const s0 = src + <usize> k0 * rsb, d0 = d + <usize> k0 * mrb;
    for (let i = 0; i < n; i++) {
      const c = s0 + <usize> i * bb;
      let t = d0 + <usize> i * blockA;
      for (let ip = 0; ip < full; ip++) {
        // a full panel's MR floats of each k as two overlapping v128 (MR is 5 or 6)
        let sk = c + <usize> ip * mrb, tk = t;
        for (let k = k0; k < k1; k++) {
          v128.store(tk, v128.load(sk));
          v128.store(tk + o, v128.load(sk + o));
          sk += rsb;
          tk += mrb;
        }
        t += aPanel;
      }
      if (edge > 0) {
        // the last edge rows of the block, zeros below them
        let sk = c + <usize> full * mrb, tk = t;
        for (let k = k0; k < k1; k++) {
          for (let r = 0; r < MR; r++) store<f32>(tk + (<usize> r << 2), r < edge ? load<f32>(sk + (<usize> r << 2)) : 0);
          sk += rsb;
          tk += mrb;
        }
      }
      if (k1 < k2) {
        let tz = d0 + <usize> i * blockA + <usize> (k1 - k0) * mrb;
        for (let ip = 0; ip < full + (edge > 0 ? 1 : 0); ip++) {
          memory.fill(tz, 0, <usize> (k2 - k1) * mrb);
          tz += aPanel;
        }
      }
    }
  }
}

/**
 * Workspace bytes `sdd` needs (64 bytes of segment descriptor, a group of block rows of A and the used
 * block columns of B as panels, a flag per block column).
 */
// (rows is not used: a few block rows of A are packed at a time; kept so the signature is unchanged)
export function sddWorkspace(rows: i32, cols: i32, b: i32, K: i32): usize {
  const k4 = cdiv(min(K, SDD_KC), 4);
  const ap = sddGroup(b) * cdiv(b, MR) * (MR * k4 * 4 + (SDD_APAD >> 2));
  const bp = cols * cdiv(b, NR) * NR * k4 * 4;
  return 64 + (<usize> (ap + bp) << 2) + <usize> cols;
}

// Block columns of B one packB sweep packs at most when the packed B is shared between threads (see
// sdd): a run's columns are ready for the other threads only once the whole run is packed.
const SDD_SHARED_RUN: i32 = 4;
// Polls of a block column another thread is packing before this thread packs a copy of its own (a run
// of SDD_SHARED_RUN columns packs in tens of microseconds; after one such timeout in a call, a part
// waits no more: its packer is likely off its core, on a machine busy with other work).
const SDD_SPIN: i32 = 1 << 15;

// Atomic flag operations of sdd's shared packing (threads builds; the others never share: shared = 0).
// @ts-ignore: decorator
@inline function flagClaim(f: usize): bool {
  if (ASC_FEATURE_THREADS) return atomic.cmpxchg<i32>(f, 0, 1) == 0;
  else return false;
}
// @ts-ignore: decorator
@inline function flagReady(f: usize): bool {
  if (ASC_FEATURE_THREADS) return atomic.load<i32>(f) == 2;
  else return true;
}
// @ts-ignore: decorator
@inline function flagSetReady(f: usize): void {
  if (ASC_FEATURE_THREADS) atomic.store<i32>(f, 2);
}

/**
 * Bytes of the region `sdd` shares between the parts of one product (its `shared` argument): a flag per
 * k pass and block column (0 free, 1 being packed, 2 packed), then every block column of op(B) packed
 * as NR-column panels for every k pass. The flags must be zero when the parts start.
 */
export function sddSharedBytes(cols: i32, b: i32, K: i32): usize {
  const passes = cdiv(K, SDD_KC), k4 = cdiv(min(K, SDD_KC), 4);
  return sddFlagBytes(cols, K) + (<usize> (passes * cols * cdiv(b, NR) * NR * k4 * 4) << 2);
}

/** Bytes of the flags at the start of sdd's shared region (a flag per k pass and block column, 16-aligned): zero them before each product. */
export function sddFlagBytes(cols: i32, K: i32): usize {
  return <usize> ((cdiv(K, SDD_KC) * cols * 4 + 15) & ~15);
}

/**
 * a is (R,K) or (K,R), bm is (K,C) or (C,K), w is (nnz,b,b) on the layout
 * (rowPtr, colIdx): `W (+)= op(A)·op(B)` on the kept blocks only.
 * Only the kept blocks of block rows r0 <= i < r1 are written (threads take one range each); each call
 * packs only the rows of A and the columns of B those blocks use, and needs its own ws.
 * shared, when not 0 (threads build only), is a region of `sddSharedBytes` bytes, flags zeroed, that all
 * parts of the product (part of parts) get: each block column of B is then packed once, by the part
 * that claims it first (parts start their claims at different columns), instead of by every part
 * whose blocks use it (a random layout's ranges of block rows use nearly every column).
 */
export function sdd(
  a: usize,
  bm: usize,
  w: usize,
  rows: i32,
  cols: i32,
  b: i32,
  K: i32,
  transA: i32,
  transB: i32,
  rowPtr: usize,
  colIdx: usize,
  beta: i32,
  ws: usize,
  r0: i32,
  r1: i32,
  shared: usize,
  part: i32,
  parts: i32,
): void {
  if (!ASC_FEATURE_THREADS) shared = 0;
  const R = rows * b, C = cols * b;
  const ars = transA ? 1 : K, acs = transA ? R : 1;
  const brs = transB ? 1 : C, bcs = transB ? K : 1;
  const mpb = cdiv(b, MR), npb = cdiv(b, NR), bb = b * b;
  // k in chunks of SDD_KC (as gemm's KC): the packed panels of a chunk stay in L2 however long K is;
  // chunks after the first accumulate
  const k4m = cdiv(min(K, SDD_KC), 4);
  // the segment descriptor lives in the workspace: each thread has its own (no static scratch)
  const seg = ws;
  const ap = ws + 64;
  const bp = ap + <usize> (sddGroup(b) * mpb) * ((<usize> (k4m * MR) << 4) + SDD_APAD); // room for a group of block rows of A
  const packed = bp + <usize> (cols * npb) * (<usize> (k4m * NR) << 4);
  memory.fill(packed, 0, <usize> cols);
  // Mark the block columns of B the range's blocks use; pack them once each, a run of adjacent used
  // columns in one sweep over the rows of B (one packB call: its panels land where the per-column panels
  // would when b is a multiple of NR), instead of b floats per row of B, a page apart, per column.
  for (let i = r0; i < r1; i++) {
    const s0 = load<i32>(rowPtr + (<usize> i << 2)), s1 = load<i32>(rowPtr + (<usize> (i + 1) << 2));
    for (let e = s0; e < s1; e++) store<u8>(packed + <usize> load<i32>(colIdx + (<usize> e << 2)), 1);
  }
  const runs = b % NR == 0;
  let spinLimit = SDD_SPIN;
  const ldc = <usize> b << 2;
  // A stored transposed (ars = 1): pack G block rows in one sweep over its rows (k outer); otherwise one
  // block row at a time (its rows run along k). Either way each block row's panels sit just before use.
  const G = ars == 1 ? sddGroup(b) : 1;
  for (let pc = 0; pc < K; pc += SDD_KC) {
    const kc = min(SDD_KC, K - pc), k4 = cdiv(kc, 4), bt = pc > 0 ? 1 : beta;
    const aPanel = (<usize> (k4 * MR) << 4) + SDD_APAD, bPanel = <usize> (k4 * NR) << 4, blockA = <usize> mpb * aPanel;
    const a0 = a + (<usize> (pc * acs) << 2), b0 = bm + (<usize> (pc * brs) << 2);
    // this pass's flags and shared panels (block column j at sbp + j * npb * bPanel)
    const pass = pc / SDD_KC, nPass = cdiv(K, SDD_KC);
    const flags = shared + (<usize> (pass * cols) << 2);
    const sbp = shared + (<usize> ((nPass * cols * 4 + 15) & ~15)) + <usize> (pass * cols * npb) * (<usize> (k4m * NR) << 4);
    if (shared) {
      // copies a part made of its own in the last pass are stale now
      for (let j = 0; j < cols; j++) if (load<u8>(packed + <usize> j) == 2) store<u8>(packed + <usize> j, 1);
      // claim the used block columns not yet claimed, from this part's own starting column on (so parts
      // running at once pack different columns), and pack them in runs of at most SDD_SHARED_RUN
      const jStart = <i32> ((<i64> cols * part) / max(1, parts));
      for (let t = 0; t < cols; ) {
        const j = (jStart + t) % cols;
        if (!load<u8>(packed + <usize> j) || !flagClaim(flags + (<usize> j << 2))) {
          t++;
          continue;
        }
        let j1 = j + 1;
        while (
          runs && j1 < cols && j1 - j < SDD_SHARED_RUN && j1 != jStart && load<u8>(packed + <usize> j1) &&
          flagClaim(flags + (<usize> j1 << 2))
        ) j1++;
        packB(sbp + <usize> (j * npb) * bPanel, b0 + (<usize> (j * b * bcs) << 2), brs, bcs, kc, (j1 - j) * b);
        for (let q = j; q < j1; q++) flagSetReady(flags + (<usize> q << 2));
        t += j1 - j;
      }
    } else {
      for (let j = 0; j < cols; ) {
        if (!load<u8>(packed + <usize> j)) {
          j++;
          continue;
        }
        let j1 = j + 1;
        if (runs) while (j1 < cols && load<u8>(packed + <usize> j1)) j1++;
        packB(bp + <usize> (j * npb) * bPanel, b0 + (<usize> (j * b * bcs) << 2), brs, bcs, kc, (j1 - j) * b);
        j = j1;
      }
    }
    for (let g0 = r0; g0 < r1; g0 += G) {
      const g1 = min(r1, g0 + G);
      if (G == 1) {
        const s0 = load<i32>(rowPtr + (<usize> g0 << 2)), s1 = load<i32>(rowPtr + (<usize> (g0 + 1) << 2));
        if (s1 > s0) packA(ap, a0 + (<usize> (g0 * b * ars) << 2), ars, acs, b, kc, aPanel);
      } else {
        // only the group's block rows from its first to its last with kept blocks (a layout's empty
        // block rows cost no packing: their rows of A are read by no block)
        let gs = g0, ge = g1;
        while (gs < ge && load<i32>(rowPtr + (<usize> gs << 2)) == load<i32>(rowPtr + (<usize> (gs + 1) << 2))) gs++;
        while (ge > gs && load<i32>(rowPtr + (<usize> (ge - 1) << 2)) == load<i32>(rowPtr + (<usize> ge << 2))) ge--;
        if (ge > gs) sddPackAT(ap + <usize> (gs - g0) * blockA, a0 + (<usize> (gs * b) << 2), acs, b, kc, ge - gs, aPanel, blockA);
      }
      for (let i = g0; i < g1; i++) {
        const s0 = load<i32>(rowPtr + (<usize> i << 2)), s1 = load<i32>(rowPtr + (<usize> (i + 1) << 2));
        const aRow = ap + <usize> (i - g0) * blockA;
        for (let e = s0; e < s1; e++) {
          const j = load<i32>(colIdx + (<usize> e << 2));
          let jb = bp + <usize> (j * npb) * bPanel;
          if (shared) {
            // the shared copy once its packer marks it ready; a part that polls too long (its packer
            // descheduled on a busy machine) packs its own copy (same bits) in its workspace
            jb = sbp + <usize> (j * npb) * bPanel;
            const f = flags + (<usize> j << 2);
            if (load<u8>(packed + <usize> j) == 2) jb = bp + <usize> (j * npb) * bPanel;
            else if (!flagReady(f)) {
              let spin = 0;
              while (!flagReady(f) && spin < spinLimit) spin++;
              if (spin >= spinLimit) {
                spinLimit = 0;
                jb = bp + <usize> (j * npb) * bPanel;
                packB(jb, b0 + (<usize> (j * b * bcs) << 2), brs, bcs, kc, b);
                store<u8>(packed + <usize> j, 2);
              }
            }
          }
          for (let p = 0; p < npb; p++) {
            const nr = min(NR, b - p * NR);
            store<u32>(seg, 0);
            store<u32>(seg, <u32> (jb + <usize> p * bPanel), 4);
            store<u32>(seg, <u32> k4, 8);
            let cp = w + (<usize> (e * bb + p * NR) << 2);
            for (let ip = 0; ip < mpb; ip++) {
              micro(aRow + <usize> ip * aPanel, seg, 1, cp, ldc, 1, bt, min(MR, b - ip * MR), nr);
              cp += ldc * MR;
            }
          }
        }
      }
    }
  }
}
