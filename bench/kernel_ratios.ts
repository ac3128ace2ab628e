/**
 * The kernel targets of the wasm backend, measured as ratios in one
 * interleaved run (robust on a machine shared with other work):
 * - the WASM ceiling of this machine (`bench/_peak.ts`: register-only
 *   `relaxed_madd` and mul+add loops), and dense `gemm` on each shape of
 *   `bench/_shapes.ts` as a fraction of it (relaxed build against the FMA
 *   ceiling, simd128 build against the mul+add ceiling);
 * - the relaxed micro-kernel's own step on panels in L1 (`peak tile (L1)`: its loads, bounds checks and
 *   FMAs, no cache misses) as a fraction of the ceiling, and each relaxed product as a fraction of that
 *   tile ("of L1 tile"): what the core gives the kernel's instruction mix in this run, and what the
 *   caches, memory and packing cost beyond it;
 * - `dds` forward, `dds` backward and `sdd` at densities 1/4, 3/16 and 1/8
 *   (flat butterfly and random layouts, block 32, 256x1024x4096) as
 *   time ÷ (density × dense gemm time of the same product).
 *
 * Each figure is given twice: from the medians of the rounds, and from the best round of each case
 * (closer to what the kernel does alone when other processes share the machine).
 *
 * `--paired`: then each dds and sdd case runs again, `--rounds` times, between two runs of its dense
 * product (dense, sparse, dense, the cases in an order that rotates from round to round), and its paired
 * ratio is the median over those rounds of time ÷ (density × the mean of the two dense times around it).
 * On the 2-vCPU VM the speed of the same code drifts between states that last a few hundred ms
 * (`bench/gemm_modes.ts`), and in the interleaved rounds a case and its dense product run up to a second
 * apart, so the ratio of their medians mixes states; the paired ratio compares the two in one state.
 *
 * Run: `deno task bench:kernels [--threads 1,2] [--rounds 11] [--filter REGEX] [--clock cpu] [--paired] [--json]`
 * (`--json`: also one line `#json {...}` with every case's figures, for `bench/runtimes.ts`; the script
 * runs unchanged on Node once bundled, as `bench/runtimes.ts` does)
 * (`--clock cpu` times by the process's CPU time: steadier on a shared machine; one thread only).
 * (`--threads` lists the thread counts to measure; each count gets its own backend and its own rows;
 * `--parts n` splits the products into n parts per thread, `WasmBackend.partsPerThread`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { BackendBuffer, BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { Rng } from "../src/random.ts";
import { type Case, interleave, median, repsFor, threadCpuClock } from "./_interleave.ts";
import { peakCases, TILE_CASE } from "./_peak.ts";
import { benchArgs, type Figures, printJson, runtimeName, writeOut } from "./_runtime.ts";
import {
  butterflyLayout,
  densityOf,
  randomLayout,
  type Shape,
  shapeName,
  SHAPES,
  SPARSE,
} from "./_shapes.ts";

const { values } = parseArgs({
  args: benchArgs(),
  options: {
    json: { type: "boolean", default: false },
    threads: { type: "string", default: "1" },
    rounds: { type: "string", default: "11" },
    filter: { type: "string", default: "" },
    "no-simd128": { type: "boolean", default: false },
    clock: { type: "string", default: "wall" },
    parts: { type: "string", default: "" },
    paired: { type: "boolean", default: false },
  },
});
const threadCounts = values.threads.split(",").map(Number);
const rounds = Number(values.rounds);
const filter = new RegExp(values.filter);

const rng = new Rng(1);
function rnd(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform() - 0.5);
}

interface Row extends Case {
  /** The case whose time, scaled by `density`, is this case's reference. */
  baseline?: string;
  density?: number;
  /** Ceiling to divide GFLOP/s by. */
  ceiling?: "peak fma" | "peak mul+add";
}
const rows: Row[] = [];
function add(row: Row): void {
  if (row.name.startsWith("peak") || filter.test(row.name)) {
    row.reps = repsFor(row.fn);
    rows.push(row);
  }
}

