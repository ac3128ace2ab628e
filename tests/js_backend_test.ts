/**
 * The js reference backend against independent dense float64 computations:
 * block-sparse weights are densified and multiplied naively.
 */
import { erfc, JsBackend, unaryDerivative, unaryForward } from "../src/backends/js.ts";
import type { BlockLayout } from "../src/backends/types.ts";
import { edgeLayouts } from "./_cases.ts";
import { assertClose, assertEquals, assertOk } from "./_assert.ts";
import { Rng } from "../src/random.ts";

const be = new JsBackend();

function randn(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Dense (R, C) float64 matrix of block-sparse values. */
function densify(layout: BlockLayout, w: Float32Array): Float64Array {
  const b = layout.block, C = layout.cols * b;
  const d = new Float64Array(layout.rows * b * C);
  for (let i = 0; i < layout.rows; i++) {
    for (let e = layout.rowPtr[i]; e < layout.rowPtr[i + 1]; e++) {
      const j = layout.colIdx[e];
      for (let r = 0; r < b; r++) {
        for (let c = 0; c < b; c++) d[(i * b + r) * C + j * b + c] = w[e * b * b + r * b + c];
      }
    }
  }
  return d;
}

/** C = op(A)·op(B) in float64. */
function matmul64(
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
): Float64Array {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        s += (transA ? A[k * M + i] : A[i * K + k]) * (transB ? B[j * K + k] : B[k * N + j]);
      }
      C[i * N + j] = s;
    }
  }
  return C;
}

async function run(
  op: (bufs: ReturnType<JsBackend["upload"]>[]) => void,
  inputs: Float32Array[],
  out: number,
) {
  const bufs = inputs.map((x) => be.upload(x));
  op(bufs);
  return await be.read(bufs[out]);
}

Deno.test("js gemm matches a naive float64 product for every transpose and accumulate", async () => {
  const rng = new Rng(1);
  for (const [M, N, K] of [[1, 1, 1], [3, 5, 7], [17, 4, 9]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const A = randn(rng, M * K), B = randn(rng, K * N), C0 = randn(rng, M * N);
        const ref = matmul64(A, B, M, N, K, transA, transB);
        const got = await run(
          ([a, b, c]) => be.gemm(a, b, c, { M, N, K, transA, transB, accumulate: true, alpha: 2 }),
          [
            A,
            B,
            C0,
          ],
          2,
        );
        assertClose(got, ref.map((v, i) => C0[i] + 2 * v), {
          atol: 1e-5,
          label: `gemm ${M}x${N}x${K} ${transA} ${transB}`,
        });
      }
    }
  }
});

Deno.test("js dds forward and backward match the densified weight", async () => {
  const rng = new Rng(2);
  for (const block of [1, 4, 16, 32]) {
    for (const { name, mask } of edgeLayouts(block)) {
      const L = mask.toBSR(), N = L.rows * block, K = L.cols * block;
      const W = randn(rng, L.nnz * block * block), Wd = densify(L, W);
      for (const M of [1, 3, 64]) {
        const X = randn(rng, M * K);
        const y = await run(
          ([x, w, o]) => be.dds(x, w, o, { M, layout: L, transW: true, accumulate: false }),
          [
            X,
            W,
            new Float32Array(M * N),
          ],
          2,
        );
        assertClose(y, matmul64(X, Wd, M, N, K, false, true), {
          atol: 1e-4,
          label: `dds fwd ${name} b${block} M${M}`,
        });
        const DY = randn(rng, M * N), DX0 = randn(rng, M * K);
        const dx = await run(
          ([x, w, o]) => be.dds(x, w, o, { M, layout: L, transW: false, accumulate: true }),
          [
            DY,
            W,
            DX0,
          ],
          2,
        );
        const ref = matmul64(DY, Wd, M, K, N, false, false).map((v, i) => v + DX0[i]);
        assertClose(dx, ref, { atol: 1e-4, label: `dds bwd ${name} b${block} M${M}` });
      }
    }
  }
});

