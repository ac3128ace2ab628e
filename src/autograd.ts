/**
 * The tape and the gradient rules, written once above all backends.
 *
 * Every recorded op leaves a {@link TapeNode} on its output: the op's name,
 * its inputs, what it saved for backward, and its attributes. `backward`
 * walks the nodes in reverse topological order and applies the rule of each
 * op, written as calls of other ops (as candle's backprop.rs and tfjs's
 * gradient files do). Rules run with recording off.
 *
 * @module
 */
import type { BlockLayout, Broadcast, UnaryOp } from "./backends/types.ts";
import * as ops from "./ops.ts";
import { _bsrSoftmaxGrad } from "./attention.ts";
import { _setBackwardHook, keep, type Tensor } from "./tensor.ts";

/** What a recorded op leaves on its output for backward. */
export interface TapeNode {
  /** The op's name: the key of its gradient rule. */
  op: string;
  /** The op's tensor inputs, in order; gradients flow to those that require them. */
  inputs: Tensor[];
  /** Tensors the rule needs besides the inputs (outputs, statistics). */
  saved: Tensor[];
  /** Non-tensor attributes (flags, sizes, layouts). */
  attrs: Record<string, unknown>;
}

let recording = true;

/** Whether ops record on the tape now. */
export function isGradEnabled(): boolean {
  return recording;
}

/**
 * Run `fn` without recording: for evaluation and parameter updates.
 *
 * @example
 * ```ts
 * import { matmul, noGrad, randn } from "@pixelfly/pixelfly";
 * const w = randn([2, 2], { seed: 1, requiresGrad: true });
 * const y = noGrad(() => matmul(w, w));
 * console.log(y.requiresGrad); // false
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const was = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = was;
  }
}

/** Record `out` as produced by `op` when recording is on and an input needs gradients. */
export function record(
  out: Tensor,
  op: string,
  inputs: Tensor[],
  saved: Tensor[] = [],
  attrs: Record<string, unknown> = {},
): Tensor {
  if (recording && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, saved, attrs };
  }
  return out;
}

type Rule = (node: TapeNode, dy: Tensor) => (Tensor | undefined)[];

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

