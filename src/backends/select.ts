/**
 * Choosing the backend at run time. Nothing registers itself on import: the
 * factories below are the whole list, and `setBackend` is the only switch.
 *
 * @module
 */
import { JsBackend } from "./js.ts";
import { createWasmBackend } from "./wasm.ts";
import type { WebGpuOptions } from "./webgpu.ts";
import type { Backend, BackendName } from "./types.ts";

/** A backend name other than "auto". */
export type ConcreteName = Exclude<BackendName, "auto">;

/** How each backend is made. A factory rejects with a clear error where its backend cannot run. */
const factories: Record<ConcreteName, () => Promise<Backend>> = {
  js: () => Promise.resolve(new JsBackend()),
  wasm: () => createWasmBackend(),
  webgpu: () => createWebGpuBackend(),
};

/**
 * Make a WebGPU backend on the given (or default) adapter. The WebGPU backend and its shaders load on
 * this first call (a dynamic import inside the module graph: no fetch of other files, no permission),
 * so importing pixelfly does not pay for them.
 *
 * @example
 * ```ts ignore
 * import { createWebGpuBackend } from "@pixelfly/pixelfly";
 * const gpu = await createWebGpuBackend();
 * const x = gpu.upload(new Float32Array([1, 2, 3]));
 * gpu.scale(x, x, { size: 3, alpha: 2, beta: 0, accumulate: false });
 * console.log(await gpu.read(x)); // Float32Array [2, 4, 6]
 * gpu.dispose();
 * ```
 */
export async function createWebGpuBackend(opts: WebGpuOptions = {}): Promise<Backend> {
  return await (await import("./webgpu.ts")).createWebGpuBackend(opts);
}

const live = new Map<ConcreteName, Backend>();
let current: Backend | undefined;

/** What {@link backendInfo} reports: the backend in use, how it was chosen, and why others were not. */
export interface BackendInfo {
  /** Name of the backend in use ("js", "wasm", "webgpu", or a custom backend's name). */
  name: string;
  /**
   * How it became current: `default` (nothing chosen yet: the js reference), `name`
   * (`setBackend("wasm")`), `instance` (`setBackend(backend)`) or `auto` (`setBackend("auto")`).
   */
  chosenBy: "default" | "name" | "instance" | "auto";
  /** With `auto`: each backend preferred over the chosen one, and why it was not chosen. */
  notChosen: { name: ConcreteName; reason: string }[];
  /**
   * The chosen backend's own fallbacks, one sentence each (for WASM: the plain SIMD128 build instead
   * of relaxed SIMD, fewer threads than asked for, and why); empty when it runs as asked.
   */
  notes: string[];
}

let info: Omit<BackendInfo, "notes"> = { name: "js", chosenBy: "default", notChosen: [] };

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Make (once) and return the backend of that name, without making it current. */
export async function loadBackend(name: ConcreteName): Promise<Backend> {
  let b = live.get(name);
  if (b === undefined) {
    b = await factories[name]();
    live.set(name, b);
  }
  return b;
}

/**
 * Pick the best backend for this machine: WebGPU on a hardware adapter, WASM otherwise, js last.
 * The reason each better backend was passed over is kept in {@link backendInfo}.
 */
async function resolveAuto(): Promise<Backend> {
  const notChosen: BackendInfo["notChosen"] = [];
  const done = (b: Backend): Backend => {
    info = { name: b.name, chosenBy: "auto", notChosen };
    return b;
  };
  // deno-lint-ignore no-explicit-any
  const gpu = (globalThis.navigator as any)?.gpu;
  if (!gpu) {
    notChosen.push({ name: "webgpu", reason: (await import("./webgpu.ts")).webGpuAbsence(false) });
  } else {
    try {
      const adapter = await gpu.requestAdapter();
      // Deno 2.9 reports the flag on adapter.info only (GPUAdapterInfo.isFallbackAdapter)
      const fallback = adapter?.isFallbackAdapter ?? adapter?.info?.isFallbackAdapter ?? false;
      if (!adapter) {
        notChosen.push({ name: "webgpu", reason: (await import("./webgpu.ts")).webGpuAbsence(true) });
      } else if (fallback) {
        const what = adapter.info?.description || adapter.info?.architecture || adapter.info?.vendor || "";
        notChosen.push({
          name: "webgpu",
          reason: `the WebGPU adapter${what ? ` (${what})` : ""} is a software fallback, slower than WASM ` +
            `on the CPU; "auto" takes WebGPU only on a hardware adapter (setBackend("webgpu") uses it anyway)`,
        });
      } else {
        return done(await loadBackend("webgpu"));
      }
    } catch (e) {
      notChosen.push({ name: "webgpu", reason: message(e) });
    }
  }
  try {
    return done(await loadBackend("wasm"));
  } catch (e) {
    notChosen.push({ name: "wasm", reason: message(e) });
    return done(await loadBackend("js"));
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
    info = { name: current.name, chosenBy: "instance", notChosen: [] };
    return current;
  }
  if (typeof name !== "string" || (name !== "auto" && !(name in factories))) {
    throw new RangeError(
      `setBackend: unknown backend "${name}"; expected one of auto, ${
        Object.keys(factories).join(", ")
      } or a Backend`,
    );
  }
  if (name === "auto") {
    current = await resolveAuto();
  } else {
    current = await loadBackend(name);
    info = { name, chosenBy: "name", notChosen: [] };
  }
  return current;
}

/**
 * The backend in use, how it was chosen, and, after `setBackend("auto")`, why
 * each better backend was not chosen (no WebGPU adapter, a software adapter,
 * WASM that failed to start, ...), plus the chosen backend's own fallbacks
 * (`notes`: WASM's build and thread count): a fallback is never silent.
 *
 * @example
 * ```ts
 * import { backendInfo, setBackend } from "@pixelfly/pixelfly";
 * await setBackend("auto");
 * const info = backendInfo();
 * console.log(info.name, info.chosenBy); // for example "wasm auto"
 * for (const { name, reason } of info.notChosen) console.log(`not ${name}: ${reason}`);
 * for (const note of info.notes) console.log(note); // the chosen backend's own fallbacks
 * await setBackend("js");
 * ```
 */
export function backendInfo(): BackendInfo {
  const be = getBackend();
  const own = (be as { info?: { notes?: unknown } }).info?.notes;
  const notes = Array.isArray(own) ? own.map(String) : [];
  return { ...info, notChosen: info.notChosen.map((n) => ({ ...n })), notes };
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
  if (current === b) {
    current = undefined;
    info = { name: "js", chosenBy: "default", notChosen: [] };
  }
}
