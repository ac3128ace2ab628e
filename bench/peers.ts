/**
 * pixelfly against native PyTorch on the same work, interleaved in one run.
 *
 * Workloads (float32):
 * - a linear layer 1024 -> 4096, forward + backward (dX, dW, db) at batch 256: pixelfly's dense `Linear`
 *   and its `PixelflyLinear` (flat block butterfly block 32, B 16, f 2, density 3/16, rank 32, gated)
 *   against PyTorch's dense `nn.Linear` and against the Pixelfly layer as the reference code runs it on
 *   CPU (masked dense: the kept blocks scattered into a dense weight on every call);
 * - a training step of the MLP 784-2048-2048-10 (GELU, cross-entropy, AdamW lr 1e-3 weight decay 0.01)
 *   at batch 128: pixelfly dense and Pixelfly (both large layers Pixelfly, as in `deno task demo`)
 *   against PyTorch's dense step.
 *
 * Threads: pixelfly with `createWasmBackend({ threads })` for 1 and 2; PyTorch (`bench/peers/torch_peers.py`
 * under /usr/bin/python3, Debian's python3-torch) with its best setting, one OpenMP thread and
 * OPENBLAS_NUM_THREADS = 1 and 2, as two long-lived processes driven over pipes. Each round runs every
 * (implementation, threads) configuration's workloads in a rotating order; figures are medians over the
 * rounds. Where python3 or torch is missing, the PyTorch columns are skipped with a note.
 *
 * Run: `deno task bench:peers [--rounds 7] [--reps 3] [--clock cpu] [--parts n]` (`--clock cpu`: both sides timed by
 * their process's CPU time, steadier on a machine shared with other work; one thread only).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { setBackend } from "../src/backends/select.ts";
import type { Backend } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { GELU, makeLinear, Sequential } from "../src/nn/layers.ts";
import { Linear, PixelflyLinear } from "../src/nn/linear.ts";
import type { Module } from "../src/nn/module.ts";
import { crossEntropy } from "../src/ops.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { Rng } from "../src/random.ts";
import { Tensor, tidy } from "../src/tensor.ts";
import { median, threadCpuClock } from "./_interleave.ts";
import { Timed } from "./_timed.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "7" },
    reps: { type: "string", default: "3" },
    python: { type: "string", default: "/usr/bin/python3" },
    clock: { type: "string", default: "wall" },
    parts: { type: "string", default: "" },
  },
});
const ROUNDS = Number(values.rounds), REPS = Number(values.reps);
// --clock cpu: both sides time by their process's CPU time, one thread only (threads' time adds up)
const CPU = values.clock === "cpu";
const clock = CPU ? threadCpuClock() : () => performance.now();
if (!clock) throw new Error("peers: no CPU clock here; run with --clock wall");
const THREADS = CPU ? [1] : [1, 2];

const rng = new Rng(7);
const rnd = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * scale);

type Workload = "linear_dense" | "linear_pixelfly" | "mlp_dense_step" | "mlp_pixelfly_step";
const PIXELFLY = { kind: "pixelfly" as const, block: 32, butterflySize: 16, nFactors: 2, rank: 32 };

function clearGrads(m: Module): void {
  for (const p of m.parameters()) {
    p.grad?.dispose();
    p.grad = undefined;
  }
}

// One layer forward + backward with a given output gradient (dX too: x requires grad).
function layerStep(be: Backend, layer: Module & { forward(x: Tensor): Tensor }): () => void {
  const M = 256, K = 1024, N = 4096;
  const x = new Tensor([M, K], be, be.upload(rnd(M * K)));
  x.requiresGrad = true;
  const dy = new Tensor([M, N], be, be.upload(rnd(M * N)));
  return () => {
    clearGrads(layer);
    x.grad?.dispose();
    x.grad = undefined;
    tidy(() => layer.forward(x).backward(dy));
  };
}

function mlpStep(be: Backend, pixelfly: boolean): () => void {
  const hidden = 2048, batch = 128;
  const mk = (i: number, o: number) => makeLinear(i, o, pixelfly ? PIXELFLY : "dense", { backend: be });
  const model = new Sequential(
    mk(784, hidden),
    new GELU(),
    mk(hidden, hidden),
    new GELU(),
    new Linear(hidden, 10, { backend: be }),
  );
  const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.01 });
  const x = new Tensor([batch, 784], be, be.upload(rnd(batch * 784)));
  const labels = Array.from({ length: batch }, (_, i) => i % 10);
  return () => {
    opt.zeroGrad();
    tidy(() => {
      crossEntropy(model.forward(x), labels).backward();
      opt.step();
    });
  };
}

function pixelflyWorkloads(be: Backend): Record<Workload, () => void> {
  return {
    linear_dense: layerStep(be, new Linear(1024, 4096, { backend: be, seed: 1 })),
    linear_pixelfly: layerStep(be, new PixelflyLinear(1024, 4096, { ...PIXELFLY, backend: be, seed: 1 })),
    mlp_dense_step: mlpStep(be, false),
    mlp_pixelfly_step: mlpStep(be, true),
  };
}

// ------------------------------------------------------------------ PyTorch

const TORCH_WORKLOADS = ["linear_dense", "linear_masked", "mlp_dense_step"] as const;

class TorchPeer {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  info: Record<string, unknown> = {};
  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())[
      Symbol.asyncIterator
    ]();
  }
  static async start(python: string, threads: number): Promise<TorchPeer> {
    const script = new URL("peers/torch_peers.py", import.meta.url).pathname;
    const child = new Deno.Command(python, {
      args: [script, "--threads", String(threads), "--serve", "--clock", CPU ? "cpu" : "wall"],
      env: { OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const peer = new TorchPeer(child);
    const first = await peer.#lines.next();
    if (first.done) {
      const err = new TextDecoder().decode((await child.output()).stderr).trim().split("\n").slice(-3);
      throw new Error(err.join(" | "));
    }
    peer.info = JSON.parse(first.value);
    return peer;
  }
  async run(name: string, reps: number): Promise<number[]> {
    await this.#writer.write(new TextEncoder().encode(`${name} ${reps}\n`));
    const r = await this.#lines.next();
    if (r.done) throw new Error(`torch peer ended while running ${name}`);
    const msg = JSON.parse(r.value);
    if (msg.error) throw new Error(msg.error);
    return msg.ms;
  }
  async stop(): Promise<void> {
    try {
      await this.#writer.write(new TextEncoder().encode("quit\n"));
      await this.#writer.close();
    } catch { /* already gone */ }
    await this.#child.status;
  }
}