const rules: Record<string, Rule> = {
  matmul({ inputs: [a, b], attrs }, dy) {
    const { transA, transB } = attrs as { transA: boolean; transB: boolean };
    const need = [a.requiresGrad, b.requiresGrad];
    // C = op(A)·op(B): dop(A) = dC·op(B)ᵀ, dop(B) = op(A)ᵀ·dC, then undo the transposes.
    const da = !need[0]
      ? undefined
      : transA
      ? ops.matmul(b, dy, { transA: transB, transB: true })
      : ops.matmul(dy, b, { transA: false, transB: !transB });
    const db = !need[1]
      ? undefined
      : transB
      ? ops.matmul(dy, a, { transA: true, transB: transA })
      : ops.matmul(a, dy, { transA: !transA, transB: false });
    return [da, db];
  },
  dds({ inputs: [x, w], attrs }, dy) {
    const { layout, transW } = attrs as { layout: BlockLayout; transW: boolean };
    // Y = X·Wᵀ: dX = dY·W, dW = dYᵀ·X.   Y = X·W: dX = dY·Wᵀ, dW = Xᵀ·dY.
    const dx = x.requiresGrad ? ops.dds(dy, w, layout, { transW: !transW }) : undefined;
    const dw = !w.requiresGrad
      ? undefined
      : transW
      ? ops.sdd(dy, x, layout, { transA: true, transB: false })
      : ops.sdd(x, dy, layout, { transA: true, transB: false });
    return [dx, dw];
  },
  sdd({ inputs: [a, b], attrs }, dw) {
    const { layout, transA, transB } = attrs as { layout: BlockLayout; transA: boolean; transB: boolean };
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
  binary({ inputs: [a, b], attrs }, dy) {
    const { op, bcast } = attrs as { op: string; bcast: Broadcast };
    let da: Tensor | undefined, db: Tensor | undefined;
    switch (op) {
      case "add":
        da = a.requiresGrad ? dy : undefined;
        db = b.requiresGrad ? reduceTo(dy, b, bcast) : undefined;
        break;
      case "sub":
        da = a.requiresGrad ? dy : undefined;
        db = b.requiresGrad ? ops.neg(reduceTo(dy, b, bcast)) : undefined;
        break;
      case "mul":
        da = a.requiresGrad ? ops.mul(dy, b) : undefined;
        db = b.requiresGrad ? reduceTo(ops.mul(dy, a), b, bcast) : undefined;
        break;
      case "div":
        da = a.requiresGrad ? ops.div(dy, b) : undefined;
        db = b.requiresGrad ? ops.neg(reduceTo(ops.div(ops.mul(dy, a), ops.mul(b, b)), b, bcast)) : undefined;
        break;
    }
    return [da, db];
  },
  affine({ attrs }, dy) {
    return [ops.affine(dy, attrs.alpha as number, 0)];
  },
  unary({ inputs: [x], saved: [y], attrs }, dy) {
    return [ops._unaryGrad(attrs.op as UnaryOp, x, y, dy)];
  },
  sum({ inputs: [x] }, dy) {
    return [ops.broadcastScalar(dy, x.shape)];
  },
  sumRows({ inputs: [x] }, dy) {
    return [ops.add(ops._zeros(x.shape, x.backend), dy)];
  },
  sumCols({ inputs: [x] }, dy) {
    const [M, N] = x.shape;
    return [ops.add(ops._zeros([M, N], x.backend), ops.reshape(dy, [M, 1]))];
  },
  reshape({ inputs: [x] }, dy) {
    return [ops.reshape(dy, x.shape)];
  },
  padLast({ attrs }, dy) {
    return [ops.sliceLast(dy, attrs.k as number)];
  },
  sliceLast({ attrs }, dy) {
    return [ops.padLast(dy, attrs.n as number)];
  },
  transpose(_node, dy) {
    return [ops.transpose(dy)];
  },
  softmax({ saved: [y] }, dy) {
    return [ops._softmaxGrad(y, dy)];
  },
  bsrSoftmax({ saved: [y], attrs }, dy) {
    return [_bsrSoftmaxGrad(y, dy, attrs as unknown as Parameters<typeof _bsrSoftmaxGrad>[2])];
  },
  crossEntropy({ inputs: [logits], saved: [probs, labels] }, dy) {
    return [ops._crossEntropyGrad(probs, labels, dy, logits.shape[0])];
  },
  layerNorm({ inputs: [x, gamma, beta], saved: [mean, rstd] }, dy) {
    const [dx, dg, db] = ops._layerNormGrad(dy, x, gamma, mean, rstd);
    return [dx, gamma.requiresGrad ? dg : undefined, beta.requiresGrad ? db : undefined];
  },
  gather({ inputs: [table], saved: [idx] }, dy) {
    return [ops._scatterAdd(dy, idx, table.shape)];
  },
};

/** Whether a gradient rule exists for this op name (tests use it). */
export function hasRule(op: string): boolean {
  return op in rules;
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

/**
 * Reverse-mode autograd from `root`. The gradients of leaves (tensors that
 * require grad and were not made by a recorded op) accumulate into `.grad`
 * (kept out of `tidy` scopes); intermediate gradients belong to the enclosing
 * `tidy` scope, so a training step inside `tidy` frees them all.
 */
export function backward(root: Tensor, grad?: Tensor): void {
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
  noGrad(() => {
    const order = topoOrder(root);
    const grads = new Map<number, Tensor>();
    grads.set(root.id, grad ?? ops._full(root.shape, 1, root.backend));
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t.id);
      if (g === undefined) continue;
      grads.delete(t.id);
      const node = t.node;
      if (node === undefined) {
        // a leaf: accumulate into .grad
        // .grad is always a fresh copy: rules may hand the same tensor to several inputs
        if (t.grad === undefined) t.grad = keep(ops.affine(g, 1, 0));
        else ops.addInto(t.grad, g);
        continue;
      }
      const rule = rules[node.op];
      if (rule === undefined) throw new Error(`backward: no gradient rule for op "${node.op}"`);
      const gs = rule(node, ops.reshape(g, t.shape));
      node.inputs.forEach((input, i) => {
        const gi = gs[i];
        if (gi === undefined || !input.requiresGrad) return;
        const gShaped = gi.size === input.size && gi.shape.join() !== input.shape.join()
          ? ops.reshape(gi, input.shape)
          : gi;
        const prev = grads.get(input.id);
        grads.set(input.id, prev === undefined ? gShaped : ops.add(prev, gShaped));
      });
    }
  });
}

_setBackwardHook(backward);
