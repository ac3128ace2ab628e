/**
 * The plain TypeScript reference backend: written for clarity, every sum
 * accumulated in float64. It is the oracle the other backends are tested
 * against, and the fallback that runs anywhere.
 *
 * @module
 */
import { checkDdsExtra, ddsExtraByGemm } from "./_dds_extra.ts";
import { checkNoAlias } from "../validate.ts";
import type {
  AdamWParams,
  Backend,
  BackendBuffer,
  BinaryOp,
  Broadcast,
  BsrSoftmaxParams,
  DdsParams,
  GemmParams,
  SddParams,
  SgdParams,
  UnaryOp,
} from "./types.ts";
import { bsrSoftmaxGradRef, bsrSoftmaxRef } from "./_js_attention.ts";

/** Storage of the js backend: float32, or float64 for gradient checks. */
type Values = Float32Array | Float64Array;

/** A buffer of the js backend: a Float32Array (a Float64Array in float64 mode). */
export class JsBuffer implements BackendBuffer {
  data: Values;
  constructor(data: Values) {
    this.data = data;
  }
  get size(): number {
    return this.data.length;
  }
}

function d(buf: BackendBuffer): Values {
  const data = (buf as JsBuffer).data;
  if (data === undefined) throw new Error("js backend: buffer was freed or belongs to another backend");
  return data;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erf(z) for |z| < 2 by its Taylor series (float64, about 1e-16 relative). */
function erfSeries(z: number): number {
  const z2 = z * z;
  let term = z, sum = z;
  for (let n = 1; n < 200; n++) {
    term *= -z2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return sum * 2 / Math.sqrt(Math.PI);
}

/**
 * The complementary error function in float64: the Taylor series of erf below |z| = 2, the
 * continued fraction of erfc above (about 1e-13 relative or better against Python's math.erfc).
 */
export function erfc(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < -2) return 2 - erfc(-z);
  if (z < 2) return 1 - erfSeries(z);
  if (z > 27) return 0;
  let t = z;
  for (let k = 120; k >= 1; k--) t = z + (k / 2) / t;
  return Math.exp(-z * z) / (Math.sqrt(Math.PI) * t);
}

/** The standard normal CDF Φ(x) = erfc(−x/√2) / 2, accurate in both tails. */
function normalCdf(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

/** f(x) of a unary op. */
export function unaryForward(op: UnaryOp, x: number): number {
  switch (op) {
    case "relu":
      return x > 0 ? x : 0;
    case "gelu":
      return x * normalCdf(x);
    case "geluTanh":
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case "sqrt":
      return Math.sqrt(x);
    case "sigmoid":
      return 1 / (1 + Math.exp(-x));
    case "tanh":
      return Math.tanh(x);
    case "exp":
      return Math.exp(x);
    case "log":
      return Math.log(x);
    case "neg":
      return -x;
  }
}

/** f'(x) of a unary op, given x and y = f(x). */
export function unaryDerivative(op: UnaryOp, x: number, y: number): number {
  switch (op) {
    case "relu":
      return x > 0 ? 1 : 0;
    case "gelu":
      return normalCdf(x) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    case "sqrt":
      return 0.5 / y;
    case "geluTanh": {
      const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      const du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
    }
    case "sigmoid":
      return y * (1 - y);
    case "tanh":
      return 1 - y * y;
    case "exp":
      return y;
    case "log":
      return 1 / x;
    case "neg":
      return -1;
  }
}

function binaryOp(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case "add":
      return a + b;
    case "sub":
      return a - b;
    case "mul":
      return a * b;
    case "div":
      return a / b;
  }
}

function bIndex(bcast: Broadcast, i: number, j: number, N: number): number {
  switch (bcast) {
    case "full":
      return i * N + j;
    case "row":
      return j;
    case "col":
      return i;
    case "scalar":
      return 0;
  }
}

/**
 * The reference backend. With `{ float64: true }` every buffer is stored in
 * float64 (reads still return float32, `readExact` the float64 values): the
 * mode gradient checks by finite differences use.
 */
export class JsBackend implements Backend {
  readonly name = "js";
  readonly float64: boolean;

  constructor({ float64 = false }: { float64?: boolean } = {}) {
    this.float64 = float64;
  }

  alloc(size: number): BackendBuffer {
    return new JsBuffer(this.float64 ? new Float64Array(size) : new Float32Array(size));
  }
  upload(data: Float32Array): BackendBuffer {
    return new JsBuffer(this.float64 ? Float64Array.from(data) : data.slice());
  }
  write(buf: BackendBuffer, data: Float32Array, offset = 0): void {
    d(buf).set(data, offset);
  }
  read(buf: BackendBuffer): Promise<Float32Array> {
    return Promise.resolve(Float32Array.from(d(buf)));
  }
  /** The stored values at full precision (float64 in float64 mode). */
  readExact(buf: BackendBuffer): Float64Array {
    return Float64Array.from(d(buf));
  }
  /** Overwrite the stored values at full precision. */
  writeExact(buf: BackendBuffer, data: ArrayLike<number>, offset = 0): void {
    d(buf).set(data, offset);
  }
  free(buf: BackendBuffer): void {
    (buf as JsBuffer).data = undefined as unknown as Values;
  }
  flush(): void {}
  dispose(): void {}

  gemm(a: BackendBuffer, b: BackendBuffer, c: BackendBuffer, p: GemmParams): void {
    checkNoAlias("js backend gemm", "c", c, { a, b });
    const A = d(a), B = d(b), C = d(c);
    const { M, N, K, transA, transB, accumulate } = p;
    const alpha = p.alpha ?? 1, batch = p.batch ?? 1;
    const sA = p.strideA ?? M * K, sB = p.strideB ?? K * N, sC = p.strideC ?? M * N;
    for (let t = 0; t < batch; t++) {
      const oA = t * sA, oB = t * sB, oC = t * sC;
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) {
            const av = transA ? A[oA + k * M + i] : A[oA + i * K + k];
            const bv = transB ? B[oB + j * K + k] : B[oB + k * N + j];
            s += av * bv;
          }
          const o = oC + i * N + j;
          C[o] = (accumulate ? C[o] : 0) + alpha * s;
        }
      }
    }
  }

  dds(x: BackendBuffer, w: BackendBuffer, y: BackendBuffer, p: DdsParams): void {
    if (p.lowRank || p.project) {
      return ddsExtraByGemm(this, x, w, y, p, checkDdsExtra("js backend dds", x, w, y, p));
    }
    checkNoAlias("js backend dds", "y", y, { x, w });
    const X = d(x), W = d(w), Y = d(y);
    const { M, layout, transW } = p;
    const b = layout.block, bb = b * b;
    const N = layout.rows * b, K = layout.cols * b;
    const inCols = transW ? K : N, outCols = transW ? N : K;
    const acc = new Float64Array(b);
    const sX = p.strideX ?? M * inCols, sW = p.strideW ?? layout.nnz * bb, sY = p.strideY ?? M * outCols;
    for (let t = 0; t < (p.batch ?? 1); t++) {
      this.#dds1(X, W, Y, t * sX, t * sW, t * sY, p, acc);
    }
  }

  #dds1(
    X: Values,
    W: Values,
    Y: Values,
    oX: number,
    oW: number,
    oY: number,
    p: DdsParams,
    acc: Float64Array,
  ) {
    const { M, layout, transW, accumulate } = p;
    const b = layout.block, bb = b * b;
    const N = layout.rows * b, K = layout.cols * b;
    const inCols = transW ? K : N, outCols = transW ? N : K;
    for (let m = 0; m < M; m++) {
      const xRow = oX + m * inCols, yRow = oY + m * outCols;
      // transW: output block column i gathers the kept blocks (i, j) of block row i.
      // !transW: output block column j gathers the kept blocks (i, j) of block column j.
      const outBlocks = transW ? layout.rows : layout.cols;
      for (let ob = 0; ob < outBlocks; ob++) {
        acc.fill(0);
        const start = transW ? layout.rowPtr[ob] : layout.colPtr[ob];
        const end = transW ? layout.rowPtr[ob + 1] : layout.colPtr[ob + 1];
        for (let e = start; e < end; e++) {
          if (transW) {
            // Y[m, ob*b + r] += Σ_c X[m, j*b + c] * Wblk[r, c]
            const j = layout.colIdx[e], wo = oW + e * bb;
            for (let r = 0; r < b; r++) {
              let s = 0;
              for (let c = 0; c < b; c++) s += X[xRow + j * b + c] * W[wo + r * b + c];
              acc[r] += s;
            }
          } else {
            // Y[m, ob*b + c] += Σ_r X[m, i*b + r] * Wblk[r, c]
            const i = layout.rowIdx[e], wo = oW + layout.blockIdx[e] * bb;
            for (let c = 0; c < b; c++) {
              let s = 0;
              for (let r = 0; r < b; r++) s += X[xRow + i * b + r] * W[wo + r * b + c];
              acc[c] += s;
            }
          }
        }
        for (let r = 0; r < b; r++) {
          const o = yRow + ob * b + r;
          Y[o] = (accumulate ? Y[o] : 0) + acc[r];
        }
      }
    }
  }

  sdd(a: BackendBuffer, b: BackendBuffer, w: BackendBuffer, p: SddParams): void {
    checkNoAlias("js backend sdd", "w", w, { a, b });
    const A = d(a), B = d(b), W = d(w);
    const { layout, K, transA, transB, accumulate } = p;
    const blk = layout.block, bb = blk * blk;
    const R = layout.rows * blk, C = layout.cols * blk;
    const sA = p.strideA ?? R * K, sB = p.strideB ?? K * C, sW = p.strideW ?? layout.nnz * bb;
    for (let t = 0; t < (p.batch ?? 1); t++) {
      const oA = t * sA, oB = t * sB, oW = t * sW;
      for (let i = 0; i < layout.rows; i++) {
        for (let e = layout.rowPtr[i]; e < layout.rowPtr[i + 1]; e++) {
          const j = layout.colIdx[e];
          for (let r = 0; r < blk; r++) {
            const row = i * blk + r;
            for (let c = 0; c < blk; c++) {
              const col = j * blk + c;
              let s = 0;
              for (let k = 0; k < K; k++) {
                const av = transA ? A[oA + k * R + row] : A[oA + row * K + k];
                const bv = transB ? B[oB + col * K + k] : B[oB + k * C + col];
                s += av * bv;
              }
              const o = oW + e * bb + r * blk + c;
              W[o] = (accumulate ? W[o] : 0) + s;
            }
          }
        }
      }
    }
  }

  sumRows(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void {
    const X = d(x), Y = d(y);
    for (let j = 0; j < p.N; j++) {
      let s = 0;
      for (let i = 0; i < p.M; i++) s += X[i * p.N + j];
      Y[j] = (p.accumulate ? Y[j] : 0) + s;
    }
  }
  sumCols(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number; accumulate: boolean }): void {
    const X = d(x), Y = d(y);
    for (let i = 0; i < p.M; i++) {
      let s = 0;
      for (let j = 0; j < p.N; j++) s += X[i * p.N + j];
      Y[i] = (p.accumulate ? Y[i] : 0) + s;
    }
  }
  sumSquares(x: BackendBuffer, out: BackendBuffer, p: { size: number; accumulate: boolean }): void {
    const X = d(x), O = d(out);
    let s = 0;
    for (let i = 0; i < p.size; i++) s += X[i] * X[i];
    O[0] = (p.accumulate ? O[0] : 0) + s;
  }

  binary(
    op: BinaryOp,
    a: BackendBuffer,
    b: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number; bcast: Broadcast },
  ): void {
    const A = d(a), B = d(b), O = d(out);
    for (let i = 0; i < p.M; i++) {
      for (let j = 0; j < p.N; j++) {
        const o = i * p.N + j;
        O[o] = binaryOp(op, A[o], B[bIndex(p.bcast, i, j, p.N)]);
      }
    }
  }
  unary(op: UnaryOp, x: BackendBuffer, y: BackendBuffer, p: { size: number }): void {
    const X = d(x), Y = d(y);
    for (let i = 0; i < p.size; i++) Y[i] = unaryForward(op, X[i]);
  }
  unaryGrad(
    op: UnaryOp,
    x: BackendBuffer,
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { size: number; accumulate: boolean },
  ): void {
    const X = d(x), Y = d(y), DY = d(dy), DX = d(dx);
    for (let i = 0; i < p.size; i++) {
      DX[i] = (p.accumulate ? DX[i] : 0) + DY[i] * unaryDerivative(op, X[i], Y[i]);
    }
  }
  scale(
    x: BackendBuffer,
    y: BackendBuffer,
    p: { size: number; alpha: number; beta: number; accumulate: boolean },
  ): void {
    const X = d(x), Y = d(y);
    for (let i = 0; i < p.size; i++) Y[i] = (p.accumulate ? Y[i] : 0) + p.alpha * X[i] + p.beta;
  }
  fill(x: BackendBuffer, p: { size: number; value: number }): void {
    d(x).fill(p.value, 0, p.size);
  }
  copy(
    src: BackendBuffer,
    dst: BackendBuffer,
    p: { size: number; srcOffset: number; dstOffset: number },
  ): void {
    d(dst).set(d(src).subarray(p.srcOffset, p.srcOffset + p.size), p.dstOffset);
  }
  transpose(x: BackendBuffer, y: BackendBuffer, p: { B: number; M: number; N: number }): void {
    const X = d(x), Y = d(y), mn = p.M * p.N;
    for (let t = 0; t < p.B; t++) {
      for (let i = 0; i < p.M; i++) {
        for (let j = 0; j < p.N; j++) Y[t * mn + j * p.M + i] = X[t * mn + i * p.N + j];
      }
    }
  }

  softmax(x: BackendBuffer, y: BackendBuffer, p: { M: number; N: number }): void {
    const X = d(x), Y = d(y);
    for (let i = 0; i < p.M; i++) {
      const o = i * p.N;
      let mx = -Infinity;
      for (let j = 0; j < p.N; j++) mx = Math.max(mx, X[o + j]);
      let s = 0;
      for (let j = 0; j < p.N; j++) s += Math.exp(X[o + j] - mx);
      for (let j = 0; j < p.N; j++) Y[o + j] = Math.exp(X[o + j] - mx) / s;
    }
  }
  softmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    const Y = d(y), DY = d(dy), DX = d(dx);
    for (let i = 0; i < p.M; i++) {
      const o = i * p.N;
      let dot = 0;
      for (let j = 0; j < p.N; j++) dot += DY[o + j] * Y[o + j];
      for (let j = 0; j < p.N; j++) {
        DX[o + j] = (p.accumulate ? DX[o + j] : 0) + Y[o + j] * (DY[o + j] - dot);
      }
    }
  }
  bsrSoftmax(x: BackendBuffer, y: BackendBuffer, p: BsrSoftmaxParams): void {
    bsrSoftmaxRef(d(x), d(y), p);
  }
  bsrSoftmaxGrad(
    y: BackendBuffer,
    dy: BackendBuffer,
    dx: BackendBuffer,
    p: BsrSoftmaxParams & { accumulate: boolean },
  ): void {
    bsrSoftmaxGradRef(d(y), d(dy), d(dx), p);
  }
  crossEntropy(
    logits: BackendBuffer,
    labels: BackendBuffer,
    probs: BackendBuffer,
    losses: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    const X = d(logits), L = d(labels), P = d(probs), O = d(losses);
    for (let i = 0; i < p.M; i++) {
      const o = i * p.N;
      let mx = -Infinity;
      for (let j = 0; j < p.N; j++) mx = Math.max(mx, X[o + j]);
      let s = 0;
      for (let j = 0; j < p.N; j++) s += Math.exp(X[o + j] - mx);
      for (let j = 0; j < p.N; j++) P[o + j] = Math.exp(X[o + j] - mx) / s;
      O[i] = mx + Math.log(s) - X[o + L[i]];
    }
  }
  crossEntropyGrad(
    probs: BackendBuffer,
    labels: BackendBuffer,
    dlosses: BackendBuffer,
    dlogits: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    const P = d(probs), L = d(labels), DL = d(dlosses), DX = d(dlogits);
    for (let i = 0; i < p.M; i++) {
      for (let j = 0; j < p.N; j++) {
        const o = i * p.N + j;
        const g = (P[o] - (j === L[i] ? 1 : 0)) * DL[i];
        DX[o] = (p.accumulate ? DX[o] : 0) + g;
      }
    }
  }
  layerNorm(
    x: BackendBuffer,
    gamma: BackendBuffer,
    beta: BackendBuffer,
    y: BackendBuffer,
    mean: BackendBuffer,
    rstd: BackendBuffer,
    p: { M: number; N: number; eps: number },
  ): void {
    const X = d(x), G = d(gamma), Bt = d(beta), Y = d(y), MU = d(mean), RS = d(rstd);
    for (let i = 0; i < p.M; i++) {
      const o = i * p.N;
      let s = 0;
      for (let j = 0; j < p.N; j++) s += X[o + j];
      const mu = s / p.N;
      let v = 0;
      for (let j = 0; j < p.N; j++) v += (X[o + j] - mu) ** 2;
      const rs = 1 / Math.sqrt(v / p.N + p.eps);
      MU[i] = mu;
      RS[i] = rs;
      for (let j = 0; j < p.N; j++) Y[o + j] = (X[o + j] - mu) * rs * G[j] + Bt[j];
    }
  }
  layerNormGrad(
    dy: BackendBuffer,
    x: BackendBuffer,
    gamma: BackendBuffer,
    mean: BackendBuffer,
    rstd: BackendBuffer,
    dx: BackendBuffer,
    dgamma: BackendBuffer,
    dbeta: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    const DY = d(dy), X = d(x), G = d(gamma), MU = d(mean), RS = d(rstd);
    const DX = d(dx), DG = d(dgamma), DB = d(dbeta);
    const { M, N } = p;
    for (let i = 0; i < M; i++) {
      const o = i * N, mu = MU[i], rs = RS[i];
      // dxhat = dy * gamma; dx = rs * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
      let sd = 0, sdx = 0;
      for (let j = 0; j < N; j++) {
        const xh = (X[o + j] - mu) * rs;
        const g = DY[o + j] * G[j];
        sd += g;
        sdx += g * xh;
        DG[j] += DY[o + j] * xh;
        DB[j] += DY[o + j];
      }
      sd /= N;
      sdx /= N;
      for (let j = 0; j < N; j++) {
        const xh = (X[o + j] - mu) * rs;
        const g = DY[o + j] * G[j];
        DX[o + j] = (p.accumulate ? DX[o + j] : 0) + rs * (g - sd - xh * sdx);
      }
    }
  }
  gatedCombine(
    s: BackendBuffer,
    l: BackendBuffer,
    g: BackendBuffer,
    bias: BackendBuffer,
    y: BackendBuffer,
    p: { M: number; N: number; bias: boolean },
  ): void {
    const S = d(s), L = d(l), G = d(g), Y = d(y), B = p.bias ? d(bias) : undefined;
    const { M, N } = p;
    for (let i = 0; i < M; i++) {
      const gi = G[i], o = i * N;
      for (let j = 0; j < N; j++) Y[o + j] = (1 - gi) * S[o + j] + gi * L[o + j] + (B ? B[j] : 0);
    }
  }
  gatedCombineGrad(
    dy: BackendBuffer,
    s: BackendBuffer,
    l: BackendBuffer,
    g: BackendBuffer,
    ds: BackendBuffer,
    dl: BackendBuffer,
    dg: BackendBuffer,
    p: { M: number; N: number; accumulate: boolean },
  ): void {
    const DY = d(dy), S = d(s), L = d(l), G = d(g), DS = d(ds), DL = d(dl), DG = d(dg);
    const { M, N } = p, acc = p.accumulate;
    for (let i = 0; i < M; i++) {
      const gi = G[i], o = i * N;
      let t = 0;
      for (let j = 0; j < N; j++) {
        const v = DY[o + j];
        t += v * (L[o + j] - S[o + j]);
        DS[o + j] = (acc ? DS[o + j] : 0) + (1 - gi) * v;
        DL[o + j] = (acc ? DL[o + j] : 0) + gi * v;
      }
      DG[i] = (acc ? DG[i] : 0) + t;
    }
  }
  gatherRows(
    table: BackendBuffer,
    idx: BackendBuffer,
    out: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    const T = d(table), I = d(idx), O = d(out);
    for (let i = 0; i < p.M; i++) O.set(T.subarray(I[i] * p.N, (I[i] + 1) * p.N), i * p.N);
  }
  scatterAddRows(
    dout: BackendBuffer,
    idx: BackendBuffer,
    dtable: BackendBuffer,
    p: { M: number; N: number },
  ): void {
    const G = d(dout), I = d(idx), T = d(dtable);
    for (let i = 0; i < p.M; i++) {
      const t = I[i] * p.N;
      for (let j = 0; j < p.N; j++) T[t + j] += G[i * p.N + j];
    }
  }

  adamw(
    param: BackendBuffer,
    grad: BackendBuffer,
    m: BackendBuffer,
    v: BackendBuffer,
    p: AdamWParams,
  ): void {
    const P = d(param), G = d(grad), Mo = d(m), V = d(v);
    const bc1 = 1 - p.beta1 ** p.step, bc2 = 1 - p.beta2 ** p.step;
    for (let i = 0; i < p.size; i++) {
      P[i] *= 1 - p.lr * p.weightDecay;
      Mo[i] = p.beta1 * Mo[i] + (1 - p.beta1) * G[i];
      V[i] = p.beta2 * V[i] + (1 - p.beta2) * G[i] * G[i];
      P[i] -= (p.lr * (Mo[i] / bc1)) / (Math.sqrt(V[i] / bc2) + p.eps);
    }
  }
  sgd(
    param: BackendBuffer,
    grad: BackendBuffer,
    momentum: BackendBuffer,
    p: SgdParams & { first: boolean },
  ): void {
    const P = d(param), G = d(grad), B = d(momentum);
    for (let i = 0; i < p.size; i++) {
      let g = G[i] + p.weightDecay * P[i];
      if (p.momentum !== 0) {
        B[i] = p.first ? g : p.momentum * B[i] + (1 - p.dampening) * g;
        g = p.nesterov ? g + p.momentum * B[i] : B[i];
      }
      P[i] -= p.lr * g;
    }
  }
  clipScale(g: BackendBuffer, normSq: BackendBuffer, p: { size: number; maxNorm: number }): void {
    const G = d(g), norm = Math.sqrt(d(normSq)[0]);
    const f = Math.min(1, p.maxNorm / (norm + 1e-6));
    for (let i = 0; i < p.size; i++) G[i] *= f;
  }
}
