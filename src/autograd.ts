/**
 * The gradient rules, written once above all backends, and the backward
 * pass that applies them.
 *
 * Every recorded op leaves a {@link TapeNode} on its output (see `tape.ts`).
 * `backward` walks the nodes in reverse topological order and applies the
 * rule of each op, written as calls of other ops (as candle's backprop.rs and
 * tfjs's gradient files do). Rules run with recording off. The rules table is
 * typed by op name, so each rule sees exactly the attributes its op recorded.
 *
 * @module
 */
import type { Backend, BlockLayout, Broadcast, UnaryOp } from "./backends/types.ts";
import * as ops from "./ops.ts";
import { _bsrSoftmaxGrad } from "./attention.ts";
import { noGrad, type OpName, type TapeNode, type TapeNodeOf } from "./tape.ts";
import { allocTensor, keep, markWritten, type Tensor, tensorWatermark, tidy } from "./tensor.ts";

export { isGradEnabled, noGrad, type TapeNode } from "./tape.ts";

// --- backward-only kernels (no tape) -----------------------------------------

function zerosOn(shape: readonly number[], be: Backend): Tensor {
  return allocTensor("backward", shape, be);
}

// For an output the kernel overwrites (accumulate: false): no zero fill.
function emptyOn(shape: readonly number[], be: Backend): Tensor {
  return allocTensor("backward", shape, be, undefined, false);
}

/** A one-element tensor broadcast to a shape. */
function broadcastScalar(s: Tensor, shape: readonly number[]): Tensor {
  const out = zerosOn(shape, s.backend);
  if (out.size > 0) {
    s.backend.binary("add", out.buffer, s.buffer, out.buffer, { M: 1, N: out.size, bcast: "scalar" });
  }
  return out;
}

/** `dy * f'(x)` for the unary rules (added into `acc` when given). */
function unaryGrad(op: UnaryOp, x: Tensor, y: Tensor, dy: Tensor, acc?: Tensor): Tensor {
  const dx = acc ?? emptyOn(x.shape, x.backend);
  if (acc) markWritten(acc);
  if (x.size > 0) {
    const accumulate = acc !== undefined;
    x.backend.unaryGrad(op, x.buffer, y.buffer, dy.buffer, dx.buffer, { size: x.size, accumulate });
  }
  return dx;
}

/** The softmax backward. */
function softmaxGrad(y: Tensor, dy: Tensor): Tensor {
  const N = y.shape.at(-1)!, M = y.size / N;
  const dx = emptyOn(y.shape, y.backend);
  y.backend.softmaxGrad(y.buffer, dy.buffer, dx.buffer, { M, N, accumulate: false });
  return dx;
}

/** The cross-entropy backward: (probs − onehot) · dy / M. */
function crossEntropyGrad(probs: Tensor, labels: Tensor, dy: Tensor): Tensor {
  const [M, N] = probs.shape, be = probs.backend;
  const dl = broadcastScalar(dy, [M]);
  be.scale(dl.buffer, dl.buffer, { size: M, alpha: 1 / M, beta: 0, accumulate: false });
  const dx = emptyOn([M, N], be);
  be.crossEntropyGrad(probs.buffer, labels.buffer, dl.buffer, dx.buffer, { M, N, accumulate: false });
  dl.dispose();
  return dx;
}

/** The LayerNorm backward: [dx, dgamma, dbeta] (dx added into `acc` when given). */
function layerNormGrad(dy: Tensor, x: Tensor, gamma: Tensor, mu: Tensor, rs: Tensor, acc?: Tensor): Tensor[] {
  const N = x.shape.at(-1)!, M = x.size / N, be = x.backend;
  // dgamma and dbeta sum into their buffers on every backend: zeroed
  const dx = acc ?? emptyOn(x.shape, be), dg = zerosOn(gamma.shape, be), db = zerosOn(gamma.shape, be);
  if (acc) markWritten(acc);
  be.layerNormGrad(dy.buffer, x.buffer, gamma.buffer, mu.buffer, rs.buffer, dx.buffer, dg.buffer, db.buffer, {
    M,
    N,
    accumulate: acc !== undefined,
  });
  return [dx, dg, db];
}

