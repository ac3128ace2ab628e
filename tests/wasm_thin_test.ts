/**
 * The wasm backend's thin products (asm/thin.ts: one of M, N, K small): every transposition at the edge
 * sizes 1, 15, 16, 17, 31, 32 and 33 and at gemmThin's k-block edges, against a float64 reference within
 * a rounding bound that holds for any summation order; and the register-tiled kernel (gemmThin) split
 * between 2, 3 and 4 threads with the same bits as one thread.
 */
import type { GemmParams } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { Rng } from "../src/random.ts";
import { assertClose, assertEquals, assertOk } from "./_assert.ts";

type Shape = [M: number, N: number, K: number, transA: boolean, transB: boolean];

// C = alpha·op(A)·op(B) (+ C0) in float64, and a bound on float32's error for any order of the k sum:
// (K + 2)·2⁻²⁴·(|alpha|·Σ|a||b| + |C0|), slightly widened.
function reference(
  a: Float32Array,
  b: Float32Array,
  c0: Float32Array,
  p: GemmParams & { alpha: number },
): { want: Float64Array; tol: Float64Array } {
  const { M, N, K, transA, transB, accumulate, alpha } = p;
  const want = new Float64Array(M * N), tol = new Float64Array(M * N);
  const u = (K + 2) * 2 ** -24 * 1.01;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0, m = 0;
      for (let k = 0; k < K; k++) {
        const x = transA ? a[k * M + i] : a[i * K + k], y = transB ? b[j * K + k] : b[k * N + j];
        s += x * y;
        m += Math.abs(x * y);
      }
      const c = accumulate ? c0[i * N + j] : 0;
      want[i * N + j] = alpha * s + c;
      tol[i * N + j] = u * (Math.abs(alpha) * m + Math.abs(c)) + 1e-30;
    }
  }
  return { want, tol };
}

function run(
  be: WasmBackend,
  a: Float32Array,
  b: Float32Array,
  c0: Float32Array,
  p: GemmParams,
): Float32Array {
  const ba = be.upload(a), bb = be.upload(b), bc = be.upload(c0);
  be.gemm(ba, bb, bc, p);
  const out = be.readSync(bc);
  for (const x of [ba, bb, bc]) be.free(x);
  return out;
}

function check(be: WasmBackend, rng: Rng, [M, N, K, transA, transB]: Shape, accumulate: boolean): void {
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const a = rand(M * K), b = rand(K * N), c0 = rand(M * N);
  const p = { M, N, K, transA, transB, accumulate, alpha: 0.75 };
  const got = run(be, a, b, c0, p);
  const { want, tol } = reference(a, b, c0, p);
  for (let e = 0; e < M * N; e++) {
    assertOk(
      Math.abs(got[e] - want[e]) <= tol[e],
      `gemm ${M}x${N}x${K} transA=${transA} transB=${transB} accumulate=${accumulate}: element ${e} ` +
        `(row ${Math.floor(e / N)}, column ${e % N}) is ${got[e]}, the float64 reference ${want[e]} ` +
        `(bound ${tol[e]})`,
    );
  }
}

