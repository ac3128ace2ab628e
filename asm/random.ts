// deno-fmt-ignore-file: deno fmt drops AssemblyScript decorators
// @ts-nocheck: AssemblyScript source, compiled by asm/build.ts (not by Deno).
// deno-lint-ignore-file
//
// The bulk path of src/random.ts's Rng (its own small module, built by asm/build.ts into
// asm/generated/random_wasm.ts; not part of the kernel builds): xoshiro128** drawing uniform floats
// into this module's memory, value for value what Rng.uniform draws in JS, for layers' initial weights
// (a cold JS loop runs in V8's interpreter for milliseconds before it is optimised; this runs compiled).

let s0: u32 = 0;
let s1: u32 = 0;
let s2: u32 = 0;
let s3: u32 = 0;

/** Sets the generator state (Rng's four words). */
export function setState(a: u32, b: u32, c: u32, d: u32): void {
  s0 = a;
  s1 = b;
  s2 = c;
  s3 = d;
}

/** Word i (0..3) of the generator state. */
export function getState(i: i32): u32 {
  return i == 0 ? s0 : i == 1 ? s1 : i == 2 ? s2 : s3;
}

// rotl<u32>(x, k) written as two shifts: V8's baseline tier (Liftoff), which runs a layer's first draws,
// compiles i32.rotl by a constant slowly (in that tier alone this loop took 2.4x as long with rotl and the
// unsigned convert below; a layer's whole draw, which the optimising tier takes over after about 2 ms, gains
// less). The optimising tier makes the same rotate of both.
// @ts-ignore: decorator
@inline function rl(x: u32, k: u32): u32 {
  return (x << k) | (x >>> (32 - k));
}

// y is float32 at byte `ptr`: for r < rows, e < cols, k < len in that order (the stream's order),
// y[r*rowStride + e*colStride + k] = (lo + w * u) * scale, u the next 32 random bits / 2^32, computed in
// float64 and rounded once to float32 (as Rng.uniform(lo, lo + w) * scale stored in a Float32Array).
export function uniform(
  ptr: usize, rows: i32, rowStride: i32, cols: i32, colStride: i32, len: i32, lo: f64, w: f64, scale: f64,
): void {
  let a = s0, b = s1, c = s2, d = s3;
  for (let r = 0; r < rows; r++) {
    for (let e = 0; e < cols; e++) {
      const p = ptr + (<usize>(r * rowStride + e * colStride) << 2);
      for (let k = 0; k < len; k++) {
        const x = rl(b * 5, 7) * 9;
        const t = b << 9;
        c ^= a;
        d ^= b;
        b ^= c;
        a ^= d;
        c ^= t;
        d = rl(d, 11);
        // x as a zero-extended i64: the same float64 as f64.convert_i32_u, which V8's baseline tier runs slowly
        store<f32>(p + (<usize>k << 2), <f32>((lo + w * (<f64><i64><u64>x * 2.3283064365386963e-10)) * scale));
      }
    }
  }
  s0 = a;
  s1 = b;
  s2 = c;
  s3 = d;
}

// FNV-1a over n 32-bit words at `ptr`, continuing from hash h: h = (h ^ word) * 16777619 per word, wrapping
// (src/masks/block_mask.ts fingerprints block layouts with it: the same value as its plain JS loop, which a
// first layer runs cold, in V8's interpreter and then its optimiser's on-stack replacement, for milliseconds).
export function fnv(ptr: usize, n: i32, h: u32): u32 {
  for (let i = 0; i < n; i++) h = (h ^ load<u32>(ptr + (<usize>i << 2))) * 0x01000193;
  return h;
}
