/**
 * The WebGPU backend in a real browser: headless Chromium on its software
 * adapter (SwiftShader) runs the whole conformance table (default kernel
 * family, and the products of the workgroup-memory family) and the gradient
 * table against the js reference inside the page. Chromium validates what
 * Deno's WebGPU lets pass (a buffer bound twice where one binding is
 * writable, read-only inputs, limits above the adapter's), and any GPU
 * validation error fails the next read, so these tests fail on it.
 *
 * Ignored where Chromium is missing, unless PIXELFLY_REQUIRE_BROWSER=1 (CI).
 */
import * as esbuild from "esbuild";
import { evaluate, NO_BROWSER, serveSite, WEBGPU_FLAGS, withBrowser, withPage } from "./_browser.ts";
import { assertEquals, assertOk } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// The page's test program: the same case tables Deno runs, compared in the page.
const ENTRY = `
import { kernelCases, runCase } from "${ROOT}tests/_cases.ts";
import { gradCases } from "${ROOT}tests/_grad_cases.ts";
import { checkAgainstReference } from "${ROOT}tests/_gradcheck.ts";
import { JsBackend } from "${ROOT}src/backends/js.ts";
import { createWebGpuBackend } from "${ROOT}src/backends/webgpu.ts";

export async function adapter() {
  const a = await navigator.gpu?.requestAdapter();
  return a ? a.info.architecture || a.info.vendor || "unknown" : null;
}

export async function conformance(family, ops) {
  const gpu = await createWebGpuBackend({ family });
  const ref = new JsBackend();
  const failures = [];
  let n = 0;
  try {
    for (const c of kernelCases()) {
      if (ops && !ops.includes(c.op)) continue;
      n++;
      try {
        const want = await runCase(ref, c);
        const got = await runCase(gpu, c);
        const atol = c.atol ?? 1e-5, rtol = c.rtol ?? 1e-4;
        for (let k = 0; k < want.length; k++) {
          for (let i = 0; i < want[k].length; i++) {
            const w = want[k][i], g = got[k][i];
            if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) {
              failures.push(c.op + " " + c.name + " output " + c.outputs[k] + "[" + i + "]: " + g + " vs " + w);
              break;
            }
          }
        }
      } catch (e) {
        failures.push(c.op + " " + c.name + ": " + (e && e.message || e));
        if (failures.length > 20) break;
      }
    }
  } finally {
    gpu.dispose();
  }
  return { family: gpu.family, cases: n, failures };
}

export async function gradients() {
  const gpu = await createWebGpuBackend();
  const failures = [];
  try {
    for (const c of gradCases) {
      try {
        await checkAgainstReference(c.name, gpu, c.build, c.inputs);
      } catch (e) {
        failures.push(c.name + ": " + (e && e.message || e));
      }
    }
  } finally {
    gpu.dispose();
  }
  return { cases: gradCases.length, failures };
}
`;

// tests/_assert.ts uses node:assert; the page gets the few calls it makes.
const ASSERT_SHIM = `
const fail = (m) => { throw new Error(m); };
export default {
  ok: (c, m) => { if (!c) fail(m ?? "assertion failed"); },
  fail,
  strictEqual: (a, b, m) => { if (a !== b) fail(m ?? a + " !== " + b); },
  deepStrictEqual: (a, b, m) => { if (JSON.stringify(a) !== JSON.stringify(b)) fail(m ?? "not deep-equal"); },
  notDeepStrictEqual: (a, b, m) => { if (JSON.stringify(a) === JSON.stringify(b)) fail(m ?? "deep-equal"); },
};
`;

async function suiteBundle(): Promise<string> {
  try {
    const r = await esbuild.build({
      stdin: { contents: ENTRY, resolveDir: ROOT, loader: "js" },
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      logLevel: "silent",
      plugins: [{
        name: "node-assert-shim",
        setup(b) {
          b.onResolve({ filter: /^node:assert/ }, () => ({ path: "assert", namespace: "shim" }));
          b.onLoad({ filter: /.*/, namespace: "shim" }, () => ({ contents: ASSERT_SHIM, loader: "js" }));
        },
      }],
    });
    return r.outputFiles[0].text;
  } finally {
    await esbuild.stop();
  }
}

const INDEX = `<!doctype html><meta charset="utf-8"><title>pixelfly webgpu</title>`;

Deno.test({
  name: "webgpu in Chromium (SwiftShader): the conformance and gradient tables match the js reference",
  ignore: NO_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const site = serveSite({ "index.html": INDEX, "suite.js": await suiteBundle() });
    try {
      await withBrowser(async (browser) => {
        await withPage(browser, `${site.origin}/plain/index.html`, async (page) => {
          const load = `import("./suite.js").then((m) => (globalThis.suite = m, true))`;
          assertOk(await evaluate<boolean>(page, load), "suite loaded");
          assertEquals(await evaluate<string | null>(page, "suite.adapter()"), "swiftshader");
          const conf = await evaluate<{ family: string; cases: number; failures: string[] }>(
            page,
            `suite.conformance()`,
            540_000,
          );
          assertOk(conf.cases > 1000, `${conf.cases} cases`);
          assertEquals(conf.failures, [], `conformance in Chromium (${conf.family} kernels)`);
          // the workgroup-memory family (hardware GPUs) on its products
          const wg = await evaluate<{ family: string; cases: number; failures: string[] }>(
            page,
            `suite.conformance("workgroup", ["gemm", "dds", "sdd"])`,
            540_000,
          );
          assertEquals(wg.family, "workgroup");
          assertOk(wg.cases > 500, `${wg.cases} workgroup cases`);
          assertEquals(wg.failures, [], "conformance in Chromium (workgroup kernels)");
          const grads = await evaluate<{ cases: number; failures: string[] }>(
            page,
            "suite.gradients()",
            300_000,
          );
          assertOk(grads.cases > 30, `${grads.cases} gradient cases`);
          assertEquals(grads.failures, [], "gradients in Chromium");
        });
      }, { args: WEBGPU_FLAGS });
    } finally {
      await site.close();
    }
  },
});
