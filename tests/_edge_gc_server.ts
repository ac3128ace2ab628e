/**
 * The edge example's handler served on 127.0.0.1 exactly as `src/examples/edge.ts` serves it, in a child
 * Deno that `edge_test.ts` starts with `--v8-flags=--expose-gc`, so the test can measure the server's
 * memory after full collections: it prints `listening on URL`, then answers each line `gc` on stdin with
 * a JSON line `{ rss, heap, external }` (bytes) taken after collecting garbage.
 *
 * Run alone: `deno run --allow-net=127.0.0.1 --v8-flags=--expose-gc tests/_edge_gc_server.ts`
 */
import { edgeModel, handler } from "../src/examples/edge.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
await edgeModel();
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
console.log(`edge: listening on http://127.0.0.1:${server.addr.port}/`);
let pending = "";
for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  pending += text;
  for (let at = pending.indexOf("\n"); at >= 0; at = pending.indexOf("\n")) {
    const line = pending.slice(0, at);
    pending = pending.slice(at + 1);
    if (line !== "gc") throw new Error(`unknown command "${line}"`);
    // twice, with a pause between, so finalizers that free external memory have run
    for (let i = 0; i < 3; i++) gc();
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 3; i++) gc();
    const m = Deno.memoryUsage();
    console.log(JSON.stringify({ rss: m.rss, heap: m.heapUsed, external: m.external }));
  }
}
await server.shutdown();
