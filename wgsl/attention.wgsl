// Block-sparse attention's row softmax and its backward on (batch, nnz, b, b) score tiles of one
// block layout. Tile e = (i, j) holds queries i·b.. and keys j·b..; one invocation per (batch, score
// row). No workgroup memory or barriers (fast to compile on software adapters).
// Slots: u0 block rows, u1 b, u2 nnz, u3 L, u4 S, u5 causal, u6 rowPtr offset, u7 colIdx offset
// (int32 in the layout buffer); f0 scale, f1 accumulate (grad), f2 batch.
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<i32>;

const WG: u32 = 64u;

// number of visible keys in row i of the tile whose first key is j0 (a prefix of the tile row)
fn visible(i: u32, j0: u32) -> u32 {
  if (i >= p.u3 || j0 >= p.u4) {
    return 0u;
  }
  var n = min(p.u1, p.u4 - j0);
  if (p.u5 != 0u) {
    if (j0 > i) {
      return 0u;
    }
    n = min(n, i - j0 + 1u);
  }
  return n;
}

// b1 x, b2 y are (batch,nnz,b,b): y = softmax(scale·x) over each row's visible kept entries, else 0.
@compute @workgroup_size(WG)
fn bsrSoftmax(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let b = p.u1;
  let total = u32(p.f2) * p.u0 * b;
  for (var gr = g.x; gr < total; gr += nw.x * WG) {
    let t = gr / (p.u0 * b);
    let row = gr % (p.u0 * b);
    let bi = row / b;
    let r = row % b;
    let i = row;
    let base = t * p.u2 * b * b;
    let e0 = u32(b4[p.u6 + bi]);
    let e1 = u32(b4[p.u6 + bi + 1u]);
    var mx = -3.0e38;
    var seen = false;
    for (var e = e0; e < e1; e++) {
      let n = visible(i, u32(b4[p.u7 + e]) * b);
      let o = base + e * b * b + r * b;
      for (var c = 0u; c < n; c++) {
        mx = max(mx, p.f0 * b1[o + c]);
        seen = true;
      }
    }
    var s = 0.0;
    for (var e = e0; e < e1; e++) {
      let n = visible(i, u32(b4[p.u7 + e]) * b);
      let o = base + e * b * b + r * b;
      for (var c = 0u; c < b; c++) {
        var v = 0.0;
        if (c < n) {
          v = exp(p.f0 * b1[o + c] - mx);
        }
        b2[o + c] = v;
        s += v;
      }
    }
    if (seen) {
      let inv = 1.0 / s;
      for (var e = e0; e < e1; e++) {
        let o = base + e * b * b + r * b;
        for (var c = 0u; c < b; c++) {
          b2[o + c] = b2[o + c] * inv;
        }
      }
    }
  }
}

// b1 y, b2 dy, b3 dx are (batch,nnz,b,b): dx (+)= scale · y ⊙ (dy − Σ_row dy⊙y).
@compute @workgroup_size(WG)
fn bsrSoftmaxGrad(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let b = p.u1;
  let total = u32(p.f2) * p.u0 * b;
  for (var gr = g.x; gr < total; gr += nw.x * WG) {
    let t = gr / (p.u0 * b);
    let row = gr % (p.u0 * b);
    let bi = row / b;
    let r = row % b;
    let base = t * p.u2 * b * b;
    let e0 = u32(b4[p.u6 + bi]);
    let e1 = u32(b4[p.u6 + bi + 1u]);
    var dot = 0.0;
    for (var e = e0; e < e1; e++) {
      let o = base + e * b * b + r * b;
      for (var c = 0u; c < b; c++) {
        dot += b2[o + c] * b1[o + c];
      }
    }
    for (var e = e0; e < e1; e++) {
      let o = base + e * b * b + r * b;
      for (var c = 0u; c < b; c++) {
        var v = p.f0 * b1[o + c] * (b2[o + c] - dot);
        if (p.f1 != 0.0) {
          v += b3[o + c];
        }
        b3[o + c] = v;
      }
    }
  }
}
