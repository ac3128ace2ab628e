/**
 * dds with a long X row (asm/sparse.ts packs each sweep's rows of X as MR-row panels, and the wasm backend
 * splits the rows between threads when the weight is packed): inputs of 4096 and more columns, so that
 * M takes several sweeps, at M below, at and above the 6-row tile and not a multiple of it, blocks of 32,
 * 24 (three 8-wide panels) and 6 (not whole k/4 groups: X packed whole), an odd number of block rows and
 * columns, an empty block row and an empty block column, forward and backward, with and without
 * accumulation: against a float64 reference, and bit for bit the same on 1 to 4 threads (and in parts
 * finer than one per thread), on both builds.
 */
import type { BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import { Rng } from "../src/random.ts";
import { assertClose, assertEquals } from "./_assert.ts";

const rng = new Rng(21);
const rnd = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() - 0.5);

// Y (+)= X·Wᵀ (transW) or X·W in float64 over the kept blocks
function reference(
  x: Float32Array,
  w: Float32Array,
  l: BlockLayout,
  M: number,
  transW: boolean,
  y0: Float32Array,
) {
  const b = l.block, inCols = (transW ? l.cols : l.rows) * b, outCols = (transW ? l.rows : l.cols) * b;
  const y = Float64Array.from(y0);
  for (let i = 0; i < l.rows; i++) {
    for (let e = l.rowPtr[i]; e < l.rowPtr[i + 1]; e++) {
      const j = l.colIdx[e];
      // block e holds W[i*b + r, j*b + c] at (e*b + r)*b + c
      const [inB, outB] = transW ? [j, i] : [i, j];
      for (let m = 0; m < M; m++) {
        for (let o = 0; o < b; o++) {
          let s = 0;
          for (let k = 0; k < b; k++) {
            const wv = transW ? w[(e * b + o) * b + k] : w[(e * b + k) * b + o];
            s += x[m * inCols + inB * b + k] * wv;
          }
          y[m * outCols + outB * b + o] += s;
        }
      }
    }
  }
  return y;
}

// A random layout of rows x cols blocks (about density kept) with block row `emptyRow` and block column
// `emptyCol` kept empty.
function layout(rows: number, cols: number, b: number, density: number, emptyRow: number, emptyCol: number) {
  const keep = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      keep[i * cols + j] = i !== emptyRow && j !== emptyCol && rng.uniform() < density ? 1 : 0;
    }
  }
  return new BlockMask(rows, cols, b, keep).toBSR();
}

interface Case {
  name: string;
  l: BlockLayout;
  transW: boolean;
}

function cases(): Case[] {
  // forward over 128 block columns of 32 (X rows of 4096 floats), 5 block rows, one empty
  const fwd32 = layout(5, 128, 32, 0.3, 2, 7);
  // backward over 128 block rows of 32 (dY rows of 4096 floats), 3 block columns, one empty
  const bwd32 = layout(128, 3, 32, 0.3, 9, 1);
  // block 24: three 8-wide panels per block, 171 block columns (X rows of 4104 floats)
  const b24 = layout(3, 171, 24, 0.25, 0, 100);
  // block 6: not whole k/4 groups (X packed whole, not per sweep), 700 block columns
  const b6 = layout(7, 700, 6, 0.2, 3, 5);
  return [
    { name: "b32 forward, 128 block columns", l: fwd32, transW: true },
    { name: "b32 backward, 128 block rows", l: bwd32, transW: false },
    { name: "b24 forward, 171 block columns", l: b24, transW: true },
    { name: "b24 backward", l: b24, transW: false },
    { name: "b6 forward, 700 block columns", l: b6, transW: true },
  ];
}

// One dds on fresh buffers; a second call on the same weight (its packed copy) accumulates when asked.
function run(
  be: WasmBackend,
  x: Float32Array,
  w: Float32Array,
  y0: Float32Array,
  c: Case,
  M: number,
  acc: boolean,
) {
  const xb = be.upload(x), wb = be.upload(w), yb = be.upload(y0);
  be.dds(xb, wb, yb, { M, layout: c.l, transW: c.transW, accumulate: acc });
  const first = be.readSync(yb);
  be.write(yb, y0);
  be.dds(xb, wb, yb, { M, layout: c.l, transW: c.transW, accumulate: acc });
  const again = be.readSync(yb);
  for (const t of [xb, wb, yb]) be.free(t);
  assertEquals(
    again,
    first,
    `${c.name} M=${M} acc=${acc} threads ${be.threads}: the call on the packed weight`,
  );
  return first;
}

