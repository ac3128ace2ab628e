/**
 * The peak probe: this machine's WASM SIMD arithmetic ceiling, measured in
 * the same run as the kernels so each kernel can be reported as a fraction of
 * it on any machine.
 *
 * The probe is a hand-assembled WebAssembly module (no build step) with two
 * register-only loops over independent v128 accumulator chains that touch no
 * memory (V8 gives WASM 16 vector registers: more chains than about 12 spill):
 * - `fma`: `acc = f32x4.relaxed_madd(va, vb, acc)` (the micro-kernel's fused multiply-add, 8 flop per
 *   lane group), the ceiling of the relaxed build;
 * - `muladd`: `acc = f32x4.add(f32x4.mul(acc, va), vb)` (separate multiply and add, what the plain
 *   SIMD128 build runs), the ceiling of the simd128 build;
 * - `tile`: the relaxed build's micro-kernel step on panels that stay in L1 (per k: B's two v128 and A's
 *   six splats loaded by computed address, each with V8's bounds check, and 12 fused multiply-adds into a
 *   6x8 tile), not a ceiling but the kernel's own instruction mix with no cache misses. Against `fma` it
 *   shows what the loads cost; against a gemm in the same round, what the caches and memory cost. When
 *   both `tile` and the gemm slow down while `fma` holds, the core's front end or L1 is shared (the other
 *   hardware thread busy), not the memory.
 *
 * Each chain starts from a different value, so no engine can merge the chains
 * by value numbering; `muladd` keeps the multiply on the chain, so it cannot
 * be hoisted out of the loop.
 *
 * Run `deno run bench/_peak.ts` to see the ceilings at 8 to 14 chains.
 *
 * @module
 */
import { type Case, interleave } from "./_interleave.ts";

