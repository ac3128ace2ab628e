/**
 * The table of kernel cases that drives the conformance suite: every Backend
 * method at tile edges (M below, at and above the tiles; K not a multiple of
 * 4; empty block rows; one block; full density; accumulate on and off).
 *
 * A case lists its buffers (inputs and outputs, seeded), which of them are
 * outputs, and how to run it on any backend.
 *
 * @module
 */
import { BINARY_OPS, BROADCASTS, UNARY_OPS } from "../src/backends/op_table.ts";
import { unaryForward } from "../src/backends/js.ts";
import type { Backend, BackendBuffer, Broadcast, UnaryOp } from "../src/backends/types.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import { flatBlockButterfly, randomMask } from "../src/masks/patterns.ts";
import { Rng } from "../src/random.ts";
import { attentionCases } from "./_attention_cases.ts";

/** One kernel call with its seeded buffers. */
export interface KernelCase {
  /** The Backend method (one word per operation). */
  op: string;
  /** Shape and flags, for failure messages. */
  name: string;
  /** Initial contents of every buffer the call touches. */
  buffers: Float32Array[];
  /** Indices into `buffers` whose final contents are compared. */
  outputs: number[];
  /** Enqueue the call on a backend. */
  run: (be: Backend, bufs: BackendBuffer[]) => void;
  atol?: number;
  rtol?: number;
}

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

function productTol(K: number): { atol: number; rtol: number } {
  return { atol: 2e-5 * Math.sqrt(K) * 4, rtol: 1e-4 };
}

/** Layouts of the edge cases: named masks over (rows x cols) tiles of `block`. */
export function edgeLayouts(block: number): { name: string; mask: BlockMask }[] {
  const out: { name: string; mask: BlockMask }[] = [
    { name: "one block", mask: BlockMask.fromFunction(1, 1, block, () => true) },
    { name: "full 2x3", mask: BlockMask.fromFunction(2, 3, block, () => true) },
    {
      // empty first, middle and last block rows (sdd packs A from a group's first to its last used row)
      name: "empty block rows and column",
      mask: BlockMask.fromFunction(5, 3, block, (i, j) => i % 2 === 1 && j !== 1),
    },
    {
      name: "random 5x4 d=0.4",
      mask: randomMask({ outFeatures: 5 * block, inFeatures: 4 * block, block, density: 0.4, seed: block }),
    },
  ];
  if (block <= 16) {
    out.push({
      name: "flat butterfly B8 f2",
      mask: flatBlockButterfly({
        outFeatures: 8 * block,
        inFeatures: 8 * block,
        block,
        butterflySize: 8,
        nFactors: 2,
      }),
    });
  }
  return out;
}

function gemmCases(rng: Rng): KernelCase[] {
  const cases: KernelCase[] = [];
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 5],
    [3, 5, 7],
    [4, 16, 12],
    [5, 12, 4],
    [8, 8, 8],
    [17, 33, 19],
    [64, 48, 64],
    [65, 37, 130],
    [257, 20, 33],
  ];
  for (const [M, N, K] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const accumulate of [false, true]) {
          const alpha = accumulate ? 0.5 : 1;
          cases.push({
            op: "gemm",
            name: `M=${M} N=${N} K=${K} transA=${transA} transB=${transB} acc=${accumulate} alpha=${alpha}`,
            buffers: [randn(rng, M * K), randn(rng, K * N), randn(rng, M * N)],
            outputs: [2],
            run: (be, [a, b, c]) => be.gemm(a, b, c, { M, N, K, transA, transB, accumulate, alpha }),
            ...productTol(K),
          });
        }
      }
    }
  }
  // batched, default and explicit (padded) strides
  for (const [M, N, K, batch] of [[3, 5, 7, 4], [16, 16, 9, 3]]) {
    cases.push({
      op: "gemm",
      name: `batch=${batch} M=${M} N=${N} K=${K} transA=true`,
      buffers: [randn(rng, batch * M * K), randn(rng, batch * K * N), randn(rng, batch * M * N)],
      outputs: [2],
      run: (be, [a, b, c]) =>
        be.gemm(a, b, c, { M, N, K, transA: true, transB: false, accumulate: false, batch }),
      ...productTol(K),
    });
    const sA = M * K + 3, sB = K * N + 1, sC = M * N + 2;
    cases.push({
      op: "gemm",
      name: `batch=${batch} strided M=${M} N=${N} K=${K} transB=true acc`,
      buffers: [randn(rng, batch * sA), randn(rng, batch * sB), randn(rng, batch * sC)],
      outputs: [2],
      run: (be, [a, b, c]) =>
        be.gemm(a, b, c, {
          M,
          N,
          K,
          transA: false,
          transB: true,
          accumulate: true,
          batch,
          strideA: sA,
          strideB: sB,
          strideC: sC,
        }),
      ...productTol(K),
    });
  }
  return cases;
}

