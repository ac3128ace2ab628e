/**
 * The wasm backend's block-16 dds (each MR-row panel of X meets every block column while its rows stay
 * in L1): forward and backward, accumulate on and off, a fresh and an already packed weight, against a
 * float64 reference at tile edges (M below, at and above the register tile's rows, not a multiple of
 * them; empty block rows and columns; one block; full density), on both SIMD builds, and bit for bit the
 * same on 1 to 4 threads. The same with a low-rank term `Y += H·op(U)` fused into the kernel
 * (DdsParams.lowRank), and a projection `H = X·op(U)` made while the kernel reads X (DdsParams.project),
 * also against the js backend (which adds them by a gemm).
 */
import { JsBackend } from "../src/backends/js.ts";
import type { Backend, BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import { flatBlockButterfly, randomMask } from "../src/masks/patterns.ts";
import { Rng } from "../src/random.ts";
import { assertClose, assertEquals, assertOk } from "./_assert.ts";

const rng = new Rng(16);
const rnd = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() - 0.5);

// Y (+)= X·Wᵀ (transW) or X·W in float64, W (N, K) as BSR blocks of 16.
function dds64(
  x: Float32Array,
  w: Float32Array,
  y0: Float32Array,
  l: BlockLayout,
  M: number,
  transW: boolean,
  accumulate: boolean,
): Float64Array {
  const b = l.block, N = l.rows * b, K = l.cols * b;
  const inCols = transW ? K : N, outCols = transW ? N : K;
  const out = Float64Array.from(accumulate ? y0 : new Float32Array(M * outCols));
  for (let i = 0; i < l.rows; i++) {
    for (let e = l.rowPtr[i]; e < l.rowPtr[i + 1]; e++) {
      const j = l.colIdx[e];
      for (let r = 0; r < b; r++) {
        for (let c = 0; c < b; c++) {
          const v = w[(e * b + r) * b + c], n = i * b + r, k = j * b + c;
          const from = transW ? k : n, to = transW ? n : k;
          for (let m = 0; m < M; m++) out[m * outCols + to] += x[m * inCols + from] * v;
        }
      }
    }
  }
  return out;
}

const layouts: [string, BlockLayout][] = [
  [
    "butterfly 512x128",
    flatBlockButterfly({ outFeatures: 512, inFeatures: 128, block: 16, butterflySize: 8, nFactors: 1 })
      .toBSR(),
  ],
  [
    "butterfly 128x512",
    flatBlockButterfly({ outFeatures: 128, inFeatures: 512, block: 16, butterflySize: 8, nFactors: 1 })
      .toBSR(),
  ],
  [
    "random 0.3 with empty rows and columns",
    randomMask({ outFeatures: 112, inFeatures: 80, block: 16, density: 0.3, seed: 3 }).toBSR(),
  ],
  ["one block", BlockMask.fromFunction(3, 2, 16, (i, j) => i === 1 && j === 0).toBSR()],
  ["full", BlockMask.fromFunction(2, 3, 16, () => true).toBSR()],
];

async function run(
  be: WasmBackend,
  l: BlockLayout,
  x: Float32Array,
  w: Float32Array,
  y0: Float32Array,
  M: number,
  transW: boolean,
  accumulate: boolean,
): Promise<Float32Array[]> {
  const xb = be.upload(x), wb = be.upload(w), outs: Float32Array[] = [];
  // the first call packs the weight, the second reads the packed copy
  for (let r = 0; r < 2; r++) {
    const y = be.upload(y0);
    be.dds(xb, wb, y, { M, layout: l, transW, accumulate });
    outs.push(await be.read(y));
    be.free(y);
  }
  be.free(xb);
  be.free(wb);
  return outs;
}

Deno.test("wasm dds block 16: matches float64 at tile edges and agrees bit for bit on 1 to 4 threads", async () => {
  for (const variant of ["relaxed", "simd128"] as const) {
    const bes = [await createWasmBackend({ threads: 1, variant })];
    for (const threads of [2, 3, 4]) bes.push(await createWasmBackend({ threads, variant, minSplitWork: 0 }));
    try {
      for (const [name, l] of layouts) {
        for (const M of [1, 4, 5, 6, 7, 13, 37]) {
          for (const transW of [true, false]) {
            for (const accumulate of [false, true]) {
              const inCols = (transW ? l.cols : l.rows) * 16, outCols = (transW ? l.rows : l.cols) * 16;
              const x = rnd(M * inCols), w = rnd(l.nnz * 256), y0 = rnd(M * outCols);
              const label = `${variant} ${name} M=${M} transW=${transW} acc=${accumulate}`;
              const ref = dds64(x, w, y0, l, M, transW, accumulate);
              const [first, packed] = await run(bes[0], l, x, w, y0, M, transW, accumulate);
              assertClose(first, ref, { atol: 1e-5, rtol: 1e-5, label });
              assertEquals(packed, first, `${label}: packed weight`);
              for (const be of bes.slice(1)) {
                const [a, b] = await run(be, l, x, w, y0, M, transW, accumulate);
                assertEquals(a, first, `${label}: ${be.threads} threads`);
                assertEquals(b, first, `${label}: ${be.threads} threads, packed weight`);
              }
            }
          }
        }
      }
    } finally {
      for (const be of bes) be.dispose();
    }
  }
});