/** Options of the probe. */
export interface PeakOptions {
  /** Independent chains of the fused loop (10: hides a 4-5 cycle FMA latency on two pipes). */
  fmaChains?: number;
  /** Independent chains of the multiply-then-add loop (12: hides 3 + 3 cycles on two pipes each). */
  mulAddChains?: number;
  /** Copies of the chain step per loop iteration (1). */
  unroll?: number;
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function f32Bytes(x: number): number[] {
  return [...new Uint8Array(new Float32Array([x]).buffer)];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

const SIMD = 0xfd;
const OP = {
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  f32Const: 0x43,
  f32Add: 0x92,
  i32Const: 0x41,
  i32Sub: 0x6b,
  i32Add: 0x6a,
  i32And: 0x71,
  brIf: 0x0d,
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  void: 0x40,
  v128: 0x7b,
};
const F32X4 = {
  splat: [SIMD, ...uleb(0x13)],
  extractLane0: [SIMD, ...uleb(0x1f), 0],
  add: [SIMD, ...uleb(0xe4)],
  mul: [SIMD, ...uleb(0xe6)],
  relaxedMadd: [SIMD, ...uleb(0x105)],
};
const V128 = {
  load: [SIMD, ...uleb(0x00), 4, 0],
  load32Splat: [SIMD, ...uleb(0x09), 2, 0],
};

// (n: i32, a: f32, b: f32) -> f32; locals 3 .. 3+chains-1 the accumulators, then va, vb.
function body(kind: "fma" | "muladd", chains: number, unroll: number): number[] {
  const acc = (i: number) => 3 + i, va = 3 + chains, vb = 4 + chains;
  const code: number[] = [];
  code.push(OP.localGet, 1, ...F32X4.splat, OP.localSet, ...uleb(va));
  code.push(OP.localGet, 2, ...F32X4.splat, OP.localSet, ...uleb(vb));
  for (let i = 0; i < chains; i++) {
    // acc_i = splat(b + i): every chain starts apart
    code.push(
      OP.localGet,
      2,
      OP.f32Const,
      ...f32Bytes(i),
      OP.f32Add,
      ...F32X4.splat,
      OP.localSet,
      ...uleb(acc(i)),
    );
  }
  code.push(OP.block, OP.void, OP.loop, OP.void);
  for (let u = 0; u < unroll; u++) {
    for (let i = 0; i < chains; i++) {
      if (kind === "fma") {
        code.push(OP.localGet, ...uleb(va), OP.localGet, ...uleb(vb), OP.localGet, ...uleb(acc(i)));
        code.push(...F32X4.relaxedMadd, OP.localSet, ...uleb(acc(i)));
      } else {
        code.push(OP.localGet, ...uleb(acc(i)), OP.localGet, ...uleb(va), ...F32X4.mul);
        code.push(OP.localGet, ...uleb(vb), ...F32X4.add, OP.localSet, ...uleb(acc(i)));
      }
    }
  }
  code.push(OP.localGet, 0, OP.i32Const, 1, OP.i32Sub, OP.localTee, 0, OP.brIf, 0, OP.end, OP.end);
  code.push(OP.localGet, ...uleb(acc(0)));
  for (let i = 1; i < chains; i++) code.push(OP.localGet, ...uleb(acc(i)), ...F32X4.add);
  code.push(...F32X4.extractLane0, OP.end);
  const locals = vec([[...uleb(chains + 2), OP.v128]]);
  const fn = [...locals, ...code];
  return [...uleb(fn.length), ...fn];
}

// Where tile's panels live in the probe's memory: A (6 floats per k) cycles through the first 4 KiB, B
// (8 floats per k) through the 8 KiB from TILE_B. One iteration is a k/4 group: 96 bytes of A, 128 of B.
const TILE_B = 4096, TILE_A_MASK = 0xfff, TILE_B_MASK = 0x1fff;
/** Floating-point operations of one iteration of `tile` (4 k x 6 rows x 2 v128 x 8). */
export const TILE_FLOPS = 4 * 6 * 2 * 8;

// (n: i32, a: f32, b: f32) -> f32; locals 3..14 the 6x8 tile's accumulators (row r: 3 + 2r, 4 + 2r),
// 15, 16 B's vectors, 17 the splat, 18 A's offset, 19 B's offset. Accumulator i starts at b + i; `a` is
// not used (the same signature as the others).
function tileBody(): number[] {
  const acc = (i: number) => 3 + i, b0 = 15, b1 = 16, s = 17, pa = 18, pb = 19;
  const code: number[] = [];
  for (let i = 0; i < 12; i++) {
    code.push(OP.localGet, 2, OP.f32Const, ...f32Bytes(i), OP.f32Add, ...F32X4.splat, OP.localSet, acc(i));
  }
  // address = local + constant, as the generated micro-kernel names its loads (asm/_gen_micro.ts ADDR)
  const at = (local: number, off: number) =>
    off ? [OP.localGet, local, OP.i32Const, ...sleb(off), OP.i32Add] : [OP.localGet, local];
  code.push(OP.block, OP.void, OP.loop, OP.void);
  for (let kk = 0; kk < 4; kk++) {
    code.push(...at(pb, TILE_B + kk * 32), ...V128.load, OP.localSet, b0);
    code.push(...at(pb, TILE_B + kk * 32 + 16), ...V128.load, OP.localSet, b1);
    for (let r = 0; r < 6; r++) {
      code.push(...at(pa, kk * 24 + r * 4), ...V128.load32Splat, OP.localSet, s);
      for (const [j, bv] of [[0, b0], [1, b1]]) {
        code.push(OP.localGet, s, OP.localGet, bv, OP.localGet, acc(2 * r + j));
        code.push(...F32X4.relaxedMadd, OP.localSet, acc(2 * r + j));
      }
    }
  }
  for (const [p, step, mask] of [[pa, 96, TILE_A_MASK], [pb, 128, TILE_B_MASK]]) {
    code.push(OP.localGet, p, OP.i32Const, ...sleb(step), OP.i32Add, OP.i32Const, ...sleb(mask), OP.i32And);
    code.push(OP.localSet, p);
  }
  code.push(OP.localGet, 0, OP.i32Const, 1, OP.i32Sub, OP.localTee, 0, OP.brIf, 0, OP.end, OP.end);
  code.push(OP.localGet, acc(0));
  for (let i = 1; i < 12; i++) code.push(OP.localGet, acc(i), ...F32X4.add);
  code.push(...F32X4.extractLane0, OP.end);
  const locals = vec([[15, OP.v128], [2, 0x7f]]);
  const fn = [...locals, ...code];
  return [...uleb(fn.length), ...fn];
}

// A signed LEB128 (i32.const's immediate).
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

/**
 * The probe module's bytes: exports `fma(n, a, b)` and `muladd(n, a, b)`, each running `n` loop
 * iterations of `unroll` x chains v128 steps and returning lane 0 of the sum of the chains, `tile(n, a, b)`
 * (`n` k/4 groups of the 6x8 micro-kernel on panels in its one page of `memory`) and the memory.
 */
export function peakModuleBytes(opts: PeakOptions = {}): Uint8Array {
  const fc = opts.fmaChains ?? 10, mc = opts.mulAddChains ?? 12, unroll = opts.unroll ?? 1;
  for (const [what, chains] of [["fmaChains", fc], ["mulAddChains", mc]] as const) {
    if (!Number.isInteger(chains) || chains < 1 || chains > 64) {
      throw new RangeError(`peakModuleBytes: ${what} must be an integer in 1..64, got ${chains}`);
    }
  }
  if (!Number.isInteger(unroll) || unroll < 1 || unroll > 64) {
    throw new RangeError(`peakModuleBytes: unroll must be an integer in 1..64, got ${unroll}`);
  }
  const I32 = 0x7f, F32 = 0x7d;
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [F32], [F32]]), ...vec([[F32]])]])),
    ...section(3, vec([[0], [0], [0]])),
    ...section(5, vec([[0x00, 1]])),
    ...section(
      7,
      vec([[...name("fma"), 0x00, 0], [...name("muladd"), 0x00, 1], [...name("tile"), 0x00, 2], [
        ...name("memory"),
        0x02,
        0,
      ]]),
    ),
    ...section(10, vec([body("fma", fc, unroll), body("muladd", mc, unroll), tileBody()])),
  ];
  return new Uint8Array(bytes);
}