/** The gather backward: rows of dy added into a zero table at the saved (checked) ids. */
function scatterAdd(dy: Tensor, idx: Tensor, shape: readonly number[]): Tensor {
  const N = shape[1], M = idx.size;
  const dt = zerosOn(shape, dy.backend);
  if (M > 0) dy.backend.scatterAddRows(dy.buffer, idx.buffer, dt.buffer, { M, N });
  return dt;
}

/** `acc += g` in place (gradient accumulation into a leaf's `.grad`). */
function addInto(acc: Tensor, g: Tensor): void {
  markWritten(acc);
  acc.backend.binary("add", acc.buffer, g.buffer, acc.buffer, { M: 1, N: acc.size, bcast: "full" });
}

/** The reduction of a broadcast gradient back to the second operand's shape. */
function reduceTo(g: Tensor, b: Tensor, bcast: Broadcast): Tensor {
  switch (bcast) {
    case "full":
      return g;
    case "row":
      return ops.reshape(ops.sumRows(ops.reshape(g, [g.size / b.size, b.size])), b.shape);
    case "col":
      return ops.reshape(ops.sumCols(ops.reshape(g, [b.size, g.size / b.size])), b.shape);
    case "scalar":
      return ops.reshape(ops.sum(g), b.shape);
  }
}

/** `op(A)·op(B)` (2-D, or 3-D batched) as a new tensor, or accumulated into `acc` when backward hands one. */
function product(a: Tensor, b: Tensor, transA: boolean, transB: boolean, acc: Tensor | undefined): Tensor {
  if (acc === undefined) return ops.matmul(a, b, { transA, transB });
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar, K = transA ? ar : ac, N = transB ? br : bc;
  markWritten(acc);
  if (M * N * K > 0) {
    const batch = a.rank === 3 ? a.shape[0] : 1;
    a.backend.gemm(a.buffer, b.buffer, acc.buffer, { M, N, K, transA, transB, accumulate: true, batch });
  }
  return acc;
}

/** The gradients of `dds` (Y = X·Wᵀ, or X·W when not transW): [dX, dW], dX added into `into(0)` when given. */
function ddsGrads(
  x: Tensor,
  w: Tensor,
  layout: BlockLayout,
  transW: boolean,
  dy: Tensor,
  into: (i: number) => Tensor | undefined,
): (Tensor | undefined)[] {
  // Y = X·Wᵀ: dX = dY·W, dW = dYᵀ·X.   Y = X·W: dX = dY·Wᵀ, dW = Xᵀ·dY.
  let dx: Tensor | undefined;
  const acc = x.requiresGrad ? into(0) : undefined;
  if (acc !== undefined) {
    const batch = dy.rank === 3 && w.rank === 4 ? dy.shape[0] : 1, M = dy.shape.at(-2)!;
    markWritten(acc);
    if (M * batch > 0) {
      x.backend.dds(dy.buffer, w.buffer, acc.buffer, {
        M,
        layout,
        transW: !transW,
        accumulate: true,
        batch,
      });
    }
    dx = acc;
  } else if (x.requiresGrad) dx = ops.dds(dy, w, layout, { transW: !transW });
  const dw = !w.requiresGrad
    ? undefined
    : transW
    ? ops.sdd(dy, x, layout, { transA: true, transB: false })
    : ops.sdd(x, dy, layout, { transA: true, transB: false });
  return [dx, dw];
}

// --- the rules -----------------------------------------------------------------

/**
 * A gradient rule. `into(i)`, when it returns a tensor, is input i's gradient so far, owned by backward
 * alone: the rule may add its contribution into it in place (a kernel with accumulate on) and return it,
 * which saves an add and a buffer where an input feeds several ops.
 */
type Rule<K extends OpName> = (
  node: TapeNodeOf<K>,
  dy: Tensor,
  into: (i: number) => Tensor | undefined,
) => (Tensor | undefined)[];

