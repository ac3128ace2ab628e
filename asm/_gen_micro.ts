/**
 * Generates the register-blocked GEMM micro-kernels in AssemblyScript source
 * (AssemblyScript has no macros or const generics, so the unrolled body is
 * written by this script). `asm/build.ts` writes them as the AssemblyScript module
 * `asm/generated/micro.ts`, which `asm/gemm.ts` and `asm/sparse.ts` import.
 *
 * A kernel computes one MR x NR tile of C from segments of packed panels:
 * A panels are `[k][MR]` (k-major: the MR values of one k side by side, each loaded already splat),
 * B panels are `[k][NR]`. Each build gets its own tile ({@link RELAXED_TILE}, {@link SIMD_TILE}):
 * `micro.ts` picks by `ASC_FEATURE_RELAXED_SIMD` at compile time, so `MR` and `NR` are constants of
 * each build.
 *
 * What bounds the kernel under V8 on x64 (read from V8's code by `--perf-prof` and measured in the
 * micro-kernel alone, L1-resident panels, AMD Zen 3): 15 usable vector registers (xmm15 is V8's
 * scratch), and the front end, because Deno runs WASM without the trap handler, so every load carries
 * a software bounds check. A 6x8 tile holds 12 accumulators, 2 B vectors and 1 splat: 15 registers, no
 * spills, 36 instructions per 12 FMAs; 8x8 needs 19 and spills (0.58 of the ceiling against 0.91).
 *
 * @module
 */

/** A register tile: rows (any) x columns (a multiple of 4). */
export interface Tile {
  mr: number;
  nr: number;
}

/** The tile of the relaxed-SIMD builds (`relaxed_madd`: 12 accumulators + 2 B + 1 splat = 15 registers). */
export const RELAXED_TILE: Tile = { mr: 6, nr: 8 };
/**
 * The tile of the plain SIMD128 builds: mul + add needs a temporary register, so 5x8 (10 + 2 + 1 + 1);
 * 6x8 spills there (measured 0.58 of the mul+add kernel at 6x8 against 0.70 at 5x8).
 */
export const SIMD_TILE: Tile = { mr: 5, nr: 8 };

/**
 * How the micro-kernel splats A's values: each value is loaded already splat (`v128.load32_splat`, one
 * load per row and k). Measured in the micro-kernel alone (L1-resident panels, best of interleaved runs,
 * `bench/_peak.ts` ceiling in the same run) on an AMD Zen 3 VM, load beat the alternative of loading four
 * k of a row at once and splatting each lane with a shuffle at every tile that fits (4x8: 0.62 against
 * 0.60 at twice the registers; 6x8 cannot keep its 6 A vectors without spilling). Zen 3 runs shuffles on
 * one of its two FMA pipes; FACTS.md records shuffle ahead on Zen 4 and Intel with the older 8x8 tile.
 */
/**
 * How a panel load names its address: `"offset"` as a base pointer plus the instruction's constant offset
 * (`v128.load(a, 16)`), `"index"` as a computed index (`v128.load(a + 16)`).
 */
export type AddrMode = "offset" | "index";

/**
 * The address mode built: `"index"`. V8 folds a constant offset into a `v128.load` but not into a
 * `v128.load32_splat` (it adds it with an extra `lea`), and computes `memory size - offset` for each
 * distinct offset's bounds check; with the address as the index, every splat shares one bounds limit
 * and needs no extra add: 36 instead of 42 instructions per k at 6x8, 0.91 against 0.81 of the ceiling.
 */
export const ADDR: AddrMode = "index";

/** Row counts of the edge kernels (each reads MR-row panels; a tile of mr rows runs the smallest that fits). */
export const EDGE_ROWS: number[] = [2, 4];

