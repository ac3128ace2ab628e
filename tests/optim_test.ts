/**
 * Optimizers, gradient clipping and schedules, checked against independent
 * float64 implementations of PyTorch's update rules written here, on the js
 * reference and on every backend under test.
 */
import { assertClose, assertEquals, assertOk, assertThrows } from "./_assert.ts";
import { backendsUnderTest, disposing } from "./_backends.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend } from "../src/backends/types.ts";
import { keep, randn, Tensor, tensor, tidy } from "../src/tensor.ts";
import { matmul, mse } from "../src/ops.ts";
import { Rng } from "../src/random.ts";
import { SGD, type SGDOptions } from "../src/optim/sgd.ts";
import { AdamW, type AdamWOptions } from "../src/optim/adamw.ts";
import { clipGradNorm, gradNorm } from "../src/optim/clip.ts";
import { cosineSchedule } from "../src/optim/schedule.ts";

// ---------------------------------------------------------------------------
// float64 references of the PyTorch update rules (torch.optim.SGD / AdamW)

interface RefParam {
  p: Float64Array;
  noWeightDecay: boolean;
}

class RefSGD {
  bufs = new Map<number, Float64Array>();
  constructor(public o: Required<SGDOptions>) {}
  step(params: RefParam[], grads: (Float64Array | undefined)[]): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = this.o;
    params.forEach(({ p, noWeightDecay }, k) => {
      const grad = grads[k];
      if (grad === undefined) return;
      const wd = noWeightDecay ? 0 : weightDecay;
      const d = grad.map((g, i) => g + wd * p[i]);
      let upd = d;
      if (momentum !== 0) {
        let buf = this.bufs.get(k);
        if (buf === undefined) {
          buf = Float64Array.from(d);
          this.bufs.set(k, buf);
        } else {
          for (let i = 0; i < buf.length; i++) buf[i] = momentum * buf[i] + (1 - dampening) * d[i];
        }
        const b = buf;
        upd = nesterov ? d.map((x, i) => x + momentum * b[i]) : Float64Array.from(b);
      }
      for (let i = 0; i < p.length; i++) p[i] -= lr * upd[i];
    });
  }
}

class RefAdamW {
  state = new Map<number, { m: Float64Array; v: Float64Array; t: number }>();
  constructor(public o: Required<AdamWOptions>) {}
  step(params: RefParam[], grads: (Float64Array | undefined)[]): void {
    const { lr, betas: [b1, b2], eps, weightDecay } = this.o;
    params.forEach(({ p, noWeightDecay }, k) => {
      const g = grads[k];
      if (g === undefined) return;
      let s = this.state.get(k);
      if (s === undefined) {
        s = { m: new Float64Array(p.length), v: new Float64Array(p.length), t: 0 };
        this.state.set(k, s);
      }
      s.t++;
      const wd = noWeightDecay ? 0 : weightDecay;
      const bc1 = 1 - b1 ** s.t, bc2 = 1 - b2 ** s.t;
      for (let i = 0; i < p.length; i++) {
        p[i] = p[i] * (1 - lr * wd);
        s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
        s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
        const denom = Math.sqrt(s.v[i]) / Math.sqrt(bc2) + eps;
        p[i] = p[i] - (lr / bc1) * (s.m[i] / denom);
      }
    });
  }
}

// ---------------------------------------------------------------------------
// a seeded problem: parameters of a few shapes and per-step gradients

const SHAPES: number[][] = [[3, 5], [7], [2, 2, 4]];

interface Problem {
  init: Float32Array[];
  /** grads[step][param], undefined where the parameter has no gradient that step */
  grads: (Float32Array | undefined)[][];
  noWeightDecay: boolean[];
}