const rules: { [K in OpName]: Rule<K> } = {
  matmul({ inputs: [a, b], attrs: { transA, transB } }, dy, into) {
    // C = op(A)·op(B): dop(A) = dC·op(B)ᵀ, dop(B) = op(A)ᵀ·dC, then undo the transposes.
    const da = !a.requiresGrad
      ? undefined
      : transA
      ? product(b, dy, transB, true, into(0))
      : product(dy, b, false, !transB, into(0));
    const db = !b.requiresGrad
      ? undefined
      : transB
      ? product(dy, a, true, transA, into(1))
      : product(a, dy, !transA, false, into(1));
    return [da, db];
  },
  dds({ inputs: [x, w], attrs: { layout, transW } }, dy, into) {
    return ddsGrads(x, w, layout, transW, dy, into);
  },
  ddsLowRank({ inputs: [x, w, h, u], attrs: { layout } }, dy, into) {
    // Y = X·Wᵀ + H·Uᵀ: the dds gradients, dH = dY·U, dU = dYᵀ·H
    let dx: Tensor | undefined, dw: Tensor | undefined, dh: Tensor | undefined;
    const hAcc = h.requiresGrad ? into(2) : undefined;
    if (x.requiresGrad && h.requiresGrad && hAcc === undefined) {
      // dX = dY·W and dH = dY·U in one call: the projection made while the kernel reads dY
      const acc = into(0), M = dy.shape[0];
      dx = acc ?? emptyOn(x.shape, x.backend);
      dh = emptyOn(h.shape, h.backend);
      if (acc) markWritten(acc);
      if (M > 0) {
        x.backend.dds(dy.buffer, w.buffer, dx.buffer, {
          M,
          layout,
          transW: false,
          accumulate: acc !== undefined,
          project: { h: dh.buffer, u: u.buffer, rank: h.shape[1], transU: false },
        });
      }
      if (w.requiresGrad) dw = ops.sdd(dy, x, layout, { transA: true, transB: false });
    } else {
      [dx, dw] = ddsGrads(x, w, layout, true, dy, into);
      if (h.requiresGrad) dh = product(dy, u, false, false, hAcc);
    }
    const du = u.requiresGrad ? product(dy, h, true, false, into(3)) : undefined;
    return [dx, dw, dh, du];
  },
  ddsGatedLowRank({ inputs: [x, w, v, u, a, c, bias], saved: [s, l, h, g], attrs: { layout } }, dy, into) {
    // Y = (1 − g)·S + g·L + bias, S = X·Wᵀ, L = H·Uᵀ, H = X·Vᵀ, g = sigmoid(z), z = X·aᵀ + c: the
    // gatedCombine gradients, dz = dg·g(1 − g), dU = dLᵀ·H, and with H' = [dH | dz] = [dL·U | dz] and
    // V' = [V; a]: dX = dS·W + H'·V' (one call), d[V; a] = H'ᵀ·X (one product), dW = dSᵀ·X, dc = Σ dz
    const [M, N] = s.shape, rank = h.shape[1], K = x.shape[1], r1 = rank + 1, be = s.backend;
    const ds = emptyOn(s.shape, be), dl = emptyOn(l.shape, be), dg = emptyOn(g.shape, be);
    const dz = emptyOn(g.shape, be);
    if (M > 0) {
      be.gatedCombineGrad(dy.buffer, s.buffer, l.buffer, g.buffer, ds.buffer, dl.buffer, dg.buffer, {
        M,
        N,
        accumulate: false,
      });
      be.unaryGrad("sigmoid", g.buffer, g.buffer, dg.buffer, dz.buffer, { size: M, accumulate: false });
    }
    const db = bias?.requiresGrad ? reduceTo(dy, bias, "row") : undefined;
    const dc = c.requiresGrad ? reduceTo(dz, c, "scalar") : undefined;
    // H'ᵀ (rank + 1, M): dHᵀ = Uᵀ·dLᵀ, then dz as its last row; V' (rank + 1, K) = [V; a]
    const ht = emptyOn([r1, M], be), vp = emptyOn([r1, K], be);
    if (M > 0) {
      if (rank > 0) {
        be.gemm(u.buffer, dl.buffer, ht.buffer, {
          M: rank,
          N: M,
          K: N,
          transA: true,
          transB: true,
          accumulate: false,
        });
      }
      be.copy(dz.buffer, ht.buffer, { size: M, srcOffset: 0, dstOffset: rank * M });
    }
    if (rank > 0) be.copy(v.buffer, vp.buffer, { size: rank * K, srcOffset: 0, dstOffset: 0 });
    be.copy(a.buffer, vp.buffer, { size: K, srcOffset: 0, dstOffset: rank * K });
    let dx: Tensor | undefined;
    if (x.requiresGrad) {
      const acc = into(0);
      dx = acc ?? emptyOn(x.shape, x.backend);
      if (acc) markWritten(acc);
      if (M > 0) {
        be.dds(ds.buffer, w.buffer, dx.buffer, {
          M,
          layout,
          transW: false,
          accumulate: acc !== undefined,
          lowRank: { h: ht.buffer, u: vp.buffer, rank: r1, transU: false, transH: true },
        });
      } else if (acc === undefined) be.fill(dx.buffer, { size: dx.size, value: 0 });
    }
    const dw = w.requiresGrad ? ops.sdd(ds, x, layout, { transA: true, transB: false }) : undefined;
    let dv: Tensor | undefined, da: Tensor | undefined;
    if (v.requiresGrad || a.requiresGrad) {
      // [dV; da] (rank + 1, K): the gemm overwrites it; zeros only when there is no row to sum
      const dva = emptyOn([r1, K], be);
      if (M === 0) be.fill(dva.buffer, { size: r1 * K, value: 0 });
      else {
        be.gemm(ht.buffer, x.buffer, dva.buffer, {
          M: r1,
          N: K,
          K: M,
          transA: false,
          transB: false,
          accumulate: false,
        });
      }
      if (v.requiresGrad) {
        dv = emptyOn(v.shape, be);
        if (rank > 0) be.copy(dva.buffer, dv.buffer, { size: rank * K, srcOffset: 0, dstOffset: 0 });
      }
      if (a.requiresGrad) {
        da = emptyOn(a.shape, be);
        be.copy(dva.buffer, da.buffer, { size: K, srcOffset: rank * K, dstOffset: 0 });
      }
      dva.dispose();
    }
    const du = u.requiresGrad ? product(dl, h, true, false, into(3)) : undefined;
    for (const t of [ds, dl, dg, dz, ht, vp]) t.dispose();
    return [dx, dw, dv, du, da, dc, db];
  },
  sdd({ inputs: [a, b], attrs: { layout, transA, transB } }, dw) {
    // W = op(A)·op(B) on the mask: dop(A) = dW·op(B)ᵀ, dop(B) = op(A)ᵀ·dW, with dW block-sparse.
    let da: Tensor | undefined, db: Tensor | undefined;
    if (a.requiresGrad) {
      // dop(A)ᵀ (K,R) = op(B) (K,C) · dWᵀ: the forward dds with op(B) as the dense rows.
      const g = ops.dds(transB ? ops.transpose(b) : b, dw, layout, { transW: true });
      da = transA ? g : ops.transpose(g);
    }
    if (b.requiresGrad) {
      // dop(B) (K,C) = op(A)ᵀ (K,R) · dW: the backward dds with op(A)ᵀ as the dense rows.
      const g = ops.dds(transA ? a : ops.transpose(a), dw, layout, { transW: false });
      db = transB ? ops.transpose(g) : g;
    }
    return [da, db];
  },
  binary({ inputs: [a, b], attrs: { op, bcast } }, dy) {
    switch (op) {
      case "add":
        return [a.requiresGrad ? dy : undefined, b.requiresGrad ? reduceTo(dy, b, bcast) : undefined];
      case "sub":
        return [
          a.requiresGrad ? dy : undefined,
          b.requiresGrad ? ops.neg(reduceTo(dy, b, bcast)) : undefined,
        ];
      case "mul":
        return [
          a.requiresGrad ? ops.mul(dy, b) : undefined,
          b.requiresGrad ? reduceTo(ops.mul(dy, a), b, bcast) : undefined,
        ];
      case "div":
        return [
          a.requiresGrad ? ops.div(dy, b) : undefined,
          b.requiresGrad ? ops.neg(reduceTo(ops.div(ops.mul(dy, a), ops.mul(b, b)), b, bcast)) : undefined,
        ];
    }
  },
  affine({ attrs: { alpha } }, dy) {
    return [ops.affine(dy, alpha, 0)];
  },
  unary({ inputs: [x], saved: [y], attrs: { op } }, dy, into) {
    return [unaryGrad(op, x, y, dy, into(0))];
  },
  sum({ inputs: [x] }, dy) {
    return [broadcastScalar(dy, x.shape)];
  },
  sumRows({ inputs: [x] }, dy) {
    return [ops.add(zerosOn(x.shape, x.backend), dy)];
  },
  sumCols({ inputs: [x] }, dy) {
    const [M, N] = x.shape;
    return [ops.add(zerosOn([M, N], x.backend), ops.reshape(dy, [M, 1]))];
  },
  reshape({ inputs: [x] }, dy) {
    return [ops.reshape(dy, x.shape)];
  },
  padLast({ attrs: { k } }, dy) {
    return [ops.sliceLast(dy, k)];
  },
  sliceLast({ attrs: { n } }, dy) {
    return [ops.padLast(dy, n)];
  },
  transpose(_node, dy) {
    return [ops.transpose(dy)];
  },
  softmax({ saved: [y] }, dy) {
    return [softmaxGrad(y, dy)];
  },
  bsrSoftmax({ saved: [y], attrs }, dy) {
    return [_bsrSoftmaxGrad(y, dy, attrs)];
  },
  crossEntropy({ saved: [probs, labels] }, dy) {
    return [crossEntropyGrad(probs, labels, dy)];
  },
  gatedCombine({ inputs: [s, l, g, bias] }, dy) {
    // ds = (1 − g)·dy, dl = g·dy, dg = Σ_row dy·(l − s): one pass; dbias = Σ_rows dy
    const N = s.shape.at(-1)!, M = s.size / N, be = s.backend;
    const ds = emptyOn(s.shape, be), dl = emptyOn(l.shape, be), dg = emptyOn(g.shape, be);
    be.gatedCombineGrad(dy.buffer, s.buffer, l.buffer, g.buffer, ds.buffer, dl.buffer, dg.buffer, {
      M,
      N,
      accumulate: false,
    });
    const db = bias?.requiresGrad ? reduceTo(dy, bias, "row") : undefined;
    return [ds, dl, dg, db];
  },
  layerNorm({ inputs: [x, gamma, beta], saved: [mean, rstd] }, dy, into) {
    const [dx, dg, db] = layerNormGrad(dy, x, gamma, mean, rstd, into(0));
    return [dx, gamma.requiresGrad ? dg : undefined, beta.requiresGrad ? db : undefined];
  },
  gather({ inputs: [table], saved: [idx] }, dy) {
    return [scatterAdd(dy, idx, table.shape)];
  },
};

