/**
 * Conformance cases of the attention kernels: batched `sdd` and `dds` (one
 * layout, strided batches) and the block-sparse row softmax and its backward,
 * at tile edges (L not a multiple of b, one tile, empty tile rows, causal on
 * and off, N = 1 and > 1, L ≠ S). Joined into `kernelCases` by `_cases.ts`.
 *
 * @module
 */
import type { KernelCase } from "./_cases.ts";
import { BlockMask } from "../src/masks/block_mask.ts";
import { attentionMask } from "../src/masks/sequence.ts";
import { Rng } from "../src/random.ts";

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** Score layouts: name, mask, L and S (sequence lengths it covers). */
function scoreLayouts(): { name: string; mask: BlockMask; L: number; S: number }[] {
  return [
    { name: "one tile b=8 L=S=5", mask: BlockMask.fromFunction(1, 1, 8, () => true), L: 5, S: 5 },
    { name: "one tile b=4 L=S=4", mask: BlockMask.fromFunction(1, 1, 4, () => true), L: 4, S: 4 },
    {
      name: "empty tile row b=4 L=14 S=11",
      mask: BlockMask.fromFunction(4, 3, 4, (i, j) => i !== 1 && (i + j) % 2 === 0),
      L: 14,
      S: 11,
    },
    {
      name: "butterfly+local b=16 L=S=128",
      mask: attentionMask(128, { block: 16, nFactors: 2, local: 1 }),
      L: 128,
      S: 128,
    },
    { name: "full b=32 L=S=70", mask: BlockMask.fromFunction(3, 3, 32, () => true), L: 70, S: 70 },
    { name: "local b=8 L=S=37", mask: attentionMask(37, { block: 8, local: 2, global: 1 }), L: 37, S: 37 },
  ];
}

/** The attention kernels' cases. */
export function attentionCases(seed = 4321): KernelCase[] {
  const rng = new Rng(seed), cases: KernelCase[] = [];
  for (const { name, mask, L, S } of scoreLayouts()) {
    const layout = mask.toBSR(), b = layout.block, bb = b * b, nnz = layout.nnz;
    const Lp = layout.rows * b, Sp = layout.cols * b;
    for (const batch of [1, 3]) {
      for (const causal of [false, true]) {
        const p = { layout, batch, L, S, causal, scale: 0.7 };
        cases.push({
          op: "bsrSoftmax",
          name: `${name} batch=${batch} causal=${causal}`,
          buffers: [randn(rng, batch * nnz * bb, 2), new Float32Array(batch * nnz * bb)],
          outputs: [1],
          run: (be, [x, y]) => be.bsrSoftmax(x, y, p),
          atol: 1e-6,
          rtol: 1e-4,
        });
        for (const accumulate of [false, true]) {
          // y a real softmax output, so masked entries are 0 as the kernel's contract expects
          const y = new Float32Array(batch * nnz * bb);
          const x = randn(rng, y.length, 2);
          cases.push({
            op: "bsrSoftmaxGrad",
            name: `${name} batch=${batch} causal=${causal} acc=${accumulate}`,
            buffers: [x, y, randn(rng, y.length), randn(rng, y.length)],
            outputs: [3],
            run: (be, [xb, yb, dy, dx]) => {
              be.bsrSoftmax(xb, yb, p);
              be.bsrSoftmaxGrad(yb, dy, dx, { ...p, accumulate });
            },
            atol: 1e-5,
            rtol: 1e-4,
          });
        }
      }
      // batched products of attention: scores = q·kᵀ (sdd, transposed heads), out = P·v (dds)
      const dh = 12, tol = { atol: 2e-5 * Math.sqrt(64) * 4, rtol: 1e-4 };
      cases.push({
        op: "sdd",
        name: `batched ${name} batch=${batch} K=${dh} transA`,
        buffers: [randn(rng, batch * dh * Lp), randn(rng, batch * dh * Sp), randn(rng, batch * nnz * bb)],
        outputs: [2],
        run: (be, [a, bk, w]) =>
          be.sdd(a, bk, w, { layout, K: dh, transA: true, transB: false, accumulate: false, batch }),
        ...tol,
      });
      cases.push({
        op: "sdd",
        name: `batched strided ${name} batch=${batch} K=${dh} transB acc`,
        buffers: [
          randn(rng, batch * (Lp * dh + 3)),
          randn(rng, batch * (Sp * dh + 5)),
          randn(rng, batch * (nnz * bb + 2)),
        ],
        outputs: [2],
        run: (be, [a, bk, w]) =>
          be.sdd(a, bk, w, {
            layout,
            K: dh,
            transA: false,
            transB: true,
            accumulate: true,
            batch,
            strideA: Lp * dh + 3,
            strideB: Sp * dh + 5,
            strideW: nnz * bb + 2,
          }),
        ...tol,
      });
      for (const transW of [true, false]) {
        const M = 5, inCols = transW ? Sp : Lp, outCols = transW ? Lp : Sp;
        cases.push({
          op: "dds",
          name: `batched ${name} batch=${batch} M=${M} transW=${transW}`,
          buffers: [
            randn(rng, batch * M * inCols),
            randn(rng, batch * nnz * bb),
            randn(rng, batch * M * outCols),
          ],
          outputs: [2],
          run: (be, [x, w, y]) => be.dds(x, w, y, { M, layout, transW, accumulate: false, batch }),
          ...tol,
        });
        const sX = M * inCols + 1, sW = nnz * bb + 4, sY = M * outCols + 3;
        cases.push({
          op: "dds",
          name: `batched strided ${name} batch=${batch} M=${M} transW=${transW} acc`,
          buffers: [randn(rng, batch * sX), randn(rng, batch * sW), randn(rng, batch * sY)],
          outputs: [2],
          run: (be, [x, w, y]) =>
            be.dds(x, w, y, {
              M,
              layout,
              transW,
              accumulate: true,
              batch,
              strideX: sX,
              strideW: sW,
              strideY: sY,
            }),
          ...tol,
        });
      }
    }
  }
  return cases;
}
