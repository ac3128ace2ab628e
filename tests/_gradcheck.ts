/**
 * Gradient checks: analytic gradients against central finite differences in
 * float64 on the reference backend, then every backend against the
 * reference's gradients (after tinygrad's helper_test_op).
 *
 * @module
 */
import { JsBackend } from "../src/backends/js.ts";
import type { Backend } from "../src/backends/types.ts";
import { noGrad } from "../src/autograd.ts";
import { mul, sum } from "../src/ops.ts";
import { Rng } from "../src/random.ts";
import { Tensor, tidy } from "../src/tensor.ts";
import type { Module } from "../src/nn/module.ts";
import { assertClose } from "./_assert.ts";

/** An input of a checked function: values and shape; `grad: false` marks a constant. */
export interface GradInput {
  shape: number[];
  data: Float32Array;
  grad?: boolean;
}

/** Seeded inputs: normal values, optionally kept away from 0 (kinks) or made positive. */
export function input(
  shape: number[],
  seed: number,
  opts: { positive?: boolean; awayFromZero?: number; scale?: number; grad?: boolean } = {},
): GradInput {
  const rng = new Rng(seed), n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = rng.normal() * (opts.scale ?? 1);
    if (opts.positive) v = Math.abs(v) + 0.5;
    if (opts.awayFromZero && Math.abs(v) < opts.awayFromZero) {
      v = Math.sign(v || 1) * (opts.awayFromZero + Math.abs(v));
    }
    data[i] = v;
  }
  return { shape, data, grad: opts.grad };
}

type Build = (xs: Tensor[]) => Tensor;

/** loss = Σ out ⊙ R with a fixed random R, so every output element matters. */
function scalarLoss(out: Tensor, be: Backend): Tensor {
  if (out.size === 1) return sum(out);
  const rng = new Rng(99), r = new Float32Array(out.size);
  for (let i = 0; i < r.length; i++) r[i] = rng.normal();
  return sum(mul(out, new Tensor(out.shape, be, be.upload(r))));
}

/** The gradients of every input (undefined for constants) on a backend. */
export async function gradients(
  be: Backend,
  build: Build,
  inputs: GradInput[],
): Promise<(Float32Array | undefined)[]> {
  const xs = inputs.map((i) => {
    const t = new Tensor(i.shape, be, be.upload(i.data));
    t.requiresGrad = i.grad !== false;
    return t;
  });
  tidy(() => scalarLoss(build(xs), be).backward());
  const out = await Promise.all(xs.map((x) => (x.grad ? x.grad.data() : undefined)));
  xs.forEach((x) => x.dispose());
  return out;
}

/** Check analytic gradients against central differences in float64 (at most `maxPerInput` elements each). */
export function checkFiniteDifferences(
  label: string,
  build: Build,
  inputs: GradInput[],
  { h = 1e-5, atol = 1e-6, rtol = 1e-5, maxPerInput = 24 } = {},
): void {
  const be = new JsBackend({ float64: true });
  const xs = inputs.map((i) => {
    const t = new Tensor(i.shape, be, be.upload(i.data));
    t.requiresGrad = i.grad !== false;
    return t;
  });
  tidy(() => scalarLoss(build(xs), be).backward());
  const lossAt = () => tidy(() => noGrad(() => be.readExact(scalarLoss(build(xs), be).buffer)[0]));
  xs.forEach((x, k) => {
    if (!x.requiresGrad) return;
    if (!x.grad) throw new Error(`${label}: input ${k} got no gradient`);
    const analytic = be.readExact(x.grad.buffer);
    const base = be.readExact(x.buffer);
    const stride = Math.max(1, Math.floor(x.size / maxPerInput));
    const idx: number[] = [], numeric: number[] = [], got: number[] = [];
    for (let i = 0; i < x.size; i += stride) {
      be.writeExact(x.buffer, [base[i] + h], i);
      const lp = lossAt();
      be.writeExact(x.buffer, [base[i] - h], i);
      const lm = lossAt();
      be.writeExact(x.buffer, [base[i]], i);
      idx.push(i);
      numeric.push((lp - lm) / (2 * h));
      got.push(analytic[i]);
    }
    assertClose(got, numeric, {
      atol,
      rtol,
      label: `${label}: d/d input ${k} at elements [${idx.slice(0, 4)}...]`,
    });
  });
  xs.forEach((x) => x.dispose());
}

