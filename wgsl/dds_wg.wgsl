// f32_dds__workgroup: x is (M,K) [TRANS_W] or (M,N), w is (nnz,blk,blk), y is (M,N) [TRANS_W] or (M,K):
// Y (+)= X·Wᵀ (forward) or Y (+)= X·W (dX, the transposed walk). A workgroup computes BM rows
// x BN columns of one output block (BN divides blk). For every kept block of that block row
// (column), X (BM x BK) and W (BK x BN) slices are staged in workgroup memory; each
// invocation keeps a TM x TN register tile (rows ly + i*WGY, columns lx + j*WGX).
// Constants BM, BN, BK (divides blk), TM, TN, WGX, WGY, TRANS_W are prepended.
// Slots as f32_dds__register: u0 M, u1 inCols, u2 outCols, u3 blk, u4 accumulate,
// u5 offset of rowPtr|colPtr, u6 offset of colIdx|rowIdx, u7 offset of blockIdx.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> idx: array<i32>;

const NT: u32 = WGX * WGY;
var<workgroup> xs: array<f32, BK * BM>;
var<workgroup> ws: array<f32, BK * BN>;
var<workgroup> range: vec2<u32>;

@compute @workgroup_size(WGX, WGY, 1)
fn dds(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) l: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let M = p.u0;
  let inCols = p.u1;
  let outCols = p.u2;
  let blk = p.u3;
  let n0 = wg.x * BN;
  let ob = n0 / blk;
  let r0 = n0 % blk;
  let m0 = wg.y * BM;
  if (li == 0u) {
    range = vec2<u32>(u32(idx[p.u5 + ob]), u32(idx[p.u5 + ob + 1u]));
  }
  let se = workgroupUniformLoad(&range);
  var acc: array<array<f32, TN>, TM>;
  var xv: array<f32, TM>;
  var wv: array<f32, TN>;
  for (var e = se.x; e < se.y; e++) {
    let jb = u32(idx[p.u6 + e]) * blk;
    var wo: u32;
    if (TRANS_W) {
      wo = e * blk * blk;
    } else {
      wo = u32(idx[p.u7 + e]) * blk * blk;
    }
    for (var c0 = 0u; c0 < blk; c0 += BK) {
      for (var t = li; t < BM * BK; t += NT) {
        let m = t / BK;
        let kk = t % BK;
        var v = 0.0;
        if (m0 + m < M) {
          v = x[(m0 + m) * inCols + jb + c0 + kk];
        }
        xs[kk * BM + m] = v;
      }
      for (var t = li; t < BN * BK; t += NT) {
        var n: u32;
        var kk: u32;
        var v: f32;
        if (TRANS_W) {
          n = t / BK;
          kk = t % BK;
          v = w[wo + (r0 + n) * blk + c0 + kk];
        } else {
          n = t % BN;
          kk = t / BN;
          v = w[wo + (c0 + kk) * blk + r0 + n];
        }
        ws[kk * BN + n] = v;
      }
      workgroupBarrier();
      for (var kk = 0u; kk < BK; kk++) {
        for (var i = 0u; i < TM; i++) {
          xv[i] = xs[kk * BM + l.y + i * WGY];
        }
        for (var j = 0u; j < TN; j++) {
          wv[j] = ws[kk * BN + l.x + j * WGX];
        }
        for (var i = 0u; i < TM; i++) {
          for (var j = 0u; j < TN; j++) {
            acc[i][j] = fma(xv[i], wv[j], acc[i][j]);
          }
        }
      }
      workgroupBarrier();
    }
  }
  let accumulate = p.u4 != 0u;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + l.y + i * WGY;
    if (m >= M) {
      continue;
    }
    for (var j = 0u; j < TN; j++) {
      let o = m * outCols + n0 + l.x + j * WGX;
      var v = acc[i][j];
      if (accumulate) {
        v += y[o];
      }
      y[o] = v;
    }
  }
}