// One k/4 step of the tile: 4 k of FMAs, in the order V8 should run them (for each k: load B's vectors,
// then per row one splat and its FMAs). V8 emits in the order it is given, so the build must not let
// Binaryen reorder this (asm/build.ts runs -O2: -O3's SSA passes hoist all 4 k of loads ahead of the
// FMAs and turn each accumulator's 4 FMAs into one chain, which spills).
function fmaLines(
  mr: number,
  nr: number,
  indent: string,
  addr: AddrMode,
  rows: boolean,
  stride: number,
): string {
  const v = nr / 4;
  const out: string[] = [];
  // p + o as the load's index (addr "index") or as its constant offset (addr "offset")
  const at = (p: string, o: number) => addr === "index" ? (o ? `${p} + ${o}` : p) : `${p}, ${o}`;
  // A in place (rows): row r of the tile starts at a (rows 0-2) or a3 (rows 3-5) plus 0, lda or lda2
  const rowAt = (r: number, o: number) => {
    const base = r < 3 ? "a" : `a${3 * Math.floor(r / 3)}`, q = r % 3;
    return [base, ...(q === 0 ? [] : [q === 1 ? "lda" : "lda2"]), ...(o ? [`${o}`] : [])].join(" + ");
  };
  for (let kk = 0; kk < 4; kk++) {
    for (let j = 0; j < v; j++) out.push(`${indent}b${j} = v128.load(${at("b", (kk * nr + j * 4) * 4)});`);
    for (let r = 0; r < mr; r++) {
      // packed panels are [k][stride]: row r of k step kk at (kk * stride + r) * 4
      out.push(
        `${indent}s = v128.load32_splat(${rows ? rowAt(r, kk * 4) : at("a", (kk * stride + r) * 4)});`,
      );
      for (let j = 0; j < v; j++) out.push(`${indent}c${r}_${j} = FMA(s, b${j}, c${r}_${j});`);
    }
  }
  return out.join("\n");
}

/** Options of the generated kernels (the defaults are what the build uses). */
export interface MicroOptions {
  addr?: AddrMode;
}

// The function `f32_gemm_MRxNR__<fma>` for one tile.
function tileKernel(
  t: Tile,
  fma: "relaxed" | "simd128",
  opts: MicroOptions,
  rows = false,
  stride = t.mr,
): string {
  const { mr, nr } = t;
  const addr = rows ? "index" : opts.addr ?? ADDR;
  if (nr % 4 !== 0) throw new RangeError(`microKernelSource: nr must be a multiple of 4, got ${nr}`);
  const v = nr / 4;
  const name = `f32_gemm_${mr}x${nr}__${fma}${rows ? "_rows" : ""}${stride !== mr ? `_in${stride}` : ""}`;
  const aBases = Array.from({ length: Math.ceil(mr / 3) - 1 }, (_, g) => `a${3 * (g + 1)}`);
  const accs: string[] = [];
  for (let r = 0; r < mr; r++) for (let j = 0; j < v; j++) accs.push(`c${r}_${j}`);
  const step = fmaLines(mr, nr, "      ", addr, rows, stride).replaceAll(
    /FMA\((\w+), (\w+), (\w+)\)/g,
    fma === "relaxed" ? "f32x4.relaxed_madd($1, $2, $3)" : "f32x4.add(f32x4.mul($1, $2), $3)",
  );
  const stepInc = `${step}
      a += ${rows ? 16 : stride * 16};
${rows ? aBases.map((x) => `      ${x} += 16;`).join("\n") : ""}
      b += ${nr * 16};`;
  const storeFull: string[] = [];
  const storeFullAcc: string[] = [];
  const storeTile: string[] = [];
  for (let r = 0; r < mr; r++) {
    for (let j = 0; j < v; j++) {
      storeFull.push(`      v128.store(c + ${r} * ldc, f32x4.mul(c${r}_${j}, va), ${j * 16});`);
      storeFullAcc.push(
        `      v128.store(c + ${r} * ldc, f32x4.add(v128.load(c + ${r} * ldc, ${
          j * 16
        }), f32x4.mul(c${r}_${j}, va)), ${j * 16});`,
      );
    }
  }
  // Edge tiles store lane by lane straight from the accumulators (no static scratch tile: with
  // threads, both share the memory, so a static tile would be a race).
  for (let r = 0; r < mr; r++) {
    storeTile.push(`  if (${r} < mr) {`);
    storeTile.push(`    const row = c + ${r} * ldc;`);
    for (let j = 0; j < v; j++) {
      storeTile.push(`    const v${j} = f32x4.mul(c${r}_${j}, va);`);
      for (let t = 0; t < 4; t++) {
        const col = j * 4 + t;
        storeTile.push(
          `    if (${col} < nr) storeEdge(row + ${col * 4}, f32x4.extract_lane(v${j}, ${t}), beta);`,
        );
      }
    }
    storeTile.push(`  }`);
  }
  return `
// One ${mr}x${nr} tile: c (+)= alpha * sum over segments of A ${
    rows ? "rows in place (lda bytes apart)" : `panel [k][${stride}]`
  } x B panel [k][${nr}].
// segs holds nseg (aOffset from aBase, bPtr, k/4) u32 triples; ldc is in bytes; beta = 1 accumulates.
function ${name}(aBase: usize, ${
    rows ? "lda: usize, " : ""
  }segs: usize, nseg: i32, c: usize, ldc: usize, alpha: f32, beta: i32, mr: i32, nr: i32): void {
${rows ? "  const lda2 = lda << 1;" : ""}
${accs.map((a) => `  let ${a} = f32x4.splat(0);`).join("\n")}
  let s = f32x4.splat(0);
${Array.from({ length: v }, (_, j) => `  let b${j} = f32x4.splat(0);`).join("\n")}
  for (let g = 0; g < nseg; g++) {
    const sp = segs + <usize>(g * 12);
    let a = aBase + <usize>load<u32>(sp);
${aBases.length && rows ? aBases.map((x, g) => `    let ${x} = a + lda * ${3 * (g + 1)};`).join("\n") : ""}
    let b = <usize>load<u32>(sp, 4);
    let n = load<u32>(sp, 8);
    while (n > 0) {
${stepInc}
      n--;
    }
  }
  const va = f32x4.splat(alpha);
  if (mr == ${mr} && nr == ${nr}) {
    if (beta) {
${storeFullAcc.join("\n")}
    } else {
${storeFull.join("\n")}
    }
    return;
  }
${storeTile.join("\n")}
}
`;
}

