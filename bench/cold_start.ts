/**
 * Cold start (issue 12): import the module, `setBackend("wasm")`, build a
 * PixelflyLinear 1024 -> 4096 and run its first forward on one row, each in
 * a fresh process run by `deno run` with no permission flags, as a user's script is (so nothing is warm but
 * Deno's transpile cache and V8's code cache of the modules). Prints
 * the phases' medians over `--runs` processes.
 *
 *   deno run --allow-read --allow-write --allow-run --allow-env bench/cold_start.ts [--runs 7] [--clock cpu]
 *     [--against ../other/mod.ts] [--bundle]
 *
 * What each phase holds (measured with `--cpu-prof`, `--v8-flags=--trace-wasm-compilation-times` and
 * per-kernel timers; 2-vCPU VM): `import` is Deno loading about 40 TypeScript modules (roughly 0.15-0.5 ms
 * each, code cache included: the same code as one esbuild bundle imports in a third of the time);
 * `setBackend` imports and compiles the one kernel build it runs (lazily: V8 compiles each kernel at its
 * first call); `construct` draws the kept tiles' weights (the random module runs in V8's baseline tier
 * until its optimising tier is ready) and touches the weight's fresh pages (a few microseconds per 4 KiB
 * page on this VM); `forward` runs each kernel's first call (compiled then, baseline tier: WASM has no
 * on-stack replacement) and the first call of the JS that routes it.
 *
 * `--clock cpu` times the phases by the process's CPU time (all its threads: V8's compiler and GC threads
 * too), steadier than wall time on a machine other processes keep busy. `--against` runs another checkout's
 * `mod.ts` in the same way, interleaved process by process, and prints both columns (before/after in one run).
 * `--bundle` also builds this checkout's one-file bundle (src/tools/bundle.ts, what
 * `deno task bundle` ships to browsers, Node and edge functions) into a temporary folder, as it ships and
 * minified (`--minify`), and times both as columns interleaved with the others: the same code, loaded as one
 * module instead of about 40 (minified, V8 also has less source to scan at load and to compile at each
 * function's first call).
 *
 * @module
 */
function child(mod: string, clock: "wall" | "cpu"): string {
  // the wall clock leaves `process` untouched: the child runs exactly the user's steps
  const cpu = clock === "wall" ? "const cpu = () => NaN;" : `
const cpu = () => { const u = globalThis.process?.cpuUsage?.(); return u ? (u.user + u.system) / 1000 : NaN; };
cpu(); // the first touch of \`process\` loads Deno's Node globals (about 45 ms): not the module's import`;
  return `${cpu}
const w0 = performance.now(), c0 = cpu();
const pf = await import(${JSON.stringify(mod)});
const w1 = performance.now(), c1 = cpu();
await pf.setBackend("wasm");
const w2 = performance.now(), c2 = cpu();
const layer = new pf.PixelflyLinear(1024, 4096, { seed: 1 });
const w3 = performance.now(), c3 = cpu();
const y = layer.forward(pf.ones([1, 1024]));
await y.data();
const w4 = performance.now(), c4 = cpu();
const phases = (t) => ({ import: t[1] - t[0], setBackend: t[2] - t[1], construct: t[3] - t[2], forward: t[4] - t[3], total: t[4] - t[0] });
console.log(JSON.stringify({ wall: phases([w0, w1, w2, w3, w4]), cpu: phases([c0, c1, c2, c3, c4]) }));
`;
}

const arg = (name: string): string | undefined => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const runs = Number(arg("--runs") ?? 7);
const clock = arg("--clock") === "cpu" ? "cpu" : "wall";
const mods = [new URL("../mod.ts", import.meta.url).href];
const names = ["this"];
const against = arg("--against");
if (against !== undefined) {
  mods.unshift(new URL(against, `file://${Deno.cwd()}/`).href);
  names.unshift("against");
}
let tmp: string | undefined;
if (Deno.args.includes("--bundle")) {
  tmp = await Deno.makeTempDir({ prefix: "pixelfly_cold_" });
  const { bundle } = await import("../src/tools/bundle.ts");
  for (const minify of [false, true]) {
    const { outfile } = await bundle({ outfile: `${tmp}/pixelfly${minify ? ".min" : ""}.js`, minify });
    mods.push(new URL(`file://${outfile}`).href);
    names.push(minify ? "bundle.min" : "bundle");
  }
}
const rows: Record<string, number>[][] = mods.map(() => []);
// each child is a script file run by `deno run`, as a user's program is (`deno eval` skips V8's code cache
// of the imported modules: its imports took 1.5-2x as long)
tmp ??= await Deno.makeTempDir({ prefix: "pixelfly_cold_" });
try {
  const script = await Promise.all(mods.map(async (mod, i) => {
    const path = `${tmp}/child${i}.ts`;
    await Deno.writeTextFile(path, child(mod, clock));
    return path;
  }));
  for (let r = 0; r < runs + 1; r++) {
    // the order rotates from round to round, so a burst of outside load hits every column alike
    for (let i = 0; i < mods.length; i++) {
      const m = (i + r) % mods.length;
      const out = await new Deno.Command(Deno.execPath(), { args: ["run", script[m]] }).output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
      // the first run fills the transpile cache
      if (r > 0) rows[m].push(JSON.parse(new TextDecoder().decode(out.stdout))[clock]);
    }
  }
} finally {
  if (tmp !== undefined) await Deno.remove(tmp, { recursive: true });
}
const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
console.log(
  `cold start over ${runs} processes (median ms, ${clock === "cpu" ? "process CPU time" : "wall time"}):`,
);
if (mods.length > 1) {
  const note = against === undefined ? "" : `   (against: ${mods[0]})`;
  console.log(`  ${"".padEnd(10)} ${names.map((n) => n.padStart(9)).join(" ")}${note}`);
}
for (const k of ["import", "setBackend", "construct", "forward", "total"]) {
  console.log(
    `  ${k.padEnd(10)} ${rows.map((rs) => median(rs.map((x) => x[k])).toFixed(1).padStart(9)).join(" ")}`,
  );
}