function problem(seed: number, steps: number, skip: (step: number, k: number) => boolean): Problem {
  const rng = new Rng(seed);
  const vals = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const sizes = SHAPES.map((s) => s.reduce((a, b) => a * b, 1));
  return {
    init: sizes.map(vals),
    grads: Array.from({ length: steps }, (_, t) => sizes.map((n, k) => skip(t, k) ? undefined : vals(n))),
    noWeightDecay: [false, true, false],
  };
}

/** Parameter 1 (the opted-out one) has no gradient at steps 1 and 2; parameter 2 none at step 0. */
const skipSome = (t: number, k: number) => (k === 1 && (t === 1 || t === 2)) || (k === 2 && t === 0);

function makeParams(be: Backend, pr: Problem): Tensor[] {
  return pr.init.map((v, k) => {
    const p = new Tensor(SHAPES[k], be, be.upload(v));
    p.requiresGrad = true;
    p.noWeightDecay = pr.noWeightDecay[k];
    return p;
  });
}

function setGrads(be: Backend, params: Tensor[], grads: (Float32Array | undefined)[]): void {
  params.forEach((p, k) => {
    p.grad?.dispose();
    const g = grads[k];
    p.grad = g === undefined ? undefined : keep(new Tensor(p.shape, be, be.upload(g)));
  });
}

interface Optimizer {
  step(): void;
  zeroGrad(): void;
  dispose(): void;
  lr: number;
}

/** Run an optimizer over the problem on a backend; `lrAt` (optional) changes lr before a step. */
async function runOn(
  be: Backend,
  pr: Problem,
  make: (params: Tensor[]) => Optimizer,
  lrAt?: (t: number) => number | undefined,
): Promise<Float32Array[]> {
  const params = makeParams(be, pr);
  const opt = make(params);
  pr.grads.forEach((g, t) => {
    const lr = lrAt?.(t);
    if (lr !== undefined) opt.lr = lr;
    setGrads(be, params, g);
    opt.step();
  });
  const out = await Promise.all(params.map((p) => p.data()));
  opt.dispose();
  params.forEach((p) => p.dispose());
  return out;
}

function runRef(
  pr: Problem,
  ref: { step(p: RefParam[], g: (Float64Array | undefined)[]): void; o: { lr: number } },
  lrAt?: (t: number) => number | undefined,
): Float64Array[] {
  const params = pr.init.map((v, k) => ({ p: Float64Array.from(v), noWeightDecay: pr.noWeightDecay[k] }));
  pr.grads.forEach((g, t) => {
    const lr = lrAt?.(t);
    if (lr !== undefined) ref.o.lr = lr;
    ref.step(params, g.map((x) => x && Float64Array.from(x)));
  });
  return params.map((p) => p.p);
}

const sgdVariants: Required<SGDOptions>[] = [
  { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 },
  { lr: 0.05, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0.1 },
  { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 },
  { lr: 0.05, momentum: 0.8, dampening: 0.3, nesterov: false, weightDecay: 0.05 },
  { lr: 0.02, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0 },
  { lr: 0.02, momentum: 0.7, dampening: 0, nesterov: true, weightDecay: 0.2 },
];

