/**
 * A leak test per public op (issue 10): N calls under `noGrad` (disposing
 * the result) and N under `tidy` (recording, with inputs that require
 * gradients) leave the live-buffer count where it was, on every backend;
 * on wasm the backend's own live-buffer count too.
 */
import * as pf from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend } from "../src/backends/types.ts";
import type { WasmBackend } from "../src/backends/wasm.ts";
import { assertEquals } from "./_assert.ts";
import { backendsUnderTest } from "./_backends.ts";
import { OPS } from "./_op_table.ts";

const N = 4;

function counts(be: Backend): [number, number] {
  const own = be.name === "wasm" ? (be as WasmBackend).liveBuffers : 0;
  return [pf.memory(be).buffers, own];
}

function leakCheck(be: Backend): void {
  for (const e of OPS) {
    const args = pf.tidy(() => e.args(be));
    for (const a of args) if (a instanceof pf.Tensor) pf.keep(a);
    // first call outside the counts: backends may build caches (layouts, pipelines) once
    pf.noGrad(() => (e.call(args) as pf.Tensor).dispose());
    const before = counts(be);
    for (let i = 0; i < N; i++) pf.noGrad(() => (e.call(args) as pf.Tensor).dispose());
    assertEquals(counts(be), before, `${e.name} under noGrad on ${be.name}`);
    for (let i = 0; i < N; i++) {
      pf.tidy(() => {
        e.call(args);
      });
    }
    assertEquals(counts(be), before, `${e.name} under tidy on ${be.name}`);
    for (const a of args) if (a instanceof pf.Tensor) a.dispose();
  }
}

Deno.test("no op leaks a buffer under noGrad or tidy on js", () => {
  leakCheck(new JsBackend());
});

for (
  const { label, make } of backendsUnderTest.filter((b) => b.label === "wasm-relaxed" || b.label === "webgpu")
) {
  Deno.test(`no op leaks a buffer under noGrad or tidy on ${label}`, async (t) => {
    const be = await make();
    if (!be) {
      await t.step({ name: `${label} unavailable here`, ignore: true, fn: () => {} });
      return;
    }
    try {
      leakCheck(be);
    } finally {
      be.dispose();
    }
  });
}