// Y += H·op(U) in float64 on top of a reference, U (outCols, rank) when transU, (rank, outCols) otherwise.
function lowRank64(
  y: Float64Array,
  h: Float32Array,
  u: Float32Array,
  M: number,
  outCols: number,
  rank: number,
  transU: boolean,
  transH: boolean,
) {
  // H (M, rank), or (rank, M) when transH
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < outCols; n++) {
      let s = 0;
      for (let k = 0; k < rank; k++) {
        s += (transH ? h[k * M + m] : h[m * rank + k]) * (transU ? u[n * rank + k] : u[k * outCols + n]);
      }
      y[m * outCols + n] += s;
    }
  }
  return y;
}

async function runLowRank(
  be: Backend,
  l: BlockLayout,
  data: { x: Float32Array; w: Float32Array; y0: Float32Array; h: Float32Array; u: Float32Array },
  M: number,
  transW: boolean,
  accumulate: boolean,
  rank: number,
  transU: boolean,
  transH: boolean,
): Promise<Float32Array[]> {
  const [xb, wb, hb, ub] = [data.x, data.w, data.h, data.u].map((a) => be.upload(a)),
    outs: Float32Array[] = [];
  for (let r = 0; r < 2; r++) {
    const y = be.upload(data.y0);
    be.dds(xb, wb, y, { M, layout: l, transW, accumulate, lowRank: { h: hb, u: ub, rank, transU, transH } });
    outs.push(await be.read(y));
    be.free(y);
  }
  for (const b of [xb, wb, hb, ub]) be.free(b);
  return outs;
}

Deno.test("wasm dds block 16 with a low-rank term: matches float64 and js, bit for bit on 1 to 4 threads", async () => {
  const js = new JsBackend();
  for (const variant of ["relaxed", "simd128"] as const) {
    const bes = [await createWasmBackend({ threads: 1, variant })];
    for (const threads of [2, 3, 4]) bes.push(await createWasmBackend({ threads, variant, minSplitWork: 0 }));
    try {
      for (const [name, l] of layouts.slice(0, 3)) {
        for (const M of [4, 9, 13, 37]) {
          for (
            const [rank, transW, transU, accumulate, transH] of [
              [8, true, true, false, false],
              [8, false, false, true, false],
              [5, true, false, true, false],
              [1, false, true, false, false],
              [16, true, true, true, false],
              [9, false, false, true, true],
              [3, true, true, false, true],
            ] as const
          ) {
            const inCols = (transW ? l.cols : l.rows) * 16, outCols = (transW ? l.rows : l.cols) * 16;
            const data = {
              x: rnd(M * inCols),
              w: rnd(l.nnz * 256),
              y0: rnd(M * outCols),
              h: rnd(M * rank),
              u: rnd(outCols * rank),
            };
            const label =
              `${variant} ${name} M=${M} rank=${rank} transW=${transW} transU=${transU} transH=${transH} acc=${accumulate}`;
            const ref = lowRank64(
              dds64(data.x, data.w, data.y0, l, M, transW, accumulate),
              data.h,
              data.u,
              M,
              outCols,
              rank,
              transU,
              transH,
            );
            const [first, packed] = await runLowRank(
              bes[0],
              l,
              data,
              M,
              transW,
              accumulate,
              rank,
              transU,
              transH,
            );
            assertClose(first, ref, { atol: 1e-5, rtol: 1e-5, label });
            assertEquals(packed, first, `${label}: packed weight`);
            const [viaJs] = await runLowRank(js, l, data, M, transW, accumulate, rank, transU, transH);
            assertClose(viaJs, ref, { atol: 1e-5, rtol: 1e-5, label: `${label}: js` });
            for (const be of bes.slice(1)) {
              const [a, b] = await runLowRank(be, l, data, M, transW, accumulate, rank, transU, transH);
              assertEquals(a, first, `${label}: ${be.threads} threads`);
              assertEquals(b, first, `${label}: ${be.threads} threads, packed weight`);
            }
          }
        }
      }
    } finally {
      for (const be of bes) be.dispose();
    }
  }
});

