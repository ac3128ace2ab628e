/**
 * Memory without ceremony (issue 10): the tiny GPT-like loop written as a
 * PyTorch user writes it (forward, backward, opt.step(), zeroGrad; no tidy,
 * no dispose) holds a flat number of buffers after warm-up on every backend,
 * without relying on the garbage collector; and a tensor released by a step
 * scope throws a clear error instead of reading freed memory. The
 * 10,000-step run is `bench/memory_loop.ts`.
 */
import { AdamW, crossEntropy, keep, Linear, memory, ones, type Tensor, tensor, zeros } from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend } from "../src/backends/types.ts";
import type { WasmBackend } from "../src/backends/wasm.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { assertEquals, assertOk, assertRejects, assertThrows } from "./_assert.ts";
import { backendsUnderTest } from "./_backends.ts";
import { pytorchStyleLoop } from "../bench/tiny_gpt.ts";

/** Steps per backend in CI (js and llvmpipe WebGPU are slow); warm-up steps before the count must hold. */
const STEPS: Record<string, number> = { js: 30, wasm: 300, webgpu: 12 };
const WARM = 4;

async function flatLoop(be: Backend, steps: number): Promise<void> {
  const counts: number[] = [], heap: number[] = [];
  let first = Infinity, last = 0;
  await pytorchStyleLoop(be, steps, async (step, loss) => {
    const m = memory(be);
    // buffers + finalized: what is live had the garbage collector never run
    counts.push(m.buffers + m.finalized);
    if (be.name === "wasm") heap.push((be as WasmBackend).memoryBytes);
    if (step === 0) first = await loss.item();
    if (step === steps - 1) last = await loss.item();
  });
  const after = counts.slice(WARM);
  assertOk(
    after.every((c) => c === after[0]),
    `${be.name}: live buffers after warm-up vary: ${after.join(",")}`,
  );
  if (heap.length) {
    const h = heap.slice(WARM);
    assertOk(h.every((v) => v === h[0]), `wasm memory grew after warm-up: ${h.join(",")}`);
  }
  assertOk(last < first, `${be.name}: the loss did not fall (${first} -> ${last})`);
}

Deno.test("PyTorch-style loop (no tidy, no dispose): flat live buffers on js", async () => {
  await flatLoop(new JsBackend(), STEPS.js);
});

for (
  const { label, make } of backendsUnderTest.filter((b) => b.label === "wasm-relaxed" || b.label === "webgpu")
) {
  const steps = label === "webgpu" ? STEPS.webgpu : STEPS.wasm;
  Deno.test(`PyTorch-style loop (no tidy, no dispose): flat live buffers and memory on ${label}`, async (t) => {
    const be = await make();
    if (!be) {
      await t.step({ name: `${label} unavailable here`, ignore: true, fn: () => {} });
      return;
    }
    try {
      await flatLoop(be, steps);
    } finally {
      be.dispose();
    }
  });
}

Deno.test("a tensor released by a step scope throws naming the step; kept and pre-loop tensors stay valid", async () => {
  const be = new JsBackend();
  const layer = new Linear(4, 3, { seed: 1, backend: be });
  const opt = new AdamW(layer.parameters(), { lr: 1e-2 });
  const data = ones([2, 4], { backend: be }); // made before the first step: never released
  const losses: Tensor[] = [];
  let held: Tensor | undefined;
  for (let step = 0; step < 4; step++) {
    const loss = crossEntropy(layer.forward(data), [0, 2]);
    loss.backward();
    opt.step();
    opt.zeroGrad();
    losses.push(loss);
    if (step === 1) held = keep(tensor([5], [1], { backend: be }));
    // the loss of this step is still readable after its step()
    assertOk(Number.isFinite(await loss.item()));
  }
  // the loss of step 1 (made after the first step) was released by step 3's step(); step 0's was made before
  assertOk(losses[1].disposed && !losses[0].disposed);
  assertThrows(() => losses[1].buffer, Error, "was released by AdamW.step() (its step 3)");
  await assertRejects(() => losses[1].item(), Error, "call keep(t) on a tensor you hold across steps");
  assertEquals(await held!.item(), 5);
  assertEquals((await data.data()).length, 8);
  opt.dispose();
});

Deno.test("out of memory: the error names the op, the bytes asked for and what is live, and suggests tidy", async () => {
  const be = await createWasmBackend();
  try {
    const x = ones([1024, 1024], { backend: be });
    const e = assertThrows(
      () => zeros([1 << 30], { backend: be }),
      RangeError,
      "zeros: out of memory on the wasm backend asking for 4294967296 bytes",
    );
    assertOk(e.message.includes("tensor buffers holding") && e.message.includes("tidy("), e.message);
    x.dispose();
  } finally {
    be.dispose();
  }
});

Deno.test("the loop's JS heap stays flat too (no per-tensor WeakRef or finalizer cell piles up in a loop that never yields)", async () => {
  const code = `
    import { createWasmBackend } from "./src/backends/wasm.ts";
    import { pytorchStyleLoop } from "./bench/tiny_gpt.ts";
    const be = await createWasmBackend();
    const heap = [];
    await pytorchStyleLoop(be, 160, (step) => {
      if (step % 40 === 0) { globalThis.gc(); heap.push(Deno.memoryUsage().heapUsed); }
    });
    console.log(JSON.stringify(heap));
    be.dispose();`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", "--v8-flags=--expose-gc", code],
    cwd: new URL("..", import.meta.url),
  }).output();
  const heap: number[] = JSON.parse(new TextDecoder().decode(out.stdout).trim() || "null");
  assertOk(heap, new TextDecoder().decode(out.stderr));
  // steps 40 .. 160 (after warm-up): growth under 1 MiB; it grew ~0.2 MiB per step before the fix
  const growth = (heap.at(-1)! - heap[1]) / 2 ** 20;
  assertOk(growth < 1, `JS heap grew ${growth.toFixed(2)} MiB over 120 steps: ${heap}`);
});
