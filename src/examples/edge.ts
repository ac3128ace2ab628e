/**
 * An edge inference endpoint: a `Deno.serve` handler classifying 28x28 images
 * with a small Pixelfly model (`edge_net.ts`) whose checkpoint is inside the
 * module graph (`generated/edge_model.ts`, base64 safetensors), so it needs no
 * file access and no permission but the port. It runs unchanged from a URL
 * import, in Deno Deploy-style edge runtimes, or locally:
 *
 * ```sh
 * deno run --allow-net src/examples/edge.ts --port 8000
 * curl -s localhost:8000/ -d "{\"pixels\": [$(seq -s, 784 | sed 's/[0-9]\+/0.5/g')]}"
 * ```
 *
 * - `GET /`: a short description, with the backend it runs on and why.
 * - `POST /` with JSON `{ "pixels": number[784] }` (row-major, values in [0, 1])
 *   answers `{ "probs": number[10], "label": n }`; with `{ "pixels": number[784][] }`
 *   (a batch of up to 256) it answers `{ "probs": number[10][], "label": number[] }`.
 *   Every answer carries an `x-pixelfly-backend` header (`wasm` or `js`).
 * - Bad input: 400 with a message naming the rule and the value; a body above
 *   {@link MAX_BODY_BYTES} bytes: 413, found while reading (a declared
 *   `content-length` is refused before reading, a chunked body as soon as it
 *   passes the limit), so an oversized body never sits in memory.
 *
 * Each request runs inside `tidy`, so it leaves no tensor behind.
 *
 * @module
 */
import { type Backend, load, loadBackend, noGrad, softmax, tensor, tidy } from "../../mod.ts";
import type { Module } from "../../mod.ts";
import { CLASSES, createEdgeModel, PIXELS, SIDE } from "./edge_net.ts";
import { EDGE_MODEL_BASE64, EDGE_MODEL_INFO } from "./generated/edge_model.ts";

/** The largest batch one request may hold. */
export const MAX_BATCH = 256;
/** The largest request body in bytes (a full batch of 784 numbers with 8 characters each, about 1.6 MB). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The loaded model, the backend it runs on and why that one. */
export interface EdgeModel {
  /** The classifier with the committed checkpoint loaded. */
  model: Module;
  /** The backend it runs on. */
  backend: Backend;
  /** Why this backend: the WASM build in use, or why WASM could not start and js serves instead. */
  reason: string;
}

let loading: Promise<EdgeModel> | undefined;