function lineSplitter(): TransformStream<string, string> {
  let buf = "";
  return new TransformStream({
    transform(chunk, ctl) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        ctl.enqueue(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    },
    flush(ctl) {
      if (buf) ctl.enqueue(buf);
    },
  });
}

// ------------------------------------------------------------------ the run

const peers = new Map<number, TorchPeer>();
let torchNote = "";
try {
  for (const t of THREADS) peers.set(t, await TorchPeer.start(values.python, t));
} catch (e) {
  torchNote = `PyTorch peers skipped: ${values.python} with torch could not start (${(e as Error).message})`;
  for (const p of peers.values()) await p.stop();
  peers.clear();
}

const backends = new Map<number, WasmBackend>();
const pf = new Map<number, Record<Workload, () => void>>();
for (const t of THREADS) {
  const be = await createWasmBackend({ threads: t as 1 | 2 });
  // --parts n: products split into n parts per thread (WasmBackend.partsPerThread)
  if (values.parts) be.partsPerThread = Number(values.parts);
  backends.set(t, be);
  await setBackend(be);
  pf.set(t, pixelflyWorkloads(be));
}

const samples = new Map<string, number[]>();
const push = (key: string, ms: number[]) => samples.set(key, [...(samples.get(key) ?? []), ...ms]);
const configs = [
  ...THREADS.map((t) => ({ impl: "pixelfly", t })),
  ...[...peers.keys()].map((t) => ({ impl: "torch", t })),
];
// warm
for (const t of THREADS) {
  await setBackend(backends.get(t)!);
  for (const fn of Object.values(pf.get(t)!)) fn();
}
console.log(
  `${configs.length} configurations x ${ROUNDS} rounds x ${REPS} reps, ${
    CPU ? "process CPU time" : "wall clock"
  } (medians; machine may be shared)`,
);
for (let r = 0; r < ROUNDS; r++) {
  for (let i = 0; i < configs.length; i++) {
    const { impl, t } = configs[(i + r) % configs.length];
    if (impl === "pixelfly") {
      await setBackend(backends.get(t)!);
      for (const [name, fn] of Object.entries(pf.get(t)!)) {
        const ms: number[] = [];
        const s0 = backends.get(t)!.threadStats;
        for (let k = 0; k < REPS; k++) {
          const t0 = clock();
          fn();
          ms.push(clock() - t0);
        }
        push(`pixelfly ${name} ${t}`, ms);
        // the calling thread's time waiting for the Workers' last parts, per call
        const s1 = backends.get(t)!.threadStats;
        push(`waited ${name} ${t}`, [(s1.waitedMs - s0.waitedMs) / REPS]);
        push(`jobs ${name} ${t}`, [(s1.jobs - s0.jobs) / REPS]);
      }
    } else {
      for (const name of TORCH_WORKLOADS) push(`torch ${name} ${t}`, await peers.get(t)!.run(name, REPS));
      // OpenBLAS's worker threads spin a while after a call: let them sleep before the next configuration
      await new Promise((res) => setTimeout(res, 150));
    }
  }
  Deno.stdout.writeSync(new TextEncoder().encode(`${r + 1} `));
}
console.log("");

