/**
 * Scaled dot-product attention, dense or block-sparse on a tile layout
 * (Chen, Dao et al., ICLR 2022, Section 3.2 sparsifies attention with the
 * same flat block butterfly as the MLPs).
 *
 * With a `BlockMask` only the kept tiles are ever computed or stored: the
 * scores are a batched `sdd` (q·kᵀ on the layout), the probabilities a
 * block-sparse row softmax (`bsrSoftmax`), the output a batched `dds` (P·v).
 * The backward is the same kernels' transposes, through the tape: dP = dO·vᵀ
 * (sdd), dS = P ⊙ (dP − rowsum(P ⊙ dP)) (bsrSoftmaxGrad), dq = dS·k,
 * dk = dSᵀ·q, dv = Pᵀ·dO (dds both ways). Score memory is nnz·b² per head.
 *
 * Inside, heads are kept transposed, (N, dh, L): there both products are the
 * kernels' native forms (`sdd` with transA, `dds` with transW) and padding a
 * sequence to whole tiles is padding the last axis.
 *
 * @module
 */
import type { Backend, BlockLayout, BsrSoftmaxParams } from "./backends/types.ts";
import { record } from "./tape.ts";
import { BlockMask } from "./masks/block_mask.ts";
import { add, affine, dds, matmul, padLast, reshape, sdd, sliceLast, softmax, transpose } from "./ops.ts";
import { allocTensor, keep, Tensor } from "./tensor.ts";

/** Options of {@link scaledDotProductAttention}. */
export interface AttentionOptions {
  /**
   * Keep only these tiles of the (L, S) scores: a mask over ceil(L/b) x ceil(S/b) tiles of
   * `mask.block` positions. Dense attention when omitted.
   */
  mask?: BlockMask;
  /** Key j never attends query i when j > i (false). */
  causal?: boolean;
  /** Multiplies the scores before the softmax (1/sqrt(dh)). */
  scale?: number;
}

type SoftmaxAttrs = Omit<BsrSoftmaxParams, "batch">;

function checkTensor(op: string, name: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) {
    throw new TypeError(`${op}: ${name} must be a Tensor, got ${t === null ? "null" : typeof t}`);
  }
  if (t.disposed) throw new Error(`${op}: ${name} [${t.shape}] was disposed`);
}

/**
 * @internal The block-sparse row softmax of (batch, nnz, b, b) scores, recorded on the tape.
 */
export function _bsrSoftmax(x: Tensor, attrs: SoftmaxAttrs): Tensor {
  const y = allocTensor("bsrSoftmax", x.shape, x.backend);
  const batch = x.size / (attrs.layout.nnz * attrs.layout.block ** 2);
  if (x.size > 0) x.backend.bsrSoftmax(x.buffer, y.buffer, { ...attrs, batch });
  return record(y, "bsrSoftmax", [x], attrs, { saved: [y] });
}

/** @internal The block-sparse softmax backward: `scale · y ⊙ (dy − Σ_row dy⊙y)`. */
export function _bsrSoftmaxGrad(y: Tensor, dy: Tensor, attrs: SoftmaxAttrs): Tensor {
  const dx = allocTensor("bsrSoftmax", y.shape, y.backend);
  const batch = y.size / (attrs.layout.nnz * attrs.layout.block ** 2);
  if (y.size > 0) {
    y.backend.bsrSoftmaxGrad(y.buffer, dy.buffer, dx.buffer, { ...attrs, batch, accumulate: false });
  }
  return dx;
}

/** Layouts of causal attention: the mask without the tiles wholly above the diagonal (cached). */
const causalLayouts = new WeakMap<BlockMask, BlockLayout>();

function layoutFor(mask: BlockMask, causal: boolean): BlockLayout {
  if (!causal) return mask.toBSR();
  let l = causalLayouts.get(mask);
  if (!l) {
    // tile (i, j) holds queries i·b.. i·b+b-1 and keys j·b..: every key is later than every query when j > i
    l = BlockMask.fromFunction(mask.rows, mask.cols, mask.block, (i, j) => j <= i && mask.has(i, j)).toBSR();
    causalLayouts.set(mask, l);
  }
  return l;
}

/** Additive (L, S) causal biases of dense attention, per backend (kept; a few per model). */
const causalBiases = new WeakMap<Backend, Map<string, Tensor>>();

function causalBias(L: number, S: number, be: Backend): Tensor {
  let m = causalBiases.get(be);
  if (!m) causalBiases.set(be, m = new Map());
  const key = `${L}x${S}`;
  let t = m.get(key);
  if (!t) {
    const d = new Float32Array(L * S);
    for (let i = 0; i < L; i++) for (let j = i + 1; j < S; j++) d[i * S + j] = -1e9;
    t = keep(allocTensor("attention", [L * S], be, d));
    m.set(key, t);
  }
  return t;
}

/**
 * @internal Attention on transposed heads: qt (N, dh, L), kt (N, dh, S), vt (N, dv, S) -> (N, dv, L).
 * Inputs are validated by the caller.
 */