function blockSparseCases(rng: Rng): KernelCase[] {
  const cases: KernelCase[] = [];
  for (const block of [1, 4, 8, 16, 32]) {
    for (const { name, mask } of edgeLayouts(block)) {
      const layout = mask.toBSR();
      const N = layout.rows * block, K = layout.cols * block, nnzV = layout.nnz * block * block;
      const Ms = block === 32 ? [1, 5, 64] : [1, 3, 64, 257];
      for (const M of Ms) {
        for (const accumulate of [false, true]) {
          cases.push({
            op: "dds",
            name: `forward ${name} b=${block} M=${M} acc=${accumulate}`,
            buffers: [randn(rng, M * K), randn(rng, nnzV), randn(rng, M * N)],
            outputs: [2],
            run: (be, [x, w, y]) => be.dds(x, w, y, { M, layout, transW: true, accumulate }),
            ...productTol(K),
          });
          cases.push({
            op: "dds",
            name: `backward ${name} b=${block} M=${M} acc=${accumulate}`,
            buffers: [randn(rng, M * N), randn(rng, nnzV), randn(rng, M * K)],
            outputs: [2],
            run: (be, [x, w, y]) => be.dds(x, w, y, { M, layout, transW: false, accumulate }),
            ...productTol(N),
          });
        }
        // sdd: W (+)= op(A)·op(B) with inner dimension M (dW = dYᵀ·X) and the other transposes;
        // training's dW = dYᵀ·X is transA true, transB false, both with and without accumulate.
        for (
          const [transA, transB, accumulate] of [
            [true, false, false],
            [true, false, true],
            [false, false, false],
            [false, true, true],
            [true, true, false],
          ]
        ) {
          cases.push({
            op: "sdd",
            name: `${name} b=${block} inner=${M} transA=${transA} transB=${transB} acc=${accumulate}`,
            buffers: [randn(rng, M * N), randn(rng, M * K), randn(rng, nnzV)],
            outputs: [2],
            run: (be, [a, b, w]) => be.sdd(a, b, w, { layout, K: M, transA, transB, accumulate }),
            ...productTol(M),
          });
        }
      }
    }
  }
  return cases;
}