const adamwVariants: Required<AdamWOptions>[] = [
  { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 },
  { lr: 0.05, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
  { lr: 0.02, betas: [0.8, 0.95], eps: 1e-3, weightDecay: 0.3 },
  { lr: 0.1, betas: [0, 0.5], eps: 0.5, weightDecay: 1 },
];

const label = (o: object) => JSON.stringify(o);

Deno.test("SGD matches the float64 PyTorch rule (momentum, dampening, nesterov, weight decay, opt-out, skips)", async (t) => {
  const pr = problem(1, 6, skipSome);
  for (const o of sgdVariants) {
    await t.step(label(o), async () => {
      const expected = runRef(pr, new RefSGD({ ...o }));
      for (const be of [new JsBackend(), new JsBackend({ float64: true })]) {
        const got = await runOn(be, pr, (ps) => new SGD(ps, o));
        got.forEach((g, k) =>
          assertClose(g, expected[k], { atol: 1e-6, rtol: 1e-5, label: `${be.name} param ${k}` })
        );
      }
    });
  }
});

Deno.test("SGD: a change of lr between steps applies to the next step", async () => {
  const pr = problem(2, 5, () => false);
  const o: Required<SGDOptions> = {
    lr: 0.1,
    momentum: 0.9,
    dampening: 0,
    nesterov: false,
    weightDecay: 0.01,
  };
  const lrAt = (t: number) => [0.1, 0.05, 0, 0.2, 0.01][t];
  const expected = runRef(pr, new RefSGD({ ...o }), lrAt);
  const got = await runOn(new JsBackend(), pr, (ps) => new SGD(ps, o), lrAt);
  got.forEach((g, k) => assertClose(g, expected[k], { atol: 1e-6, rtol: 1e-5, label: `param ${k}` }));
});

Deno.test("AdamW matches the float64 PyTorch rule (bias correction, per-parameter steps, noWeightDecay)", async (t) => {
  const pr = problem(3, 6, skipSome);
  for (const o of adamwVariants) {
    await t.step(label(o), async () => {
      const expected = runRef(pr, new RefAdamW({ ...o, betas: [...o.betas] }));
      for (const be of [new JsBackend(), new JsBackend({ float64: true })]) {
        const got = await runOn(be, pr, (ps) => new AdamW(ps, o));
        got.forEach((g, k) =>
          assertClose(g, expected[k], { atol: 1e-6, rtol: 1e-5, label: `${be.name} param ${k}` })
        );
      }
    });
  }
});

Deno.test("AdamW: defaults are PyTorch's, lr changes apply, step counts are per parameter", async () => {
  const be = new JsBackend();
  const pr = problem(4, 6, skipSome);
  const params = makeParams(be, pr);
  const opt = new AdamW(params);
  assertEquals([opt.lr, opt.betas, opt.eps, opt.weightDecay], [1e-3, [0.9, 0.999], 1e-8, 0.01]);
  const lrAt = (t: number) => [undefined, 0.01, undefined, 0.003, undefined, 0][t];
  pr.grads.forEach((g, t) => {
    const lr = lrAt(t);
    if (lr !== undefined) opt.lr = lr;
    setGrads(be, params, g);
    opt.step();
  });
  // param 0 had a gradient at all 6 steps, param 1 at 4, param 2 at 5
  assertEquals(params.map((p) => opt.stepCount(p)), [6, 4, 5]);
  const expected = runRef(
    pr,
    new RefAdamW({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 }),
    lrAt,
  );
  const got = await Promise.all(params.map((p) => p.data()));
  got.forEach((g, k) => assertClose(g, expected[k], { atol: 1e-6, rtol: 1e-5, label: `param ${k}` }));
  opt.dispose();
});

Deno.test("noWeightDecay: with zero gradients only decayed parameters shrink", async () => {
  const be = new JsBackend();
  for (
    const make of [
      (ps: Tensor[]) => new SGD(ps, { lr: 0.5, weightDecay: 0.2 }),
      (ps: Tensor[]) => new AdamW(ps, { lr: 0.5, weightDecay: 0.2 }),
    ]
  ) {
    const a = tensor([1, -2], [2], { backend: be, requiresGrad: true });
    const b = tensor([1, -2], [2], { backend: be, requiresGrad: true });
    b.noWeightDecay = true;
    const opt = make([a, b]);
    a.grad = keep(tensor([0, 0], [2], { backend: be }));
    b.grad = keep(tensor([0, 0], [2], { backend: be }));
    opt.step();
    // SGD: p − lr·wd·p; AdamW: p·(1 − lr·wd), m = 0 so no Adam move: both 0.9·p
    assertClose(await a.data(), [0.9, -1.8], { atol: 1e-7, rtol: 1e-6, label: "decayed" });
    assertEquals(Array.from(await b.data()), [1, -2]);
    opt.dispose();
  }
});

Deno.test("zeroGrad drops gradients; parameters without gradients are left untouched", async () => {
  const be = new JsBackend();
  for (
    const make of [
      (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }),
      (ps: Tensor[]) => new AdamW(ps, { lr: 0.1 }),
    ]
  ) {
    const a = tensor([1, 2, 3], [3], { backend: be, requiresGrad: true });
    const b = tensor([4, 5], [2], { backend: be, requiresGrad: true });
    const opt = make([a, b]);
    const g = keep(tensor([1, 1, 1], [3], { backend: be }));
    a.grad = g;
    opt.step();
    assertEquals(Array.from(await b.data()), [4, 5]); // no grad: skipped, not even weight decay
    const after = Array.from(await a.data());
    assertOk(after[0] !== 1, "a moved");
    opt.zeroGrad();
    assertEquals([a.grad, b.grad], [undefined, undefined]);
    assertOk(g.disposed, "zeroGrad disposes the old gradient");
    opt.step(); // nothing has a gradient: nothing moves
    assertEquals(Array.from(await a.data()), after);
    opt.dispose();
    opt.dispose(); // idempotent
    assertThrows(() => opt.step(), Error, "disposed");
    assertThrows(() => opt.zeroGrad(), Error, "disposed");
  }
});