const med = (key: string) => {
  const s = samples.get(key);
  return s ? median(s) : NaN;
};
const torchInfo = peers.get(1)?.info;
if (torchInfo) {
  console.log(
    `PyTorch ${torchInfo.torch}, BLAS ${
      (torchInfo.blas as string[]).find((s) => /openblas|mkl|blis/i.test(s)) ??
        (torchInfo.blas as string[])[0] ??
        "unknown"
    }; one OpenMP thread, OPENBLAS_NUM_THREADS = threads; its layout keeps ${torchInfo.nnz} blocks (density ${torchInfo.density})`,
  );
  if (!(torchInfo.blas as string[]).some((s) => /openblas|mkl|blis/i.test(s))) {
    console.log("note: torch runs on the reference BLAS here (slow); apt-get install libopenblas0-pthread");
  }
} else console.log(torchNote);
console.log("\n| workload | threads | pixelfly ms | PyTorch ms | PyTorch / pixelfly |");
console.log("|---|---:|---:|---:|---:|");
const pairs: [string, Workload, string][] = [
  ["Linear 1024->4096 fwd+bwd b256: pixelfly dense vs torch dense", "linear_dense", "linear_dense"],
  ["PixelflyLinear vs torch dense nn.Linear", "linear_pixelfly", "linear_dense"],
  [
    "PixelflyLinear vs torch masked-dense Pixelfly (reference code's CPU path)",
    "linear_pixelfly",
    "linear_masked",
  ],
  ["MLP 784-2048-2048-10 step b128: pixelfly dense vs torch dense", "mlp_dense_step", "mlp_dense_step"],
  ["MLP step: pixelfly Pixelfly vs torch dense", "mlp_pixelfly_step", "mlp_dense_step"],
];
for (const [label, p, q] of pairs) {
  for (const t of THREADS) {
    const a = med(`pixelfly ${p} ${t}`), b = med(`torch ${q} ${t}`);
    console.log(
      `| ${label} | ${t} | ${a.toFixed(1)} | ${isNaN(b) ? "-" : b.toFixed(1)} | ${
        isNaN(b) ? "-" : (b / a).toFixed(2) + "x"
      } |`,
    );
  }
}
if (THREADS.includes(2)) {
  // waited: the calling thread's time, per call, between taking its last part of a split kernel and the
  // Workers finishing theirs (imbalance, wake-ups, a Worker off its core): time on one thread only
  console.log(
    "\n| pixelfly, 2 threads vs 1 | speed-up | split kernels per call | calling thread waited, ms per call |",
  );
  console.log("|---|---:|---:|---:|");
  for (const w of Object.keys(pf.get(1)!)) {
    console.log(
      `| ${w} | ${(med(`pixelfly ${w} 1`) / med(`pixelfly ${w} 2`)).toFixed(2)}x | ${
        med(`jobs ${w} 2`).toFixed(0)
      } | ${med(`waited ${w} 2`).toFixed(2)} |`,
    );
  }
}
// The PixelflyLinear layer through autograd against the sum of its kernels' times in the same calls:
// what the layer costs outside the kernels (tape, checks, allocation).
console.log("\n| PixelflyLinear fwd+bwd b256 | threads | through autograd ms | its kernels ms | ratio |");
console.log("|---|---:|---:|---:|---:|");
for (const t of THREADS) {
  const tm = new Timed(backends.get(t)!);
  tm.clock = clock;
  await setBackend(tm.backend);
  const fn = layerStep(
    tm.backend,
    new PixelflyLinear(1024, 4096, { ...PIXELFLY, backend: tm.backend, seed: 1 }),
  );
  fn();
  const total: number[] = [], kern: number[] = [];
  for (let r = 0; r < ROUNDS * REPS; r++) {
    tm.totals.clear();
    tm.on = true;
    const t0 = clock();
    fn();
    total.push(clock() - t0);
    tm.on = false;
    kern.push(tm.kernelMs());
  }
  const a = median(total), k = median(kern);
  console.log(`| layer | ${t} | ${a.toFixed(1)} | ${k.toFixed(1)} | ${(a / k).toFixed(3)}x |`);
}
for (const p of peers.values()) await p.stop();
for (const be of backends.values()) be.dispose();
