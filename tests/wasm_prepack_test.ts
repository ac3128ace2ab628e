/**
 * The wasm backend's packed GEMM packs op(B) whole once when the same B (same version, same shape) comes
 * back, and reads that copy on later calls instead of packing it in every part: the cached calls give the
 * bits of the first (uncached) call on every edge of the blocking (N not a multiple of the 8-wide tile,
 * K over several 256-row slices, N over the 2048-column slice, transB both ways, accumulate), on 1 to 4
 * threads; any change to B (a write, a kernel writing it in place or as its output) gives the new B's product
 * (float64 reference); the first call on a version makes no copy; free and dispose release it.
 */
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import type { BackendBuffer } from "../src/backends/types.ts";
import { Rng } from "../src/random.ts";
import { assertClose, assertEquals, assertOk } from "./_assert.ts";

const rng = new Rng(12);
const rnd = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() - 0.5);

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
}

function gemm64(a: Float32Array, b: Float32Array, c0: Float32Array, p: Case): Float32Array {
  const { M, N, K, transA, transB, accumulate } = p;
  const out = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = accumulate ? c0[i * N + j] : 0;
      for (let k = 0; k < K; k++) {
        s += (transA ? a[k * M + i] : a[i * K + k]) * (transB ? b[j * K + k] : b[k * N + j]);
      }
      out[i * N + j] = s;
    }
  }
  return out;
}

// Runs C (+)= op(A)·op(B) with a fresh C holding c0.
function run(be: WasmBackend, a: BackendBuffer, b: BackendBuffer, c0: Float32Array, p: Case): Float32Array {
  const c = be.upload(c0);
  be.gemm(a, b, c, p);
  const out = be.readSync(c);
  be.free(c);
  return out;
}

const CASES: Case[] = [
  // N not a multiple of 8, K over two slices of 256 plus a tail not a multiple of 4
  { M: 37, N: 61, K: 530, transA: false, transB: false, accumulate: false },
  { M: 37, N: 61, K: 530, transA: true, transB: true, accumulate: true },
  // N over the 2048-column slice (split by N on threads), K just over one slice
  { M: 20, N: 2100, K: 259, transA: false, transB: true, accumulate: false },
  { M: 20, N: 2100, K: 259, transA: true, transB: false, accumulate: true },
  // M larger than N (threads split by M), small odd K
  { M: 200, N: 45, K: 70, transA: false, transB: true, accumulate: true },
  { M: 130, N: 100, K: 257, transA: true, transB: false, accumulate: false },
];

const label = (p: Case) => `${p.M}x${p.N}x${p.K} tA=${p.transA} tB=${p.transB} acc=${p.accumulate}`;

Deno.test("wasm gemm: B packed once on its second call gives the uncached bits on 1 to 4 threads", async () => {
  const bes = [await createWasmBackend({ threads: 1 })];
  for (const threads of [2, 3, 4]) bes.push(await createWasmBackend({ threads, minSplitWork: 0 }));
  for (const be of bes) be.thinProducts = false;
  try {
    for (const p of CASES) {
      const a = rnd(p.M * p.K), b = rnd(p.K * p.N), c0 = rnd(p.M * p.N);
      let first: Float32Array | undefined;
      for (const be of bes) {
        const ab = be.upload(a), bb = be.upload(b);
        const uncached = run(be, ab, bb, c0, p);
        assertEquals(be.packedBytes, 0, `${label(p)}: the first call on a B makes no packed copy`);
        const packing = run(be, ab, bb, c0, p);
        assertOk(be.packedBytes > 0, `${label(p)}: the second call packs B`);
        const cached = run(be, ab, bb, c0, p);
        const l = `${label(p)} threads ${be.threads}`;
        assertEquals(packing, uncached, `${l}: the call that packs B`);
        assertEquals(cached, uncached, `${l}: a call on the packed B`);
        if (first === undefined) {
          first = uncached;
          assertClose(uncached, gemm64(a, b, c0, p), { atol: 1e-4, rtol: 1e-4, label: l });
        } else assertEquals(uncached, first, l);
        be.free(ab);
        be.free(bb);
        assertEquals(be.packedBytes, 0, `${l}: free releases the packed B`);
      }
    }
  } finally {
    for (const be of bes) be.dispose();
  }
});

Deno.test("wasm gemm: a changed B (a write, a kernel, another shape) is packed again", async () => {
  for (const threads of [1, 3]) {
    const be = await createWasmBackend({ threads, minSplitWork: 0 });
    be.thinProducts = false;
    try {
      const p: Case = { M: 40, N: 70, K: 300, transA: false, transB: false, accumulate: false };
      const a = rnd(p.M * p.K);
      let b: Float32Array = rnd(p.K * p.N);
      const ab = be.upload(a), bb = be.upload(b);
      const check = (what: string, q = p) => {
        const c0 = new Float32Array(q.M * q.N);
        for (let r = 0; r < 3; r++) {
          assertClose(run(be, ab, bb, c0, q), gemm64(a, b, c0, q), {
            atol: 1e-4,
            rtol: 1e-4,
            label: `threads ${threads}, ${what}, call ${r}`,
          });
        }
      };
      check("before any change");
      assertOk(be.packedBytes > 0);
      // a write
      b = rnd(p.K * p.N);
      be.write(bb, b);
      check("after write");
      // a kernel writing B in place
      be.scale(bb, bb, { size: b.length, alpha: -2, beta: 0, accumulate: false });
      b = b.map((v) => -2 * v);
      check("after scale in place");
      // the same buffer read as another shape (transB, K and N swapped): a different op(B)
      check("transB with K and N swapped", {
        M: 40,
        N: 300,
        K: 70,
        transA: false,
        transB: true,
        accumulate: false,
      });
      check("back to the first shape");
      // B written as the C of another gemm
      const sq: Case = { M: 300, N: 70, K: 30, transA: false, transB: false, accumulate: true };
      const x = rnd(300 * 30), y = rnd(30 * 70);
      be.gemm(be.upload(x), be.upload(y), bb, sq);
      b = gemm64(x, y, b, sq);
      assertClose(be.readSync(bb), b, { atol: 1e-4, rtol: 1e-4, label: `threads ${threads}, B as a C` });
      b = be.readSync(bb);
      check("after B was the C of another gemm");
      const before = be.packedBytes;
      be.free(bb);
      assertOk(be.packedBytes < before, "free drops the packed B");
      be.dispose();
      assertEquals(be.packedBytes, 0, "dispose drops every packed copy");
    } finally {
      be.dispose();
    }
  }
});
