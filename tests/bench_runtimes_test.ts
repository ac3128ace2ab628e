/**
 * `bench/runtimes.ts` runs `bench/kernel_ratios.ts` and `bench/train_step.ts` unchanged on Node: bundled
 * for Node, each runs on the `node` on PATH (Node 20 in CI, relaxed SIMD behind its flag) and prints the
 * same `#json` line, with the same cases, as on Deno. Plus the driver's parsing and aggregation.
 *
 * The Node runs are ignored where `node` is missing (CI installs Deno through npm, so it has Node).
 */
import { parseArgs } from "node:util";
import { parseArgs as pageParseArgs } from "../bench/_page/util.ts";
import {
  bundleBench,
  chromiumRuntime,
  medianOverPasses,
  nodeFlags,
  nodeMajor,
  parseBenchJson,
} from "../bench/runtimes.ts";
import { NO_BROWSER } from "./_browser.ts";
import { JSON_LINE, type KernelCases } from "../bench/_runtime.ts";
import { assertEquals, assertOk, assertRejects, assertThrows } from "./_assert.ts";
import { nodeVersion } from "./_node.ts";

const NODE = nodeVersion();
const KR_ARGS = ["--filter", "^gemm 64x768", "--rounds", "1", "--no-simd128", "--json"];

async function run(cmd: string, args: string[]): Promise<string> {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const res = await child.output().finally(() => clearTimeout(timer));
  const err = new TextDecoder().decode(res.stderr);
  assertOk(res.success, `${cmd} ${args.join(" ")} exited with ${res.code}: ${err}`);
  return new TextDecoder().decode(res.stdout);
}

/** The case names and the figures' arithmetic of kernel_ratios' #json line, on any runtime. */
function checkKernelJson(d: ReturnType<typeof parseBenchJson>): void {
  assertEquals(d.bench, "kernel_ratios");
  const cases = d.cases as KernelCases;
  assertEquals(Object.keys(cases), ["peak fma", "peak mul+add", "peak tile (L1)", "gemm 64x768x768 1t"]);
  for (const [name, c] of Object.entries(cases)) {
    for (const f of [c.median, c.min]) assertOk(f.ms > 0 && f.gflops > 0, `${d.runtime} ${name}`);
  }
  // the tile and the gemm as fractions of the ceiling (the FMA loop's GFLOP/s) and the gemm of the tile
  const g = cases["gemm 64x768x768 1t"].median, tile = cases["peak tile (L1)"].median;
  const fma = cases["peak fma"].median.gflops;
  assertEquals(g.ofCeiling, g.gflops / fma);
  assertEquals(tile.ofCeiling, tile.gflops / fma);
  assertEquals(g.ofTile, g.gflops / tile.gflops);
}

const TS_ARGS = ["--only", "mlp", "--rounds", "1", "--threads", "1,2", "--json"];

/** train_step's output with TS_ARGS, on any runtime: parts ran on the Workers, and its #json medians. */
function checkTrainOutput(out: string, what: string): void {
  assertOk(/2 threads: \d+ parts, [1-9]\d* on the Workers/.test(out), out);
  const d = parseBenchJson(out, what);
  assertEquals(d.bench, "train_step");
  const ms = d.medianMs as Record<string, number>;
  assertEquals(Object.keys(ms).sort(), ["mlp_pixelfly 1", "mlp_pixelfly 2"]);
  for (const v of Object.values(ms)) assertOk(v > 0 && Number.isFinite(v), JSON.stringify(ms));
}

