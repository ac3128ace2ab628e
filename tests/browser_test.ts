/**
 * pixelfly in a real browser: headless Chromium (the system's, driven by
 * playwright-core) loads the one-file bundle from a page served on 127.0.0.1
 * and runs `tests/_bundle_run.js`, the same source this file runs in Deno
 * against `mod.ts`. Masks must equal Deno's exactly; training on WASM must give
 * Deno's losses bit for bit for the same seed: on the page's main thread, in a
 * Worker with two threads when the page is cross-origin isolated (COOP/COEP),
 * and on one thread where the browser cannot run two (main thread, or no
 * isolation), as `createWasmBackend` documents. WebGPU runs on SwiftShader.
 *
 * Ignored where Chromium is missing, unless PIXELFLY_REQUIRE_BROWSER=1 (CI).
 */
import * as pf from "../mod.ts";
import { maskSummary, trainRun } from "./_bundle_run.js";
import {
  bundleText,
  evaluate,
  NO_BROWSER,
  readmeBlock,
  serveSite,
  type Site,
  WEBGPU_FLAGS,
  withBrowser,
  within,
  withPage,
} from "./_browser.ts";
import { assertClose, assertEquals, assertOk } from "./_assert.ts";

const RUNNER = await Deno.readTextFile(new URL("./_bundle_run.js", import.meta.url));

const INDEX = `<!doctype html><meta charset="utf-8"><title>pixelfly browser test</title><p>pixelfly</p>`;

// Runs one trainRun/maskSummary call per message inside a module Worker.
const WORKER = `import * as pf from "./pixelfly.js";
import * as run from "./bundle_run.js";
self.onmessage = async (e) => {
  try {
    const { fn, opts } = e.data;
    postMessage({ ok: true, isolated: self.crossOriginIsolated, result: await run[fn](pf, opts) });
  } catch (err) {
    postMessage({ ok: false, error: String(err && err.stack || err) });
  }
};
`;

/** JavaScript that runs `fn(pf, opts)` on the page's main thread. */
function onMain(fn: "trainRun" | "maskSummary", opts: unknown = {}): string {
  return `(async () => {
    const pf = await import("./pixelfly.js");
    const run = await import("./bundle_run.js");
    return { isolated: self.crossOriginIsolated, result: await run.${fn}(pf, ${JSON.stringify(opts)}) };
  })()`;
}

/** JavaScript that runs `fn(pf, opts)` in a new module Worker of the page and ends the Worker. */
function inWorker(fn: "trainRun" | "maskSummary", opts: unknown = {}): string {
  return `new Promise((resolve, reject) => {
    const w = new Worker("./worker.js", { type: "module" });
    w.onmessage = (e) => { w.terminate(); e.data.ok ? resolve(e.data) : reject(new Error(e.data.error)); };
    w.onerror = (e) => { w.terminate(); reject(new Error("worker: " + (e.message || "failed to load"))); };
    w.postMessage({ fn: ${JSON.stringify(fn)}, opts: ${JSON.stringify(opts)} });
  })`;
}

interface Run {
  isolated: boolean;
  result: Awaited<ReturnType<typeof trainRun>>;
}

async function site(): Promise<Site> {
  return serveSite({
    "index.html": INDEX,
    "pixelfly.js": await bundleText(),
    "bundle_run.js": RUNNER,
    "worker.js": WORKER,
  });
}

/** Run `fn` with a served site and a Chromium page on `/iso/` or `/plain/`; closes both. */
async function withSite<T>(
  where: "iso" | "plain",
  fn: (run: (expression: string) => Promise<any>) => Promise<T>,
  args: string[] = [],
): Promise<T> {
  const s = await site();
  try {
    return await withBrowser(
      (browser) =>
        withPage(browser, `${s.origin}/${where}/index.html`, (page) => fn((e) => evaluate(page, e, 90_000))),
      { args },
    );
  } finally {
    await s.close();
  }
}

let denoLosses: number[] | undefined;
/** The losses of the same run in Deno on the unbundled module (relaxed build, one thread). */
async function deno(): Promise<number[]> {
  denoLosses ??= (await trainRun(pf, { backend: "wasm" })).losses;
  return denoLosses;
}

function assertDecreasing(losses: number[], label: string): void {
  assertOk(losses.every(Number.isFinite), `${label}: a loss is not finite: ${losses}`);
  assertOk(losses.at(-1)! < losses[0] * 0.9, `${label}: the loss did not fall: ${losses}`);
}

const opts = { ignore: NO_BROWSER, sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "browser: masks built by the bundle in Chromium equal Deno's, on the main thread and in a Worker",
  ...opts,
  async fn() {
    const want = maskSummary(pf);
    await withSite("plain", async (run) => {
      const main = await run(onMain("maskSummary"));
      assertEquals(main.isolated, false);
      assertEquals(main.result, want, "main thread");
      const worker = await run(inWorker("maskSummary"));
      assertEquals(worker.result, want, "worker");
    });
  },
});

