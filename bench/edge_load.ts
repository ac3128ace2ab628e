/**
 * A bounded load test of the edge example (src/examples/edge.ts): starts the
 * server in a child Deno on 127.0.0.1, sends a fixed number of single-image
 * POSTs from concurrent clients (keep-alive), and prints requests per second
 * and the latency percentiles. Speed is never a pass/fail test; this prints.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-run --allow-read bench/edge_load.ts [--requests 4000] [--clients 20] [--script PATH]`
 * (`--script`: another version of the server to compare, run the same way)
 *
 * Before the edge example read its body as a stream (issue 13): 1.8-2.1k req/s,
 * p50 8 ms, p99 35-48 ms with 20 clients on a 2-vCPU machine.
 */
import { syntheticImages } from "../mod.ts";
import { PIXELS } from "../src/examples/edge_net.ts";

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`edge_load: --${name} must be a positive integer`);
  return v;
}

const REQUESTS = option("requests", 4000), CLIENTS = option("clients", 20), WARMUP = 200;
const scriptAt = Deno.args.indexOf("--script");
const script = scriptAt >= 0
  ? Deno.args[scriptAt + 1]
  : new URL("../src/examples/edge.ts", import.meta.url).pathname;
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "--no-prompt", "--allow-net=127.0.0.1", script, "--hostname", "127.0.0.1", "--port", "0"],
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
try {
  let out = "", url: string | undefined;
  while (url === undefined) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`edge_load: the server did not start: ${out}`);
    out += value;
    url = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)/)?.[1];
  }
  const backend = out.match(/edge: backend (.*)/)?.[1] ?? "?";
  const images = syntheticImages({ n: 32, seed: 2 });
  const bodies = Array.from(
    { length: 32 },
    (_, i) => JSON.stringify({ pixels: Array.from(images.images.subarray(i * PIXELS, (i + 1) * PIXELS)) }),
  );
  const run = async (count: number) => {
    const ms: number[] = [];
    let next = 0, errors = 0;
    const client = async () => {
      while (next < count) {
        const i = next++;
        const t = performance.now();
        const res = await fetch(url, { method: "POST", body: bodies[i % bodies.length] });
        await res.arrayBuffer();
        ms.push(performance.now() - t);
        if (res.status !== 200) errors++;
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, client));
    return { seconds: (performance.now() - t0) / 1000, ms: ms.sort((a, b) => a - b), errors };
  };
  await run(WARMUP);
  const { seconds, ms, errors } = await run(REQUESTS);
  const pct = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(1);
  console.log(
    `edge load: ${REQUESTS} requests, ${CLIENTS} clients, backend ${backend}: ` +
      `${(REQUESTS / seconds).toFixed(0)} req/s, p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, ` +
      `max ${ms.at(-1)!.toFixed(1)} ms, ${errors} errors`,
  );
} finally {
  child.kill("SIGTERM");
  await child.status;
  await lines.cancel().catch(() => {});
}
