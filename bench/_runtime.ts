/**
 * What lets a bench script run unchanged on Deno, on Node and in a page (`bench/runtimes.ts` bundles it for
 * Node, and for Chromium with `bench/_page/` standing in for `node:process` and `node:util`):
 * its arguments, its progress output, the runtime's name, and the one machine-readable line a driver
 * reads back.
 *
 * @module
 */
import process from "node:process";

/** The script's arguments (`Deno.args` on Deno, `process.argv` after the script on Node). */
export function benchArgs(): string[] {
  return process.argv.slice(2);
}

/** Writes `s` to stdout with no newline (progress dots). */
export function writeOut(s: string): void {
  process.stdout.write(s);
}

/**
 * "deno 2.9.6, V8 15.0.245.2-rusty", "node 26.12.1, V8 14.6.202.34-node.40", or in a page the browser's
 * name and version from its user agent ("HeadlessChrome 150.0.7871.100").
 */
export function runtimeName(): string {
  const deno = (globalThis as { Deno?: { version: { deno: string; v8: string } } }).Deno;
  if (deno) return `deno ${deno.version.deno}, V8 ${deno.version.v8}`;
  if (process.versions.node) return `node ${process.versions.node}, V8 ${process.versions.v8}`;
  const ua = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? "";
  const m = /((?:Headless)?Chrome|Firefox|Version)\/([\d.]+)/.exec(ua);
  return m ? `${m[1]} ${m[2]}` : ua || "unknown runtime";
}

/** One case's figures in kernel_ratios' `#json` line, from its median round or its best round. */
export interface Figures {
  ms: number;
  gflops: number;
  /** Of the ceiling named by the case (the gemm rows and the L1 tile). */
  ofCeiling?: number;
  /** Of the relaxed micro-kernel's step on panels in L1 (relaxed products). */
  ofTile?: number;
  /** time / (density x dense time of the same product) (the dds and sdd rows). */
  ratio?: number;
  /** With `--paired`: the median over rounds of that ratio with the dense product run just before and after. */
  paired?: number;
}

/** kernel_ratios' `cases`: each case's figures from its median round and its best round. */
export type KernelCases = Record<string, { median: Figures; min: Figures }>;

/** The prefix of the line that carries a bench's results as JSON (`--json`). */
export const JSON_LINE = "#json ";

/** Prints `data`, with the runtime's name added, as the bench's one JSON line. */
export function printJson(data: Record<string, unknown>): void {
  console.log(JSON_LINE + JSON.stringify({ runtime: runtimeName(), ...data }));
}