function ruleOf(node: TapeNode): Rule<OpName> {
  return rules[node.op] as Rule<OpName>;
}

/** Tensors reachable from `root` through tape nodes, inputs before outputs. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [], seen = new Set<number>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    stack.push([t, true]);
    for (const i of t.node?.inputs ?? []) if (i.requiresGrad && !seen.has(i.id)) stack.push([i, false]);
  }
  return order;
}

/** Options of {@link backward}. */
export interface BackwardOptions {
  /** Keep the graph (and what its ops saved) for another backward pass (false). */
  retainGraph?: boolean;
}

/**
 * Reverse-mode autograd from `root`. The gradients of leaves (tensors that
 * require grad and were not made by a recorded op) accumulate into `.grad`
 * (kept out of `tidy` scopes and step scopes). Every intermediate gradient is
 * freed before `backward` returns, and so is the graph, as PyTorch does: what
 * the ops made for backward (softmax probabilities, LayerNorm statistics,
 * copied ids) is released, and a second pass through the same graph throws
 * unless `retainGraph` is set. The tensors themselves (the loss, the logits)
 * stay valid.
 *
 * @example
 * ```ts
 * import { backward, mul, sum, tensor } from "@pixelfly/pixelfly";
 * const x = tensor([1, 2, 3], [3], { requiresGrad: true });
 * backward(sum(mul(x, x)));
 * console.log(await x.grad!.data()); // Float32Array(3) [2, 4, 6]
 * ```
 */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) {
    throw new Error(
      `backward: tensor [${root.shape}] does not require grad (no parameter contributed to it)`,
    );
  }
  if (grad === undefined && root.size !== 1) {
    throw new RangeError(
      `backward: an implicit gradient needs a one-element tensor, got shape [${root.shape}]`,
    );
  }
  if (grad !== undefined && grad.size !== root.size) {
    throw new RangeError(
      `backward: gradient shape [${grad.shape}] does not match tensor shape [${root.shape}]`,
    );
  }
  const order = topoOrder(root);
  for (const t of order) {
    if (t.node?.freed) {
      throw new Error(
        `backward: the graph through ${t} (op ${t.node.op}) was freed by an earlier backward(); ` +
          `run the forward pass again, or pass { retainGraph: true } to the first backward`,
      );
    }
  }
  try {
    // tidy frees every intermediate gradient; the leaves' .grad are kept out of it
    tidy(() =>
      noGrad(() => {
        const grads = new Map<number, Tensor>();
        // pending gradients that backward alone holds (made by a rule, sharing no buffer): rules may add
        // into these in place (see Rule); a gradient passed on as it came (an add's dy) is not one
        const own = new Set<Tensor>();
        // how many recorded ops of the graph take each tensor as an input
        const uses = new Map<number, number>();
        for (const t of order) {
          for (const i of t.node?.inputs ?? []) if (i.requiresGrad) uses.set(i.id, (uses.get(i.id) ?? 0) + 1);
        }
        grads.set(root.id, grad ?? broadcastScalar(scalarOne(root.backend), root.shape));
        for (let k = order.length - 1; k >= 0; k--) {
          const t = order[k];
          const g = grads.get(t.id);
          if (g === undefined) continue;
          grads.delete(t.id);
          const wasOwn = own.delete(g);
          const node = t.node;
          if (node === undefined) {
            // a leaf: accumulate into .grad. A gradient only backward holds (made by a rule, its buffer
            // shared with nothing) becomes .grad as it is; any other is copied (rules may hand one tensor
            // to several inputs, or pass the output gradient on)
            if (t.grad !== undefined) addInto(t.grad, g);
            else if (!wasOwn) t.grad = keep(ops.affine(g, 1, 0));
            else t.grad = keep(g.shape.join() === t.shape.join() ? g : ops.reshape(g, t.shape));
            continue;
          }
          const dy = ops.reshape(g, t.shape), before = tensorWatermark(), handed = new Set<Tensor>();
          const into = (i: number): Tensor | undefined => {
            let target = node.inputs[i];
            if (target === undefined) return undefined;
            // a reshape view that only this op uses passes its gradient on unchanged: add into the viewed
            // tensor's gradient (the view then gets none, so nothing reaches the viewed tensor twice)
            while (
              !grads.has(target.id) && target.node?.op === "reshape" && uses.get(target.id) === 1 &&
              target.node.inputs[0].requiresGrad
            ) target = target.node.inputs[0];
            const prev = grads.get(target.id);
            if (prev === undefined || !own.has(prev) || prev.size !== node.inputs[i].size) return undefined;
            handed.add(prev);
            return prev;
          };
          const gs = ruleOf(node)(node, dy, into);
          // made by this rule, or passed on from an owned dy (a reshape, an add's one operand), its buffer
          // shared with nothing else the rule saw or returned
          const fresh = (gi: Tensor, i: number) =>
            (gi.buffer === dy.buffer ? wasOwn : gi.id >= before) &&
            gs.every((o, j) => j === i || o === undefined || o.buffer !== gi.buffer) &&
            !node.inputs.some((x) => x.buffer === gi.buffer) && !node.saved.some((x) =>
              x.buffer === gi.buffer
            );
          node.inputs.forEach((input, i) => {
            const gi = gs[i];
            if (gi === undefined || !input.requiresGrad) return;
            const prev = grads.get(input.id);
            if (handed.has(gi)) return; // added in place by the rule (into this input's or a viewed tensor's)
            const gShaped = gi.size === input.size && gi.shape.join() !== input.shape.join()
              ? ops.reshape(gi, input.shape)
              : gi;
            if (prev === undefined) {
              grads.set(input.id, gShaped);
              if (fresh(gi, i)) own.add(gShaped);
            } else {
              const sum = ops.add(prev, gShaped);
              own.delete(prev);
              grads.set(input.id, sum);
              own.add(sum);
            }
          });
        }
      })
    );
  } finally {
    if (!opts.retainGraph) freeGraph(order);
  }
}

/** Free what the ops of a graph saved for backward and mark the nodes used up. */
function freeGraph(order: Tensor[]): void {
  for (const t of order) {
    const node = t.node;
    if (node === undefined || node.freed) continue;
    for (const s of node.owned) s.dispose();
    node.freed = true;
    node.inputs = [];
    node.saved = [];
    node.owned = [];
  }
}

const ones = new WeakMap<Backend, Tensor>();

/** A kept one-element tensor holding 1 on a backend (the implicit output gradient). */
function scalarOne(be: Backend): Tensor {
  let t = ones.get(be);
  if (t === undefined || t.disposed) {
    t = keep(allocTensor("backward", [1], be, new Float32Array([1])));
    ones.set(be, t);
  }
  return t;
}
