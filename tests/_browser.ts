/**
 * Shared by the headless-Chromium tests: find the system Chromium, launch it
 * with puppeteer-core (no browser download: it drives the executable it is
 * given, over the DevTools protocol), always close it, bound every wait, serve pages from 127.0.0.1 with
 * or without cross-origin isolation, and build the bundle once per file.
 *
 * Without Chromium the browser tests are ignored locally; with
 * `PIXELFLY_REQUIRE_BROWSER=1` (set by `.ci/run`) they run and fail instead.
 *
 * @module
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { bundle } from "../src/tools/bundle.ts";

/** Set to "1" in CI: a missing Chromium fails the browser tests instead of ignoring them. */
export const REQUIRE_BROWSER: boolean = Deno.env.get("PIXELFLY_REQUIRE_BROWSER") === "1";

/** The Chromium executable: `$PIXELFLY_CHROMIUM`, else the first of Debian's and other usual paths. */
export function findChromium(): string | undefined {
  const env = Deno.env.get("PIXELFLY_CHROMIUM");
  const candidates = env ? [env] : [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
  ];
  for (const p of candidates) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** The Chromium the tests drive (undefined where none is installed). */
export const CHROMIUM: string | undefined = findChromium();

/** `ignore:` value of a browser test: ignored only where Chromium is missing and CI did not require it. */
export const NO_BROWSER: boolean = CHROMIUM === undefined && !REQUIRE_BROWSER;

/**
 * Flags that give headless Chromium a WebGPU adapter on a machine without a GPU: SwiftShader, Chromium's
 * own software Vulkan (measured here: `--enable-unsafe-webgpu` alone already gives it on Linux without a
 * GPU; the adapter flag makes the choice explicit).
 */
export const WEBGPU_FLAGS: string[] = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"];

/** Reject with a message naming `what` when `p` takes longer than `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Launch headless Chromium, run `fn`, and close the browser whatever happens. */
export async function withBrowser<T>(
  fn: (browser: Browser) => Promise<T>,
  opts: { args?: string[] } = {},
): Promise<T> {
  if (CHROMIUM === undefined) {
    throw new Error(
      "no Chromium found (looked in /usr/bin/chromium and others): apt-get install chromium, " +
        "or set PIXELFLY_CHROMIUM to its path",
    );
  }
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    protocolTimeout: 120_000,
    // --no-sandbox: CI runs as root, where Chromium refuses to start sandboxed
    args: ["--no-sandbox", ...(opts.args ?? [])],
  });
  try {
    return await fn(browser);
  } finally {
    await within(browser.close(), 30_000, "closing Chromium").catch(() => {
      browser.process()?.kill("SIGKILL");
    });
  }
}

/**
 * Open `url` in a new page of `browser` and run `fn` with it. The page's console errors and uncaught
 * errors are collected and appended to any error `fn` throws, so a failure says what the page saw.
 */
export async function withPage<T>(
  browser: Browser,
  url: string,
  fn: (page: Page, log: string[]) => Promise<T>,
): Promise<T> {
  const page = await browser.newPage();
  const log: string[] = [];
  page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`pageerror: ${(e as Error)?.message ?? e}`));
  page.setDefaultTimeout(60_000);
  try {
    const res = await page.goto(url, { timeout: 30_000, waitUntil: "load" });
    if (!res || !res.ok()) throw new Error(`GET ${url}: ${res?.status()}`);
    return await fn(page, log);
  } catch (e) {
    if (e instanceof Error && log.length) e.message += `\npage log:\n${log.slice(-20).join("\n")}`;
    throw e;
  } finally {
    await page.close().catch(() => {});
  }
}

/** Evaluate an expression (a string of JavaScript, awaited) in the page, bounded in time. */
export function evaluate<T>(page: Page, expression: string, ms = 60_000): Promise<T> {
  return within(page.evaluate(expression) as Promise<T>, ms, `page.evaluate(${expression.slice(0, 80)}...)`);
}

/** A file the test server serves. */
export type SiteFile = string | Uint8Array;

/** A server on 127.0.0.1 serving `files` under `/iso/` (cross-origin isolated) and `/plain/` (not). */
export interface Site {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** Stop the server. */
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  json: "application/json",
};

/**
 * Serve `files` (name -> content) from 127.0.0.1 on a free port. Under `/iso/NAME` with
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` (so the
 * page is cross-origin isolated and has SharedArrayBuffer); under `/plain/NAME` without them.
 */
export function serveSite(files: Record<string, SiteFile>): Site {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    const m = path.match(/^\/(iso|plain)\/(.+)$/);
    const body = m ? files[m[2]] : undefined;
    if (!m || body === undefined) return new Response("not found", { status: 404 });
    const headers = new Headers({
      "content-type": TYPES[m[2].split(".").pop()!] ?? "application/octet-stream",
      "cache-control": "no-store",
    });
    if (m[1] === "iso") {
      headers.set("cross-origin-opener-policy", "same-origin");
      headers.set("cross-origin-embedder-policy", "require-corp");
      headers.set("cross-origin-resource-policy", "same-origin");
    }
    return new Response(body as BodyInit, { headers });
  });
  return { origin: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

let bundled: Promise<string> | undefined;

/** The bundle's text, built once per test file with `deno task bundle`'s code into a temporary folder. */
export function bundleText(): Promise<string> {
  bundled ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_browser_" });
    try {
      const { outfile, warnings } = await bundle({ outfile: `${dir}/pixelfly.js` });
      if (warnings.length) throw new Error(`bundle warnings:\n${warnings.join("\n")}`);
      return await Deno.readTextFile(outfile);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return bundled;
}

/** The fenced block of `lang` in the README's "In browsers and Node" section. */
export async function readmeBlock(lang: string): Promise<string> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.split(/^## /m).find((s) => s.startsWith("In browsers and Node"));
  const block = section?.match(new RegExp("```" + lang + "\\n([\\s\\S]*?)```"))?.[1];
  if (!block) throw new Error(`README: no \`\`\`${lang} block in "## In browsers and Node"`);
  return block;
}