/** Every backend's gradients against the float32 reference's. */
export async function checkAgainstReference(
  label: string,
  be: Backend,
  build: Build,
  inputs: GradInput[],
  { atol = 1e-3, rtol = 1e-3 } = {},
): Promise<void> {
  const want = await gradients(new JsBackend(), build, inputs);
  const got = await gradients(be, build, inputs);
  want.forEach((w, k) => {
    if (w === undefined) return;
    assertClose(got[k]!, w, { atol, rtol, label: `${label} on ${be.name}: gradient of input ${k}` });
  });
}

/** A module built on a backend, and its input (a float32 array of a shape, or integer ids). */
export interface ModuleCase {
  name: string;
  make: (be: Backend) => Module;
  x: GradInput;
  /** Check the input's gradient too (true). */
  inputGrad?: boolean;
}

function moduleGrads(be: Backend, c: ModuleCase): { grads: Map<string, Tensor>; x: Tensor; m: Module } {
  const m = c.make(be);
  const x = new Tensor(c.x.shape, be, be.upload(c.x.data));
  x.requiresGrad = c.inputGrad !== false;
  tidy(() => scalarLoss(m.forward(x), be).backward());
  const grads = new Map<string, Tensor>();
  for (const [n, p] of m.namedParameters()) if (p.grad) grads.set(n, p.grad);
  if (x.grad) grads.set("<input>", x.grad);
  return { grads, x, m };
}

/** Every parameter's (and the input's) gradient against float64 central differences. */
export function checkModuleFiniteDifferences(
  c: ModuleCase,
  { h = 1e-5, atol = 1e-6, rtol = 1e-5, maxPerParam = 6 } = {},
): void {
  const be = new JsBackend({ float64: true });
  const { grads, x, m } = moduleGrads(be, c);
  const params = new Map(m.namedParameters());
  params.set("<input>", x);
  if (c.inputGrad === false) params.delete("<input>");
  const lossAt = () => tidy(() => noGrad(() => be.readExact(scalarLoss(m.forward(x), be).buffer)[0]));
  for (const [name, p] of params) {
    const g = grads.get(name);
    if (!g) throw new Error(`${c.name}: parameter ${name} got no gradient`);
    const analytic = be.readExact(g.buffer), base = be.readExact(p.buffer);
    const stride = Math.max(1, Math.floor(p.size / maxPerParam));
    const got: number[] = [], numeric: number[] = [];
    for (let i = 0; i < p.size; i += stride) {
      be.writeExact(p.buffer, [base[i] + h], i);
      const lp = lossAt();
      be.writeExact(p.buffer, [base[i] - h], i);
      const lm = lossAt();
      be.writeExact(p.buffer, [base[i]], i);
      got.push(analytic[i]);
      numeric.push((lp - lm) / (2 * h));
    }
    assertClose(got, numeric, { atol, rtol, label: `${c.name}: d/d ${name}` });
  }
  m.dispose();
}

/** A module's gradients on a backend against the float32 reference's (same seed, same input). */
export async function checkModuleAgainstReference(
  c: ModuleCase,
  be: Backend,
  { atol = 2e-3, rtol = 2e-3 } = {},
): Promise<void> {
  const ref = moduleGrads(new JsBackend(), c), got = moduleGrads(be, c);
  for (const [name, g] of ref.grads) {
    const other = got.grads.get(name);
    if (!other) throw new Error(`${c.name} on ${be.name}: parameter ${name} got no gradient`);
    assertClose(await other.data(), await g.data(), {
      atol,
      rtol,
      label: `${c.name} on ${be.name}: d/d ${name}`,
    });
  }
  ref.m.dispose();
  got.m.dispose();
}
