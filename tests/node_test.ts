/**
 * The bundle on Node (20 here, the `node` on the PATH): it imports and trains,
 * and `tests/_bundle_run.js`, the same source the browser tests run, gives
 * Deno's losses bit for bit for the same seed and the same WASM build. Node 20
 * has no relaxed SIMD by default, so it runs the plain SIMD128 build (compared
 * with Deno on that build); with `--experimental-wasm-relaxed-simd` it runs the
 * relaxed build (compared with Deno's default).
 *
 * Ignored where `node` is missing (CI installs Deno through npm, so it has Node).
 */
import * as pf from "../mod.ts";
import { trainRun } from "./_bundle_run.js";
import { bundleText, readmeBlock } from "./_browser.ts";
import { assertEquals, assertOk } from "./_assert.ts";
import { nodeVersion } from "./_node.ts";

const NODE = nodeVersion();

type Result = Awaited<ReturnType<typeof trainRun>>;

/** Run `trainRun(bundle, o)` for each of `runs` in one Node process with `flags`; errors come back as strings. */
async function inNode(
  runs: Record<string, unknown>[],
  flags: string[] = [],
): Promise<(Result | { error: string })[]> {
  const dir = await Deno.makeTempDir({ prefix: "pixelfly_node_" });
  try {
    await Deno.writeTextFile(`${dir}/pixelfly.js`, await bundleText());
    await Deno.copyFile(new URL("./_bundle_run.js", import.meta.url), `${dir}/bundle_run.js`);
    await Deno.writeTextFile(
      `${dir}/run.mjs`,
      `import * as pf from "./pixelfly.js";
import { trainRun } from "./bundle_run.js";
const out = [];
for (const o of ${JSON.stringify(runs)}) {
  try {
    out.push(await trainRun(pf, o));
  } catch (e) {
    out.push({ error: String(e && e.stack || e) });
  }
}
console.log(JSON.stringify(out));
`,
    );
    const cmd = new Deno.Command("node", {
      args: [...flags, `${dir}/run.mjs`],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    });
    const child = cmd.spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const res = await child.output().finally(() => clearTimeout(timer));
    const err = new TextDecoder().decode(res.stderr);
    assertOk(res.success, `node exited with ${res.code}${res.signal ? ` (${res.signal})` : ""}: ${err}`);
    return JSON.parse(new TextDecoder().decode(res.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function ok(r: Result | { error: string }, label: string): Result {
  assertOk(!("error" in r), `${label}: ${"error" in r ? r.error : ""}`);
  return r as Result;
}

Deno.test({
  name: "node: the bundle trains on Node with Deno's losses bit for bit (js, wasm simd128)",
  ignore: NODE === undefined,
  async fn() {
    const [js, wasm] = await inNode([{ backend: "js" }, { backend: "wasm" }]);
    const denoJs = await trainRun(pf, { backend: "js" });
    const denoSimd = await trainRun(pf, { backend: "wasm", variant: "simd128" });
    assertEquals(ok(js, "js").losses, denoJs.losses, "js backend: Node vs Deno");
    const w = ok(wasm, "wasm");
    assertEquals(w.backend.name, "wasm");
    // Node 20's V8 does not validate relaxed SIMD without a flag: the backend picks the plain SIMD128 build
    if (NODE!.startsWith("v20.")) {
      assertEquals(w.backend.variant, "simd128", `the build chosen on ${NODE}`);
      // and the backend says why, naming the flag that would enable the faster build
      const notes: string[] = w.backend.info?.notes ?? [];
      assertOk(notes.some((n) => n.includes("--experimental-wasm-relaxed-simd")), `info.notes: ${notes}`);
    }
    const want = w.backend.variant === "simd128" ? denoSimd : await trainRun(pf, { backend: "wasm" });
    assertEquals(w.losses, want.losses, `wasm ${w.backend.variant}: Node vs Deno`);
    assertOk(w.losses.at(-1)! < 0.9 * w.losses[0], `the loss did not fall: ${w.losses}`);
  },
});

Deno.test({
  name:
    "node: with --experimental-wasm-relaxed-simd the bundle runs the relaxed build, Deno's losses bit for bit",
  ignore: NODE === undefined,
  async fn() {
    const [wasm] = await inNode([{ backend: "wasm" }], ["--experimental-wasm-relaxed-simd"]);
    const w = ok(wasm, "wasm relaxed");
    assertEquals(w.backend.variant, "relaxed");
    const notes: string[] = w.backend.info?.notes ?? [];
    assertOk(!notes.some((n) => n.includes("relaxed SIMD")), `no relaxed-SIMD note with the flag: ${notes}`);
    assertEquals(w.losses, (await trainRun(pf, { backend: "wasm" })).losses, "wasm relaxed: Node vs Deno");
  },
});

const THREAD_RUNS = [{ backend: "wasm", threads: 2 }, { backend: "wasm", threads: "auto" }];

Deno.test({
  name:
    "node: threads 2 and auto never throw and give Deno's one-thread losses bit for bit (plain and relaxed)",
  ignore: NODE === undefined,
  async fn() {
    const plain = await inNode(THREAD_RUNS);
    const relaxed = await inNode(THREAD_RUNS, ["--experimental-wasm-relaxed-simd"]);
    const denoSimd = await trainRun(pf, { backend: "wasm", variant: "simd128" });
    const denoRelaxed = await trainRun(pf, { backend: "wasm" });
    plain.forEach((r, i) => {
      const w = ok(r, `node threads ${THREAD_RUNS[i].threads}`);
      assertEquals(
        w.losses,
        denoSimd.losses,
        `node threads ${THREAD_RUNS[i].threads} vs Deno simd128, 1 thread`,
      );
    });
    relaxed.forEach((r, i) => {
      const w = ok(r, `node --experimental-wasm-relaxed-simd threads ${THREAD_RUNS[i].threads}`);
      assertEquals(w.losses, denoRelaxed.losses, `relaxed node threads ${THREAD_RUNS[i].threads} vs Deno`);
    });
  },
});

Deno.test({
  name: "node: threads 2 and auto run more than one thread on node:worker_threads",
  ignore: NODE === undefined,
  async fn() {
    const cores = navigator.hardwareConcurrency;
    for (const flags of [[], ["--experimental-wasm-relaxed-simd"]]) {
      const results = await inNode(THREAD_RUNS, flags);
      results.forEach((r, i) => {
        const w = ok(r, `node ${flags} threads ${THREAD_RUNS[i].threads}`);
        const want = THREAD_RUNS[i].threads === 2 ? 2 : Math.min(8, cores);
        assertEquals(w.backend.threads, want, `node ${flags}: threads ${THREAD_RUNS[i].threads}`);
      });
    }
  },
});

Deno.test({
  name: "node: the README's Node lines work as pasted",
  ignore: NODE === undefined,
  async fn() {
    const lines = (await readmeBlock("sh")).trim().split("\n");
    assertEquals(lines[0], "deno task bundle");
    const line = lines.find((l) => l.startsWith("node "))!;
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_readme_node_" });
    try {
      await Deno.mkdir(`${dir}/dist`);
      await Deno.writeTextFile(`${dir}/dist/pixelfly.js`, await bundleText());
      const res = await new Deno.Command("bash", {
        args: ["-c", line],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      const out = new TextDecoder().decode(res.stdout), err = new TextDecoder().decode(res.stderr);
      assertOk(res.success, `the README's node line failed: ${err}`);
      assertOk(/^\[ 4, 256 \] (simd128|relaxed)$/.test(out.trim()), `it printed: ${out}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