Deno.test("dds with a low-rank term refuses a batch and an output that is H or U", () => {
  const js = new JsBackend();
  const l = layouts[3][1], M = 9, h = js.upload(rnd(M * 4)), u = js.upload(rnd(48 * 4));
  const x = js.upload(rnd(M * 32)), w = js.upload(rnd(l.nnz * 256)), y = js.alloc(M * 48);
  const lowRank = { h, u, rank: 4, transU: true };
  let err: unknown;
  try {
    js.dds(x, w, y, { M, layout: l, transW: true, accumulate: false, batch: 2, lowRank });
  } catch (e) {
    err = e;
  }
  assertOk(
    err instanceof RangeError && /lowRank and project take no batch, got 2/.test(err.message),
    `${err}`,
  );
  err = undefined;
  try {
    js.dds(x, w, h, { M, layout: l, transW: true, accumulate: false, lowRank });
  } catch (e) {
    err = e;
  }
  assertOk(err instanceof RangeError && /dds/.test(err.message), `${err}`);
});

async function runProject(
  be: Backend,
  l: BlockLayout,
  data: { x: Float32Array; w: Float32Array; y0: Float32Array; u: Float32Array },
  M: number,
  transW: boolean,
  accumulate: boolean,
  rank: number,
  transU: boolean,
): Promise<Float32Array[]> {
  const [xb, wb, ub] = [data.x, data.w, data.u].map((a) => be.upload(a)), outs: Float32Array[] = [];
  for (let r = 0; r < 2; r++) {
    const y = be.upload(data.y0), h = be.upload(new Float32Array(M * rank).fill(7));
    be.dds(xb, wb, y, { M, layout: l, transW, accumulate, project: { h, u: ub, rank, transU } });
    outs.push(await be.read(y), await be.read(h));
    be.free(y);
    be.free(h);
  }
  for (const b of [xb, wb, ub]) be.free(b);
  return outs;
}

Deno.test("wasm dds block 16 with a projection of X: matches float64 and js, bit for bit on 1 to 4 threads", async () => {
  const js = new JsBackend();
  for (const variant of ["relaxed", "simd128"] as const) {
    const bes = [await createWasmBackend({ threads: 1, variant })];
    for (const threads of [2, 3, 4]) bes.push(await createWasmBackend({ threads, variant, minSplitWork: 0 }));
    try {
      for (const [name, l] of [...layouts.slice(0, 4)]) {
        for (const M of [4, 9, 13, 37]) {
          for (
            const [rank, transW, transU, accumulate] of [
              [8, false, false, true],
              [8, true, true, false],
              [5, false, true, false],
              [1, true, false, true],
              [12, false, false, false],
            ] as const
          ) {
            const inCols = (transW ? l.cols : l.rows) * 16, outCols = (transW ? l.rows : l.cols) * 16;
            const data = {
              x: rnd(M * inCols),
              w: rnd(l.nnz * 256),
              y0: rnd(M * outCols),
              u: rnd(inCols * rank),
            };
            const label =
              `${variant} ${name} M=${M} rank=${rank} transW=${transW} transU=${transU} acc=${accumulate}`;
            const refY = dds64(data.x, data.w, data.y0, l, M, transW, accumulate);
            // H = X·op(U): op(U) = Uᵀ with U (rank, inCols) when transU, U (inCols, rank) otherwise
            const refH = new Float64Array(M * rank);
            for (let m = 0; m < M; m++) {
              for (let j = 0; j < rank; j++) {
                let s = 0;
                for (let k = 0; k < inCols; k++) {
                  s += data.x[m * inCols + k] * (transU ? data.u[j * inCols + k] : data.u[k * rank + j]);
                }
                refH[m * rank + j] = s;
              }
            }
            const [y, h, y2, h2] = await runProject(bes[0], l, data, M, transW, accumulate, rank, transU);
            assertClose(y, refY, { atol: 1e-5, rtol: 1e-5, label: `${label}: y` });
            assertClose(h, refH, { atol: 1e-5, rtol: 1e-5, label: `${label}: h` });
            assertEquals([y2, h2], [y, h], `${label}: packed weight`);
            const [jy, jh] = await runProject(js, l, data, M, transW, accumulate, rank, transU);
            assertClose(jy, refY, { atol: 1e-5, rtol: 1e-5, label: `${label}: js y` });
            assertClose(jh, refH, { atol: 1e-5, rtol: 1e-5, label: `${label}: js h` });
            for (const be of bes.slice(1)) {
              const outs = await runProject(be, l, data, M, transW, accumulate, rank, transU);
              assertEquals(outs, [y, h, y, h], `${label}: ${be.threads} threads`);
            }
          }
        }
      }
    } finally {
      for (const be of bes) be.dispose();
    }
  }
});
