/**
 * The edge server's leak check that `edge_test.ts` runs in a child Deno with
 * `--v8-flags=--expose-gc`: serves `handler` on 127.0.0.1, sends 10,000
 * POSTs from 8 concurrent clients in phases, and after each phase collects
 * garbage and records the wasm backend's live buffers, the JS heap and the
 * external memory. Prints one JSON line.
 *
 * Run alone: `deno run --allow-net=127.0.0.1 --v8-flags=--expose-gc tests/_edge_leak.ts`
 */
import { syntheticImages } from "../mod.ts";
import { edgeModel, handler } from "../src/examples/edge.ts";
import { PIXELS } from "../src/examples/edge_net.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

const images = syntheticImages({ n: 16, seed: 2 });
const bodies = Array.from(
  { length: 16 },
  (_, i) => JSON.stringify({ pixels: Array.from(images.images.subarray(i * PIXELS, (i + 1) * PIXELS)) }),
);
const { backend } = await edgeModel();
const live = () => (backend as unknown as { liveBuffers: number }).liveBuffers;
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
const base = `http://127.0.0.1:${server.addr.port}/`;
const CLIENTS = 8, PHASES = [1000, 3000, 3000, 3000];
const out = { requests: 0, failed: 0, live: [] as number[], heap: [] as number[], external: [] as number[] };
let next = 0;
for (const n of PHASES) {
  const end = next + n;
  const client = async () => {
    while (next < end) {
      const i = next++;
      const res = await fetch(base, { method: "POST", body: bodies[i % bodies.length] });
      if (res.status !== 200) out.failed++;
      await res.arrayBuffer();
      out.requests++;
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  for (let i = 0; i < 3; i++) gc();
  const m = Deno.memoryUsage();
  out.live.push(live());
  out.heap.push(m.heapUsed);
  out.external.push(m.external);
}
await server.shutdown();
console.log(JSON.stringify(out));
