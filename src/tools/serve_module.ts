/**
 * Serve this checkout over HTTP with the content types Deno needs for a URL
 * import (`.ts` as `application/typescript`; generic static servers send
 * `video/mp2t`, which breaks the import), so another program can
 * `import ... from "http://127.0.0.1:8080/mod.ts"`.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-read=. src/tools/serve_module.ts [--port 8080] [--hostname 127.0.0.1]`
 *
 * GET only, files under the repository root only, no directory listing. Not
 * exported from `mod.ts`.
 *
 * @module
 */

/** Content types by file extension; anything else is 404. */
export const CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
};

/** The repository root (two folders above this file). */
const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/**
 * Answer one request with a file under `root` and its TypeScript-aware content type.
 *
 * @example
 * ```ts ignore
 * import { serveModuleFile } from "./serve_module.ts";
 * Deno.serve({ port: 8080, hostname: "127.0.0.1" }, (req) => serveModuleFile(req));
 * ```
 */
export async function serveModuleFile(req: Request, root: string = ROOT): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405 });
  }
  const path = decodeURIComponent(new URL(req.url).pathname);
  if (path.split("/").some((p) => p === ".." || p.startsWith("."))) {
    return new Response("not found\n", { status: 404 });
  }
  const type = CONTENT_TYPES[path.slice(path.lastIndexOf("."))];
  if (type === undefined) return new Response("not found\n", { status: 404 });
  try {
    const body = await Deno.readFile(root + path.slice(1));
    return new Response(req.method === "HEAD" ? null : body, { headers: { "content-type": type } });
  } catch {
    return new Response("not found\n", { status: 404 });
  }
}

if (import.meta.main) {
  let port = 8080, hostname = "127.0.0.1";
  for (let i = 0; i < Deno.args.length; i++) {
    const a = Deno.args[i];
    if (a === "--port") port = Number(Deno.args[++i]);
    else if (a === "--hostname") hostname = Deno.args[++i];
    else throw new RangeError(`serve_module: unknown argument "${a}"; expected --port N or --hostname H`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`serve_module: --port must be an integer in [0, 65535], got ${Deno.args[i]}`);
    }
  }
  Deno.serve({
    port,
    hostname,
    onListen: (a) => console.log(`serve_module: http://${a.hostname}:${a.port}/mod.ts`),
  }, (req) => serveModuleFile(req));
}
