/**
 * The wasm backend's block-16 dds (each MR-row panel of X meets every block column while its rows stay
 * in L1): forward and backward, accumulate on and off, a fresh and an already packed weight, against a
 * float64 reference at tile edges (M below, at and above the register tile's rows, not a multiple of
 * them; empty block rows and columns; one block; full density), on both SIMD builds, and bit for bit the
 * same on 1 to 4 threads.
 */
import type { BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import { flatBlockButterfly, randomMask } from "../src/masks/patterns.ts";
import { Rng } from "../src/random.ts";
import { assertClose, assertEquals } from "./_assert.ts";

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