Deno.test("optimizer state survives tidy scopes", async () => {
  const be = new JsBackend();
  const pr = problem(5, 4, () => false);
  for (
    const [make, ref] of [
      [
        (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9 }),
        new RefSGD({ lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 }),
      ],
      [
        (ps: Tensor[]) => new AdamW(ps, { lr: 0.1 }),
        new RefAdamW({ lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 }),
      ],
    ] as const
  ) {
    const params = makeParams(be, pr);
    const opt = make(params);
    for (const g of pr.grads) {
      setGrads(be, params, g);
      tidy(() => opt.step()); // state created inside the scope must outlive it
    }
    const expected = runRef(pr, ref);
    const got = await Promise.all(params.map((p) => p.data()));
    got.forEach((v, k) => assertClose(v, expected[k], { atol: 1e-6, rtol: 1e-5, label: `param ${k}` }));
    opt.dispose();
  }
});

// ---------------------------------------------------------------------------
// clipping

function gradsFor(be: Backend, seed: number, scale: number): Tensor[] {
  const rng = new Rng(seed);
  return SHAPES.map((s) => {
    const n = s.reduce((a, b) => a * b, 1);
    const p = tensor(new Float32Array(n), s, { backend: be, requiresGrad: true });
    p.grad = keep(tensor(Float32Array.from({ length: n }, () => scale * rng.normal()), s, { backend: be }));
    return p;
  });
}

async function norm64(params: Tensor[]): Promise<number> {
  let s = 0;
  for (const p of params) if (p.grad) { for (const v of await p.grad.data()) s += v * v; }
  return Math.sqrt(s);
}

Deno.test("clipGradNorm: returns the total norm, scales above maxNorm, leaves grads alone below", async () => {
  const be = new JsBackend();
  const params = gradsFor(be, 7, 1);
  const before = await Promise.all(params.map((p) => p.grad!.data()));
  const n = await norm64(params);
  // below: no change at all
  const nb = clipGradNorm(params, n * 1.5);
  assertClose([await nb.item()], [n], { atol: 0, rtol: 1e-6, label: "norm (below)" });
  for (const [k, p] of params.entries()) assertEquals(await p.grad!.data(), before[k]);
  // above: scaled by maxNorm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_
  const maxNorm = n / 4;
  const na = clipGradNorm(params, maxNorm);
  assertClose([await na.item()], [n], { atol: 0, rtol: 1e-6, label: "norm (above)" });
  const f = maxNorm / (n + 1e-6);
  for (const [k, p] of params.entries()) {
    assertClose(await p.grad!.data(), Array.from(before[k], (v) => v * f), {
      atol: 1e-7,
      rtol: 1e-6,
      label: `clipped grad ${k}`,
    });
  }
  assertClose([await gradNorm(params).item()], [maxNorm], { atol: 0, rtol: 1e-5, label: "norm after" });
});

