// Elementwise, row, reduction and optimizer kernels. None uses workgroup memory or barriers,
// so every entry point compiles fast on software adapters. 1-D kernels use a grid-stride loop
// over WG-wide workgroups; row kernels give one invocation a whole row (or column).
// Each entry point opens with its shape line and its uniform slots.
// Binding i is declared twice: r<i> read-only, w<i> read_write. An entry point uses one of the two,
// so its inputs are read-only bindings and only its outputs are writable (browsers reject a dispatch
// that binds one buffer to two bindings when either is writable: in-place ops have their own entries).
@group(0) @binding(1) var<storage, read> r1: array<f32>;
@group(0) @binding(2) var<storage, read> r2: array<f32>;
@group(0) @binding(3) var<storage, read> r3: array<f32>;
@group(0) @binding(4) var<storage, read> r4: array<f32>;
@group(0) @binding(5) var<storage, read> r5: array<f32>;
@group(0) @binding(6) var<storage, read> r6: array<f32>;
@group(0) @binding(1) var<storage, read_write> w1: array<f32>;
@group(0) @binding(2) var<storage, read_write> w2: array<f32>;
@group(0) @binding(3) var<storage, read_write> w3: array<f32>;
@group(0) @binding(4) var<storage, read_write> w4: array<f32>;
@group(0) @binding(5) var<storage, read_write> w5: array<f32>;
@group(0) @binding(6) var<storage, read_write> w6: array<f32>;

const WG: u32 = 64u;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

fn stride(nw: vec3<u32>) -> u32 {
  return nw.x * WG;
}

// tanh that stays finite for large |x| on every implementation.
fn tanh_(x: f32) -> f32 {
  return tanh(clamp(x, -15.0, 15.0));
}

// erf(x) in f32: the rational approximation of Eigen and XLA (odd degree-13 numerator over even
// degree-8 denominator on x clamped to [-4, 4]; a few ulp, relative error 4e-7 near 0 as well).
fn erf_(a: f32) -> f32 {
  let x = clamp(a, -4.0, 4.0);
  let x2 = x * x;
  var pn = -2.72614225801306e-10 * x2 + 2.77068142495902e-08;
  pn = pn * x2 - 2.10102402082508e-06;
  pn = pn * x2 - 5.69250639462346e-05;
  pn = pn * x2 - 7.34990630326855e-04;
  pn = pn * x2 - 2.95459980854025e-03;
  pn = pn * x2 - 1.60960333262415e-02;
  var q = -1.45660718464996e-05 * x2 - 2.13374055278905e-04;
  q = q * x2 - 1.68282697438203e-03;
  q = q * x2 - 7.37332916720468e-03;
  q = q * x2 - 1.42647390514189e-02;
  return x * pn / q;
}

const SQRT1_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// The op codes (UNARY_*, BINARY_*, BCAST_*) are constants generated from src/backends/op_table.ts
// (OP_CODES in the generated module), prepended by the backend.
fn unary_f(op: u32, x: f32) -> f32 {
  switch op {
    case UNARY_RELU: { return max(x, 0.0); }
    case UNARY_GELU: { return 0.5 * x * (1.0 + erf_(x * SQRT1_2)); }
    case UNARY_GELU_TANH: { return 0.5 * x * (1.0 + tanh_(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))); }
    case UNARY_SQRT: { return sqrt(x); }
    case UNARY_SIGMOID: { return 1.0 / (1.0 + exp(-x)); }
    case UNARY_TANH: { return tanh_(x); }
    case UNARY_EXP: { return exp(x); }
    case UNARY_LOG: { return log(x); }
    case UNARY_NEG: { return -x; }
    default: { return 0.0; }
  }
}

fn unary_d(op: u32, x: f32, y: f32) -> f32 {
  switch op {
    case UNARY_RELU: { return select(0.0, 1.0, x > 0.0); }
    case UNARY_GELU: { return 0.5 * (1.0 + erf_(x * SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x); }
    case UNARY_SQRT: { return 0.5 / y; }
    case UNARY_GELU_TANH: {
      let t = tanh_(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
      let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    }
    case UNARY_SIGMOID: { return y * (1.0 - y); }
    case UNARY_TANH: { return 1.0 - y * y; }
    case UNARY_EXP: { return y; }
    case UNARY_LOG: { return 1.0 / x; }
    case UNARY_NEG: { return -1.0; }
    default: { return 0.0; }
  }
}

// Broadcast index of b for output element o of an (M, N) result.
fn bcast_index(bcast: u32, o: u32, N: u32) -> u32 {
  switch bcast {
    case BCAST_ROW: { return o % N; }
    case BCAST_COL: { return o / N; }
    case BCAST_SCALAR: { return 0u; }
    default: { return o; }
  }
}

fn binary_f(op: u32, x: f32, z: f32) -> f32 {
  switch op {
    case BINARY_ADD: { return x + z; }
    case BINARY_SUB: { return x - z; }
    case BINARY_MUL: { return x * z; }
    default: { return x / z; }
  }
}

// w1 x is (u0): every element set to f0.
@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    w1[i] = p.f0;
  }
}

