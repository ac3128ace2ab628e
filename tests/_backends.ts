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
  /** True where the backend cannot run here and is not required: its tests are reported "ignored". */
  ignore?: boolean;
}

/** CI sets PIXELFLY_REQUIRE_GPU=1: a missing WebGPU adapter then fails the WebGPU tests instead of ignoring them. */
export const requireGpu: boolean = Deno.env.get("PIXELFLY_REQUIRE_GPU") === "1";

/** Whether this machine offers a WebGPU adapter (asked once, when the tests load). */
export const hasWebGpuAdapter: boolean = await (async () => {
  // deno-lint-ignore no-explicit-any
  const gpu = (globalThis.navigator as any)?.gpu;
  return gpu ? (await gpu.requestAdapter()) !== null : false;
})();

/** `ignore` for a WebGPU test: ignored where there is no adapter, unless one is required. */
export const ignoreWebGpu: boolean = !hasWebGpuAdapter && !requireGpu;

/** Every backend to test against the js reference. */
export const backendsUnderTest: BackendUnderTest[] = [];

backendsUnderTest.push(
  { label: "wasm-relaxed", make: () => createWasmBackend({ variant: "relaxed", threads: 1 }) },
  { label: "wasm-simd128", make: () => createWasmBackend({ variant: "simd128", threads: 1 }) },
  // two threads (main + one Worker), splitting every product however small so the split paths run
  { label: "wasm-threads", make: () => createWasmBackend({ threads: 2, minSplitWork: 0 }) },
);

// WebGPU: ignored where no adapter exists, unless PIXELFLY_REQUIRE_GPU=1 (CI) makes that a failure.
backendsUnderTest.push({
  label: "webgpu",
  make: async () => ignoreWebGpu ? undefined : await createWebGpuBackend(),
  ignore: ignoreWebGpu,
});

/**
 * Disposes the backend when the scope ends (`using _ = disposing(be);`): tests release the
 * GPU devices and Worker threads they make, pass or fail.
 */
export function disposing(be: Backend): Disposable {
  return { [Symbol.dispose]: () => be.dispose() };
}