Deno.test({
  name: "browser: training on wasm in Chromium gives Deno's losses bit for bit (main thread and Worker)",
  ...opts,
  async fn() {
    const want = await deno();
    assertDecreasing(want, "deno");
    await withSite("iso", async (run) => {
      const main: Run = await run(onMain("trainRun", { backend: "wasm" }));
      assertEquals(main.isolated, true, "the /iso/ page is cross-origin isolated");
      assertEquals(main.result.backend.name, "wasm");
      // Chromium has relaxed SIMD, so it runs the same build as Deno: the losses are bit-identical.
      assertEquals(main.result.backend.variant, "relaxed");
      assertEquals(main.result.losses, want, "main thread vs Deno");
      const worker: Run = await run(inWorker("trainRun", { backend: "wasm" }));
      assertEquals(worker.result.losses, want, "worker vs Deno");
    });
  },
});

Deno.test({
  name: "browser: two wasm threads inside a Worker of a cross-origin isolated page, Deno's losses",
  ...opts,
  async fn() {
    const want = await deno();
    await withSite("iso", async (run) => {
      for (const threads of [2, "auto"] as const) {
        const r: Run = await run(inWorker("trainRun", { backend: "wasm", threads }));
        assertEquals(r.isolated, true);
        // headless Chromium reports the machine's cores; "auto" takes one thread per core, at most 8
        const cores = await run("navigator.hardwareConcurrency");
        assertEquals(r.result.backend.threads, threads === 2 ? 2 : Math.min(8, cores), `threads ${threads}`);
        assertEquals(r.result.losses, want, `threads ${threads}: Worker vs Deno`);
      }
    });
  },
});

Deno.test({
  name: "browser: two wasm threads in a Worker keep working after the helper thread's idle exit",
  ...opts,
  // the helper thread leaves after 1 s idle; Chromium starts a nested Worker only while its parent's event
  // loop runs, so the next products run its part on the calling thread until the new one has started
  async fn() {
    const want = await deno();
    await withSite("iso", async (run) => {
      const r: Run = await run(inWorker("trainRun", { backend: "wasm", threads: 2, pauseMs: 1500 }));
      assertEquals(r.result.backend.threads, 2);
      assertEquals(r.result.losses, want, "after the idle pause");
    });
  },
});

Deno.test({
  name:
    "browser: threads 2 and auto on an isolated page's main thread fall back to one thread (no Atomics.wait)",
  ...opts,
  async fn() {
    const want = await deno();
    await withSite("iso", async (run) => {
      for (const threads of [2, "auto"] as const) {
        const r: Run = await run(onMain("trainRun", { backend: "wasm", threads }));
        assertEquals(r.isolated, true);
        assertEquals(r.result.backend.threads, 1, `threads ${threads} on the main thread`);
        const notes: string[] = r.result.backend.info?.notes ?? [];
        assertOk(notes.some((n) => n.includes("Atomics.wait is not allowed")), `info.notes: ${notes}`);
        assertEquals(r.result.losses, want, `threads ${threads}: main thread vs Deno`);
      }
    });
  },
});

Deno.test({
  name: "browser: without cross-origin isolation threads 2 run on one thread (main thread and Worker)",
  ...opts,
  async fn() {
    const want = await deno();
    await withSite("plain", async (run) => {
      for (const where of [onMain, inWorker]) {
        const r: Run = await run(where("trainRun", { backend: "wasm", threads: 2 }));
        assertEquals(r.isolated, false);
        assertEquals(r.result.backend.threads, 1, `${where.name}: no SharedArrayBuffer, one thread`);
        const notes: string[] = r.result.backend.info?.notes ?? [];
        assertOk(
          notes.some((n) => n.includes("not cross-origin isolated")),
          `${where.name} info.notes: ${notes}`,
        );
        assertEquals(r.result.losses, want, `${where.name} vs Deno`);
      }
    });
  },
});

Deno.test({
  name: "browser: WebGPU on SwiftShader in Chromium trains, losses close to Deno's wasm",
  ...opts,
  async fn() {
    const want = await deno();
    await withSite("iso", async (run) => {
      const adapter = await run(`navigator.gpu.requestAdapter().then((a) => a && a.info.architecture)`);
      assertEquals(adapter, "swiftshader", "the software adapter the flags ask for");
      for (const where of [onMain, inWorker]) {
        const r: Run = await run(where("trainRun", { backend: "webgpu" }));
        assertEquals(r.result.backend.name, "webgpu");
        assertClose(Float32Array.from(r.result.losses), Float32Array.from(want), {
          atol: 1e-4,
          rtol: 1e-4,
          label: `webgpu ${where.name} vs Deno wasm`,
        });
      }
    }, WEBGPU_FLAGS);
  },
});

Deno.test({
  name: "browser: the README's HTML snippet works as pasted (logs the output shape)",
  ...opts,
  async fn() {
    const html = `<!doctype html><meta charset="utf-8">\n${await readmeBlock("html")}`;
    const s = serveSite({ "index.html": html, "pixelfly.js": await bundleText() });
    try {
      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        try {
          const logged = new Promise<unknown[]>((resolve, reject) => {
            page.on("console", (m) => Promise.all(m.args().map((a) => a.jsonValue())).then(resolve, reject));
            page.on("pageerror", (e) => reject(e));
          });
          await page.goto(`${s.origin}/plain/index.html`, { timeout: 30_000 });
          assertEquals(await within(logged, 60_000, "the snippet's console.log"), [[4, 256]]);
        } finally {
          await page.close().catch(() => {});
        }
      });
    } finally {
      await s.close();
    }
  },
});
