// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// Optimizer kernels (SIMD128).
import { madd, splat } from "./_common.ts";

/** One AdamW step (decoupled weight decay, bias-corrected), in f32 SIMD. */
export function adamw(
  param: usize,
  grad: usize,
  m: usize,
  v: usize,
  size: i32,
  lr: f64,
  beta1: f64,
  beta2: f64,
  eps: f64,
  wd: f64,
  bc1: f64,
  bc2: f64,
): void {
  // p ← p·(1 − lr·wd) − (lr/bc1)·m / (sqrt(v)/sqrt(bc2) + eps)
  const decay = splat(<f32> (1 - lr * wd));
  const b1 = splat(<f32> beta1), c1 = splat(<f32> (1 - beta1));
  const b2 = splat(<f32> beta2), c2 = splat(<f32> (1 - beta2));
  const step = splat(<f32> (lr / bc1)), rb2 = splat(<f32> (1 / Math.sqrt(bc2))), ep = splat(<f32> eps);
  const s4 = size & ~3;
  let i = 0;
  for (; i < s4; i += 4) {
    const o = <usize> i << 2;
    const g = v128.load(grad + o);
    const mo = madd(b1, v128.load(m + o), f32x4.mul(c1, g));
    const vo = madd(b2, v128.load(v + o), f32x4.mul(c2, f32x4.mul(g, g)));
    v128.store(m + o, mo);
    v128.store(v + o, vo);
    const den = madd(f32x4.sqrt(vo), rb2, ep);
    const p = f32x4.mul(v128.load(param + o), decay);
    v128.store(param + o, f32x4.sub(p, f32x4.div(f32x4.mul(step, mo), den)));
  }
  for (; i < size; i++) {
    const o = <usize> i << 2;
    const g = v128.load32_splat(grad + o);
    const mo = madd(b1, v128.load32_splat(m + o), f32x4.mul(c1, g));
    const vo = madd(b2, v128.load32_splat(v + o), f32x4.mul(c2, f32x4.mul(g, g)));
    store<f32>(m + o, f32x4.extract_lane(mo, 0));
    store<f32>(v + o, f32x4.extract_lane(vo, 0));
    const den = madd(f32x4.sqrt(vo), rb2, ep);
    const p = f32x4.mul(v128.load32_splat(param + o), decay);
    store<f32>(param + o, f32x4.extract_lane(f32x4.sub(p, f32x4.div(f32x4.mul(step, mo), den)), 0));
  }
}

// One SGD update of four lanes; returns the new parameters and writes the momentum buffer.
// @ts-ignore: decorator
@inline function sgd4(
  p: v128,
  g: v128,
  buf: v128,
  lr: v128,
  mom: v128,
  damp1: v128,
  wd: v128,
  useMom: i32,
  nesterov: i32,
  first: i32,
  bout: usize,
  lane0: i32,
): v128 {
  g = madd(wd, p, g);
  if (useMom) {
    const bv = first ? g : madd(mom, buf, f32x4.mul(damp1, g));
    if (lane0) store<f32>(bout, f32x4.extract_lane(bv, 0));
    else v128.store(bout, bv);
    g = nesterov ? madd(mom, bv, g) : bv;
  }
  return f32x4.sub(p, f32x4.mul(lr, g));
}

/** One SGD step (PyTorch semantics); first = 1 sets the momentum buffer to the gradient. */
export function sgd(
  param: usize,
  grad: usize,
  buf: usize,
  size: i32,
  lr: f64,
  momentum: f64,
  dampening: f64,
  nesterov: i32,
  wd: f64,
  first: i32,
): void {
  const lv = splat(<f32> lr), mv = splat(<f32> momentum), dv = splat(<f32> (1 - dampening));
  const wv = splat(<f32> wd);
  const useMom = momentum != 0 ? 1 : 0;
  const s4 = size & ~3;
  let i = 0;
  for (; i < s4; i += 4) {
    const o = <usize> i << 2;
    const b = useMom && !first ? v128.load(buf + o) : splat(0);
    const r = sgd4(
      v128.load(param + o),
      v128.load(grad + o),
      b,
      lv,
      mv,
      dv,
      wv,
      useMom,
      nesterov,
      first,
      buf + o,
      0,
    );
    v128.store(param + o, r);
  }
  for (; i < size; i++) {
    const o = <usize> i << 2;
    const b = useMom && !first ? v128.load32_splat(buf + o) : splat(0);
    const r = sgd4(
      v128.load32_splat(param + o),
      v128.load32_splat(grad + o),
      b,
      lv,
      mv,
      dv,
      wv,
      useMom,
      nesterov,
      first,
      buf + o,
      1,
    );
    store<f32>(param + o, f32x4.extract_lane(r, 0));
  }
}

/** g *= min(1, maxNorm / (sqrt(normSq[0]) + 1e-6)). */
export function clipScale(g: usize, normSq: usize, size: i32, maxNorm: f64): void {
  const norm = Math.sqrt(<f64> load<f32>(normSq));
  const f = <f32> Math.min(1, maxNorm / (norm + 1e-6));
  const fv = splat(f);
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    const o = <usize> i << 2;
    v128.store(g + o, f32x4.mul(v128.load(g + o), fv));
  }
  for (; i < size; i++) {
    const o = <usize> i << 2;
    store<f32>(g + o, load<f32>(g + o) * f);
  }
}