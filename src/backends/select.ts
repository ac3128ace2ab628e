/**
 * Choosing the backend at run time. Nothing registers itself on import: the
 * factories below are the whole list, and `setBackend` is the only switch.
 *
 * @module
 */
import { JsBackend } from "./js.ts";
import { createWasmBackend } from "./wasm.ts";
import { createWebGpuBackend } from "./webgpu.ts";
import type { Backend, BackendName } from "./types.ts";

/** A backend name other than "auto". */
export type ConcreteName = Exclude<BackendName, "auto">;

/** How each backend is made. A factory rejects with a clear error where its backend cannot run. */
const factories: Record<ConcreteName, () => Promise<Backend>> = {
  js: () => Promise.resolve(new JsBackend()),
  wasm: () => createWasmBackend(),
  webgpu: () => createWebGpuBackend(),
};

const live = new Map<ConcreteName, Backend>();
let current: Backend | undefined;

/** Make (once) and return the backend of that name, without making it current. */
export async function loadBackend(name: ConcreteName): Promise<Backend> {
  let b = live.get(name);
  if (b === undefined) {
    b = await factories[name]();
    live.set(name, b);
  }
  return b;
}

/** Pick the best backend for this machine: WebGPU on a hardware adapter, WASM otherwise, js last. */
async function resolveAuto(): Promise<Backend> {
  // deno-lint-ignore no-explicit-any
  const gpu = (globalThis.navigator as any)?.gpu;
  if (gpu) {
    try {
      const adapter = await gpu.requestAdapter();
      // Deno 2.9 reports the flag on adapter.info only (GPUAdapterInfo.isFallbackAdapter)
      const fallback = adapter?.isFallbackAdapter ?? adapter?.info?.isFallbackAdapter ?? false;
      if (adapter && !fallback) return await loadBackend("webgpu");
    } catch {
      // no usable GPU: fall through to WASM
    }
  }
  try {
    return await loadBackend("wasm");
  } catch {
    return await loadBackend("js");
  }
}

/**
 * Select the backend that new tensors and ops use: a name, or a backend you
 * made yourself (for example `await createWasmBackend({ threads: 2 })`).
 *
 * `"auto"` picks WebGPU only on a hardware adapter, WASM otherwise.
 *
 * @example
 * ```ts
 * import { getBackend, setBackend } from "@pixelfly/pixelfly";
 * await setBackend("js");
 * console.log(getBackend().name); // "js"
 * ```
 */
export async function setBackend(name: BackendName | Backend): Promise<Backend> {
  if (typeof name === "object" && name !== null && typeof (name as Backend).gemm === "function") {
    current = name as Backend;
    return current;
  }
  if (typeof name !== "string" || (name !== "auto" && !(name in factories))) {
    throw new RangeError(
      `setBackend: unknown backend "${name}"; expected one of auto, ${
        Object.keys(factories).join(", ")
      } or a Backend`,
    );
  }
  current = name === "auto" ? await resolveAuto() : await loadBackend(name);
  return current;
}

/** The current backend (the js reference until `setBackend` is called). */
export function getBackend(): Backend {
  if (current === undefined) {
    current = live.get("js") ?? new JsBackend();
    live.set("js", current);
  }
  return current;
}

/** Names of the backends that can be made here (for tests and benches). */
export async function availableBackends(): Promise<ConcreteName[]> {
  const names: ConcreteName[] = [];
  for (const name of Object.keys(factories) as ConcreteName[]) {
    try {
      await loadBackend(name);
      names.push(name);
    } catch {
      // not available on this machine
    }
  }
  return names;
}

/** Dispose a backend made by `loadBackend` and forget it (tests use this). */
export function disposeBackend(name: ConcreteName): void {
  const b = live.get(name);
  if (b === undefined) return;
  b.dispose();
  live.delete(name);
  if (current === b) current = undefined;
}
