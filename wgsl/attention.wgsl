// Block-sparse attention's row softmax and its backward on (batch, nnz, b, b) score tiles of one
// block layout. Tile e = (i, j) holds queries i·b.. and keys j·b..; one invocation per (batch, score
// row). No workgroup memory or barriers (fast to compile on software adapters).
// Slots: u0 block rows, u1 b, u2 nnz, u3 L, u4 S, u5 causal, u6 rowPtr offset, u7 colIdx offset
// (int32 in the layout buffer); f0 scale, f1 accumulate (grad), f2 batch.
// Inputs are read-only bindings r<i>, outputs read_write bindings w<i> (one of the two per entry point).
@group(0) @binding(1) var<storage, read> r1: array<f32>;
@group(0) @binding(2) var<storage, read> r2: array<f32>;
@group(0) @binding(3) var<storage, read> r3: array<f32>;
@group(0) @binding(4) var<storage, read> r4: array<i32>;
@group(0) @binding(2) var<storage, read_write> w2: array<f32>;
@group(0) @binding(3) var<storage, read_write> w3: array<f32>;

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

// r1 x, w2 y are (batch,nnz,b,b): y = softmax(scale·x) over each row's visible kept entries, else 0.
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
    let e0 = u32(r4[p.u6 + bi]);
    let e1 = u32(r4[p.u6 + bi + 1u]);
    var mx = -3.0e38;
    var seen = false;
    for (var e = e0; e < e1; e++) {
      let n = visible(i, u32(r4[p.u7 + e]) * b);
      let o = base + e * b * b + r * b;
      for (var c = 0u; c < n; c++) {
        mx = max(mx, p.f0 * r1[o + c]);
        seen = true;
      }
    }
    var s = 0.0;
    for (var e = e0; e < e1; e++) {
      let n = visible(i, u32(r4[p.u7 + e]) * b);
      let o = base + e * b * b + r * b;
      for (var c = 0u; c < b; c++) {
        var v = 0.0;
        if (c < n) {
          v = exp(p.f0 * r1[o + c] - mx);
        }
        w2[o + c] = v;
        s += v;
      }
    }
    if (seen) {
      let inv = 1.0 / s;
      for (var e = e0; e < e1; e++) {
        let o = base + e * b * b + r * b;
        for (var c = 0u; c < b; c++) {
          w2[o + c] = w2[o + c] * inv;
        }
      }
    }
  }
}

// r1 y, r2 dy, w3 dx are (batch,nnz,b,b): dx (+)= scale · y ⊙ (dy − Σ_row dy⊙y).
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
    let e0 = u32(r4[p.u6 + bi]);
    let e1 = u32(r4[p.u6 + bi + 1u]);
    var dot = 0.0;
    for (var e = e0; e < e1; e++) {
      let o = base + e * b * b + r * b;
      for (var c = 0u; c < b; c++) {
        dot += r2[o + c] * r1[o + c];
      }
    }
    for (var e = e0; e < e1; e++) {
      let o = base + e * b * b + r * b;
      for (var c = 0u; c < b; c++) {
        var v = p.f0 * r1[o + c] * (r2[o + c] - dot);
        if (p.f1 != 0.0) {
          v += w3[o + c];
        }
        w3[o + c] = v;
      }
    }
  }
}