function rowsCases(rng: Rng): KernelCase[] {
  const cases: KernelCase[] = [];
  const shapes: [number, number][] = [[1, 1], [1, 10], [3, 7], [16, 33], [65, 128], [130, 3]];
  for (const [M, N] of shapes) {
    for (const accumulate of [false, true]) {
      cases.push({
        op: "sumRows",
        name: `M=${M} N=${N} acc=${accumulate}`,
        buffers: [randn(rng, M * N), randn(rng, N)],
        outputs: [1],
        run: (be, [x, y]) => be.sumRows(x, y, { M, N, accumulate }),
        ...productTol(M),
      });
      cases.push({
        op: "sumCols",
        name: `M=${M} N=${N} acc=${accumulate}`,
        buffers: [randn(rng, M * N), randn(rng, M)],
        outputs: [1],
        run: (be, [x, y]) => be.sumCols(x, y, { M, N, accumulate }),
        ...productTol(N),
      });
      cases.push({
        op: "sumSquares",
        name: `size=${M * N} acc=${accumulate}`,
        buffers: [randn(rng, M * N), randn(rng, 1)],
        outputs: [1],
        run: (be, [x, y]) => be.sumSquares(x, y, { size: M * N, accumulate }),
        atol: 1e-4,
        rtol: 1e-4,
      });
      cases.push({
        op: "gatedCombineGrad",
        name: `M=${M} N=${N} acc=${accumulate}`,
        buffers: [
          randn(rng, M * N),
          randn(rng, M * N),
          randn(rng, M * N),
          Float32Array.from({ length: M }, () => rng.uniform()),
          randn(rng, M * N),
          randn(rng, M * N),
          randn(rng, M),
        ],
        outputs: [4, 5, 6],
        run: (be, [dy, s, l, g, ds, dl, dg]) =>
          be.gatedCombineGrad(dy, s, l, g, ds, dl, dg, { M, N, accumulate }),
        ...productTol(N),
      });
      cases.push({
        op: "softmaxGrad",
        name: `M=${M} N=${N} acc=${accumulate}`,
        buffers: [softmaxRows(randn(rng, M * N, 2), M, N), randn(rng, M * N), randn(rng, M * N)],
        outputs: [2],
        run: (be, [y, dy, dx]) => be.softmaxGrad(y, dy, dx, { M, N, accumulate }),
      });
      const labels = Float32Array.from({ length: M }, () => rng.int(N));
      const probs = softmaxRows(randn(rng, M * N, 2), M, N);
      cases.push({
        op: "crossEntropyGrad",
        name: `M=${M} N=${N} acc=${accumulate}`,
        buffers: [probs, labels, randn(rng, M), randn(rng, M * N)],
        outputs: [3],
        run: (be, [p, l, dl, dx]) => be.crossEntropyGrad(p, l, dl, dx, { M, N, accumulate }),
      });
      cases.push({
        op: "layerNormGrad",
        name: `M=${M} N=${N} acc=${accumulate}`,
        buffers: [
          randn(rng, M * N),
          randn(rng, M * N),
          randn(rng, N),
          randn(rng, M),
          Float32Array.from({ length: M }, () => 0.5 + rng.uniform()),
          randn(rng, M * N),
          randn(rng, N),
          randn(rng, N),
        ],
        outputs: [5, 6, 7],
        run: (be, [dy, x, g, mu, rs, dx, dg, db]) =>
          be.layerNormGrad(dy, x, g, mu, rs, dx, dg, db, { M, N, accumulate }),
        atol: 1e-4 * Math.sqrt(M * N),
        rtol: 1e-4,
      });
    }
    cases.push({
      op: "softmax",
      name: `M=${M} N=${N} in place (y aliases x)`,
      buffers: [randn(rng, M * N, 3)],
      outputs: [0],
      run: (be, [x]) => be.softmax(x, x, { M, N }),
    });
    cases.push({
      op: "softmax",
      name: `M=${M} N=${N} (large logits)`,
      buffers: [randn(rng, M * N, 30), new Float32Array(M * N)],
      outputs: [1],
      run: (be, [x, y]) => be.softmax(x, y, { M, N }),
    });
    const labels = Float32Array.from({ length: M }, () => rng.int(N));
    cases.push({
      op: "crossEntropy",
      name: `M=${M} N=${N} (large logits)`,
      buffers: [randn(rng, M * N, 30), labels, new Float32Array(M * N), new Float32Array(M)],
      outputs: [2, 3],
      run: (be, [x, l, p, o]) => be.crossEntropy(x, l, p, o, { M, N }),
      atol: 1e-4,
      rtol: 1e-5,
    });
    for (const bias of [true, false]) {
      cases.push({
        op: "gatedCombine",
        name: `M=${M} N=${N} bias=${bias}`,
        buffers: [
          randn(rng, M * N),
          randn(rng, M * N),
          Float32Array.from({ length: M }, () => rng.uniform()),
          randn(rng, N),
          randn(rng, M * N),
        ],
        outputs: [4],
        run: (be, [s, l, g, b, y]) => be.gatedCombine(s, l, g, b, y, { M, N, bias }),
      });
    }
    cases.push({
      op: "layerNorm",
      name: `M=${M} N=${N}`,
      buffers: [
        randn(rng, M * N, 3).map((v) => v + 5),
        randn(rng, N),
        randn(rng, N),
        new Float32Array(M * N),
        new Float32Array(M),
        new Float32Array(M),
      ],
      outputs: [3, 4, 5],
      run: (be, [x, g, b, y, mu, rs]) => be.layerNorm(x, g, b, y, mu, rs, { M, N, eps: 1e-5 }),
      atol: 1e-4,
      rtol: 1e-4,
    });
    const rows = 5;
    const idx = Float32Array.from({ length: M }, () => rng.int(rows));
    cases.push({
      op: "gatherRows",
      name: `M=${M} N=${N} rows=${rows}`,
      buffers: [randn(rng, rows * N), idx, randn(rng, M * N)],
      outputs: [2],
      run: (be, [t, i, o]) => be.gatherRows(t, i, o, { M, N }),
    });
    cases.push({
      op: "scatterAddRows",
      name: `M=${M} N=${N} rows=${rows} (repeated indices)`,
      buffers: [randn(rng, M * N), idx, randn(rng, rows * N)],
      outputs: [2],
      run: (be, [g, i, t]) => be.scatterAddRows(g, i, t, { M, N }),
      atol: 1e-4,
    });
    cases.push({
      op: "transpose",
      name: `B=3 M=${M} N=${N}`,
      buffers: [randn(rng, 3 * M * N), new Float32Array(3 * M * N)],
      outputs: [1],
      run: (be, [x, y]) => be.transpose(x, y, { B: 3, M, N }),
      atol: 0,
      rtol: 0,
    });
  }
  return cases;
}