// r1 src, w2 dst: dst[u2 + i] = src[u1 + i] for i < u0 (ranges must not overlap).
@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    w2[p.u2 + i] = r1[p.u1 + i];
  }
}

// r1 a is (M,N), r2 b broadcast per u3 (a BCAST_* code), w3 out is (M,N):
// out = a op b with op u2 (a BINARY_* code); u0 M, u1 N.
@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let total = p.u0 * N;
  for (var o = g.x; o < total; o += stride(nw)) {
    w3[o] = binary_f(p.u2, r1[o], r2[bcast_index(p.u3, o, N)]);
  }
}

// binary in place: w1 a (and out) is (M,N), r2 b broadcast per u3; a = a op b with op u2.
@compute @workgroup_size(WG)
fn binaryInPlace(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let total = p.u0 * N;
  for (var o = g.x; o < total; o += stride(nw)) {
    w1[o] = binary_f(p.u2, w1[o], r2[bcast_index(p.u3, o, N)]);
  }
}

// r1 x, w2 y are (u0): y = f(x), op u1 (a UNARY_* code).
@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    w2[i] = unary_f(p.u1, r1[i]);
  }
}

// unary in place: w1 x is (u0): x = f(x), op u1.
@compute @workgroup_size(WG)
fn unaryInPlace(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    w1[i] = unary_f(p.u1, w1[i]);
  }
}

// r1 x, r2 y, r3 dy, w4 dx are (u0): dx (+)= dy * f'(x); op u1, accumulate u2.
@compute @workgroup_size(WG)
fn unaryGrad(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    var v = r3[i] * unary_d(p.u1, r1[i], r2[i]);
    if (p.u2 != 0u) {
      v += w4[i];
    }
    w4[i] = v;
  }
}

// r1 x, w2 y are (u0): y (+)= f0 * x + f1; accumulate u1.
@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    var v = p.f0 * r1[i] + p.f1;
    if (p.u1 != 0u) {
      v += w2[i];
    }
    w2[i] = v;
  }
}

// scale in place: w1 x is (u0): x = f0 * x + f1 (the backend never calls it with accumulate).
@compute @workgroup_size(WG)
fn scaleInPlace(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    w1[i] = p.f0 * w1[i] + p.f1;
  }
}

// r1 x is (B,M,N), w2 y is (B,N,M); u0 B, u1 M, u2 N.
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
    w2[o] = r1[t * mn + i * N + j];
  }
}

// r1 x, w2 y are (M,N): row softmax; u0 M, u1 N. One invocation per row.
@compute @workgroup_size(WG)
fn softmax(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var mx = -3.0e38;
    for (var j = 0u; j < N; j++) {
      mx = max(mx, r1[o + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      s += exp(r1[o + j] - mx);
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < N; j++) {
      w2[o + j] = exp(r1[o + j] - mx) * inv;
    }
  }
}

// r1 y, r2 dy, w3 dx are (M,N): dx (+)= y ⊙ (dy − Σ_row dy⊙y); u0 M, u1 N, u2 accumulate.
@compute @workgroup_size(WG)
fn softmaxGrad(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var dot = 0.0;
    for (var j = 0u; j < N; j++) {
      dot += r2[o + j] * r1[o + j];
    }
    for (var j = 0u; j < N; j++) {
      var v = r1[o + j] * (r2[o + j] - dot);
      if (p.u2 != 0u) {
        v += w3[o + j];
      }
      w3[o + j] = v;
    }
  }
}

