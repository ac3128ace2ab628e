/**
 * Cold start (issue 12): import the module, `setBackend("wasm")`, build a
 * PixelflyLinear 1024 -> 4096 and run its first forward on one row, each in
 * a fresh process (so nothing is warm but Deno's own transpile cache). Prints
 * the phases' medians over `--runs` processes.
 *
 *   deno run --allow-read --allow-run --allow-env bench/cold_start.ts --runs 7
 *
 * @module
 */
const CHILD = `
const t0 = performance.now();
const pf = await import(${JSON.stringify(new URL("../mod.ts", import.meta.url).href)});
const t1 = performance.now();
await pf.setBackend("wasm");
const t2 = performance.now();
const layer = new pf.PixelflyLinear(1024, 4096, { seed: 1 });
const t3 = performance.now();
const y = layer.forward(pf.ones([1, 1024]));
await y.data();
const t4 = performance.now();
console.log(JSON.stringify({ import: t1 - t0, setBackend: t2 - t1, construct: t3 - t2, forward: t4 - t3, total: t4 - t0 }));
`;

const i = Deno.args.indexOf("--runs");
const runs = i >= 0 ? Number(Deno.args[i + 1]) : 7;
const rows: Record<string, number>[] = [];
for (let r = 0; r < runs + 1; r++) {
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", "--ext=ts", CHILD] }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  if (r > 0) rows.push(JSON.parse(new TextDecoder().decode(out.stdout))); // the first run fills the transpile cache
}
const median = (k: string) => {
  const v = rows.map((x) => x[k]).sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
console.log(`cold start over ${runs} processes (median ms):`);
for (const k of ["import", "setBackend", "construct", "forward", "total"]) {
  console.log(`  ${k.padEnd(10)} ${median(k).toFixed(1)}`);
}
