/**
 * Batched `dds` and `sdd` on the WebGPU backend: each batch entry's slices are
 * copied into contiguous scratch buffers, multiplied by the single-product
 * kernel, and the result copied back, all recorded in the same command stream
 * (no read-back). Uses only the Backend's public methods.
 *
 * @module
 */
import type { Backend, BackendBuffer, DdsParams, SddParams } from "./types.ts";

/** A buffer slice of each batch entry: the source, its elements per entry and its stride. */
type Part = { buf: BackendBuffer; size: number; stride: number; out: boolean; acc: boolean };

function eachEntry(be: Backend, batch: number, parts: Part[], run: (tmp: BackendBuffer[]) => void): void {
  const tmp = parts.map((p) => be.alloc(p.size));
  try {
    for (let t = 0; t < batch; t++) {
      parts.forEach((p, k) => {
        if (!p.out || p.acc) be.copy(p.buf, tmp[k], { size: p.size, srcOffset: t * p.stride, dstOffset: 0 });
      });
      run(tmp);
      parts.forEach((p, k) => {
        if (p.out) be.copy(tmp[k], p.buf, { size: p.size, srcOffset: 0, dstOffset: t * p.stride });
      });
    }
  } finally {
    tmp.forEach((b) => be.free(b));
  }
}

/** `dds` over `p.batch` entries by single products. */
export function batchedDds(
  be: Backend,
  x: BackendBuffer,
  w: BackendBuffer,
  y: BackendBuffer,
  p: DdsParams,
): void {
  const l = p.layout, b = l.block, N = l.rows * b, K = l.cols * b;
  const inCols = p.transW ? K : N, outCols = p.transW ? N : K;
  const sx = p.M * inCols, sw = l.nnz * b * b, sy = p.M * outCols;
  const one: DdsParams = { M: p.M, layout: l, transW: p.transW, accumulate: p.accumulate };
  eachEntry(be, p.batch ?? 1, [
    { buf: x, size: sx, stride: p.strideX ?? sx, out: false, acc: false },
    { buf: w, size: sw, stride: p.strideW ?? sw, out: false, acc: false },
    { buf: y, size: sy, stride: p.strideY ?? sy, out: true, acc: p.accumulate },
  ], ([tx, tw, ty]) => be.dds(tx, tw, ty, one));
}

/** `sdd` over `p.batch` entries by single products. */
export function batchedSdd(
  be: Backend,
  a: BackendBuffer,
  bm: BackendBuffer,
  w: BackendBuffer,
  p: SddParams,
): void {
  const l = p.layout, blk = l.block, R = l.rows * blk, C = l.cols * blk;
  const sa = R * p.K, sb = p.K * C, sw = l.nnz * blk * blk;
  const one: SddParams = { layout: l, K: p.K, transA: p.transA, transB: p.transB, accumulate: p.accumulate };
  eachEntry(be, p.batch ?? 1, [
    { buf: a, size: sa, stride: p.strideA ?? sa, out: false, acc: false },
    { buf: bm, size: sb, stride: p.strideB ?? sb, out: false, acc: false },
    { buf: w, size: sw, stride: p.strideW ?? sw, out: true, acc: p.accumulate },
  ], ([ta, tb, tw]) => be.sdd(ta, tb, tw, one));
}