/** The probe's two loops, instantiated. */
export interface PeakProbe {
  /** Floating-point operations of one iteration of `fma`. */
  fmaFlops: number;
  /** Floating-point operations of one iteration of `muladd`. */
  mulAddFlops: number;
  /** Runs `n` iterations of the fused loop; returns lane 0 of the sum (so nothing is dead code). */
  fma(n: number, a: number, b: number): number;
  /** Runs `n` iterations of the multiply-then-add loop. */
  muladd(n: number, a: number, b: number): number;
  /** Runs `n` k/4 groups of the 6x8 micro-kernel step on L1-resident panels ({@link TILE_FLOPS} each). */
  tile(n: number, a: number, b: number): number;
  /** The probe's memory (tile's panels: A in its first 4 KiB, B in the 8 KiB after). */
  memory: WebAssembly.Memory;
}

/** Instantiates the probe (rejects where the engine has no relaxed SIMD). */
export async function peakProbe(opts: PeakOptions = {}): Promise<PeakProbe> {
  const fc = opts.fmaChains ?? 10, mc = opts.mulAddChains ?? 12, unroll = opts.unroll ?? 1;
  const { instance } = await WebAssembly.instantiate(peakModuleBytes(opts) as BufferSource, {});
  const e = instance.exports as unknown as Pick<PeakProbe, "fma" | "muladd" | "tile" | "memory">;
  // panels of small multiples of 1/64 (no denormals; the sums stay far from overflow)
  const f = new Float32Array(e.memory.buffer, 0, (TILE_B + TILE_B_MASK + 1 + 128) / 4);
  for (let i = 0; i < f.length; i++) f[i] = ((i % 7) - 3) / 64;
  return {
    fmaFlops: fc * unroll * 8,
    mulAddFlops: mc * unroll * 8,
    fma: e.fma,
    muladd: e.muladd,
    tile: e.tile,
    memory: e.memory,
  };
}

/** The name of the `tile` case of {@link peakCases}. */
export const TILE_CASE = "peak tile (L1)";

/**
 * The probe's three loops as interleavable cases ({@link Case}): `peak fma`, `peak mul+add` and
 * {@link TILE_CASE}; each call runs about `ms` milliseconds (calibrated here, after warming the loops into
 * the optimising tier) and carries its floating-point operation count.
 */
export async function peakCases(opts: PeakOptions & { ms?: number } = {}): Promise<Case[]> {
  const probe = await peakProbe(opts);
  const ms = opts.ms ?? 10;
  for (let i = 0; i < 20; i++) {
    probe.fma(1000, 0.999, 1e-3);
    probe.muladd(1000, 0.999, 1e-3);
  }
  const calibrate = (run: (n: number) => void, flops: number) => {
    let n = Math.max(1000, Math.round((ms * 1e-3 * 30e9) / flops));
    const t0 = performance.now();
    run(n);
    const dt = performance.now() - t0;
    if (dt > 0) n = Math.max(1000, Math.round((n * ms) / dt));
    return n;
  };
  for (let i = 0; i < 20; i++) probe.tile(1000, 0, 1e-3);
  const nf = calibrate((n) => probe.fma(n, 0.999, 1e-3), probe.fmaFlops);
  const nm = calibrate((n) => probe.muladd(n, 0.999, 1e-3), probe.mulAddFlops);
  const nt = calibrate((n) => probe.tile(n, 0, 1e-3), TILE_FLOPS);
  return [
    { name: "peak fma", fn: () => void probe.fma(nf, 0.999, 1e-3), flops: nf * probe.fmaFlops },
    { name: "peak mul+add", fn: () => void probe.muladd(nm, 0.999, 1e-3), flops: nm * probe.mulAddFlops },
    { name: TILE_CASE, fn: () => void probe.tile(nt, 0, 1e-3), flops: nt * TILE_FLOPS },
  ];
}

/** Measured ceilings in GFLOP/s. */
export interface Peak {
  /** `f32x4.relaxed_madd` (the relaxed build). */
  fma: number;
  /** `f32x4.mul` then `f32x4.add` (the simd128 build). */
  mulAdd: number;
}

/** Both ceilings on this thread: the best of `rounds` interleaved runs (a ceiling is what the core does alone). */
export async function measurePeak(opts: PeakOptions & { rounds?: number; ms?: number } = {}): Promise<Peak> {
  const cases = await peakCases(opts);
  const r = interleave(cases, { rounds: opts.rounds ?? 9 });
  const best = (c: Case) => c.flops! / (r.get(c.name)!.min * 1e6);
  return { fma: best(cases[0]), mulAdd: best(cases[1]) };
}

if (import.meta.main) {
  for (const chains of [8, 10, 12, 14]) {
    const p = await measurePeak({ fmaChains: chains, mulAddChains: chains });
    console.log(`chains ${chains}: fma ${p.fma.toFixed(1)} GFLOP/s, mul+add ${p.mulAdd.toFixed(1)} GFLOP/s`);
  }
}