/** The checkpoint's safetensors bytes, decoded from the module graph. */
export function edgeModelBytes(): Uint8Array {
  const s = atob(EDGE_MODEL_BASE64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/**
 * The classifier with the committed checkpoint loaded, on the wasm backend,
 * or on the js reference where WASM cannot start (the reason is kept in
 * `reason` and printed once as a warning). Made once, on first use; the
 * process-wide current backend is left alone.
 *
 * @example
 * ```ts
 * import { edgeModel } from "./edge.ts";
 * const { model, backend, reason } = await edgeModel();
 * console.log(model.parameterCount(), backend.name, reason.startsWith("wasm")); // 36123 "wasm" true
 * ```
 */
export function edgeModel(): Promise<EdgeModel> {
  loading ??= (async () => {
    let backend: Backend, reason: string;
    try {
      backend = await loadBackend("wasm");
      const variant = (backend as { variant?: string }).variant;
      reason = `wasm: the ${variant} build of the WASM kernels`;
    } catch (e) {
      backend = await loadBackend("js");
      reason = `js: WASM could not start here (${(e as Error)?.message ?? e}), so the js reference serves`;
      console.warn(`edge: ${reason}`);
    }
    const model = createEdgeModel({ backend }).eval();
    await load(model, edgeModelBytes());
    return { model, backend, reason };
  })();
  return loading;
}

class BadRequest extends Error {}

/** Check the body's `pixels` and pack them as an (n, 784) batch. */
function parsePixels(body: unknown): { x: Float32Array; n: number; batch: boolean } {
  if (body === null || typeof body !== "object" || Array.isArray(body) || !("pixels" in body)) {
    throw new BadRequest(`edge: the body must be a JSON object with a "pixels" field, got ${describe(body)}`);
  }
  const pixels = (body as { pixels: unknown }).pixels;
  if (!Array.isArray(pixels)) {
    throw new BadRequest(
      `edge: pixels must be an array of ${PIXELS} numbers or of such arrays, got ${describe(pixels)}`,
    );
  }
  const batch = pixels.length > 0 && Array.isArray(pixels[0]);
  const rows: unknown[] = batch ? pixels : [pixels];
  if (rows.length === 0) {
    throw new BadRequest("edge: pixels must hold at least one image, got an empty batch");
  }
  if (rows.length > MAX_BATCH) {
    throw new BadRequest(`edge: a batch holds at most ${MAX_BATCH} images, got ${rows.length}`);
  }
  const x = new Float32Array(rows.length * PIXELS);
  rows.forEach((row, r) => {
    const where = batch ? `pixels[${r}]` : "pixels";
    if (!Array.isArray(row)) throw new BadRequest(`edge: ${where} must be an array, got ${describe(row)}`);
    if (row.length !== PIXELS) {
      throw new BadRequest(
        `edge: ${where} must hold ${PIXELS} numbers (${SIDE}x${SIDE}, row-major), got ${row.length}`,
      );
    }
    for (let i = 0; i < PIXELS; i++) {
      const v = row[i];
      if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
        throw new BadRequest(
          `edge: ${where}[${i}] must be a number in [0, 1] (divide 0-255 values by 255), got ${describe(v)}`,
        );
      }
      x[r * PIXELS + i] = v;
    }
  });
  return { x, n: rows.length, batch };
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  const s = typeof v === "string" ? JSON.stringify(v) : String(v);
  return `${typeof v} ${s.length > 40 ? s.slice(0, 40) + "..." : s}`;
}

/**
 * Class probabilities of an (n, 784) batch of pixels in [0, 1]: n rows of 10.
 *
 * @example
 * ```ts
 * import { classify } from "./edge.ts";
 * const probs = await classify(new Float32Array(784).fill(0.5), 1);
 * console.log(probs.length, Math.abs(probs.reduce((a, b) => a + b) - 1) < 1e-5); // 10 true
 * ```
 */
export async function classify(pixels: Float32Array, n: number): Promise<Float32Array> {
  if (!Number.isInteger(n) || n < 1 || pixels.length !== n * PIXELS) {
    throw new RangeError(
      `classify: pixels must hold n * ${PIXELS} values, got ${pixels.length} for n = ${n}`,
    );
  }
  const { model, backend } = await edgeModel();
  // tidy frees every intermediate of the forward pass and the input; only probs leaves it
  const probs = tidy(() => noGrad(() => softmax(model.forward(tensor(pixels, [n, PIXELS], { backend })))));
  try {
    return await probs.data();
  } finally {
    probs.dispose();
  }
}

function json(body: unknown, status = 200, backend?: string): Response {
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
  if (backend) headers["x-pixelfly-backend"] = backend;
  return new Response(JSON.stringify(body), { status, headers });
}

class TooLarge extends Error {}

/** Bytes asked of the body per read. */
const READ_BYTES = 64 * 1024;
/** Read buffers kept for the next requests (each `MAX_BODY_BYTES + READ_BYTES` bytes, touched only as far as a body reached). */
const pool: ArrayBuffer[] = [];
const POOL_SIZE = 4;
const utf8 = new TextDecoder("utf-8", { fatal: true });

function decode(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch (e) {
    throw new BadRequest(`edge: the body is not JSON (${(e as Error).message})`);
  }
}

/**
 * The body as text, read and refused as soon as it passes `limit` bytes (a
 * declared content-length above it is refused before reading), so neither a
 * chunked nor a lying body is ever held whole. A byte stream (`Deno.serve`'s
 * bodies) is read straight into a pooled buffer of `limit + READ_BYTES` bytes:
 * reading allocates nothing per chunk, and a refused body leaves no garbage
 * behind, only a buffer that the next request reuses.
 */
async function readText(req: Request, limit: number): Promise<string> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    throw new TooLarge(
      `edge: the body may hold at most ${limit} bytes, got a content-length of ${declared} bytes`,
    );
  }
  if (req.body === null) return "";
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = req.body.getReader({ mode: "byob" });
  } catch {
    return decode(await readChunks(req.body, limit)); // not a byte stream (a Request built in JS)
  }
  let buffer = pool.pop() ?? new ArrayBuffer(limit + READ_BYTES);
  let total = 0;
  try {
    for (;;) {
      // each read hands the buffer to the stream and back; total <= limit, so READ_BYTES always fit
      const { value, done } = await byob.read(new Uint8Array(buffer, total, READ_BYTES));
      if (value) buffer = value.buffer as ArrayBuffer;
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await byob.cancel().catch(() => {});
        throw new TooLarge(
          `edge: the body may hold at most ${limit} bytes; stopped reading at ${total} bytes`,
        );
      }
    }
    return decode(new Uint8Array(buffer, 0, total));
  } finally {
    if (buffer.byteLength === limit + READ_BYTES && pool.length < POOL_SIZE) pool.push(buffer);
  }
}

