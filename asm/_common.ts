// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators (@inline)
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// Helpers shared by pixelfly's WASM kernel files.

/** ceil(a / b) for positive b. */
export function cdiv(a: i32, b: i32): i32 {
  return (a + b - 1) / b;
}

// a*b + c: fused on the relaxed build, mul + add on the plain SIMD build.
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// @ts-ignore: decorator
@inline export function splat(v: f32): v128 {
  return f32x4.splat(v);
}
