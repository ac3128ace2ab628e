// f32_dds__register: x is (M,K) [TRANS_W] or (M,N), w is (nnz,blk,blk), y is (M,N) [TRANS_W] or (M,K):
// Y (+)= X·Wᵀ (forward, walks block rows: rowPtr/colIdx) or Y (+)= X·W (dX, walks block
// columns: colPtr/rowIdx/blockIdx). Each invocation keeps TM rows x TN contiguous output
// columns in registers; TN divides blk, so its columns share one output block.
// Constants TM, TN, WGX, WGY, TRANS_W are prepended.
// u0 M, u1 inCols, u2 outCols, u3 blk, u4 accumulate, u5 offset of rowPtr|colPtr in idx,
// u6 offset of colIdx|rowIdx, u7 offset of blockIdx (transposed walk only).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> idx: array<i32>;

@compute @workgroup_size(WGX, WGY, 1)
fn dds(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let M = p.u0;
  let inCols = p.u1;
  let outCols = p.u2;
  let blk = p.u3;
  let n0 = (wg.x * WGX + l.x) * TN;
  if (n0 >= outCols || M == 0u) {
    return;
  }
  let ob = n0 / blk;
  let r0 = n0 % blk;
  let row0 = wg.y * (WGY * TM) + l.y;
  var xr: array<u32, TM>;
  for (var i = 0u; i < TM; i++) {
    xr[i] = min(row0 + i * WGY, M - 1u) * inCols;
  }
  var acc: array<array<f32, TN>, TM>;
  var xv: array<f32, TM>;
  var wv: array<f32, TN>;
  let start = u32(idx[p.u5 + ob]);
  let end = u32(idx[p.u5 + ob + 1u]);
  for (var e = start; e < end; e++) {
    let jb = u32(idx[p.u6 + e]) * blk;
    if (TRANS_W) {
      let wo = e * blk * blk + r0 * blk;
      for (var c = 0u; c < blk; c++) {
        for (var i = 0u; i < TM; i++) {
          xv[i] = x[xr[i] + jb + c];
        }
        for (var t = 0u; t < TN; t++) {
          wv[t] = w[wo + t * blk + c];
        }
        for (var i = 0u; i < TM; i++) {
          for (var t = 0u; t < TN; t++) {
            acc[i][t] = fma(xv[i], wv[t], acc[i][t]);
          }
        }
      }
    } else {
      let wo = u32(idx[p.u7 + e]) * blk * blk + r0;
      for (var r = 0u; r < blk; r++) {
        for (var i = 0u; i < TM; i++) {
          xv[i] = x[xr[i] + jb + r];
        }
        for (var t = 0u; t < TN; t++) {
          wv[t] = w[wo + r * blk + t];
        }
        for (var i = 0u; i < TM; i++) {
          for (var t = 0u; t < TN; t++) {
            acc[i][t] = fma(xv[i], wv[t], acc[i][t]);
          }
        }
      }
    }
  }
  let accumulate = p.u4 != 0u;
  for (var i = 0u; i < TM; i++) {
    let m = row0 + i * WGY;
    if (m >= M) {
      continue;
    }
    for (var t = 0u; t < TN; t++) {
      let o = m * outCols + n0 + t;
      var v = acc[i][t];
      if (accumulate) {
        v += y[o];
      }
      y[o] = v;
    }
  }
}
