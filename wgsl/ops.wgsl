// Elementwise, row, reduction and optimizer kernels. None uses workgroup memory or barriers,
// so every entry point compiles fast on software adapters. 1-D kernels use a grid-stride loop
// over WG-wide workgroups; row kernels give one invocation a whole row (or column).
// Each entry point opens with its shape line and its uniform slots.
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> b5: array<f32>;
@group(0) @binding(6) var<storage, read_write> b6: array<f32>;

const WG: u32 = 64u;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

fn stride(nw: vec3<u32>) -> u32 {
  return nw.x * WG;
}

// tanh that stays finite for large |x| on every implementation.
fn tanh_(x: f32) -> f32 {
  return tanh(clamp(x, -15.0, 15.0));
}

// op codes: 0 relu, 1 gelu, 2 sigmoid, 3 tanh, 4 exp, 5 log, 6 neg
fn unary_f(op: u32, x: f32) -> f32 {
  switch op {
    case 0u: { return max(x, 0.0); }
    case 1u: { return 0.5 * x * (1.0 + tanh_(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))); }
    case 2u: { return 1.0 / (1.0 + exp(-x)); }
    case 3u: { return tanh_(x); }
    case 4u: { return exp(x); }
    case 5u: { return log(x); }
    default: { return -x; }
  }
}

fn unary_d(op: u32, x: f32, y: f32) -> f32 {
  switch op {
    case 0u: { return select(0.0, 1.0, x > 0.0); }
    case 1u: {
      let t = tanh_(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
      let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    }
    case 2u: { return y * (1.0 - y); }
    case 3u: { return 1.0 - y * y; }
    case 4u: { return y; }
    case 5u: { return 1.0 / x; }
    default: { return -1.0; }
  }
}

// b1 x is (u0): every element set to f0.
@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    b1[i] = p.f0;
  }
}

// b1 src, b2 dst: dst[u2 + i] = src[u1 + i] for i < u0 (ranges must not overlap).
@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    b2[p.u2 + i] = b1[p.u1 + i];
  }
}

// b1 a is (M,N), b2 b broadcast per u3 (0 full, 1 row, 2 col, 3 scalar), b3 out is (M,N):
// out = a op b with op u2 (0 add, 1 sub, 2 mul, 3 div); u0 M, u1 N.
@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let total = p.u0 * N;
  for (var o = g.x; o < total; o += stride(nw)) {
    var bi = o;
    switch p.u3 {
      case 1u: { bi = o % N; }
      case 2u: { bi = o / N; }
      case 3u: { bi = 0u; }
      default: {}
    }
    let x = b1[o];
    let z = b2[bi];
    var v: f32;
    switch p.u2 {
      case 0u: { v = x + z; }
      case 1u: { v = x - z; }
      case 2u: { v = x * z; }
      default: { v = x / z; }
    }
    b3[o] = v;
  }
}

// b1 x, b2 y are (u0): y = f(x), op u1.
@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    b2[i] = unary_f(p.u1, b1[i]);
  }
}

// b1 x, b2 y, b3 dy, b4 dx are (u0): dx (+)= dy * f'(x); op u1, accumulate u2.
@compute @workgroup_size(WG)
fn unaryGrad(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    var v = b3[i] * unary_d(p.u1, b1[i], b2[i]);
    if (p.u2 != 0u) {
      v += b4[i];
    }
    b4[i] = v;
  }
}

// b1 x, b2 y are (u0): y (+)= f0 * x + f1; accumulate u1.
@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    var v = p.f0 * b1[i] + p.f1;
    if (p.u1 != 0u) {
      v += b2[i];
    }
    b2[i] = v;
  }
}

// b1 x is (B,M,N), b2 y is (B,N,M); u0 B, u1 M, u2 N.
@compute @workgroup_size(WG)
fn transpose(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let M = p.u1;
  let N = p.u2;
  let mn = M * N;
  let total = p.u0 * mn;
  for (var o = g.x; o < total; o += stride(nw)) {
    let t = o / mn;
    let rem = o % mn;
    let j = rem / M;
    let i = rem % M;
    b2[o] = b1[t * mn + i * N + j];
  }
}

// b1 x, b2 y are (M,N): row softmax; u0 M, u1 N. One invocation per row.
@compute @workgroup_size(WG)
fn softmax(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var mx = -3.0e38;
    for (var j = 0u; j < N; j++) {
      mx = max(mx, b1[o + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      s += exp(b1[o + j] - mx);
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < N; j++) {
      b2[o + j] = exp(b1[o + j] - mx) * inv;
    }
  }
}

// b1 y, b2 dy, b3 dx are (M,N): dx (+)= y ⊙ (dy − Σ_row dy⊙y); u0 M, u1 N, u2 accumulate.
@compute @workgroup_size(WG)
fn softmaxGrad(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var dot = 0.0;
    for (var j = 0u; j < N; j++) {
      dot += b2[o + j] * b1[o + j];
    }
    for (var j = 0u; j < N; j++) {
      var v = b1[o + j] * (b2[o + j] - dot);
      if (p.u2 != 0u) {
        v += b3[o + j];
      }
      b3[o + j] = v;
    }
  }
}

