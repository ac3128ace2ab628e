/**
 * The backends every conformance and gradient test runs on, besides the js
 * reference. Each backend's issue adds its entries here.
 *
 * @module
 */
import type { Backend } from "../src/backends/types.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { createWebGpuBackend } from "../src/backends/webgpu.ts";

/** A backend under test: a label for messages and a factory. */
export interface BackendUnderTest {
  label: string;
  /** Resolves to the backend, or to undefined when it cannot run here (and is not required). */
  make: () => Promise<Backend | undefined>;
}

/** Every backend to test against the js reference. */
export const backendsUnderTest: BackendUnderTest[] = [];

backendsUnderTest.push(
  { label: "wasm-relaxed", make: () => createWasmBackend({ variant: "relaxed" }) },
  { label: "wasm-simd128", make: () => createWasmBackend({ variant: "simd128" }) },
  // two threads (main + one Worker), splitting every product however small so the split paths run
  { label: "wasm-threads", make: () => createWasmBackend({ threads: 2, minSplitWork: 0 }) },
);

// WebGPU: skipped where no adapter exists, unless PIXELFLY_REQUIRE_GPU=1 (CI) makes that a failure.
backendsUnderTest.push({
  label: "webgpu",
  make: async () => {
    // deno-lint-ignore no-explicit-any
    const gpu = (globalThis.navigator as any)?.gpu;
    const adapter = gpu ? await gpu.requestAdapter() : null;
    if (!adapter && Deno.env.get("PIXELFLY_REQUIRE_GPU") !== "1") return undefined;
    return await createWebGpuBackend({ adapter: adapter ?? undefined });
  },
});