Deno.test("clipGradNorm and gradNorm: skipped params, tiny and huge norms, no gradients", async () => {
  const be = new JsBackend();
  const params = gradsFor(be, 8, 1);
  params[1].grad!.dispose();
  params[1].grad = undefined;
  assertClose([await gradNorm(params).item()], [await norm64(params)], {
    atol: 0,
    rtol: 1e-6,
    label: "skip",
  });
  for (const scale of [1e-12, 1e-4, 1e4]) {
    const ps = gradsFor(be, 9, scale);
    assertClose([await gradNorm(ps).item()], [await norm64(ps)], {
      atol: 0,
      rtol: 1e-5,
      label: `scale ${scale}`,
    });
  }
  const none = [tensor([1, 2], [2], { backend: be })];
  const z = clipGradNorm(none, 1);
  assertEquals([z.shape, z.backend], [[1], be]);
  assertOk((await z.item()) < 1e-15, "no gradients: norm about 0");
  const zeroGrad = tensor([1], [1], { backend: be });
  zeroGrad.grad = keep(tensor([0], [1], { backend: be }));
  assertOk((await clipGradNorm([zeroGrad], 1).item()) < 1e-15, "zero gradients: norm about 0");
  assertEquals(Array.from(await zeroGrad.grad.data()), [0]);
});

// ---------------------------------------------------------------------------
// schedule

Deno.test("cosineSchedule: warm-up, cosine, floor", () => {
  const lr = cosineSchedule({ baseLr: 0.1, warmupSteps: 10, totalSteps: 110, minLr: 0.01 });
  const ref = (s: number) =>
    s < 10 ? 0.1 * s / 10 : s >= 110 ? 0.01 : 0.01 + 0.09 * 0.5 * (1 + Math.cos(Math.PI * (s - 10) / 100));
  assertEquals([lr(0), lr(5), lr(10), lr(110), lr(111), lr(1e6)], [0, 0.05, 0.1, 0.01, 0.01, 0.01]);
  assertClose([lr(60)], [0.055], { atol: 1e-15, rtol: 0, label: "half way" });
  assertClose([lr(35)], [0.01 + 0.09 * 0.5 * (1 + Math.SQRT1_2)], { atol: 1e-15, rtol: 0, label: "quarter" });
  const steps = Array.from({ length: 120 }, (_, s) => s);
  assertClose(steps.map(lr), steps.map(ref), { atol: 1e-15, rtol: 0, label: "all steps" });
  // monotone: up during warm-up, down after
  for (let s = 1; s < 120; s++) assertOk(s <= 10 ? lr(s) > lr(s - 1) : lr(s) <= lr(s - 1), `step ${s}`);
  // no warm-up, default minLr 0
  const c = cosineSchedule({ baseLr: 2, warmupSteps: 0, totalSteps: 4 });
  assertClose([0, 1, 2, 3, 4, 5].map(c), [2, 1 + Math.SQRT1_2, 1, 1 - Math.SQRT1_2, 0, 0], {
    atol: 1e-15,
    rtol: 0,
    label: "no warm-up",
  });
  assertClose([c(0.5)], [1 + Math.cos(Math.PI / 8)], { atol: 1e-15, rtol: 0, label: "fractional step" });
});

// ---------------------------------------------------------------------------
// validation