/** A stream's chunks up to `limit` bytes, joined; refused as soon as they pass it. */
async function readChunks(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new TooLarge(
        `edge: the body may hold at most ${limit} bytes; stopped reading at ${total} bytes`,
      );
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * The request handler: `GET /` describes the service, `POST /` classifies.
 *
 * @example
 * ```ts
 * import { handler } from "./edge.ts";
 * const res = await handler(new Request("http://x/", { method: "POST", body: JSON.stringify({ pixels: [1, 2] }) }));
 * console.log(res.status, (await res.json()).error); // 400 "edge: pixels must hold 784 numbers (28x28, row-major), got 2"
 * ```
 */
export async function handler(req: Request): Promise<Response> {
  const { pathname } = new URL(req.url);
  if (pathname !== "/") {
    await req.body?.cancel().catch(() => {});
    return json({ error: `edge: no route ${pathname}; use / (GET or POST)` }, 404);
  }
  const { backend, reason } = await edgeModel();
  if (req.method === "GET" || req.method === "HEAD") {
    const text = `pixelfly edge example: a Pixelfly MLP classifying ${SIDE}x${SIDE} images into ${CLASSES} ` +
      `classes (${(EDGE_MODEL_INFO.testAccuracy * 100).toFixed(1)}% on its synthetic test set).\n` +
      `POST / with {"pixels": [${PIXELS} numbers in [0, 1]]} or {"pixels": [[...], ...]} ` +
      `(up to ${MAX_BATCH} images, ${MAX_BODY_BYTES} bytes) -> {"probs": [...], "label": n}\n` +
      `backend: ${reason}\n`;
    return new Response(req.method === "HEAD" ? null : text, {
      headers: { "content-type": "text/plain; charset=utf-8", "x-pixelfly-backend": backend.name },
    });
  }
  if (req.method !== "POST") {
    await req.body?.cancel().catch(() => {});
    return json({ error: `edge: method ${req.method} is not allowed; use GET or POST` }, 405);
  }
  try {
    const text = await readText(req, MAX_BODY_BYTES);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new BadRequest(`edge: the body is not JSON (${(e as Error).message})`);
    }
    const { x, n, batch } = parsePixels(body);
    const p = await classify(x, n);
    const probs: number[][] = [], label: number[] = [];
    for (let r = 0; r < n; r++) {
      const row = Array.from(p.subarray(r * CLASSES, (r + 1) * CLASSES));
      probs.push(row);
      label.push(row.indexOf(Math.max(...row)));
    }
    return batch
      ? json({ probs, label }, 200, backend.name)
      : json({ probs: probs[0], label: label[0] }, 200, backend.name);
  } catch (e) {
    if (e instanceof TooLarge) {
      // close the connection rather than let the server drain the rest of the body to keep it alive
      const res = json({ error: e.message }, 413, backend.name);
      res.headers.set("connection", "close");
      return res;
    }
    if (e instanceof BadRequest) return json({ error: e.message }, 400, backend.name);
    console.error(e);
    return json({ error: "edge: internal error" }, 500, backend.name);
  }
}

function parseArgs(args: string[]): { port: number; hostname?: string } {
  let port = 8000, hostname: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new RangeError(`edge: ${flag} needs a value`);
      return v;
    };
    if (flag === "--port") {
      const v = value();
      port = Number(v);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new RangeError(`edge: --port must be an integer in [0, 65535], got ${v}`);
      }
    } else if (flag === "--hostname") hostname = value();
    else throw new RangeError(`edge: unknown argument "${args[i]}"; expected --port N or --hostname H`);
  }
  return { port, hostname };
}

if (import.meta.main) {
  const { port, hostname } = parseArgs(Deno.args);
  const { reason } = await edgeModel(); // load before the first request
  console.log(`edge: backend ${reason}`);
  Deno.serve({
    port,
    hostname,
    onListen: ({ hostname, port }) => console.log(`edge: listening on http://${hostname}:${port}/`),
  }, handler);
}