// r1 logits, w3 probs are (M,N), r2 labels, w4 losses are (M):
// probs = softmax(logits), losses = logsumexp(logits) − logits[label]; u0 M, u1 N.
@compute @workgroup_size(WG)
fn crossEntropy(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var mx = -3.0e38;
    for (var j = 0u; j < N; j++) {
      mx = max(mx, r1[o + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      s += exp(r1[o + j] - mx);
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < N; j++) {
      w3[o + j] = exp(r1[o + j] - mx) * inv;
    }
    w4[i] = mx + log(s) - r1[o + u32(r2[i])];
  }
}

// r1 probs, w4 dlogits are (M,N), r2 labels, r3 dlosses are (M):
// dlogits (+)= (probs − onehot(labels)) * dlosses[row]; u0 M, u1 N, u2 accumulate.
@compute @workgroup_size(WG)
fn crossEntropyGrad(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let total = p.u0 * N;
  for (var o = g.x; o < total; o += stride(nw)) {
    let i = o / N;
    let j = o % N;
    var v = (r1[o] - select(0.0, 1.0, j == u32(r2[i]))) * r3[i];
    if (p.u2 != 0u) {
      v += w4[o];
    }
    w4[o] = v;
  }
}

// r1 x, w4 y are (M,N), r2 gamma, r3 beta are (N), w5 mean, w6 rstd are (M):
// y = (x − mean) * rstd * gamma + beta; u0 M, u1 N, f0 eps. One invocation per row.
@compute @workgroup_size(WG)
fn layerNorm(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let fn_ = f32(N);
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      s += r1[o + j];
    }
    let mu = s / fn_;
    var v = 0.0;
    for (var j = 0u; j < N; j++) {
      let d = r1[o + j] - mu;
      v += d * d;
    }
    let rs = 1.0 / sqrt(v / fn_ + p.f0);
    w5[i] = mu;
    w6[i] = rs;
    for (var j = 0u; j < N; j++) {
      w4[o + j] = (r1[o + j] - mu) * rs * r2[j] + r3[j];
    }
  }
}

// r1 dy, r2 x, w6 dx are (M,N), r3 gamma (N), r4 mean, r5 rstd (M):
// dx (+)= rstd * (dy⊙gamma − mean(dy⊙gamma) − xhat * mean(dy⊙gamma⊙xhat)); u0 M, u1 N, u2 accumulate.
@compute @workgroup_size(WG)
fn layerNormGradX(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let fn_ = f32(N);
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    let mu = r4[i];
    let rs = r5[i];
    var sd = 0.0;
    var sdx = 0.0;
    for (var j = 0u; j < N; j++) {
      let xh = (r2[o + j] - mu) * rs;
      let gg = r1[o + j] * r3[j];
      sd += gg;
      sdx += gg * xh;
    }
    sd /= fn_;
    sdx /= fn_;
    for (var j = 0u; j < N; j++) {
      let xh = (r2[o + j] - mu) * rs;
      let gg = r1[o + j] * r3[j];
      var v = rs * (gg - sd - xh * sdx);
      if (p.u2 != 0u) {
        v += w6[o + j];
      }
      w6[o + j] = v;
    }
  }
}

// r1 dy, r2 x are (M,N), r3 mean, r4 rstd (M), w5 dgamma, w6 dbeta (N):
// dgamma += Σ_rows dy⊙xhat, dbeta += Σ_rows dy; u0 M, u1 N. One invocation per column.
@compute @workgroup_size(WG)
fn layerNormGradGB(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var j = g.x; j < N; j += stride(nw)) {
    var sg = 0.0;
    var sb = 0.0;
    for (var i = 0u; i < p.u0; i++) {
      let dy = r1[i * N + j];
      sg += dy * (r2[i * N + j] - r3[i]) * r4[i];
      sb += dy;
    }
    w5[j] += sg;
    w6[j] += sb;
  }
}

// r1 s, r2 l, w5 y are (M,N), r3 g (M), r4 bias (N): y = (1 − g)·s + g·l + bias (bias read when u2 != 0);
// u0 M, u1 N. One invocation per element.
@compute @workgroup_size(WG)
fn gatedCombine(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var o = g.x; o < p.u0 * N; o += stride(nw)) {
    let gi = r3[o / N];
    var v = (1.0 - gi) * r1[o] + gi * r2[o];
    if (p.u2 != 0u) {
      v += r4[o % N];
    }
    w5[o] = v;
  }
}

// r1 dy, w3 ds, w4 dl are (M,N), r2 g (M): ds (+)= (1 − g)·dy, dl (+)= g·dy; u0 M, u1 N, u2 accumulate.
// One invocation per element.
@compute @workgroup_size(WG)
fn gatedCombineGradSL(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var o = g.x; o < p.u0 * N; o += stride(nw)) {
    let gi = r2[o / N];
    let d = r1[o];
    var vs = (1.0 - gi) * d;
    var vl = gi * d;
    if (p.u2 != 0u) {
      vs += w3[o];
      vl += w4[o];
    }
    w3[o] = vs;
    w4[o] = vl;
  }
}

// r1 dy, r2 s, r3 l are (M,N), w4 dg (M): dg (+)= Σ_row dy·(l − s); u0 M, u1 N, u2 accumulate.
// One invocation per row.
@compute @workgroup_size(WG)
fn gatedCombineGradG(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let o = i * N;
    var t = 0.0;
    for (var j = 0u; j < N; j++) {
      t += r1[o + j] * (r3[o + j] - r2[o + j]);
    }
    if (p.u2 != 0u) {
      t += w4[i];
    }
    w4[i] = t;
  }
}

