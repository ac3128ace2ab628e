/**
 * Checkpoints: a model's parameters (and the masks beside its sparse
 * weights) as safetensors bytes, under PyTorch module paths
 * (`layers.0.sparse.weight`, `layers.0.sparse.mask`, `...low_rank.U`).
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsEntry,
  writeFileAtomic,
} from "./safetensors.ts";

/**
 * The model's parameters and masks as safetensors bytes. Python's
 * `safetensors.numpy.load` reads them; sparse weights are (nnz, block,
 * block) in the BSR order of the `.mask` beside them (row-major kept tiles).
 *
 * @example
 * ```ts
 * import { decodeSafetensors, Linear, save } from "@pixelfly/pixelfly";
 * const bytes = await save(new Linear(3, 2, { seed: 1 }));
 * console.log(Object.keys(decodeSafetensors(bytes).tensors)); // [ "weight", "bias" ]
 * ```
 */
export async function save(
  model: Module,
  { metadata = {} }: { metadata?: Record<string, string> } = {},
): Promise<Uint8Array> {
  checkModule("save", model);
  const entries: Record<string, SafetensorsEntry> = {};
  for (const [name, p] of model.namedParameters()) {
    entries[name] = { dtype: "F32", shape: [...p.shape], data: await p.data() };
  }
  for (const [name, b] of model.namedBuffers()) {
    entries[name] = { dtype: b.dtype, shape: b.shape, data: b.data };
  }
  return encodeSafetensors(entries, { format: "pt", producer: "pixelfly", ...metadata });
}

/**
 * Restore parameters from safetensors bytes made by {@link save}. Every
 * parameter must be present with its exact shape, every mask must equal the
 * model's, and no unknown tensor may be present; otherwise it throws and
 * leaves the model untouched.
 *
 * @example
 * ```ts
 * import { Linear, load, save } from "@pixelfly/pixelfly";
 * const a = new Linear(3, 2, { seed: 1 }), b = new Linear(3, 2, { seed: 2 });
 * await load(b, await save(a));
 * console.log((await a.weight.data())[0] === (await b.weight.data())[0]); // true
 * ```
 */
export function load(model: Module, bytes: Uint8Array): Promise<void> {
  return Promise.resolve().then(() => loadNow(model, bytes));
}

function loadNow(model: Module, bytes: Uint8Array): void {
  checkModule("load", model);
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`load: bytes must be a Uint8Array, got ${bytes}`);
  const file = decodeSafetensors(bytes);
  const params = model.namedParameters(), buffers = model.namedBuffers();
  const known = new Set([...params.map(([n]) => n), ...buffers.map(([n]) => n)]);
  const unknown = Object.keys(file.tensors).filter((n) => !known.has(n));
  if (unknown.length) {
    throw new RangeError(
      `load: the checkpoint holds tensors the model does not have: ${unknown.slice(0, 5).join(", ")}`,
    );
  }
  for (const [name, p] of params) {
    const e = file.tensors[name];
    if (!e) throw new RangeError(`load: the checkpoint has no tensor "${name}" (shape [${p.shape}])`);
    if (e.dtype !== "F32") throw new RangeError(`load: "${name}" is ${e.dtype} but parameters are F32`);
    if (e.shape.join() !== p.shape.join()) {
      throw new RangeError(
        `load: "${name}" has shape [${e.shape}] in the checkpoint but [${p.shape}] in the model`,
      );
    }
  }
  for (const [name, b] of buffers) {
    const e = file.tensors[name];
    if (!e) throw new RangeError(`load: the checkpoint has no mask "${name}"`);
    const same = e.dtype === b.dtype && e.shape.join() === b.shape.join() &&
      e.data.every((v, i) => v === b.data[i]);
    if (!same) {
      throw new RangeError(
        `load: "${name}" in the checkpoint differs from the model's (shape [${e.shape}] vs [${b.shape}])`,
      );
    }
  }
  // everything checked: now write
  for (const [name, p] of params) {
    p.backend.write(p.buffer, file.tensors[name].data as Float32Array);
  }
  for (const [, p] of params) p.backend.flush();
}

/**
 * Save to a file atomically (a temporary file renamed over the target; needs --allow-write).
 *
 * @example
 * ```ts ignore
 * import { Linear, saveFile } from "@pixelfly/pixelfly";
 * await saveFile(new Linear(3, 2, { seed: 1 }), "model.safetensors");
 * ```
 */
export async function saveFile(model: Module, path: string): Promise<void> {
  await writeFileAtomic(path, await save(model));
}

/**
 * Load from a file (needs --allow-read).
 *
 * @example
 * ```ts ignore
 * import { Linear, loadFile } from "@pixelfly/pixelfly";
 * await loadFile(new Linear(3, 2), "model.safetensors");
 * ```
 */
export async function loadFile(model: Module, path: string): Promise<void> {
  await load(model, await Deno.readFile(path));
}

function checkModule(op: string, model: unknown): void {
  const m = model as Module;
  if (!m || typeof m.namedParameters !== "function" || typeof m.namedBuffers !== "function") {
    throw new TypeError(`${op}: model must be a Module, got ${model}`);
  }
}
