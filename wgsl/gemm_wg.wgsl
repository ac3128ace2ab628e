// f32_gemm__workgroup: a is (M,K) or (K,M), b is (K,N) or (N,K), c is (M,N) per batch:
// C (+)= alpha * op(A)·op(B); with SDD only the kept (blk,blk) blocks, stored as w (nnz,blk,blk).
// A (BM x BK) and B (BK x BN) tiles are staged in workgroup memory; each invocation keeps a
// TM x TN register tile (rows ly + i*WGY, columns lx + j*WGX of the workgroup tile).
// Tile constants (BM, BN, BK, TM, TN, WGX, WGY, TRANS_A, TRANS_B, SDD) are prepended.
// Slots as f32_gemm__register: u0 M, u1 N, u2 K, u3..u5 strides, u6 accumulate, u7 blk;
// f0 alpha; f1, f2 (u32 bits) offsets of rowOf and colIdx in idx.
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> idx: array<i32>;

const NT: u32 = WGX * WGY;
var<workgroup> as_: array<f32, BK * BM>;
var<workgroup> bs_: array<f32, BK * BN>;

@compute @workgroup_size(WGX, WGY, 1)
fn gemm(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) l: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let M = p.u0;
  let N = p.u1;
  let K = p.u2;
  var oA = 0u;
  var oB = 0u;
  var oC = 0u;
  var row0 = wg.y * BM;
  var col0 = wg.x * BN;
  var rLim = M;
  var cLim = N;
  var bi = 0u;
  var bj = 0u;
  let blk = p.u7;
  if (SDD) {
    bi = u32(idx[bitcast<u32>(p.f1) + wg.z]) * blk;
    bj = u32(idx[bitcast<u32>(p.f2) + wg.z]) * blk;
    row0 += bi;
    col0 += bj;
    rLim = bi + blk;
    cLim = bj + blk;
  } else {
    oA = wg.z * p.u3;
    oB = wg.z * p.u4;
    oC = wg.z * p.u5;
  }
  var acc: array<array<f32, TN>, TM>;
  var av: array<f32, TM>;
  var bv: array<f32, TN>;
  for (var k0 = 0u; k0 < K; k0 += BK) {
    for (var t = li; t < BM * BK; t += NT) {
      var m: u32;
      var kk: u32;
      if (TRANS_A) {
        m = t % BM;
        kk = t / BM;
      } else {
        m = t / BK;
        kk = t % BK;
      }
      let r = row0 + m;
      let k = k0 + kk;
      var v = 0.0;
      if (r < rLim && k < K) {
        if (TRANS_A) {
          v = a[oA + k * M + r];
        } else {
          v = a[oA + r * K + k];
        }
      }
      as_[kk * BM + m] = v;
    }
    for (var t = li; t < BN * BK; t += NT) {
      var n: u32;
      var kk: u32;
      if (TRANS_B) {
        n = t / BK;
        kk = t % BK;
      } else {
        n = t % BN;
        kk = t / BN;
      }
      let cc = col0 + n;
      let k = k0 + kk;
      var v = 0.0;
      if (cc < cLim && k < K) {
        if (TRANS_B) {
          v = b[oB + cc * K + k];
        } else {
          v = b[oB + k * N + cc];
        }
      }
      bs_[kk * BN + n] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      for (var i = 0u; i < TM; i++) {
        av[i] = as_[kk * BM + l.y + i * WGY];
      }
      for (var j = 0u; j < TN; j++) {
        bv[j] = bs_[kk * BN + l.x + j * WGX];
      }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
          acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }
  let accumulate = p.u6 != 0u;
  for (var i = 0u; i < TM; i++) {
    let r = row0 + l.y + i * WGY;
    if (r >= rLim) {
      continue;
    }
    for (var j = 0u; j < TN; j++) {
      let cc = col0 + l.x + j * WGX;
      if (cc >= cLim) {
        continue;
      }
      var o: u32;
      if (SDD) {
        o = wg.z * blk * blk + (r - bi) * blk + (cc - bj);
      } else {
        o = oC + r * N + cc;
      }
      var v = p.f0 * acc[i][j];
      if (accumulate) {
        v += c[o];
      }
      c[o] = v;
    }
  }
}