Deno.test("bad options and inputs throw clear errors", () => {
  const be = new JsBackend();
  const p = tensor([1, 2], [2], { backend: be, requiresGrad: true });
  // SGD
  assertThrows(() => new SGD([p], { lr: -1 }), RangeError, "SGD: lr must be a finite number >= 0, got -1");
  assertThrows(() => new SGD([p], { lr: NaN }), RangeError, "SGD: lr must be a finite number >= 0, got NaN");
  assertThrows(() => new SGD([p], { lr: Infinity }), RangeError, "got Infinity");
  assertThrows(() => new SGD([p], undefined as any), TypeError, "SGD: options must be an object");
  assertThrows(
    () => new SGD([p], {} as any),
    RangeError,
    "SGD: lr must be a finite number >= 0, got undefined",
  );
  assertThrows(
    () => new SGD([p], { lr: 1, momentum: -0.5 }),
    RangeError,
    "SGD: momentum must be a finite number >= 0, got -0.5",
  );
  assertThrows(
    () => new SGD([p], { lr: 1, dampening: 1.5 }),
    RangeError,
    "SGD: dampening must be in [0, 1], got 1.5",
  );
  assertThrows(
    () => new SGD([p], { lr: 1, weightDecay: -1 }),
    RangeError,
    "SGD: weightDecay must be a finite number >= 0, got -1",
  );
  assertThrows(
    () => new SGD([p], { lr: 1, nesterov: 1 as any }),
    TypeError,
    "SGD: nesterov must be a boolean, got 1",
  );
  assertThrows(
    () => new SGD([p], { lr: 1, nesterov: true }),
    RangeError,
    "SGD: nesterov momentum requires momentum > 0 and dampening 0, got momentum 0 and dampening 0",
  );
  assertThrows(
    () => new SGD([p], { lr: 1, momentum: 0.9, dampening: 0.1, nesterov: true }),
    RangeError,
    "dampening 0.1",
  );
  assertThrows(
    () => (new SGD([p], { lr: 1 }).lr = -2),
    RangeError,
    "SGD: lr must be a finite number >= 0, got -2",
  );
  // params
  assertThrows(() => new SGD([], { lr: 1 }), RangeError, "SGD: params is empty");
  assertThrows(
    () => new SGD(5 as any, { lr: 1 }),
    TypeError,
    "SGD: params must be an iterable of Tensors, got 5",
  );
  assertThrows(() => new SGD([p, 3 as any], { lr: 1 }), TypeError, "SGD: params[1] must be a Tensor, got 3");
  assertThrows(() => new AdamW([p, p]), RangeError, "AdamW: params[1] (Tensor(");
  assertThrows(() => new AdamW([]), RangeError, "AdamW: params is empty");
  // AdamW
  assertThrows(
    () => new AdamW([p], { lr: -1e-3 }),
    RangeError,
    "AdamW: lr must be a finite number >= 0, got -0.001",
  );
  assertThrows(
    () => new AdamW([p], { betas: [1, 0.9] }),
    RangeError,
    "AdamW: betas[0] must be in [0, 1), got 1",
  );
  assertThrows(
    () => new AdamW([p], { betas: [0.9, -0.1] }),
    RangeError,
    "AdamW: betas[1] must be in [0, 1), got -0.1",
  );
  assertThrows(
    () => new AdamW([p], { betas: [0.9] as any }),
    TypeError,
    "AdamW: betas must be an array of two numbers, got 0.9",
  );
  assertThrows(
    () => new AdamW([p], { eps: -1 }),
    RangeError,
    "AdamW: eps must be a finite number >= 0, got -1",
  );
  assertThrows(
    () => new AdamW([p], { weightDecay: NaN }),
    RangeError,
    "AdamW: weightDecay must be a finite number >= 0, got NaN",
  );
  assertThrows(() => new AdamW([p], null as any), TypeError, "AdamW: options must be an object, got null");
  assertThrows(
    () => (new AdamW([p]).lr = Infinity),
    RangeError,
    "AdamW: lr must be a finite number >= 0, got Infinity",
  );
  // a gradient that does not match its parameter
  for (const opt of [new SGD([p], { lr: 1 }), new AdamW([p])]) {
    const name = opt instanceof SGD ? "SGD" : "AdamW";
    p.grad = keep(tensor([1, 2, 3], [3], { backend: be }));
    assertThrows(() => opt.step(), RangeError, `${name}.step: the gradient of Tensor(${p.id}, [2]`);
    p.grad.dispose();
    p.grad = keep(tensor([1, 2], [2], { backend: new JsBackend() }));
    assertThrows(
      () => opt.step(),
      RangeError,
      `${name}.step: the gradient of Tensor(${p.id}, [2], js, requiresGrad) lives on a different backend (js) than the parameter (js)`,
    );
    p.grad.dispose();
    p.grad = undefined;
  }
  // clipping
  assertThrows(
    () => clipGradNorm([p], 0),
    RangeError,
    "clipGradNorm: maxNorm must be a positive finite number, got 0",
  );
  assertThrows(() => clipGradNorm([p], NaN), RangeError, "got NaN");
  assertThrows(() => clipGradNorm([p], Infinity), RangeError, "got Infinity");
  assertThrows(
    () => clipGradNorm(null as any, 1),
    TypeError,
    "clipGradNorm: params must be an iterable of Tensors, got null",
  );
  assertThrows(() => gradNorm([p, "x" as any]), TypeError, "gradNorm: params[1] must be a Tensor, got x");
  const q = tensor([1], [1], { backend: new JsBackend(), requiresGrad: true });
  p.grad = keep(tensor([1, 2], [2], { backend: be }));
  q.grad = keep(tensor([1], [1], { backend: q.backend }));
  assertThrows(
    () => clipGradNorm([p, q], 1),
    RangeError,
    "clipGradNorm: all gradients must live on one backend, but params[1]",
  );
  // schedule
  const ok = { baseLr: 0.1, warmupSteps: 2, totalSteps: 10 };
  assertThrows(
    () => cosineSchedule({ ...ok, baseLr: 0 }),
    RangeError,
    "cosineSchedule: baseLr must be a positive finite number, got 0",
  );
  assertThrows(
    () => cosineSchedule({ ...ok, warmupSteps: 1.5 }),
    RangeError,
    "cosineSchedule: warmupSteps must be an integer >= 0, got 1.5",
  );
  assertThrows(() => cosineSchedule({ ...ok, warmupSteps: -1 }), RangeError, "got -1");
  assertThrows(
    () => cosineSchedule({ ...ok, totalSteps: 2 }),
    RangeError,
    "cosineSchedule: totalSteps must be an integer greater than warmupSteps (2), got 2",
  );
  assertThrows(
    () => cosineSchedule({ ...ok, minLr: 0.2 }),
    RangeError,
    "cosineSchedule: minLr must be in [0, baseLr] = [0, 0.1], got 0.2",
  );
  assertThrows(() => cosineSchedule({ ...ok, minLr: -0.1 }), RangeError, "got -0.1");
  assertThrows(
    () => cosineSchedule(undefined as any),
    TypeError,
    "cosineSchedule: options must be an object",
  );
  assertThrows(
    () => cosineSchedule(ok)(-1),
    RangeError,
    "cosineSchedule: step must be a finite number >= 0, got -1",
  );
  assertThrows(() => cosineSchedule(ok)(NaN), RangeError, "got NaN");
});

