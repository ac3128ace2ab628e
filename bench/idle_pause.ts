/**
 * What a pause between bursts of work costs the next call (a server between requests, an app between a
 * user's actions): a PixelflyLinear 1024 -> 4096 forward at batch 64 back to back, and right after each
 * pause, on two wasm backends with one thread per core (at most 8) created in the same process:
 * - `default`: the idle limit of `createWasmBackend` (1 s, doubled up to 8 s each time a kernel finds the
 *   Workers gone);
 * - `fixed 1 s`: `threadIdleMs: 1000`, what every backend did before the limit could grow.
 *
 * A Worker that left idle is replaced by the next kernel that splits, and in Deno each `new Worker`
 * blocks the calling thread 20-40 ms. The two backends take turns: each pause comes before one call of
 * each, so each backend's own gap is about twice the pause.
 *
 *   deno run bench/idle_pause.ts [--pause 1500] [--rounds 8] [--threads auto]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { PixelflyLinear } from "../src/nn/linear.ts";
import { fromArray } from "../src/nn/module.ts";
import { noGrad } from "../src/tape.ts";
import { median } from "./_interleave.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    pause: { type: "string", default: "1500" },
    rounds: { type: "string", default: "8" },
    threads: { type: "string", default: "auto" },
  },
});
const PAUSE = Number(values.pause), ROUNDS = Number(values.rounds), BATCH = 64;
const threads = values.threads === "auto" ? "auto" : Number(values.threads);

interface Subject {
  name: string;
  be: WasmBackend;
  forward: () => Promise<number>;
  warm: number[];
  paused: number[];
}

function subject(name: string, be: WasmBackend): Subject {
  const layer = new PixelflyLinear(1024, 4096, { seed: 1, backend: be });
  const x = fromArray(Float32Array.from({ length: BATCH * 1024 }, (_, i) => Math.sin(i)), [BATCH, 1024], be);
  const forward = async () => {
    const t = performance.now();
    const y = noGrad(() => layer.forward(x));
    await y.data();
    y.dispose();
    return performance.now() - t;
  };
  return { name, be, forward, warm: [], paused: [] };
}

const subjects = [
  subject("default", await createWasmBackend({ threads })),
  subject("fixed 1 s", await createWasmBackend({ threads, threadIdleMs: 1000 })),
];
for (const s of subjects) for (let i = 0; i < 5; i++) await s.forward(); // Workers started, kernels warm
for (let r = 0; r < ROUNDS; r++) {
  for (const s of subjects) {
    await new Promise((res) => setTimeout(res, PAUSE));
    s.paused.push(await s.forward());
    s.warm.push(await s.forward());
  }
}
console.log(
  `PixelflyLinear 1024->4096 forward, batch ${BATCH}, ${
    subjects[0].be.threads
  } threads, a ${PAUSE} ms pause ` +
    `before each round's first call, ${ROUNDS} rounds (ms)`,
);
console.log(
  "| idle limit | back to back (median) | after each pause, in order | Workers restarted | limit now |",
);
console.log("|---|---:|---|---:|---:|");
for (const s of subjects) {
  console.log(
    `| ${s.name} | ${median(s.warm).toFixed(1)} | ${s.paused.map((t) => t.toFixed(1)).join(" ")} | ` +
      `${s.be.threadStats.restarts} | ${s.be.threadIdleMs} |`,
  );
}
for (const s of subjects) s.be.dispose();
