/**
 * WebGPU in a real browser: headless Chromium on SwiftShader (its software
 * Vulkan; no GPU needed) runs the conformance table's cases and the gradient
 * table on the WebGPU backend against the js reference, the same tables that
 * conformance_test.ts and grad_test.ts run in Deno. The test files are bundled
 * for the page with esbuild (`node:assert` replaced by a small shim).
 *
 * Ignored where Chromium is missing, unless PIXELFLY_REQUIRE_BROWSER=1 (CI).
 */
import * as esbuild from "esbuild";
import { ROOT } from "../src/tools/bundle.ts";
import type { TableResult } from "./_browser_webgpu.ts";
import { evaluate, NO_BROWSER, serveSite, WEBGPU_FLAGS, withBrowser, withPage } from "./_browser.ts";
import { assertEquals, assertOk } from "./_assert.ts";

// node:assert/strict for the page: the few functions tests/_assert.ts uses, throwing plain Errors.
const ASSERT_SHIM = `const fail = (m) => { throw new Error(m || "assertion failed"); };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
export default {
  ok: (c, m) => { if (!c) fail(m); },
  fail,
  strictEqual: (a, b, m) => { if (!Object.is(a, b)) fail(m || a + " !== " + b); },
  deepStrictEqual: (a, b, m) => { if (!same(a, b)) fail(m || "not deep-equal"); },
  notDeepStrictEqual: (a, b, m) => { if (same(a, b)) fail(m || "deep-equal"); },
};`;

async function bundleTables(): Promise<string> {
  try {
    const r = await esbuild.build({
      entryPoints: [`${ROOT}tests/_browser_webgpu.ts`],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      logLevel: "silent",
      plugins: [{
        name: "assert-shim",
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

Deno.test({
  name: "browser: WebGPU on SwiftShader passes the conformance table and the gradient table",
  ignore: NO_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const s = serveSite({
      "index.html": "<!doctype html><title>webgpu</title>",
      "tables.js": await bundleTables(),
    });
    try {
      await withBrowser(
        (browser) =>
          withPage(browser, `${s.origin}/plain/index.html`, async (page) => {
            for (const table of ["conformance", "gradients"] as const) {
              const r = await evaluate<TableResult>(
                page,
                `import("./tables.js").then((m) => m.${table}())`,
                240_000,
              );
              assertEquals(r.adapter, "swiftshader");
              assertOk(r.cases > 20, `${table}: only ${r.cases} cases`);
              assertEquals(
                r.failures,
                [],
                `${table} on WebGPU in Chromium: ${r.failures.length} of ${r.cases} failed`,
              );
            }
          }),
        { args: WEBGPU_FLAGS },
      );
    } finally {
      await s.close();
    }
  },
});