// ---------------------------------------------------------------------------
// every backend against the js reference

for (const entry of backendsUnderTest) {
  Deno.test({
    name: `optimizers and clipping on ${entry.label} match the js reference`,
    ignore: entry.ignore,
  }, async (t) => {
    const be = await entry.make();
    if (be === undefined) return;
    using _dispose = disposing(be);
    const js = new JsBackend();
    const pr = problem(11, 5, skipSome);
    try {
      for (const o of sgdVariants) {
        await t.step(`SGD ${label(o)}`, async () => {
          const want = await runOn(js, pr, (ps) => new SGD(ps, o));
          const got = await runOn(be, pr, (ps) => new SGD(ps, o));
          got.forEach((g, k) => assertClose(g, want[k], { atol: 1e-6, rtol: 1e-5, label: `param ${k}` }));
        });
      }
      for (const o of adamwVariants) {
        await t.step(`AdamW ${label(o)}`, async () => {
          const want = await runOn(js, pr, (ps) => new AdamW(ps, o));
          const got = await runOn(be, pr, (ps) => new AdamW(ps, o));
          got.forEach((g, k) => assertClose(g, want[k], { atol: 1e-5, rtol: 1e-4, label: `param ${k}` }));
        });
      }
      await t.step("clipGradNorm", async () => {
        for (const maxNorm of [0.5, 100]) {
          const a = gradsFor(js, 12, 1), b = gradsFor(be, 12, 1);
          const na = await clipGradNorm(a, maxNorm).item(), nb = await clipGradNorm(b, maxNorm).item();
          assertClose([nb], [na], { atol: 0, rtol: 1e-5, label: `norm, maxNorm ${maxNorm}` });
          for (let k = 0; k < a.length; k++) {
            assertClose(await b[k].grad!.data(), await a[k].grad!.data(), {
              atol: 1e-6,
              rtol: 1e-5,
              label: `grad ${k}, maxNorm ${maxNorm}`,
            });
          }
          [...a, ...b].forEach((p) => p.dispose());
        }
      });
    } finally {
      be.dispose();
    }
  });
}