function softmaxRows(x: Float32Array, M: number, N: number): Float32Array {
  const y = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    let mx = -Infinity, s = 0;
    for (let j = 0; j < N; j++) mx = Math.max(mx, x[i * N + j]);
    for (let j = 0; j < N; j++) s += Math.exp(x[i * N + j] - mx);
    for (let j = 0; j < N; j++) y[i * N + j] = Math.exp(x[i * N + j] - mx) / s;
  }
  return y;
}

function elementwiseCases(rng: Rng): KernelCase[] {
  const cases: KernelCase[] = [];
  const shapes: [number, number][] = [[1, 1], [3, 5], [4, 4], [7, 33], [64, 130]];
  const bLength: Record<Broadcast, (M: number, N: number) => number> = {
    full: (M, N) => M * N,
    row: (_, N) => N,
    col: (M) => M,
    scalar: () => 1,
  };
  for (const [M, N] of shapes) {
    const size = M * N;
    for (const op of BINARY_OPS) {
      for (const bcast of BROADCASTS) {
        const b = randn(rng, bLength[bcast](M, N));
        if (op === "div") {
          for (let i = 0; i < b.length; i++) b[i] = Math.sign(b[i] || 1) * (0.5 + Math.abs(b[i]));
        }
        cases.push({
          op: "binary",
          name: `${op} ${bcast} M=${M} N=${N}`,
          buffers: [randn(rng, size), b, randn(rng, size)],
          outputs: [2],
          run: (be, [x, y, o]) => be.binary(op, x, y, o, { M, N, bcast }),
        });
      }
      cases.push({
        op: "binary",
        name: `${op} in place (out aliases a) M=${M} N=${N}`,
        buffers: [randn(rng, size), randn(rng, N).map((v) => v + 3)],
        outputs: [0],
        run: (be, [x, y]) => be.binary(op, x, y, x, { M, N, bcast: "row" }),
      });
    }
    for (const op of UNARY_OPS) {
      const x = randn(rng, size, 2);
      if (op === "log" || op === "sqrt") { for (let i = 0; i < size; i++) x[i] = 0.1 + Math.abs(x[i]); }
      cases.push({
        op: "unary",
        name: `${op} size=${size}`,
        buffers: [x, new Float32Array(size)],
        outputs: [1],
        run: (be, [a, y]) => be.unary(op, a, y, { size }),
        atol: 1e-5,
        rtol: 1e-5,
      });
      cases.push({
        op: "unary",
        name: `${op} in place (y aliases x) size=${size}`,
        buffers: [x.slice()],
        outputs: [0],
        run: (be, [a]) => be.unary(op, a, a, { size }),
        atol: 1e-5,
        rtol: 1e-5,
      });
      for (const accumulate of [false, true]) {
        const y = x.map((v) => unaryRef(op, v));
        cases.push({
          op: "unaryGrad",
          name: `${op} size=${size} acc=${accumulate}`,
          buffers: [x, y, randn(rng, size), randn(rng, size)],
          outputs: [3],
          run: (be, [a, b, dy, dx]) => be.unaryGrad(op, a, b, dy, dx, { size, accumulate }),
          atol: 1e-5,
          rtol: 1e-4,
        });
      }
    }
    for (const accumulate of [false, true]) {
      cases.push({
        op: "scale",
        name: `size=${size} acc=${accumulate}`,
        buffers: [randn(rng, size), randn(rng, size)],
        outputs: [1],
        run: (be, [x, y]) => be.scale(x, y, { size, alpha: -1.5, beta: 0.25, accumulate }),
      });
    }
    cases.push({
      op: "scale",
      name: `in place size=${size}`,
      buffers: [randn(rng, size)],
      outputs: [0],
      run: (be, [x]) => be.scale(x, x, { size, alpha: 2, beta: -1, accumulate: false }),
    });
    cases.push({
      op: "fill",
      name: `size=${size}`,
      buffers: [randn(rng, size)],
      outputs: [0],
      run: (be, [x]) => be.fill(x, { size, value: 0.75 }),
    });
    cases.push({
      op: "copy",
      name: `size=${size} with offsets`,
      buffers: [randn(rng, size + 3), randn(rng, size + 5)],
      outputs: [1],
      run: (be, [x, y]) => be.copy(x, y, { size, srcOffset: 3, dstOffset: 2 }),
      atol: 0,
      rtol: 0,
    });
    // optimizers
    for (const step of [1, 7]) {
      cases.push({
        op: "adamw",
        name: `size=${size} step=${step}`,
        buffers: [
          randn(rng, size),
          randn(rng, size),
          randn(rng, size, 0.1),
          randn(rng, size, 0.1).map(Math.abs),
        ],
        outputs: [0, 2, 3],
        run: (be, [p, g, m, v]) =>
          be.adamw(p, g, m, v, {
            size,
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weightDecay: 0.05,
            step,
          }),
        atol: 1e-5,
        rtol: 1e-4,
      });
    }
    for (
      const [momentum, nesterov, first] of [[0, false, true], [0.9, false, true], [0.9, false, false], [
        0.9,
        true,
        false,
      ]] as const
    ) {
      cases.push({
        op: "sgd",
        name: `size=${size} momentum=${momentum} nesterov=${nesterov} first=${first}`,
        buffers: [randn(rng, size), randn(rng, size), randn(rng, size)],
        outputs: [0, 2],
        run: (be, [p, g, b]) =>
          be.sgd(p, g, b, { size, lr: 0.1, momentum, dampening: 0.1, nesterov, weightDecay: 0.01, first }),
      });
    }
    for (const normSq of [0.5, 400]) {
      cases.push({
        op: "clipScale",
        name: `size=${size} normSq=${normSq}`,
        buffers: [randn(rng, size), Float32Array.of(normSq)],
        outputs: [0],
        run: (be, [g, n]) => be.clipScale(g, n, { size, maxNorm: 1 }),
      });
    }
  }
  return cases;
}

function unaryRef(op: UnaryOp, x: number): number {
  switch (op) {
    case "gelu":
    case "geluTanh":
    case "sqrt":
      return unaryForward(op, x);
    case "relu":
      return Math.max(0, x);
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

/** Every kernel case, built from one seed. */
export function kernelCases(seed = 1234): KernelCase[] {
  const rng = new Rng(seed);
  return [
    ...gemmCases(rng),
    ...blockSparseCases(rng),
    ...rowsCases(rng),
    ...elementwiseCases(rng),
    ...attentionCases(),
  ];
}

/** Run a case on a backend: upload, enqueue, read the outputs back, free. */
export async function runCase(be: Backend, c: KernelCase): Promise<Float32Array[]> {
  const bufs = c.buffers.map((b) => be.upload(b));
  try {
    c.run(be, bufs);
    be.flush();
    return await Promise.all(c.outputs.map((i) => be.read(bufs[i])));
  } finally {
    for (const b of bufs) be.free(b);
  }
}
