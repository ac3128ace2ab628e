/**
 * The 10,000-step memory run of issue 10: the tiny GPT-like loop written as
 * a PyTorch user writes it (forward, backward, opt.step(), zeroGrad; no
 * tidy, no dispose), reporting live buffers, `buffers + finalized` (what
 * would be live had the garbage collector never run), the WASM memory size,
 * the process RSS and the loss every `--every` steps.
 *
 *   deno run --allow-read --allow-env bench/memory_loop.ts --backend wasm --steps 10000
 *
 * @module
 */
import { memory } from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend } from "../src/backends/types.ts";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm.ts";
import { createWebGpuBackend } from "../src/backends/webgpu.ts";
import { pytorchStyleLoop } from "./tiny_gpt.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

const name = arg("backend", "wasm"),
  steps = Number(arg("steps", "10000")),
  every = Number(arg("every", "500"));
const be: Backend = name === "js"
  ? new JsBackend()
  : name === "wasm"
  ? await createWasmBackend()
  : await createWebGpuBackend();
const t0 = performance.now();
let peakBuffers = 0, peakCounted = 0, peakRss = 0, peakWasm = 0;
console.log("step\tloss\tbuffers\tbuffers+finalized\tMiB(tensors)\twasm MiB\tRSS MiB\tms/step");
await pytorchStyleLoop(be, steps, async (step, loss) => {
  const m = memory(be), rss = Deno.memoryUsage().rss / 2 ** 20;
  const wasm = name === "wasm" ? (be as WasmBackend).memoryBytes / 2 ** 20 : 0;
  if (step >= 10) {
    peakBuffers = Math.max(peakBuffers, m.buffers);
    peakCounted = Math.max(peakCounted, m.buffers + m.finalized);
    peakRss = Math.max(peakRss, rss);
    peakWasm = Math.max(peakWasm, wasm);
  }
  if (step % every === 0 || step === steps - 1) {
    const ms = (performance.now() - t0) / (step + 1);
    console.log(
      [
        step,
        (await loss.item()).toFixed(4),
        m.buffers,
        m.buffers + m.finalized,
        (m.bytes / 2 ** 20).toFixed(1),
        wasm.toFixed(1),
        rss.toFixed(0),
        ms.toFixed(1),
      ].join("\t"),
    );
  }
});
console.log(
  `${name}: ${steps} steps; after step 10: peak live buffers ${peakBuffers}, peak buffers+finalized ${peakCounted}, ` +
    `peak wasm memory ${peakWasm.toFixed(1)} MiB, peak RSS ${peakRss.toFixed(0)} MiB`,
);
be.dispose();
