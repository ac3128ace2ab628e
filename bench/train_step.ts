/**
 * Whole training steps on the wasm backend, 1 thread against 2 (or `--threads`), interleaved in one run,
 * printing exactly the ratios issue 12 names:
 * - the Pixelfly MLP 784-2048-2048-10 step (batch 128, AdamW; both large layers Pixelfly, block 32,
 *   butterfly 16, 2 factors, rank 32, gated): its 1-thread time over its n-thread time (goal >= 1.8x at 2);
 * - the demo's Mixer (`deno task demo --model mixer`: 16 patches of 49, 128 channels, depth 2, token hidden
 *   64 dense, channel MLPs 128 -> 512 -> 128 Pixelfly block 16, butterfly 8, 1 factor, rank 8, batch 128,
 *   AdamW): the dense Mixer's step time over the Pixelfly Mixer's on each thread count (goal >= 1.3x);
 * - the PixelflyLinear 1024 -> 4096 layer (batch 256) forward + backward through autograd against the sum
 *   of its kernels' times in the same calls (the overhead outside the kernels).
 *
 * `--profile`: also times every backend call of each step (one extra pass, not interleaved) and prints the
 * kernels' totals, so it shows where a step is serial (a kernel whose 2-thread time is near its 1-thread
 * time) and how much of the step is outside the kernels.
 *
 * Run: `deno run bench/train_step.ts [--rounds 9] [--threads 2 | 1,2] [--profile] [--only mlp,mixer,layer] [--json]`
 * (`--json`: also one line `#json {...}` with every case's median, for `bench/runtimes.ts`).
 * On a machine shared with other work the thread speed-ups are unreliable: rerun on an idle machine.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Backend } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { GELU, type LinearKind, makeLinear, Sequential } from "../src/nn/layers.ts";
import { Linear, PixelflyLinear } from "../src/nn/linear.ts";
import { MlpMixer } from "../src/nn/mixer.ts";
import type { Module } from "../src/nn/module.ts";
import { crossEntropy } from "../src/ops.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { Rng } from "../src/random.ts";
import { Tensor, tidy } from "../src/tensor.ts";
import { interleave, threadCpuClock } from "./_interleave.ts";
import { benchArgs, printJson, runtimeName } from "./_runtime.ts";
import { Timed } from "./_timed.ts";

const { values } = parseArgs({
  args: benchArgs(),
  options: {
    json: { type: "boolean", default: false },
    rounds: { type: "string", default: "9" },
    threads: { type: "string", default: "2" },
    profile: { type: "boolean", default: false },
    shapes: { type: "boolean", default: false },
    only: { type: "string", default: "mlp,mixer,layer" },
  },
});
// --threads n, or a list such as 1,2 (as bench:kernels takes): 1 against its largest count
const ROUNDS = Number(values.rounds), T = Math.max(...values.threads!.split(",").map(Number));
if (!Number.isInteger(T) || T < 1) {
  throw new RangeError(`train_step: --threads must list counts >= 1, got ${values.threads}`);
}
const ONLY = new Set(values.only!.split(","));

const rng = new Rng(7);
const rnd = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * scale);

function trainStep(model: Module & { forward(x: Tensor): Tensor }, x: Tensor, labels: number[]) {
  const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.01 });
  return () => {
    opt.zeroGrad();
    tidy(() => {
      crossEntropy(model.forward(x), labels).backward();
      opt.step();
    });
  };
}

const PIXELFLY_MLP = { kind: "pixelfly" as const, block: 32, butterflySize: 16, nFactors: 2, rank: 32 };
function mlpStep(be: Backend): () => void {
  const hidden = 2048, batch = 128;
  const mk = (i: number, o: number) => makeLinear(i, o, PIXELFLY_MLP, { backend: be, seed: i + o });
  const model = new Sequential(
    mk(784, hidden),
    new GELU(),
    mk(hidden, hidden),
    new GELU(),
    new Linear(hidden, 10, { backend: be, seed: 3 }),
  );
  const x = new Tensor([batch, 784], be, be.upload(rnd(batch * 784)));
  return trainStep(model, x, Array.from({ length: batch }, (_, i) => i % 10));
}

// The demo's Mixer (src/demo/main.ts mixerSpec, not quick).
const PIXELFLY_MIXER: LinearKind = { kind: "pixelfly", block: 16, butterflySize: 8, nFactors: 1, rank: 8 };
function mixerStep(be: Backend, linear: LinearKind): () => void {
  const batch = 128, patches = 16, channels = 128;
  const model = new MlpMixer({
    patches,
    patchDim: 49,
    channels,
    depth: 2,
    classes: 10,
    tokenHidden: 64,
    channelHidden: 4 * channels,
    linear,
    tokenLinear: "dense",
    backend: be,
    seed: 5,
  });
  const x = new Tensor([batch, patches, 49], be, be.upload(rnd(batch * patches * 49)));
  return trainStep(model, x, Array.from({ length: batch }, (_, i) => i % 10));
}

function layerStep(be: Backend): () => void {
  const M = 256, K = 1024, N = 4096;
  const layer = new PixelflyLinear(K, N, { ...PIXELFLY_MLP, backend: be, seed: 1 });
  const x = new Tensor([M, K], be, be.upload(rnd(M * K)));
  x.requiresGrad = true;
  const dy = new Tensor([M, N], be, be.upload(rnd(M * N)));
  return () => {
    for (const p of layer.parameters()) {
      p.grad?.dispose();
      p.grad = undefined;
    }
    x.grad?.dispose();
    x.grad = undefined;
    tidy(() => layer.forward(x).backward(dy));
  };
}

const threads = [1, T];
const backends = new Map<number, WasmBackend>();
const timed = new Map<number, Timed>();
const cases: { name: string; fn: () => void; t: number; key: string }[] = [];
for (const t of threads) {
  const raw = await createWasmBackend({ threads: t });
  if (raw.threads !== t) {
    throw new Error(`train_step: asked for ${t} threads, got ${raw.threads}: ${raw.info.notes}`);
  }
  backends.set(t, raw);
  const tm = new Timed(raw);
  timed.set(t, tm);
  const be = tm.backend;
  // every tensor of a step lives on its model's backend (ops follow their inputs)
  const add = (key: string, fn: () => void) => cases.push({ name: `${key} ${t}`, key, t, fn });
  if (ONLY.has("mlp")) add("mlp_pixelfly", mlpStep(be));
  if (ONLY.has("mixer")) {
    add("mixer_dense", mixerStep(be, "dense"));
    add("mixer_pixelfly", mixerStep(be, PIXELFLY_MIXER));
  }
  if (ONLY.has("layer")) add("layer_pixelfly", layerStep(be));
}

console.log(
  `wasm backend, 1 vs ${T} threads; ${cases.length} cases x ${ROUNDS} rounds, wall clock, interleaved ` +
    `(medians; on a shared machine the thread ratios are unreliable); ${runtimeName()}`,
);
const res = interleave(cases, { rounds: ROUNDS, warmup: 2 });
const med = (key: string, t: number) => res.get(`${key} ${t}`)?.median ?? NaN;
const stats = backends.get(T)!.threadStats;
console.log(
  `${T} threads: ${stats.parts} parts, ${stats.onWorkers} on the Workers; ${stats.aloneJobs} jobs on the ` +
    `calling thread alone (backing off while the Workers were late: the cores were taken)`,
);
console.log("\n| step | ms, 1 thread | ms, " + T + " threads | speed-up |");
console.log("|---|---:|---:|---:|");
for (const key of ["mlp_pixelfly", "mixer_dense", "mixer_pixelfly", "layer_pixelfly"]) {
  if (!res.has(`${key} 1`)) continue;
  const a = med(key, 1), b = med(key, T);
  console.log(`| ${key} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(a / b).toFixed(2)}x |`);
}
if (ONLY.has("mlp")) {
  console.log(
    `\nPixelfly MLP step, ${T} threads vs 1: ${
      (med("mlp_pixelfly", 1) / med("mlp_pixelfly", T)).toFixed(2)
    }x ` +
      `(goal >= 1.8x at 2 threads)`,
  );
}
if (ONLY.has("mixer")) {
  for (const t of threads) {
    console.log(
      `Mixer step, dense / Pixelfly on ${t} thread(s): ${
        (med("mixer_dense", t) / med("mixer_pixelfly", t)).toFixed(2)
      }x (goal >= 1.3x)`,
    );
  }
}
if (values.json) {
  const ms: Record<string, number> = {};
  for (const [name, t] of res) ms[name] = t.median;
  printJson({ bench: "train_step", rounds: ROUNDS, threads: T, medianMs: ms });
}

// Per-kernel profile: one timed pass of each case, after the interleaved rounds.
const profile = values.profile || ONLY.has("layer");
if (profile) {
  for (const c of cases) {
    if (!values.profile && c.key !== "layer_pixelfly") continue;
    const tm = timed.get(c.t)!;
    tm.totals.clear();
    tm.byShape = values.shapes!;
    // one thread: CPU time, steadier on a shared machine (the other backend's workers sleep meanwhile)
    const clock = c.t === 1 ? threadCpuClock() ?? (() => performance.now()) : () => performance.now();
    tm.clock = clock;
    const reps = 5;
    tm.on = true;
    const t0 = clock();
    for (let i = 0; i < reps; i++) c.fn();
    const total = (clock() - t0) / reps;
    tm.on = false;
    const kern = tm.kernelMs() / reps;
    console.log(
      `\n${c.name}: ${total.toFixed(2)} ms (${
        c.t === 1 ? "CPU" : "wall"
      }) per step through autograd, kernels ${kern.toFixed(2)} ms ` +
        `(${(total / kern).toFixed(2)}x the sum of its kernels; ${
          (total - kern).toFixed(2)
        } ms outside them)`,
    );
    if (values.profile) {
      const rows = [...tm.totals].sort((a, b) => b[1].ms - a[1].ms);
      for (const [name, e] of rows.slice(0, values.shapes ? 40 : 14)) {
        console.log(
          `  ${name.padEnd(16)} ${(e.ms / reps).toFixed(2).padStart(7)} ms  ${e.calls / reps} calls`,
        );
      }
    }
  }
}
for (const be of backends.values()) be.dispose();