Deno.test("js sdd computes dYᵀ·X on kept blocks only", async () => {
  const rng = new Rng(3);
  for (const block of [1, 4, 16, 32]) {
    for (const { name, mask } of edgeLayouts(block)) {
      const L = mask.toBSR(), N = L.rows * block, K = L.cols * block;
      for (const M of [1, 3, 64]) {
        const DY = randn(rng, M * N), X = randn(rng, M * K);
        const dw = await run(
          ([a, b, w]) => be.sdd(a, b, w, { layout: L, K: M, transA: true, transB: false, accumulate: false }),
          [
            DY,
            X,
            new Float32Array(L.nnz * block * block),
          ],
          2,
        );
        const full = matmul64(DY, X, N, K, M, true, false);
        // every kept block equals the dense product there; dropped blocks are simply absent
        const dense = densify(L, dw);
        const want = new Float64Array(N * K);
        for (let r = 0; r < N; r++) {
          for (let c = 0; c < K; c++) {
            if (mask.has(Math.floor(r / block), Math.floor(c / block))) want[r * K + c] = full[r * K + c];
          }
        }
        assertClose(dense, want, { atol: 1e-4, label: `sdd ${name} b${block} M${M}` });
      }
    }
  }
});

Deno.test("js memory: alloc zeros, write at an offset, read copies", async () => {
  const b = be.alloc(5);
  assertEquals(Array.from(await be.read(b)), [0, 0, 0, 0, 0]);
  be.write(b, Float32Array.of(1, 2), 3);
  const r = await be.read(b);
  assertEquals(Array.from(r), [0, 0, 0, 1, 2]);
  r[0] = 9;
  assertEquals((await be.read(b))[0], 0);
});

Deno.test("js: gelu (exact, erf) and geluTanh match Python's float64 math.erf / tanh formulas; erfc in both tails", async () => {
  const xs: number[] = [];
  for (let x = -12; x <= 12; x += 0.0625) xs.push(x);
  xs.push(1e-8, -1e-8, 0.5, -0.5, 3.14159, -7.5);
  const code = [
    "import json, math, sys",
    "xs = json.load(sys.stdin)",
    "print(json.dumps([[x * 0.5 * math.erfc(-x / math.sqrt(2)), 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))), math.erfc(x)] for x in xs]))",
  ].join("\n");
  const py = new Deno.Command("/usr/bin/python3", { args: ["-c", code], stdin: "piped", stdout: "piped" })
    .spawn();
  const w = py.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(xs)));
  await w.close();
  const out = await py.output();
  assertOk(out.success, "python3 ran");
  const ref: [number, number, number][] = JSON.parse(new TextDecoder().decode(out.stdout));
  xs.forEach((x, i) => {
    const [g, gt, ec] = ref[i];
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
    assertOk(
      rel(unaryForward("gelu", x), g) < 1e-12 || Math.abs(g) < 1e-300,
      `gelu(${x}): ${unaryForward("gelu", x)} vs ${g}`,
    );
    assertOk(rel(unaryForward("geluTanh", x), gt) < 1e-12 || Math.abs(gt) < 1e-300, `geluTanh(${x})`);
    assertOk(rel(erfc(x), ec) < 1e-12 || ec < 1e-300, `erfc(${x}): ${erfc(x)} vs ${ec}`);
  });
  // the derivatives by central differences in float64
  for (const op of ["gelu", "geluTanh", "sqrt"] as const) {
    for (const x of [-3.2, -1, -0.3, 0.2, 0.9, 2.5, 4]) {
      if (op === "sqrt" && x <= 0) continue;
      const h = 1e-6, fd = (unaryForward(op, x + h) - unaryForward(op, x - h)) / (2 * h);
      const d = unaryDerivative(op, x, unaryForward(op, x));
      assertOk(Math.abs(d - fd) < 1e-8 * (1 + Math.abs(fd)), `${op}'(${x}): ${d} vs ${fd}`);
    }
  }
});