// The shapes the register-tiled kernel takes, all C = Aᵀ·B (gemmThin): N of 5 to 32 (above 16 with K of
// 512 or more; full and partial 8-column strips, 6-row tiles and their last rows, k blocks of 128 and
// their edges), M of 3 to 32 with K of 1024 or more and N up to 256 (computed as (Bᵀ·A)ᵀ); and products
// beside them that stay on the older kernels (M of 1 to 3, 16 columns at a time; a gate's A·Bᵀ with N of 1 to 3,
// A·b, two rows at a time for N = 1).
const TILED: Shape[] = [];
for (
  const [M, N] of [
    [5, 5],
    [6, 6],
    [7, 7],
    [13, 8],
    [17, 9],
    [31, 15],
    [33, 16],
    [97, 16],
    [16, 16],
    [33, 17],
    [40, 31],
    [64, 32],
    [32, 32],
  ]
) {
  for (const K of [1, 15, 127, 128, 129, 300, 513, 700]) TILED.push([M, N, K, true, false]);
}
for (const [M, N, K] of [[3, 8, 1024], [5, 40, 1025], [16, 77, 1100], [17, 33, 2048], [32, 64, 1030]]) {
  TILED.push([M, N, K, true, false]);
}
for (const M of [1, 2, 3]) {
  for (const [N, K] of [[8, 1], [9, 130], [31, 7], [32, 300], [40, 2049], [77, 33]]) {
    TILED.push([M, N, K, true, false]);
  }
}
for (const M of [1, 3, 4, 5, 17, 33]) {
  for (const K of [1, 3, 4, 7, 8, 9, 12, 15, 16, 17, 33, 513]) {
    TILED.push([M, 1 + (M + K) % 3, K, false, true]);
    TILED.push([M, 1, K, false, false]);
  }
}

// A·Bᵀ with N of 4 to 10 (a head's ten classes): gemmDot's blocks of 2 rows x 5 columns, an odd last row,
// a last block narrower than 5, K below, at and off a multiple of 4
for (const M of [1, 2, 3, 7, 33]) {
  for (const N of [4, 5, 6, 9, 10]) {
    for (const K of [1, 3, 4, 17, 130, 2049]) TILED.push([M, N, K, false, true]);
  }
}

// One or two rows against a transposed B past gemmDot's ten columns (a first forward's projection x·Vᵀ,
// inference on one row): gemmDot's dots, two rows only with K of 256 or more
for (const M of [1, 2]) {
  for (const [N, K] of [[11, 1024], [32, 1024], [33, 255], [33, 256], [300, 513], [4096, 32], [1024, 7]]) {
    TILED.push([M, N, K, false, true]);
  }
}

Deno.test("wasm thin: the register-tiled thin products match a float64 reference within rounding", async () => {
  const be = await createWasmBackend({ threads: 1 });
  const rng = new Rng(12);
  try {
    for (const s of TILED) for (const accumulate of [false, true]) check(be, rng, s, accumulate);
  } finally {
    be.dispose();
  }
});

Deno.test("wasm thin: a dimension of 1, 15, 16, 17, 31, 32 or 33 in every transposition matches a float64 reference", async () => {
  const be = await createWasmBackend({ threads: 1 });
  const rng = new Rng(13);
  try {
    for (const d of [1, 15, 16, 17, 31, 32, 33]) {
      for (let at = 0; at < 3; at++) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const o = [37 + 2 * rng.int(30), 37 + 2 * rng.int(30)];
            const [M, N, K] = at === 0 ? [d, o[0], o[1]] : at === 1 ? [o[0], d, o[1]] : [o[0], o[1], d];
            check(be, rng, [M, N, K, transA, transB], rng.int(2) === 1);
          }
        }
      }
    }
  } finally {
    be.dispose();
  }
});

