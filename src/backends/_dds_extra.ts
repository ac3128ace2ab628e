/**
 * dds' optional low-rank term and projection (`DdsParams.lowRank`, `project`): the checks every backend
 * makes, and the composition by a gemm after the sparse product that js and webgpu use (and wasm where its
 * fused block-16 kernel does not apply).
 *
 * @module
 */
import type { Backend, BackendBuffer, DdsLowRank, DdsParams } from "./types.ts";
import { checkNoAlias } from "../validate.ts";

/** Refuses what no backend takes with `lowRank`/`project`; returns the low-rank operands. */
export function checkDdsExtra(
  op: string,
  x: BackendBuffer,
  w: BackendBuffer,
  y: BackendBuffer,
  p: DdsParams,
): DdsLowRank {
  const e = (p.lowRank ?? p.project)!;
  if (p.lowRank && p.project) throw new RangeError(`${op}: takes lowRank or project, not both`);
  if (p.project?.transH) throw new RangeError(`${op}: project's h is always (M, rank), got transH`);
  if ((p.batch ?? 1) !== 1) {
    throw new RangeError(`${op}: lowRank and project take no batch, got ${p.batch}`);
  }
  checkNoAlias(op, "y", y, { h: e.h, u: e.u });
  if (p.project) checkNoAlias(op, "project.h", e.h, { x, w, u: e.u });
  return e;
}

/** The sparse product, then the low-rank term (`Y += op(H)·op(U)`) or the projection (`H = X·op(U)`) by a gemm. */
export function ddsExtraByGemm(
  be: Backend,
  x: BackendBuffer,
  w: BackendBuffer,
  y: BackendBuffer,
  p: DdsParams,
  e: DdsLowRank,
): void {
  be.dds(x, w, y, { ...p, lowRank: undefined, project: undefined });
  const b = p.layout.block, inCols = (p.transW ? p.layout.cols : p.layout.rows) * b;
  const outCols = (p.transW ? p.layout.rows : p.layout.cols) * b;
  if (p.lowRank && p.M * outCols * e.rank > 0) {
    be.gemm(e.h, e.u, y, {
      M: p.M,
      N: outCols,
      K: e.rank,
      transA: e.transH ?? false,
      transB: e.transU,
      accumulate: true,
    });
  }
  if (p.project && p.M * e.rank > 0) {
    be.gemm(x, e.u, e.h, {
      M: p.M,
      N: e.rank,
      K: inCols,
      transA: false,
      transB: e.transU,
      accumulate: false,
    });
  }
}
