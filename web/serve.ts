/**
 * `deno task serve`: build the bundle (`dist/pixelfly.js`, as `deno task
 * bundle` does) and serve the demo page in `web/` on http://127.0.0.1:8000
 * with the cross-origin isolation headers (COOP/COEP) that give the page
 * SharedArrayBuffer, so its Worker trains on two WASM threads. Fashion-MNIST
 * is served under `/data/` when Debian's `dataset-fashion-mnist` (or
 * `--data DIR`) has it; the page falls back to the module's synthetic task.
 *
 * Run: `deno task serve [--port 8000] [--hostname 127.0.0.1] [--data DIR]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { bundle, ROOT } from "../src/tools/bundle.ts";
import { FASHION_MNIST_DEBIAN_DIR } from "../src/io/idx.ts";

/** The page's own files (served from `web/`), and nothing else from the folder. */
const PAGE_FILES = ["index.html", "app.js", "worker.js", "style.css"];

/** The Fashion-MNIST files the page asks for under `/data/`. */
const DATA_FILES = [
  "train-images-idx3-ubyte.gz",
  "train-labels-idx1-ubyte.gz",
  "t10k-images-idx3-ubyte.gz",
  "t10k-labels-idx1-ubyte.gz",
];

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  gz: "application/gzip",
  json: "application/json",
};

/** Options of {@link startServer}. */
export interface ServeOptions {
  /** Port (8000); 0 picks a free one. */
  port?: number;
  /** Interface to listen on ("127.0.0.1"). */
  hostname?: string;
  /** Where the bundle is written (`dist/pixelfly.js`). */
  bundleFile?: string;
  /** Folder with the gzipped Fashion-MNIST IDX files (Debian's when it has them). */
  dataDir?: string;
}

/** A running demo server. */
export interface DemoServer {
  /** `http://HOST:PORT` */
  url: string;
  /** Where Fashion-MNIST is served from, or undefined when the page will use the synthetic task. */
  dataDir: string | undefined;
  /** Stop serving. */
  close(): Promise<void>;
}

async function hasAll(dir: string): Promise<boolean> {
  try {
    for (const f of DATA_FILES) if (!(await Deno.stat(`${dir}/${f}`)).isFile) return false;
    return true;
  } catch {
    return false;
  }
}

/**
 * Build the bundle and serve the page. Every response carries
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`.
 */
export async function startServer(opts: ServeOptions = {}): Promise<DemoServer> {
  const { outfile, warnings } = await bundle({ outfile: opts.bundleFile ?? `${ROOT}dist/pixelfly.js` });
  for (const w of warnings) console.warn(w);
  const files = new Map<string, Uint8Array>();
  for (const f of PAGE_FILES) files.set(`/${f}`, await Deno.readFile(`${ROOT}web/${f}`));
  files.set("/pixelfly.js", await Deno.readFile(outfile));
  const candidates = opts.dataDir ? [opts.dataDir, FASHION_MNIST_DEBIAN_DIR] : [FASHION_MNIST_DEBIAN_DIR];
  let dataDir: string | undefined;
  for (const d of candidates) {
    if (await hasAll(d)) {
      dataDir = d;
      break;
    }
  }
  const headers = (type: string) =>
    new Headers({
      "content-type": type,
      "cache-control": "no-store",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
      "cross-origin-resource-policy": "same-origin",
    });
  const server = Deno.serve(
    { hostname: opts.hostname ?? "127.0.0.1", port: opts.port ?? 8000, onListen() {} },
    async (req) => {
      let path = new URL(req.url).pathname;
      if (path === "/") path = "/index.html";
      if (path === "/favicon.ico") return new Response(null, { status: 204 });
      const ext = path.split(".").pop()!;
      const body = files.get(path);
      if (body) return new Response(body as BodyInit, { headers: headers(TYPES[ext]) });
      if (path === "/data/index.json") {
        return new Response(JSON.stringify({ fashionMnist: dataDir !== undefined }), {
          headers: headers(TYPES.json),
        });
      }
      const name = path.startsWith("/data/") ? path.slice(6) : "";
      if (dataDir && DATA_FILES.includes(name)) {
        const file = await Deno.open(`${dataDir}/${name}`);
        return new Response(file.readable, { headers: headers(TYPES.gz) });
      }
      return new Response("not found", { status: 404, headers: headers("text/plain") });
    },
  );
  const host = server.addr.hostname.includes(":") ? `[${server.addr.hostname}]` : server.addr.hostname;
  return { url: `http://${host}:${server.addr.port}`, dataDir, close: () => server.shutdown() };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8000" },
      hostname: { type: "string", default: "127.0.0.1" },
      data: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log("usage: deno task serve [--port 8000] [--hostname 127.0.0.1] [--data DIR]");
    Deno.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`serve: --port must be an integer in [0, 65535], got ${values.port}`);
  }
  const s = await startServer({ port, hostname: values.hostname, dataDir: values.data });
  console.log(`pixelfly demo page: ${s.url}/  (cross-origin isolated; Ctrl-C stops)`);
  console.log(
    s.dataDir
      ? `data: Fashion-MNIST from ${s.dataDir}`
      : "data: Fashion-MNIST not found (apt-get install dataset-fashion-mnist): the page uses the synthetic task",
  );
}
