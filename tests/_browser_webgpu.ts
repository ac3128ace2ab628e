/**
 * Runs in Chromium (bundled by tests/browser_webgpu_test.ts with esbuild): the
 * conformance table's cases and the gradient table on the WebGPU backend,
 * each against the js reference backend, exactly as conformance_test.ts and
 * grad_test.ts do in Deno. Returns what failed instead of throwing, so the
 * test in Deno can report every failure at once.
 *
 * @module
 */
import { JsBackend } from "../src/backends/js.ts";
import { createWebGpuBackend } from "../src/backends/webgpu.ts";
import { assertClose } from "./_assert.ts";
import { kernelCases, runCase } from "./_cases.ts";
import { gradCases } from "./_grad_cases.ts";
import { checkAgainstReference } from "./_gradcheck.ts";

/** What a table run found. */
export interface TableResult {
  /** The adapter's architecture (Chromium: "swiftshader" without a GPU). */
  adapter: string;
  /** Cases run. */
  cases: number;
  /** Ops covered. */
  ops: string[];
  /** One line per failed case. */
  failures: string[];
}

async function adapterName(): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const a = await (navigator as any).gpu?.requestAdapter();
  return a?.info?.architecture ?? a?.info?.vendor ?? "none";
}

/** The conformance table on WebGPU against the js reference. */
export async function conformance(): Promise<TableResult> {
  const be = await createWebGpuBackend(), reference = new JsBackend();
  const cases = kernelCases(), failures: string[] = [];
  try {
    for (const c of cases) {
      try {
        const want = await runCase(reference, c), got = await runCase(be, c);
        for (let k = 0; k < want.length; k++) {
          assertClose(got[k], want[k], {
            atol: c.atol ?? 1e-5,
            rtol: c.rtol ?? 1e-4,
            label: `webgpu ${c.op} ${c.name} output ${c.outputs[k]}`,
          });
        }
      } catch (e) {
        failures.push(`${c.op} ${c.name}: ${(e as Error).message}`);
      }
    }
  } finally {
    be.dispose();
  }
  return {
    adapter: await adapterName(),
    cases: cases.length,
    ops: [...new Set(cases.map((c) => c.op))],
    failures,
  };
}

/** The gradient table on WebGPU against the js reference's gradients. */
export async function gradients(): Promise<TableResult> {
  const be = await createWebGpuBackend(), failures: string[] = [];
  try {
    for (const c of gradCases) {
      try {
        await checkAgainstReference(c.name, be, c.build, c.inputs);
      } catch (e) {
        failures.push(`${c.name}: ${(e as Error).message}`);
      }
    }
  } finally {
    be.dispose();
  }
  return {
    adapter: await adapterName(),
    cases: gradCases.length,
    ops: gradCases.map((c) => c.name),
    failures,
  };
}
