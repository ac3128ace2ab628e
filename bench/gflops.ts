/**
 * Runs `bench/kernels_bench.ts` with `--json` and prints each bench's time,
 * GFLOP/s and ratio to its group's baseline.
 *
 * Run: `deno run --allow-run --allow-read bench/gflops.ts`
 *
 * @module
 */
import { flopsOf } from "./_shapes.ts";

const out = await new Deno.Command(Deno.execPath(), {
  args: [
    "bench",
    "--json",
    "--allow-read",
    "--allow-env",
    new URL("kernels_bench.ts", import.meta.url).pathname,
  ],
  stdout: "piped",
  stderr: "inherit",
}).output();
const text = new TextDecoder().decode(out.stdout);
const report = JSON.parse(text.slice(text.indexOf("{")));
interface Row {
  group: string;
  name: string;
  baseline: boolean;
  ms: number;
}
const rows: Row[] = [];
for (const b of report.benches) {
  const r = b.results[0]?.ok;
  if (!r) continue;
  rows.push({ group: b.group, name: b.name, baseline: b.baseline, ms: r.avg / 1e6 });
}
console.log(`| group | bench | ms | GFLOP/s | time / baseline |`);
console.log(`|---|---|---:|---:|---:|`);
for (const r of rows) {
  const base = rows.find((x) => x.group === r.group && x.baseline);
  const gf = flopsOf(r.group, r.name) / (r.ms * 1e6);
  const ratio = base ? (r.ms / base.ms).toFixed(3) : "";
  console.log(
    `| ${r.group} | ${r.name}${r.baseline ? " (baseline)" : ""} | ${r.ms.toFixed(2)} | ${
      gf.toFixed(1)
    } | ${ratio} |`,
  );
}