// b1 logits, b3 probs are (M,N), b2 labels, b4 losses are (M):
// probs = softmax(logits), losses = logsumexp(logits) − logits[label]; u0 M, u1 N.
@compute @workgroup_size(WG)
fn crossEntropy(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var mx = -3.0e38;
    for (var j = 0u; j < N; j++) {
      mx = max(mx, b1[o + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      s += exp(b1[o + j] - mx);
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < N; j++) {
      b3[o + j] = exp(b1[o + j] - mx) * inv;
    }
    b4[i] = mx + log(s) - b1[o + u32(b2[i])];
  }
}

// b1 probs, b4 dlogits are (M,N), b2 labels, b3 dlosses are (M):
// dlogits (+)= (probs − onehot(labels)) * dlosses[row]; u0 M, u1 N, u2 accumulate.
@compute @workgroup_size(WG)
fn crossEntropyGrad(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let total = p.u0 * N;
  for (var o = g.x; o < total; o += stride(nw)) {
    let i = o / N;
    let j = o % N;
    var v = (b1[o] - select(0.0, 1.0, j == u32(b2[i]))) * b3[i];
    if (p.u2 != 0u) {
      v += b4[o];
    }
    b4[o] = v;
  }
}

// b1 x, b4 y are (M,N), b2 gamma, b3 beta are (N), b5 mean, b6 rstd are (M):
// y = (x − mean) * rstd * gamma + beta; u0 M, u1 N, f0 eps. One invocation per row.
@compute @workgroup_size(WG)
fn layerNorm(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let fn_ = f32(N);
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      s += b1[o + j];
    }
    let mu = s / fn_;
    var v = 0.0;
    for (var j = 0u; j < N; j++) {
      let d = b1[o + j] - mu;
      v += d * d;
    }
    let rs = 1.0 / sqrt(v / fn_ + p.f0);
    b5[i] = mu;
    b6[i] = rs;
    for (var j = 0u; j < N; j++) {
      b4[o + j] = (b1[o + j] - mu) * rs * b2[j] + b3[j];
    }
  }
}

// b1 dy, b2 x, b6 dx are (M,N), b3 gamma (N), b4 mean, b5 rstd (M):
// dx (+)= rstd * (dy⊙gamma − mean(dy⊙gamma) − xhat * mean(dy⊙gamma⊙xhat)); u0 M, u1 N, u2 accumulate.
@compute @workgroup_size(WG)
fn layerNormGradX(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let fn_ = f32(N);
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    let mu = b4[i];
    let rs = b5[i];
    var sd = 0.0;
    var sdx = 0.0;
    for (var j = 0u; j < N; j++) {
      let xh = (b2[o + j] - mu) * rs;
      let gg = b1[o + j] * b3[j];
      sd += gg;
      sdx += gg * xh;
    }
    sd /= fn_;
    sdx /= fn_;
    for (var j = 0u; j < N; j++) {
      let xh = (b2[o + j] - mu) * rs;
      let gg = b1[o + j] * b3[j];
      var v = rs * (gg - sd - xh * sdx);
      if (p.u2 != 0u) {
        v += b6[o + j];
      }
      b6[o + j] = v;
    }
  }
}

// b1 dy, b2 x are (M,N), b3 mean, b4 rstd (M), b5 dgamma, b6 dbeta (N):
// dgamma += Σ_rows dy⊙xhat, dbeta += Σ_rows dy; u0 M, u1 N. One invocation per column.
@compute @workgroup_size(WG)
fn layerNormGradGB(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var j = g.x; j < N; j += stride(nw)) {
    var sg = 0.0;
    var sb = 0.0;
    for (var i = 0u; i < p.u0; i++) {
      let dy = b1[i * N + j];
      sg += dy * (b2[i * N + j] - b3[i]) * b4[i];
      sb += dy;
    }
    b5[j] += sg;
    b6[j] += sb;
  }
}

// b1 table is (rows,N), b2 idx (M), b3 out is (M,N): out[i] = table[idx[i]]; u0 M, u1 N.
@compute @workgroup_size(WG)
fn gatherRows(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let total = p.u0 * N;
  for (var o = g.x; o < total; o += stride(nw)) {
    let i = o / N;
    b3[o] = b1[u32(b2[i]) * N + o % N];
  }
}

