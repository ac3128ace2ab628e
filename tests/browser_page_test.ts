/**
 * The demo page (`deno task serve`, web/): headless Chromium loads it from
 * the real server (web/serve.ts on 127.0.0.1, a free port), lets it train a
 * few steps of a small dense and Pixelfly MLP side by side and a short budget
 * sweep, and checks what it shows: the page is cross-origin isolated, the
 * Worker runs WASM (two threads where the machine has two cores), both loss
 * curves are drawn and fall, the speed-up is shown, the mask pictures hold
 * exactly the masks' kept tiles, and the sweep has one row per budget. It
 * saves a screenshot to `out/web_demo.png` (or `$PIXELFLY_SCREENSHOT`).
 *
 * Ignored where Chromium is missing, unless PIXELFLY_REQUIRE_BROWSER=1 (CI).
 */
import { startServer } from "../web/serve.ts";
import { evaluate, NO_BROWSER, WEBGPU_FLAGS, withBrowser, withPage } from "./_browser.ts";
import { assertEquals, assertOk } from "./_assert.ts";

const STEPS = 24, BUDGETS = [0.25, 0.5];

interface Shown {
  state: string;
  error: string | null;
  isolated: boolean;
  backend: { name: string; threads: number; variant: string | null; notes: string[] };
  data: { source: string; train: number; test: number };
  losses: { dense: [number, number][]; pixelfly: [number, number][] };
  accuracy: { dense: [number, number][]; pixelfly: [number, number][] };
  speed: { dense: number; pixelfly: number };
  sweep: { budget: number | "dense"; params: number; ms: number; speedup: number; accuracy: number }[];
  models: { masks: { nnz: number }[]; dense: { params: number }; pixelfly: { params: number } };
  text: Record<string, string>;
  maskRects: number[];
  curvePaths: number;
  sweepRows: number;
  cores: number;
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

/** Serve the page, open it with `query`, wait until it is done (or failed), read what it shows, screenshot. */
async function runPage(query: string, shot: string, args: string[] = []): Promise<Shown> {
  const dir = await Deno.makeTempDir({ prefix: "pixelfly_web_" });
  const server = await startServer({ port: 0, bundleFile: `${dir}/pixelfly.js` });
  try {
    return await withBrowser(
      (browser) =>
        withPage(browser, `${server.url}/?${query}`, async (page, log) => {
          await page.setViewport({ width: 1200, height: 1500 });
          const done = await page.waitForFunction(
            `["done", "error"].includes(document.body.dataset.state)`,
            { timeout: 150_000, polling: 200 },
          ).then(() => true, () => false);
          const shown = await evaluate<Shown>(
            page,
            `(() => {
            const s = globalThis.pixelflyDemo, t = (id) => document.getElementById(id).textContent;
            return { ...s, isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency,
              text: Object.fromEntries(["status", "backend", "data", "speedup", "dense-loss", "pixelfly-loss",
                "dense-acc", "pixelfly-acc", "dense-ms", "pixelfly-ms", "dense-params", "pixelfly-params"]
                .map((id) => [id, t(id)])),
              maskRects: [...document.querySelectorAll("#masks svg")].map((svg) =>
                svg.querySelectorAll("rect").length),
              curvePaths: document.querySelectorAll("#curve svg path").length,
              sweepRows: document.querySelectorAll("#sweep tbody tr").length };
          })()`,
          );
          await Deno.mkdir(shot.replace(/\/[^/]*$/, "") || ".", { recursive: true });
          await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
          assertOk(done, `the page did not finish in time: state ${shown.state}\n${log.join("\n")}`);
          assertEquals(shown.error, null, "the page reported an error");
          assertEquals(shown.state, "done");
          return shown;
        }),
      { args },
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "web page: trains dense and Pixelfly side by side in a Worker and shows curves, speed-up, masks, sweep",
  ignore: NO_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const shown = await runPage(
      `steps=${STEPS}&hidden=256&batch=64&test=500&evalEvery=12&sweepSteps=6&budgets=${BUDGETS.join(",")}` +
        "&backend=wasm",
      Deno.env.get("PIXELFLY_SCREENSHOT") ?? "out/web_demo.png",
    );
    // served cross-origin isolated, so the Worker gets SharedArrayBuffer and two WASM threads
    assertEquals(shown.isolated, true, "COOP/COEP headers make the page cross-origin isolated");
    assertEquals(shown.backend.name, "wasm");
    assertEquals(
      shown.backend.threads,
      Math.min(8, shown.cores),
      "threads auto (one per core, at most 8)",
    );
    assertOk(
      shown.text.backend.includes("wasm") && shown.text.backend.includes("is cross-origin isolated"),
    );
    assertOk(/Fashion-MNIST|synthetic/.test(shown.text.data), `data line: ${shown.text.data}`);

    // both loss curves: every step reported, finite, falling; both drawn; numbers shown
    for (const m of ["dense", "pixelfly"] as const) {
      const l = shown.losses[m].map(([, v]) => v);
      assertEquals(shown.losses[m].map(([s]) => s), Array.from({ length: STEPS }, (_, i) => i + 1));
      assertOk(l.every(Number.isFinite), `${m}: a loss is not finite`);
      assertOk(mean(l.slice(-5)) < 0.8 * mean(l.slice(0, 5)), `${m}: the loss did not fall: ${l}`);
      assertOk(
        /^\d+\.\d{4}$/.test(shown.text[`${m}-loss`]),
        `${m} loss shown: ${shown.text[`${m}-loss`]}`,
      );
      assertOk(/^\d+\.\d\d%$/.test(shown.text[`${m}-acc`]), `${m} accuracy shown`);
      assertEquals(shown.accuracy[m].map(([s]) => s), [12, 24]);
      assertOk(shown.accuracy[m].at(-1)![1] > 0.2, `${m}: accuracy ${shown.accuracy[m].at(-1)![1]}`);
    }
    assertEquals(shown.curvePaths, 2, "two loss curves drawn");
    assertOk(
      shown.models.pixelfly.params < shown.models.dense.params / 2,
      "Pixelfly has fewer parameters",
    );

    // the speed-up is shown and is the ratio of the medians shown (its size is not a test: bench/ has it)
    const speedup = shown.speed.dense / shown.speed.pixelfly;
    assertOk(speedup > 0 && Number.isFinite(speedup));
    assertEquals(shown.text.speedup, `${speedup.toFixed(2)}x`);

    // one picture per Pixelfly layer, one square per kept tile (plus the background and frame)
    assertEquals(shown.models.masks.length, 2);
    assertEquals(shown.maskRects.length, 2);
    shown.maskRects.forEach((n, i) => {
      const nnz = shown.models.masks[i].nnz;
      assertOk(n >= nnz && n <= nnz + 2, `mask ${i}: ${n} rects for ${nnz} kept tiles`);
    });

    // the sweep: dense then each budget, speed-up relative to dense
    assertEquals(shown.sweep.map((r) => r.budget), ["dense", ...BUDGETS]);
    assertEquals(shown.sweepRows, 1 + BUDGETS.length);
    assertEquals(shown.sweep[0].speedup, 1);
    for (const r of shown.sweep) assertOk(r.speedup > 0 && r.accuracy >= 0 && r.accuracy <= 1);
    assertOk(shown.sweep[1].params < shown.sweep[2].params, "a smaller budget has fewer parameters");
  },
});

Deno.test({
  name:
    "web page: with WebGPU (Chromium's SwiftShader adapter) the page trains on it and says it is software",
  ignore: NO_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const shown = await runPage(
      "steps=4&hidden=256&batch=16&test=50&evalEvery=4&sweepSteps=0&backend=webgpu",
      "out/web_demo_webgpu.png",
      WEBGPU_FLAGS,
    );
    assertEquals(shown.backend.name, "webgpu");
    assertOk(shown.text.backend.includes("software adapter"), `backend line: ${shown.text.backend}`);
    for (const m of ["dense", "pixelfly"] as const) {
      assertEquals(shown.losses[m].length, 4);
      assertOk(shown.losses[m].every(([, v]) => Number.isFinite(v)), `${m}: ${shown.losses[m]}`);
    }
    assertEquals(shown.sweep, [], "sweepSteps=0: no sweep");
    assertEquals(shown.sweepRows, 0);
  },
});

Deno.test({
  name: "web page: the server sends COOP/COEP on every file and serves nothing outside its list",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_web_" });
    const server = await startServer({ port: 0, bundleFile: `${dir}/pixelfly.js` });
    try {
      for (
        const [path, type] of [["/", "text/html"], ["/app.js", "text/javascript"], [
          "/pixelfly.js",
          "text/javascript",
        ]]
      ) {
        const res = await fetch(`${server.url}${path}`);
        await res.body?.cancel();
        assertEquals(res.status, 200, path);
        assertOk(
          res.headers.get("content-type")!.startsWith(type),
          `${path}: ${res.headers.get("content-type")}`,
        );
        assertEquals(res.headers.get("cross-origin-opener-policy"), "same-origin", path);
        assertEquals(res.headers.get("cross-origin-embedder-policy"), "require-corp", path);
      }
      for (const path of ["/serve.ts", "/../deno.json", "/data/passwd", "/%2e%2e/mod.ts"]) {
        const res = await fetch(`${server.url}${path}`);
        await res.body?.cancel();
        assertEquals(res.status, 404, path);
      }
      const index = await (await fetch(`${server.url}/data/index.json`)).json();
      assertEquals(index.fashionMnist, server.dataDir !== undefined);
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