/**
 * The AssemblyScript source of the micro-kernels: `f32_gemm_MRxNR__relaxed` (relaxed builds) and
 * `f32_gemm_MRxNR__simd128` (plain SIMD128 builds), the constants `MR` and `NR` of the build, and
 * `micro`, which calls the build's kernel.
 */
export function microKernelSource(
  tiles: { relaxed: Tile; simd128: Tile } = { relaxed: RELAXED_TILE, simd128: SIMD_TILE },
  opts: MicroOptions = {},
): string {
  const r = tiles.relaxed, p = tiles.simd128;
  // Edge kernels: tiles of fewer rows reading the same MR-row panels (the last rows of a block or of M
  // run at their own size rather than as a full tile of zero rows: 32 = 5 x 6 + 2).
  const edges = (t: Tile) => EDGE_ROWS.filter((e) => e < t.mr);
  const call = (t: Tile, fma: string) => {
    const args = "(aBase, segs, nseg, c, ldc, alpha, beta, mr, nr)";
    const lines = edges(t).map((e, i) =>
      `    ${i ? "} else " : ""}if (mr <= ${e}) {\n      f32_gemm_${e}x${t.nr}__${fma}_in${t.mr}${args};`
    );
    const full = `f32_gemm_${t.mr}x${t.nr}__${fma}${args};`;
    return lines.length ? `${lines.join("\n")}\n    } else {\n      ${full}\n    }` : `    ${full}`;
  };
  return `
// ---- generated by asm/_gen_micro.ts (tiles: relaxed ${r.mr}x${r.nr}, simd128 ${p.mr}x${p.nr}) ----
const MR: i32 = ASC_FEATURE_RELAXED_SIMD ? ${r.mr} : ${p.mr};
const NR: i32 = ASC_FEATURE_RELAXED_SIMD ? ${r.nr} : ${p.nr};

// c (+)= t at p.
// @ts-ignore: decorator
@inline function storeEdge(p: usize, t: f32, beta: i32): void {
  store<f32>(p, beta ? load<f32>(p) + t : t);
}
${tileKernel(r, "relaxed", opts)}${tileKernel(p, "simd128", opts)}${tileKernel(r, "relaxed", opts, true)}${
    tileKernel(p, "simd128", opts, true)
  }${edges(r).map((e) => tileKernel({ mr: e, nr: r.nr }, "relaxed", opts, false, r.mr)).join("")}${
    edges(p).map((e) => tileKernel({ mr: e, nr: p.nr }, "simd128", opts, false, p.mr)).join("")
  }
// One tile of at most MR x NR: the build's kernel for mr rows.
function micro(aBase: usize, segs: usize, nseg: i32, c: usize, ldc: usize, alpha: f32, beta: i32, mr: i32, nr: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
${call(r, "relaxed")}
  } else {
${call(p, "simd128")}
  }
}

// As micro, with A read in place: MR full rows of a row-major matrix from aBase, lda bytes apart; a
// segment's aOffset is then the byte offset of its first column, and its k/4 groups run along the rows.
function microRows(aBase: usize, lda: usize, segs: usize, nseg: i32, c: usize, ldc: usize, alpha: f32, beta: i32, mr: i32, nr: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    f32_gemm_${r.mr}x${r.nr}__relaxed_rows(aBase, lda, segs, nseg, c, ldc, alpha, beta, mr, nr);
  } else {
    f32_gemm_${p.mr}x${p.nr}__simd128_rows(aBase, lda, segs, nseg, c, ldc, alpha, beta, mr, nr);
  }
}
`;
}