Deno.test({
  name: "bench runtimes: kernel_ratios bundled for Node prints the same cases as on Deno",
  ignore: NODE === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_runtimes_test_" });
    try {
      const file = await bundleBench("kernel_ratios", dir);
      const flags = nodeFlags(NODE!);
      const onNode = parseBenchJson(await run("node", [...flags, file, ...KR_ARGS]), "node");
      const onDeno = parseBenchJson(
        await run(Deno.execPath(), [
          "run",
          new URL("../bench/kernel_ratios.ts", import.meta.url).pathname,
          ...KR_ARGS,
        ]),
        "deno",
      );
      assertOk(onNode.runtime.startsWith(`node ${NODE!.slice(1)}, V8 `), onNode.runtime);
      assertOk(onDeno.runtime.startsWith(`deno ${Deno.version.deno}, V8 `), onDeno.runtime);
      for (const d of [onNode, onDeno]) checkKernelJson(d);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bench runtimes: train_step bundled for Node runs 2 threads on worker_threads and prints its medians",
  ignore: NODE === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_runtimes_test_" });
    try {
      const file = await bundleBench("train_step", dir);
      const flags = nodeFlags(NODE!);
      checkTrainOutput(await run("node", [...flags, file, ...TS_ARGS]), "node train_step");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bench runtimes: in headless Chromium the benches run in a page's Worker (2 threads for train_step)",
  ignore: NO_BROWSER,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_runtimes_test_" });
    try {
      const rt = await chromiumRuntime(["kernel_ratios", "train_step"], dir);
      const kr = parseBenchJson(await rt.run("kernel_ratios", KR_ARGS), "chromium kernel_ratios");
      assertOk(/^(Headless)?Chrome \d+/.test(kr.runtime), kr.runtime);
      checkKernelJson(kr);
      checkTrainOutput(await rt.run("train_step", TS_ARGS), "chromium train_step");
      await assertRejects(
        () => rt.run("kernel_ratios", ["--no-such-option"]),
        Error,
        'unknown option "--no-such-option"',
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("bench runtimes: the page's parseArgs gives node:util's values, and rejects what it rejects", () => {
  const options = {
    rounds: { type: "string" as const, default: "11" },
    json: { type: "boolean" as const, default: false },
    filter: { type: "string" as const, default: "" },
    only: { type: "string" as const },
  };
  for (
    const args of [[], ["--rounds", "3", "--json"], ["--rounds=5", "--filter", "^gemm 64"], [
      "--only",
      "a,b",
      "--json",
    ]]
  ) {
    assertEquals(
      pageParseArgs({ args, options }).values,
      { ...parseArgs({ args, options }).values },
      args.join(" "),
    );
  }
  for (const args of [["--nope"], ["--rounds"], ["stray"]]) {
    assertThrows(() => parseArgs({ args, options }), Error);
    assertThrows(() => pageParseArgs({ args, options }), TypeError, "parseArgs: ");
  }
});

Deno.test("bench runtimes: the #json line is found and parsed, and its absence named", () => {
  const d = parseBenchJson(`1 2 \n| a | b |\n${JSON_LINE}{"runtime":"x","bench":"k","v":[1]}\n`, "k");
  assertEquals(d, { runtime: "x", bench: "k", v: [1] });
  assertThrows(
    () => parseBenchJson("| a | b |\n", "node kernel_ratios"),
    Error,
    "node kernel_ratios printed no #json",
  );
});

Deno.test("bench runtimes: medians over passes per runtime, skipping missing and non-finite figures", () => {
  const runs: { runtime: string; data: Record<string, number> }[] = [
    { runtime: "deno", data: { a: 1, b: 5 } },
    { runtime: "node", data: { a: 4 } },
    { runtime: "deno", data: { a: 3, b: NaN } },
    { runtime: "deno", data: { a: 2, b: 7 } },
    { runtime: "node", data: { a: 6 } },
  ];
  const m = medianOverPasses(runs, ["a", "b"], (d, k) => d[k]);
  assertEquals(m.get("a")!.get("deno"), { median: 2, min: 1, max: 3, n: 3 });
  assertEquals(m.get("a")!.get("node"), { median: 5, min: 4, max: 6, n: 2 });
  assertEquals(m.get("b")!.get("deno"), { median: 6, min: 5, max: 7, n: 2 });
  assertEquals(m.get("b")!.has("node"), false);
});

Deno.test("bench runtimes: Node's major version, and an unreadable one named", () => {
  assertEquals(nodeMajor("v20.19.2\n"), 20);
  assertEquals(nodeMajor("v26.12.1"), 26);
  assertEquals(nodeFlags("v20.19.2"), ["--experimental-wasm-relaxed-simd"]);
  assertEquals(nodeFlags("v22.0.0"), []);
  assertThrows(() => nodeMajor("node 20"), Error, 'cannot read a Node version from "node 20"');
});

Deno.test("bench kernel_ratios --paired: each sparse case's paired ratio, in its #json figures and its table", async () => {
  const out = await run(Deno.execPath(), [
    "run",
    new URL("../bench/kernel_ratios.ts", import.meta.url).pathname,
    ...["--filter", "^dense sdd|^sdd d=0.1250 random|^dds fwd d=0.1250 random", "--rounds", "2"],
    ...["--no-simd128", "--paired", "--json"],
  ]);
  const cases = parseBenchJson(out, "deno kernel_ratios --paired").cases as KernelCases;
  // sdd has its dense product among the cases; dds forward's was filtered out, so it has no pair
  const sdd = cases["sdd d=0.1250 random 1t"].median;
  assertOk(sdd.paired !== undefined && sdd.paired > 0 && Number.isFinite(sdd.paired), JSON.stringify(sdd));
  assertEquals(cases["dds fwd d=0.1250 random 1t"].median.paired, undefined);
  assertEquals(cases["dense sdd 256x1024x4096 1t"].median.paired, undefined);
  const paired = out.slice(out.indexOf("\npaired ("));
  const row = paired.split("\n").find((l) => l.startsWith("| sdd d=0.1250 random 1t | "));
  assertOk(row?.startsWith(`| sdd d=0.1250 random 1t | ${sdd.paired.toFixed(3)} | `), `${row}`);
  assertOk(!paired.includes("| dds fwd"), paired);
  // the median of the rounds' ratios lies in their printed range
  const [lo, hi] = row!.split("|")[3].trim().split("-").map(Number);
  assertOk(lo <= sdd.paired + 0.005 && sdd.paired <= hi + 0.005, `${row}`);
});