for (const c of await peakCases()) add(c.name === TILE_CASE ? { ...c, ceiling: "peak fma" } : c);

function gemmCase(be: WasmBackend, s: Shape, tag: string, ceiling: Row["ceiling"]): void {
  const a = be.upload(rnd(s.M * s.K)), w = be.upload(rnd(s.K * s.N)), c = be.alloc(s.M * s.N);
  add({
    name: `gemm ${shapeName(s)} ${tag}`,
    fn: () => be.gemm(a, w, c, { M: s.M, N: s.N, K: s.K, transA: false, transB: false, accumulate: false }),
    flops: 2 * s.M * s.K * s.N,
    ceiling,
  });
}

function sparseCases(be: WasmBackend, tag: string): void {
  const s = SPARSE.shape, { M, K, N } = s, b = SPARSE.block;
  const buf = (n: number): BackendBuffer => be.upload(rnd(n));
  const x = buf(M * K), dy = buf(M * N), y = be.alloc(M * N), dx = be.alloc(M * K);
  const wDense = buf(N * K), dwDense = be.alloc(N * K);
  const sh = shapeName(s);
  const fwd = `dense fwd ${sh} ${tag}`, bwd = `dense bwd ${sh} ${tag}`, wgt = `dense sdd ${sh} ${tag}`;
  const flops = 2 * M * K * N;
  add({
    name: fwd,
    fn: () => be.gemm(x, wDense, y, { M, N, K, transA: false, transB: true, accumulate: false }),
    flops,
    ceiling: "peak fma",
  });
  add({
    name: bwd,
    fn: () => be.gemm(dy, wDense, dx, { M, N: K, K: N, transA: false, transB: false, accumulate: false }),
    flops,
    ceiling: "peak fma",
  });
  add({
    name: wgt,
    fn: () => be.gemm(dy, x, dwDense, { M: N, N: K, K: M, transA: true, transB: false, accumulate: false }),
    flops,
    ceiling: "peak fma",
  });
  const settings: [number, number, number][] = [[0.25, 16, 3], [0.1875, 16, 2], [0.125, 32, 3]];
  for (const [d, B, f] of settings) {
    const layouts: [string, BlockLayout][] = [
      [`butterfly B${B} f${f}`, butterflyLayout(s, b, B, f)],
      ["random", randomLayout(s, b, d)],
    ];
    for (const [lname, l] of layouts) {
      const dens = densityOf(l);
      const w = buf(l.nnz * b * b), dw = be.alloc(l.nnz * b * b);
      const name = (k: string) => `${k} d=${dens.toFixed(4)} ${lname} ${tag}`;
      add({
        name: name("dds fwd"),
        fn: () => be.dds(x, w, y, { M, layout: l, transW: true, accumulate: false }),
        flops: flops * dens,
        baseline: fwd,
        density: dens,
      });
      add({
        name: name("dds bwd"),
        fn: () => be.dds(dy, w, dx, { M, layout: l, transW: false, accumulate: false }),
        flops: flops * dens,
        baseline: bwd,
        density: dens,
      });
      add({
        name: name("sdd"),
        fn: () => be.sdd(dy, x, dw, { layout: l, K: M, transA: true, transB: false, accumulate: false }),
        flops: flops * dens,
        baseline: wgt,
        density: dens,
      });
    }
  }
}

const backends: WasmBackend[] = [];
for (const t of threadCounts) {
  const be = await createWasmBackend({ threads: t as 1 });
  // --parts n: products split into n parts per thread (WasmBackend.partsPerThread)
  if (values.parts) be.partsPerThread = Number(values.parts);
  backends.push(be);
  const tag = `${be.threads}t`;
  for (const s of SHAPES) gemmCase(be, s, tag, "peak fma");
  if (t === 1 && !values["no-simd128"]) {
    const be128 = await createWasmBackend({ variant: "simd128" });
    for (const s of SHAPES) gemmCase(be128, s, "1t simd128", "peak mul+add");
  }
  sparseCases(be, tag);
}