// b1 dout is (M,N), b2 idx (M), b3 dtable is (rows,N): dtable[idx[i]] += dout[i]; u0 M, u1 N,
// u2 column chunks (ceil(N / 32)). One invocation per (i, chunk of 32 columns): only the first
// occurrence of each index adds, summing every row with that index, so repeated indices add
// up with no atomics and no race.
@compute @workgroup_size(WG)
fn scatterAddRows(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let M = p.u0;
  let N = p.u1;
  let total = M * p.u2;
  for (var t = g.x; t < total; t += stride(nw)) {
    let i = t / p.u2;
    let j0 = (t % p.u2) * 32u;
    let r = b2[i];
    var first = true;
    for (var k = 0u; k < i; k++) {
      if (b2[k] == r) {
        first = false;
        break;
      }
    }
    if (!first) {
      continue;
    }
    let j1 = min(j0 + 32u, N);
    let to = u32(r) * N;
    for (var j = j0; j < j1; j++) {
      var s = 0.0;
      for (var k = i; k < M; k++) {
        if (b2[k] == r) {
          s += b1[k * N + j];
        }
      }
      b3[to + j] += s;
    }
  }
}

// b1 x is (M,N), b2 y is (N): y (+)= Σ_rows x; u0 M, u1 N, u2 accumulate. One invocation per column.
@compute @workgroup_size(WG)
fn sumRows(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var j = g.x; j < N; j += stride(nw)) {
    var s = 0.0;
    for (var i = 0u; i < p.u0; i++) {
      s += b1[i * N + j];
    }
    if (p.u2 != 0u) {
      s += b2[j];
    }
    b2[j] = s;
  }
}

// b1 x is (M,N), b2 y is (M): y (+)= Σ_cols x; u0 M, u1 N, u2 accumulate. One invocation per row.
@compute @workgroup_size(WG)
fn sumCols(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      s += b1[i * N + j];
    }
    if (p.u2 != 0u) {
      s += b2[i];
    }
    b2[i] = s;
  }
}

// b1 x is (u0), b2 partial is (u1): partial[t] = Σ_{i ≡ t mod u1} x[i]². Pass 1 of sumSquares.
@compute @workgroup_size(WG)
fn sumSquaresPartial(@builtin(global_invocation_id) g: vec3<u32>) {
  let t = g.x;
  if (t >= p.u1) {
    return;
  }
  var s = 0.0;
  for (var i = t; i < p.u0; i += p.u1) {
    s += b1[i] * b1[i];
  }
  b2[t] = s;
}

// b1 partial is (u0), b2 out is (1): out (+)= Σ partial; u1 accumulate. Pass 2 of sumSquares.
@compute @workgroup_size(1)
fn sumSquaresFinal() {
  var s = 0.0;
  for (var i = 0u; i < p.u0; i++) {
    s += b1[i];
  }
  if (p.u1 != 0u) {
    s += b2[0];
  }
  b2[0] = s;
}

// b1 param, b2 grad, b3 m, b4 v are (u0): one AdamW step. f0 lr, f1 beta1, f2 beta2, f3 eps,
// f4 weight decay, f5 1 − beta1^step, f6 1 − beta2^step.
@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let gr = b2[i];
    var w = b1[i] * (1.0 - p.f0 * p.f4);
    let m = p.f1 * b3[i] + (1.0 - p.f1) * gr;
    let v = p.f2 * b4[i] + (1.0 - p.f2) * gr * gr;
    b3[i] = m;
    b4[i] = v;
    w -= (p.f0 * (m / p.f5)) / (sqrt(v / p.f6) + p.f3);
    b1[i] = w;
  }
}

// b1 param, b2 grad, b3 momentum are (u0): one SGD step (PyTorch semantics). u1 nesterov,
// u2 first; f0 lr, f1 momentum, f2 dampening, f3 weight decay.
@compute @workgroup_size(WG)
fn sgd(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    var gr = b2[i] + p.f3 * b1[i];
    if (p.f1 != 0.0) {
      var bv: f32;
      if (p.u2 != 0u) {
        bv = gr;
      } else {
        bv = p.f1 * b3[i] + (1.0 - p.f2) * gr;
      }
      b3[i] = bv;
      if (p.u1 != 0u) {
        gr = gr + p.f1 * bv;
      } else {
        gr = bv;
      }
    }
    b1[i] -= p.f0 * gr;
  }
}

// b1 g is (u0), b2 normSq is (1): g *= min(1, f0 / (sqrt(normSq) + 1e-6)).
@compute @workgroup_size(WG)
fn clipScale(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let f = min(1.0, p.f0 / (sqrt(b2[0]) + 1e-6));
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    b1[i] *= f;
  }
}