// ---------------------------------------------------------------------------
// convergence: a seeded least-squares problem, loss must fall 10x

async function converge(
  be: Backend,
  make: (ps: Tensor[]) => Optimizer,
  steps: number,
): Promise<[number, number]> {
  const x = randn([32, 8], { seed: 21, backend: be });
  const wTrue = randn([8, 3], { seed: 22, backend: be });
  const y = matmul(x, wTrue);
  const w = randn([8, 3], { seed: 23, backend: be, std: 0.1, requiresGrad: true });
  const opt = make([w]);
  const lossAt = () => tidy(() => mse(matmul(x, w), y));
  const first = await lossAt().item();
  for (let s = 0; s < steps; s++) {
    tidy(() => {
      opt.zeroGrad();
      mse(matmul(x, w), y).backward();
      opt.step();
    });
  }
  const last = await lossAt().item();
  opt.dispose();
  [x, wTrue, y, w].forEach((t) => t.dispose());
  return [first, last];
}

const convergeCases: [string, (ps: Tensor[]) => Optimizer, number][] = [
  ["SGD", (ps) => new SGD(ps, { lr: 0.05 }), 60],
  ["SGD momentum", (ps) => new SGD(ps, { lr: 0.02, momentum: 0.9 }), 60],
  ["SGD nesterov", (ps) => new SGD(ps, { lr: 0.02, momentum: 0.9, nesterov: true }), 60],
  ["AdamW", (ps) => new AdamW(ps, { lr: 0.05, weightDecay: 0 }), 60],
];

Deno.test("each optimizer lowers a seeded least-squares loss 10x", async (t) => {
  const backends: [string, () => Promise<Backend | undefined>][] = [
    ["js", () => Promise.resolve(new JsBackend())],
    ...backendsUnderTest.map((e) => [e.label, e.make] as [string, () => Promise<Backend | undefined>]),
  ];
  for (const [name, makeBe] of backends) {
    const be = await makeBe();
    if (be === undefined) continue;
    try {
      for (const [optName, make, steps] of convergeCases) {
        await t.step(`${optName} on ${name}`, async () => {
          const [first, last] = await converge(be, make, steps);
          assertOk(last < first / 10, `${optName} on ${name}: loss ${first} -> ${last}, expected a 10x fall`);
        });
      }
    } finally {
      be.dispose();
    }
  }
});