console.log(`${rows.length} cases, ${rounds} interleaved rounds (medians), ${runtimeName()}`);
const clock = values.clock === "cpu" ? threadCpuClock() : undefined;
if (values.clock === "cpu" && (!clock || threadCounts.some((t) => t > 1))) {
  throw new Error("kernel_ratios: --clock cpu needs --threads 1 (other threads' time would add up)");
}
console.log(`clock: ${clock ? "process CPU time" : "wall"}`);
const res = interleave(rows, {
  clock,
  rounds,
  onRound: (r) => writeOut(`${r + 1} `),
});
console.log("");
const gf = (r: Row, ms: number) => r.flops! / (ms * 1e6);
const peak = (name: string, at: "median" | "min") =>
  gf(rows.find((r) => r.name === name)!, res.get(name)![at]);
const figures = new Map<string, { median: Figures; min: Figures }>();
for (const r of rows) {
  const t = res.get(r.name)!;
  const at = (k: "median" | "min"): Figures => {
    const g = r.flops ? gf(r, t[k]) : NaN;
    const f: Figures = { ms: t[k], gflops: g };
    if (r.ceiling) f.ofCeiling = g / peak(r.ceiling, k);
    // the relaxed products (and the dds/sdd rows) against the relaxed micro-kernel's step in L1
    if (r.name !== TILE_CASE && !r.name.startsWith("peak") && r.ceiling !== "peak mul+add" && r.flops) {
      f.ofTile = g / peak(TILE_CASE, k);
    }
    const base = r.baseline ? res.get(r.baseline) : undefined;
    if (base) f.ratio = t[k] / (r.density! * base[k]);
    return f;
  };
  figures.set(r.name, { median: at("median"), min: at("min") });
}
console.log(
  "| case | ms (median) | GFLOP/s | of ceiling | of L1 tile | time / (density x dense) | best: GFLOP/s | " +
    "of ceiling | of L1 tile | ratio |",
);
console.log(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
const fixed = (x: number | undefined) => x === undefined ? "" : x.toFixed(3);
for (const [name, f] of figures) {
  const cols = [f.median.ms.toFixed(3)];
  for (const g of [f.median, f.min]) {
    cols.push(g.gflops.toFixed(1), fixed(g.ofCeiling), fixed(g.ofTile), fixed(g.ratio));
  }
  console.log(`| ${name} | ${cols.join(" | ")} |`);
}
if (values.paired) {
  // dense, sparse, dense per case and round, in a rotating order (see the header)
  // (a case whose dense product --filter left out has no pair)
  const byName = new Map(rows.map((r) => [r.name, r]));
  const pairs = rows.filter((r) => r.baseline !== undefined && byName.has(r.baseline));
  const ratios = new Map<string, number[]>(pairs.map((r) => [r.name, []]));
  const now = clock ?? (() => performance.now());
  const time = (r: Row) => {
    const reps = r.reps ?? 1, t0 = now();
    for (let k = 0; k < reps; k++) r.fn();
    return (now() - t0) / reps;
  };
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < pairs.length; i++) {
      const r = pairs[(i + round) % pairs.length], base = byName.get(r.baseline!)!;
      const d0 = time(base), t = time(r), d1 = time(base);
      ratios.get(r.name)!.push(t / (r.density! * (d0 + d1) / 2));
    }
    writeOut(`${round + 1} `);
  }
  console.log(
    `\npaired (dense, sparse, dense; ${rounds} rounds): time / (density x dense), median [min-max]`,
  );
  console.log("| case | paired ratio | range | ratio of medians |");
  console.log("|---|---:|---|---:|");
  for (const r of pairs) {
    const v = ratios.get(r.name)!, f = figures.get(r.name)!;
    f.median.paired = median(v);
    console.log(
      `| ${r.name} | ${median(v).toFixed(3)} | ${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)} | ` +
        `${fixed(f.median.ratio)} |`,
    );
  }
}
if (values.json) printJson({ bench: "kernel_ratios", rounds, cases: Object.fromEntries(figures) });
for (const be of backends) be.dispose();
