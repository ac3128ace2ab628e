// f32_gemm__register: a is (M,K) or (K,M), b is (K,N) or (N,K), c is (M,N) per batch:
// C (+)= alpha * op(A)·op(B). With SDD the result is only the kept (blk,blk) blocks of C,
// stored as w (nnz,blk,blk) (the sdd kernel: W (+)= op(A)·op(B) on kept blocks).
// Each invocation keeps a TM x TN tile in registers and reads A and B straight from memory
// (no workgroup memory, no barriers: compiles fast and runs well on software adapters).
// Tile constants (TM, TN, WGX, WGY, TRANS_A, TRANS_B, SDD) are prepended by the backend.
// u0 M, u1 N, u2 K, u3 strideA, u4 strideB, u5 strideC, u6 accumulate, u7 blk; f0 alpha;
// f1, f2 (as u32 bits) offsets of rowOf and colIdx in idx.
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> idx: array<i32>;

@compute @workgroup_size(WGX, WGY, 1)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let M = p.u0;
  let N = p.u1;
  let K = p.u2;
  var oA = 0u;
  var oB = 0u;
  var oC = 0u;
  var row0 = wg.y * (WGY * TM);
  var col0 = wg.x * (WGX * TN);
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
  var rows: array<u32, TM>;
  var cols: array<u32, TN>;
  for (var i = 0u; i < TM; i++) {
    rows[i] = min(row0 + l.y + i * WGY, rLim - 1u);
  }
  for (var j = 0u; j < TN; j++) {
    cols[j] = min(col0 + l.x + j * WGX, cLim - 1u);
  }
  var acc: array<array<f32, TN>, TM>;
  var av: array<f32, TM>;
  var bv: array<f32, TN>;
  for (var k = 0u; k < K; k++) {
    for (var i = 0u; i < TM; i++) {
      if (TRANS_A) {
        av[i] = a[oA + k * M + rows[i]];
      } else {
        av[i] = a[oA + rows[i] * K + k];
      }
    }
    for (var j = 0u; j < TN; j++) {
      if (TRANS_B) {
        bv[j] = b[oB + cols[j] * K + k];
      } else {
        bv[j] = b[oB + k * N + cols[j]];
      }
    }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) {
        acc[i][j] = fma(av[i], bv[j], acc[i][j]);
      }
    }
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