for (const threads of [2, 3, 4]) {
  Deno.test(`wasm thin: gemmThin, gemmDot and gemmCols on ${threads} threads give one thread's bits`, async () => {
    const one = await createWasmBackend({ threads: 1 });
    const many = await createWasmBackend({ threads, minSplitWork: 0 });
    assertEquals(many.threads, threads);
    const rng = new Rng(40 + threads);
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    try {
      const shapes: Shape[] = [
        [97, 16, 300, true, false],
        [61, 32, 600, true, false],
        [203, 13, 129, true, false],
        [25, 8, 2048, true, false],
        [64, 5, 17, true, false],
        [1, 203, 300, true, false],
        [16, 203, 1030, true, false],
        [2, 77, 129, true, false],
        [33, 10, 2049, false, true],
        [7, 9, 130, false, true],
        [128, 4, 515, false, true],
        [33, 1, 515, false, true],
        [20, 1, 77, false, false],
        [3, 50, 130, true, false],
      ];
      for (const [M, N, K, transA, transB] of shapes) {
        for (const accumulate of [false, true]) {
          const a = rand(M * K), b = rand(K * N), c0 = rand(M * N);
          const p = { M, N, K, transA, transB, accumulate, alpha: 1.25 };
          const want = run(one, a, b, c0, p);
          assertClose(run(many, a, b, c0, p), want, {
            atol: 0,
            rtol: 0,
            label:
              `${threads} threads: gemm ${M}x${N}x${K} transA=${transA} transB=${transB} acc=${accumulate}`,
          });
        }
      }
      // a batch of products at strides (B's last columns packed per entry)
      const [M, N, K, batch] = [40, 11, 200, 3];
      const a = rand(batch * M * K), b = rand(batch * K * N), c0 = rand(batch * M * N);
      const p = { M, N, K, transA: true, transB: false, accumulate: true, alpha: 0.5, batch };
      assertClose(run(many, a, b, c0, p), run(one, a, b, c0, p), {
        atol: 0,
        rtol: 0,
        label: `${threads} threads: batched gemm`,
      });
    } finally {
      one.dispose();
      many.dispose();
    }
  });
}

Deno.test("wasm thin: K = 0 gives alpha·0 (+ C) on the thin shapes", async () => {
  const be = await createWasmBackend({ threads: 1 });
  try {
    for (const [M, N] of [[40, 16], [1, 64], [16, 100]]) {
      for (const accumulate of [false, true]) {
        const c0 = Float32Array.from({ length: M * N }, (_, i) => i + 1);
        const got = run(be, new Float32Array(0), new Float32Array(0), c0, {
          M,
          N,
          K: 0,
          transA: true,
          transB: false,
          accumulate,
          alpha: 2,
        });
        assertClose(got, accumulate ? c0 : new Float32Array(M * N), {
          atol: 0,
          rtol: 0,
          label: `gemm ${M}x${N}x0 accumulate=${accumulate}`,
        });
      }
    }
  } finally {
    be.dispose();
  }
});

// The packed GEMM's blocking for thin products: row blocks of more than MC = 96 rows when K is short (up to
// MC·KC values of A: 768 rows at K = 32, two blocks at 800), op(B) packed 128 KiB of panels at a time for a
// single row block (several chunks, a partial last panel, N past NC = 2048), in every transposition.
const PACKED: Shape[] = [];
for (
  const [M, N, K] of [[10, 300, 256], [33, 1000, 33], [7, 2100, 10], [97, 130, 128], [200, 70, 20], [
    800,
    24,
    32,
  ]]
) {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) PACKED.push([M, N, K, transA, transB]);
  }
}

Deno.test("wasm thin: the packed gemm's row blocks and chunks of B match a float64 reference", async () => {
  const be = await createWasmBackend({ threads: 1 });
  const rng = new Rng(14);
  try {
    for (const s of PACKED) check(be, rng, s, rng.int(2) === 1);
  } finally {
    be.dispose();
  }
});

Deno.test("wasm thin: the packed gemm's row blocks and chunks of B give one thread's bits on 2, 3 and 4", async () => {
  const one = await createWasmBackend({ threads: 1 });
  const rng = new Rng(15);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  try {
    for (const threads of [2, 3, 4]) {
      const many = await createWasmBackend({ threads, minSplitWork: 0 });
      try {
        for (const [M, N, K, transA, transB] of PACKED) {
          const a = rand(M * K), b = rand(K * N), c0 = rand(M * N);
          const p = { M, N, K, transA, transB, accumulate: true, alpha: 0.5 };
          assertClose(run(many, a, b, c0, p), run(one, a, b, c0, p), {
            atol: 0,
            rtol: 0,
            label: `${threads} threads: gemm ${M}x${N}x${K} transA=${transA} transB=${transB}`,
          });
        }
      } finally {
        many.dispose();
      }
    }
  } finally {
    one.dispose();
  }
});
