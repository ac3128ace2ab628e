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
 *   SIMD128 build runs), the ceiling of the simd128 build.
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

/**
 * The probe module's bytes: exports `fma(n, a, b)` and `muladd(n, a, b)`, each running `n` loop
 * iterations of `unroll` x chains v128 steps and returning lane 0 of the sum of the chains.
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
    ...section(3, vec([[0], [0]])),
    ...section(7, vec([[...name("fma"), 0x00, 0], [...name("muladd"), 0x00, 1]])),
    ...section(10, vec([body("fma", fc, unroll), body("muladd", mc, unroll)])),
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
}

/** Instantiates the probe (rejects where the engine has no relaxed SIMD). */
export async function peakProbe(opts: PeakOptions = {}): Promise<PeakProbe> {
  const fc = opts.fmaChains ?? 10, mc = opts.mulAddChains ?? 12, unroll = opts.unroll ?? 1;
  const { instance } = await WebAssembly.instantiate(peakModuleBytes(opts) as BufferSource, {});
  const e = instance.exports as unknown as Pick<PeakProbe, "fma" | "muladd">;
  return { fmaFlops: fc * unroll * 8, mulAddFlops: mc * unroll * 8, fma: e.fma, muladd: e.muladd };
}

/**
 * The probe's two loops as interleavable cases ({@link Case}): each call runs
 * about `ms` milliseconds (calibrated here, after warming the loops into the
 * optimising tier) and carries its floating-point operation count.
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
  const nf = calibrate((n) => probe.fma(n, 0.999, 1e-3), probe.fmaFlops);
  const nm = calibrate((n) => probe.muladd(n, 0.999, 1e-3), probe.mulAddFlops);
  return [
    { name: "peak fma", fn: () => void probe.fma(nf, 0.999, 1e-3), flops: nf * probe.fmaFlops },
    { name: "peak mul+add", fn: () => void probe.muladd(nm, 0.999, 1e-3), flops: nm * probe.mulAddFlops },
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