export function _attentionT(
  qt: Tensor,
  kt: Tensor,
  vt: Tensor,
  { mask, causal = false, scale }: { mask?: BlockMask; causal?: boolean; scale: number },
): Tensor {
  const [N, , L] = qt.shape, S = kt.shape[2];
  if (mask === undefined) {
    let scores = affine(matmul(qt, kt, { transA: true }), scale, 0); // (N, L, S)
    if (causal && S > 1) {
      scores = reshape(add(reshape(scores, [N, L * S]), causalBias(L, S, qt.backend)), [N, L, S]);
    }
    return matmul(vt, softmax(scores), { transB: true }); // (N, dv, L) = (P·V)ᵀ
  }
  const b = mask.block, Lp = mask.rows * b, Sp = mask.cols * b;
  const layout = layoutFor(mask, causal);
  const raw = sdd(padLast(qt, Lp), padLast(kt, Sp), layout, { transA: true }); // (N, nnz, b, b) = q·kᵀ
  const p = _bsrSoftmax(raw, { layout, L, S, causal, scale });
  const ot = dds(padLast(vt, Sp), p, layout); // (N, dv, Lp) = (P·V)ᵀ
  return Lp === L ? ot : sliceLast(ot, L);
}

/** Validates q, k, v and the options; returns the sizes and the scale. */
function checkAttention(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOptions,
): { N: number; L: number; S: number; dh: number; dv: number; scale: number } {
  checkTensor(op, "q", q);
  checkTensor(op, "k", k);
  checkTensor(op, "v", v);
  if (q.backend !== k.backend || q.backend !== v.backend) {
    throw new Error(`${op}: q, k and v live on different backends; move them with toBackend first`);
  }
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3) {
    throw new RangeError(
      `${op}: q, k, v must be 3-D (N, L, dh), (N, S, dh), (N, S, dv); got [${q.shape}], [${k.shape}], [${v.shape}]`,
    );
  }
  const [N, L, dh] = q.shape, [Nk, S, dk] = k.shape, [Nv, Sv, dv] = v.shape;
  if (Nk !== N || Nv !== N || dk !== dh || Sv !== S) {
    throw new RangeError(
      `${op}: shapes disagree: q [${q.shape}] must be (N, L, dh), k [${k.shape}] (N, S, dh), v [${v.shape}] (N, S, dv)`,
    );
  }
  if (N * L * S * dh * dv === 0) {
    throw new RangeError(`${op}: q [${q.shape}], k [${k.shape}], v [${v.shape}] must not be empty`);
  }
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`${op}: options must be an object, got ${opts === null ? "null" : typeof opts}`);
  }
  const { mask, causal, scale = 1 / Math.sqrt(dh) } = opts;
  if (causal !== undefined && typeof causal !== "boolean") {
    throw new TypeError(`${op}: causal must be a boolean, got ${typeof causal} ${causal}`);
  }
  if (typeof scale !== "number" || !Number.isFinite(scale)) {
    throw new RangeError(`${op}: scale must be a finite number, got ${scale}`);
  }
  if (mask !== undefined) {
    if (!(mask instanceof BlockMask)) {
      throw new TypeError(`${op}: mask must be a BlockMask, got ${mask === null ? "null" : typeof mask}`);
    }
    const rows = Math.ceil(L / mask.block), cols = Math.ceil(S / mask.block);
    if (mask.rows !== rows || mask.cols !== cols) {
      throw new RangeError(
        `${op}: mask has ${mask.rows}x${mask.cols} tiles of ${mask.block}, but L ${L} and S ${S} need ` +
          `ceil(L/b) x ceil(S/b) = ${rows}x${cols}`,
      );
    }
  }
  return { N, L, S, dh, dv, scale };
}

/**
 * Scaled dot-product attention: `softmax(scale·q·kᵀ)·v` for q (N, L, dh),
 * k (N, S, dh), v (N, S, dv), where N is batch x heads; returns (N, L, dv).
 *
 * With `mask` (a {@link BlockMask} over ceil(L/b) x ceil(S/b) tiles) only the
 * kept tiles are computed and stored (nnz·b² scores per head), each row's
 * softmax runs over its kept positions, and a row with none gives zeros. With
 * `causal`, key j never attends query i when j > i (tiles wholly above the
 * diagonal are skipped). Without a mask it is ordinary dense attention.
 *
 * @example
 * ```ts
 * import { localMask, randn, scaledDotProductAttention } from "@pixelfly/pixelfly";
 * const q = randn([2, 64, 16], { seed: 1 }), k = randn([2, 64, 16], { seed: 2 }), v = randn([2, 64, 8], { seed: 3 });
 * const mask = localMask({ length: 64, block: 16, window: 2 });
 * const out = scaledDotProductAttention(q, k, v, { mask, causal: true });
 * console.log(out.shape, mask.nnz); // [2, 64, 8] 10
 * ```
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOptions = {},
): Tensor {
  const op = "scaledDotProductAttention";
  const { scale } = checkAttention(op, q, k, v, opts);
  const ot = _attentionT(transpose(q), transpose(k), transpose(v), {
    mask: opts.mask,
    causal: opts.causal ?? false,
    scale,
  });
  return transpose(ot);
}