// r1 table is (rows,N), r2 idx (M), w3 out is (M,N): out[i] = table[idx[i]]; u0 M, u1 N.
@compute @workgroup_size(WG)
fn gatherRows(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  let total = p.u0 * N;
  for (var o = g.x; o < total; o += stride(nw)) {
    let i = o / N;
    w3[o] = r1[u32(r2[i]) * N + o % N];
  }
}

// r1 dout is (M,N), r2 idx (M), w3 dtable is (rows,N): dtable[idx[i]] += dout[i]; u0 M, u1 N,
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
    let r = r2[i];
    var first = true;
    for (var k = 0u; k < i; k++) {
      if (r2[k] == r) {
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
        if (r2[k] == r) {
          s += r1[k * N + j];
        }
      }
      w3[to + j] += s;
    }
  }
}

// r1 x is (M,N), w2 y is (N): y (+)= Σ_rows x; u0 M, u1 N, u2 accumulate. One invocation per column.
@compute @workgroup_size(WG)
fn sumRows(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var j = g.x; j < N; j += stride(nw)) {
    var s = 0.0;
    for (var i = 0u; i < p.u0; i++) {
      s += r1[i * N + j];
    }
    if (p.u2 != 0u) {
      s += w2[j];
    }
    w2[j] = s;
  }
}

// r1 x is (M,N), w2 y is (M): y (+)= Σ_cols x; u0 M, u1 N, u2 accumulate. One invocation per row.
@compute @workgroup_size(WG)
fn sumCols(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let N = p.u1;
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    var s = 0.0;
    for (var j = 0u; j < N; j++) {
      s += r1[i * N + j];
    }
    if (p.u2 != 0u) {
      s += w2[i];
    }
    w2[i] = s;
  }
}

// r1 x is (u0), w2 partial is (u1): partial[t] = Σ_{i ≡ t mod u1} x[i]². Pass 1 of sumSquares.
@compute @workgroup_size(WG)
fn sumSquaresPartial(@builtin(global_invocation_id) g: vec3<u32>) {
  let t = g.x;
  if (t >= p.u1) {
    return;
  }
  var s = 0.0;
  for (var i = t; i < p.u0; i += p.u1) {
    s += r1[i] * r1[i];
  }
  w2[t] = s;
}

// r1 partial is (u0), w2 out is (1): out (+)= Σ partial; u1 accumulate. Pass 2 of sumSquares.
@compute @workgroup_size(1)
fn sumSquaresFinal() {
  var s = 0.0;
  for (var i = 0u; i < p.u0; i++) {
    s += r1[i];
  }
  if (p.u1 != 0u) {
    s += w2[0];
  }
  w2[0] = s;
}

// w1 param, r2 grad, w3 m, w4 v are (u0): one AdamW step. f0 lr, f1 beta1, f2 beta2, f3 eps,
// f4 weight decay, f5 1 − beta1^step, f6 1 − beta2^step.
@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    let gr = r2[i];
    var w = w1[i] * (1.0 - p.f0 * p.f4);
    let m = p.f1 * w3[i] + (1.0 - p.f1) * gr;
    let v = p.f2 * w4[i] + (1.0 - p.f2) * gr * gr;
    w3[i] = m;
    w4[i] = v;
    w -= (p.f0 * (m / p.f5)) / (sqrt(v / p.f6) + p.f3);
    w1[i] = w;
  }
}

// w1 param, r2 grad, w3 momentum are (u0): one SGD step (PyTorch semantics). u1 nesterov,
// u2 first; f0 lr, f1 momentum, f2 dampening, f3 weight decay.
@compute @workgroup_size(WG)
fn sgd(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    var gr = r2[i] + p.f3 * w1[i];
    if (p.f1 != 0.0) {
      var bv: f32;
      if (p.u2 != 0u) {
        bv = gr;
      } else {
        bv = p.f1 * w3[i] + (1.0 - p.f2) * gr;
      }
      w3[i] = bv;
      if (p.u1 != 0u) {
        gr = gr + p.f1 * bv;
      } else {
        gr = bv;
      }
    }
    w1[i] -= p.f0 * gr;
  }
}

// w1 g is (u0), r2 normSq is (1): g *= min(1, f0 / (sqrt(normSq) + 1e-6)).
@compute @workgroup_size(WG)
fn clipScale(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let f = min(1.0, p.f0 / (sqrt(r2[0]) + 1e-6));
  for (var i = g.x; i < p.u0; i += stride(nw)) {
    w1[i] *= f;
  }
}