for (const variant of ["relaxed", "simd128"] as const) {
  Deno.test(`wasm dds (${variant}): long rows of X over several sweeps, float64 reference, same bits on 1-4 threads`, async () => {
    const one = await createWasmBackend({ variant, threads: 1 });
    const many: WasmBackend[] = [];
    for (const threads of [2, 3, 4]) {
      many.push(await createWasmBackend({ variant, threads, minSplitWork: 0 }));
    }
    const parts = await createWasmBackend({ variant, threads: 3, minSplitWork: 0 });
    parts.partsPerThread = 2;
    many.push(parts);
    try {
      for (const c of cases()) {
        const b = c.l.block;
        const inCols = (c.transW ? c.l.cols : c.l.rows) * b, outCols = (c.transW ? c.l.rows : c.l.cols) * b;
        for (const M of [4, 6, 13, 41]) {
          for (const acc of [false, true]) {
            const x = rnd(M * inCols),
              w = rnd(c.l.nnz * b * b),
              y0 = acc ? rnd(M * outCols) : new Float32Array(M * outCols);
            const label = `${c.name} M=${M} acc=${acc}`;
            const ref = run(one, x, w, y0, c, M, acc);
            assertClose(ref, reference(x, w, c.l, M, c.transW, y0), { atol: 2e-5, rtol: 1e-4, label });
            for (const be of many) {
              assertEquals(
                run(be, x, w, y0, c, M, acc),
                ref,
                `${label}: ${be.threads} threads (${be.partsPerThread} parts each) vs 1`,
              );
            }
          }
        }
      }
    } finally {
      one.dispose();
      for (const be of many) be.dispose();
    }
  });
}

// H = X·op(U) in float64: x (M, inCols), u (inCols, rank) or, transU, (rank, inCols)
function projReference(
  x: Float32Array,
  u: Float32Array,
  M: number,
  inCols: number,
  rank: number,
  transU: boolean,
) {
  const h = new Float64Array(M * rank);
  for (let m = 0; m < M; m++) {
    for (let r = 0; r < rank; r++) {
      let s = 0;
      for (let k = 0; k < inCols; k++) {
        s += x[m * inCols + k] * (transU ? u[r * inCols + k] : u[k * rank + r]);
      }
      h[m * rank + r] = s;
    }
  }
  return h;
}

for (const variant of ["relaxed", "simd128"] as const) {
  Deno.test(`wasm dds (${variant}): the projection H = X·op(U) made from X's sweeps (blocks 32, 24, 4), float64 reference, same bits on 1-4 threads`, async () => {
    // blocks other than 16 make the projection from each packed sweep of X, the rows split between threads
    const one = await createWasmBackend({ variant, threads: 1 });
    const many: WasmBackend[] = [];
    for (const threads of [2, 3, 4]) {
      many.push(await createWasmBackend({ variant, threads, minSplitWork: 0 }));
    }
    try {
      const all = cases().filter((c) => c.l.block % 4 === 0);
      all.push({ name: "b4 backward, 1030 block rows", l: layout(1030, 5, 4, 0.3, 3, 2), transW: false });
      for (const c of all) {
        const b = c.l.block;
        const inCols = (c.transW ? c.l.cols : c.l.rows) * b, outCols = (c.transW ? c.l.rows : c.l.cols) * b;
        for (const [M, rank, transU] of [[9, 32, false], [41, 7, true], [13, 16, false]] as const) {
          const x = rnd(M * inCols), w = rnd(c.l.nnz * b * b), u = rnd(inCols * rank);
          const label = `${c.name} M=${M} rank=${rank} transU=${transU}`;
          const go = (be: WasmBackend) => {
            const xb = be.upload(x), wb = be.upload(w), yb = be.alloc(M * outCols), ub = be.upload(u);
            const hb = be.upload(new Float32Array(M * rank).fill(NaN));
            const project = { h: hb, u: ub, rank, transU };
            be.dds(xb, wb, yb, { M, layout: c.l, transW: c.transW, accumulate: false, project });
            const out = [be.readSync(yb), be.readSync(hb)];
            for (const t of [xb, wb, yb, ub, hb]) be.free(t);
            return out;
          };
          const [y, h] = go(one);
          assertClose(y, reference(x, w, c.l, M, c.transW, new Float32Array(M * outCols)), {
            atol: 2e-5,
            rtol: 1e-4,
            label: `${label}: Y`,
          });
          assertClose(h, projReference(x, u, M, inCols, rank, transU), {
            atol: 1e-4,
            rtol: 1e-4,
            label: `${label}: H`,
          });
          for (const be of many) {
            const [yt, ht] = go(be);
            assertEquals(yt, y, `${label}: Y on ${be.threads} threads vs 1`);
            assertEquals(ht, h, `${label}: H on ${be.threads} threads vs 1`);
          }
        }
      }
    } finally {
      one.dispose();
      for (const be of many) be.dispose();
    }
  });
}
