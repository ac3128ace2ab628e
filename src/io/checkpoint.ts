/**
 * Checkpoints: a model's parameters and the layouts beside its sparse weights
 * as safetensors bytes, under the parameter paths of the reference
 * implementation (HazyResearch/fly), so a strict `load_state_dict` into its
 * modules accepts them and its checkpoints load here:
 *
 * | pixelfly                         | file (fly's name)          | shape and dtype             |
 * | -------------------------------- | -------------------------- | --------------------------- |
 * | `BlockSparseLinear.weight`       | `weight`                   | (nnz, b, b) F32             |
 * | `BlockSparseLinear` mask         | `layout`                   | (out/b, in/b) I32, 0 or 1   |
 * | `LowRank.V`                      | `lr_weight1`               | (rank, in) F32              |
 * | `LowRank.U`                      | `lr_weight2`               | (out, rank) F32             |
 * | `PixelflyLinear` children        | `sparse`, `low_rank`, `gate` (nn.Linear(in, 1)), `bias` |  |
 * | `MLP` children                   | `fc1`, `fc2` (fly's `MlpCustom`, timm's `Mlp`)           |  |
 * | `MixerBlock` children            | `norm1`, `mlp_tokens`, `norm2`, `mlp_channels`           |  |
 * | `MlpMixer` children              | `stem.proj`, `blocks.i`, `norm`, `head`                  |  |
 *
 * {@link load} also takes pixelfly's earlier names (`mask` as U8, `U`, `V`,
 * `token_mixing`, `channel_mixing`, `stem`), a layout stored as U8 or I32,
 * the sparse weight in fly's triton form `(1, nnz, b, b)` and its HuggingFace
 * form `(nnz·b, b)` (each tile transposed), and a 4-D patch-embedding
 * convolution weight `(C, c, p, p)` for a stem of `c·p·p` inputs.
 *
 * @module
 */
import type { Module, NamedBuffer } from "../nn/module.ts";
import { BlockSparseLinear, LowRank } from "../nn/linear.ts";
import { MixerBlock, MlpMixer } from "../nn/mixer.ts";
import type { Tensor } from "../tensor.ts";
import { decodeSafetensors, encodeSafetensors, type SafetensorsEntry } from "./safetensors.ts";
import { fileSystem } from "./_fs.ts";

/** One tensor of a model as checkpoints see it. */
interface Slot {
  /** Path in fly's naming: what {@link save} writes. */
  name: string;
  /** pixelfly's own path (`Module.namedParameters` / `namedBuffers`), also accepted by {@link load}. */
  own: string;
  /** The parameter, the mask's tile bits for a layout, or another buffer (stored as it is). */
  param?: Tensor;
  layout?: { rows: number; cols: number; bits: Uint8Array };
  buffer?: NamedBuffer;
  /** The owner, when its layout differs from the file's forms (sparse weight, stem). */
  owner: Module;
}

/** fly's name of a child or tensor where pixelfly's differs. */
function refName(owner: Module, name: string): string {
  if (owner instanceof LowRank) return name === "U" ? "lr_weight2" : name === "V" ? "lr_weight1" : name;
  if (owner instanceof BlockSparseLinear && name === "mask") return "layout";
  if (owner instanceof MixerBlock) {
    return name === "token_mixing" ? "mlp_tokens" : name === "channel_mixing" ? "mlp_channels" : name;
  }
  if (owner instanceof MlpMixer && name === "stem") return "stem.proj";
  return name;
}

/** Every parameter and layout of `model` with its file name and pixelfly's own path, in module order. */
function slots(model: Module): Slot[] {
  const out: Slot[] = [];
  const walk = (m: Module, own: string, ref: string) => {
    for (const [n, p] of m.namedParameters()) {
      if (!n.includes(".")) out.push({ name: ref + refName(m, n), own: own + n, param: p, owner: m });
    }
    for (const [n, b] of m.namedBuffers()) {
      if (n.includes(".")) continue;
      if (!(m instanceof BlockSparseLinear && n === "mask" && b.dtype === "U8" && b.shape.length === 2)) {
        out.push({ name: ref + refName(m, n), own: own + n, buffer: b, owner: m });
        continue;
      }
      out.push({
        name: ref + refName(m, n),
        own: own + n,
        layout: { rows: b.shape[0], cols: b.shape[1], bits: b.data as Uint8Array },
        owner: m,
      });
    }
    for (const [n, c] of m.namedChildren()) walk(c, `${own}${n}.`, `${ref}${refName(m, n)}.`);
  };
  walk(model, "", "");
  return out;
}

/**
 * The model's parameters and layouts as safetensors bytes, named as the
 * reference implementation names them (see the module documentation), so
 * PyTorch's `load_state_dict(..., strict=True)` into fly's modules accepts
 * them; Python's `safetensors.numpy.load` reads them too. Sparse weights are
 * (nnz, b, b) in the row-major order of the kept tiles of the `layout` beside
 * them, layouts int32 0/1.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, PixelflyLinear, save } from "@pixelfly/pixelfly";
 * const bytes = await save(new PixelflyLinear(64, 64, { block: 16, butterflySize: 4, rank: 4, seed: 1 }));
 * console.log(Object.keys(decodeSafetensors(bytes).tensors).sort());
 * // [ "bias", "gate.bias", "gate.weight", "low_rank.lr_weight1", "low_rank.lr_weight2", "sparse.layout", "sparse.weight" ]
 * ```
 */
export async function save(
  model: Module,
  { metadata = {} }: { metadata?: Record<string, string> } = {},
): Promise<Uint8Array> {
  checkModule("save", model);
  const entries: Record<string, SafetensorsEntry> = {};
  for (const s of slots(model)) {
    entries[s.name] = s.param
      ? { dtype: "F32", shape: [...s.param.shape], data: await s.param.data() }
      : s.layout
      ? { dtype: "I32", shape: [s.layout.rows, s.layout.cols], data: Int32Array.from(s.layout.bits) }
      : { dtype: s.buffer!.dtype, shape: [...s.buffer!.shape], data: s.buffer!.data };
  }
  return encodeSafetensors(entries, { format: "pt", producer: "pixelfly", ...metadata });
}

/**
 * Restore parameters from safetensors bytes: pixelfly's own (from {@link save},
 * old or new names) or the reference implementation's (see the module
 * documentation for the names and the weight forms taken). Every parameter
 * must be present once with its shape, every layout must keep exactly the
 * model's tiles, and no unknown tensor may be present; otherwise a RangeError
 * names the tensor and the difference (name, dtype, shape or tiles), and the
 * model is left untouched: everything is checked before anything is written.
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

const fmt = (shape: readonly number[]) => `[${shape.join(",")}]`;

function loadNow(model: Module, bytes: Uint8Array): void {
  checkModule("load", model);
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `load: bytes must be a Uint8Array, got ${(bytes as any)?.constructor?.name ?? bytes}`,
    );
  }
  const { tensors } = decodeSafetensors(bytes);
  const all = slots(model);
  const used = new Set<string>();
  const writes: [Tensor, Float32Array][] = [];
  for (const s of all) {
    const names = s.name === s.own ? [s.name] : [s.name, s.own];
    const found = names.filter((n) => Object.hasOwn(tensors, n));
    const what = s.param
      ? `shape ${fmt(s.param.shape)}`
      : s.layout
      ? `layout ${s.layout.rows}x${s.layout.cols}`
      : `${s.buffer!.dtype} ${fmt(s.buffer!.shape)}`;
    const called = names.map((n) => `"${n}"`).join(" or ");
    if (found.length === 0) throw new RangeError(`load: the checkpoint has no tensor ${called} (${what})`);
    if (found.length > 1) {
      throw new RangeError(`load: the checkpoint holds both ${called}: one tensor under two names`);
    }
    const name = found[0];
    used.add(name);
    const e = tensors[name];
    if (s.param) writes.push([s.param, paramValues(s, name, e)]);
    else if (s.layout) checkLayout(s, name, e);
    else checkBuffer(s.buffer!, name, e);
  }
  const unknown = Object.keys(tensors).filter((n) => !used.has(n));
  if (unknown.length) {
    throw new RangeError(
      `load: the checkpoint holds tensors the model does not have: ${unknown.slice(0, 5).join(", ")}${
        unknown.length > 5 ? `, ... (${unknown.length} in all)` : ""
      }`,
    );
  }
  // everything checked: now write
  for (const [p, v] of writes) p.backend.write(p.buffer, v);
  for (const [p] of writes) p.backend.flush();
}

/** The values of a parameter from its file entry, in pixelfly's layout; throws on a dtype or shape mismatch. */
function paramValues(s: Slot, name: string, e: SafetensorsEntry): Float32Array {
  const p = s.param!, want = p.shape;
  if (e.dtype !== "F32") {
    throw new RangeError(
      `load: "${name}" is ${e.dtype} in the checkpoint but parameters are F32 (shape ${fmt(want)}); ` +
        `store it as float32`,
    );
  }
  const data = e.data as Float32Array;
  const same = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((v, i) => v === b[i]);
  if (same(e.shape, want)) return data;
  if (s.owner instanceof BlockSparseLinear && s.own.endsWith("weight") && want.length === 3) {
    const [nnz, b] = want;
    // fly's triton backend: (1, nnz, b, b), the same values
    if (same(e.shape, [1, nnz, b, b])) return data;
    // fly's huggingface backend: rearrange 'nnz i j -> (nnz j) i', each tile transposed
    if (same(e.shape, [nnz * b, b])) {
      const out = new Float32Array(nnz * b * b);
      for (let n = 0; n < nnz; n++) {
        for (let i = 0; i < b; i++) {
          for (let j = 0; j < b; j++) out[(n * b + i) * b + j] = data[(n * b + j) * b + i];
        }
      }
      return out;
    }
    throw new RangeError(
      `load: "${name}" has shape ${fmt(e.shape)} in the checkpoint but the model's sparse weight is ` +
        `${fmt(want)} (nnz, b, b); also taken: [1,${nnz},${b},${b}] (triton) and [${
          nnz * b
        },${b}] (huggingface)`,
    );
  }
  if (
    isStem(s) && want.length === 2 && e.shape.length === 4 && e.shape[0] === want[0] &&
    e.shape[1] * e.shape[2] * e.shape[3] === want[1]
  ) {
    return data; // a patch-embedding convolution (C, c, p, p) over patches flattened (c, py, px)
  }
  throw new RangeError(
    `load: "${name}" has shape ${fmt(e.shape)} in the checkpoint but ${fmt(want)} in the model`,
  );
}

function isStem(s: Slot): boolean {
  return /(^|\.)stem\.proj\.weight$/.test(s.name);
}

/** A buffer other than a layout must equal the model's: dtype, then shape, then values. */
function checkBuffer(b: NamedBuffer, name: string, e: SafetensorsEntry): void {
  if (e.dtype !== b.dtype) {
    throw new RangeError(`load: "${name}" is ${e.dtype} in the checkpoint but ${b.dtype} in the model`);
  }
  if (fmt(e.shape) !== fmt(b.shape)) {
    throw new RangeError(
      `load: "${name}" has shape ${fmt(e.shape)} in the checkpoint but ${fmt(b.shape)} in the model`,
    );
  }
  const i = e.data.findIndex((v, i) => !Object.is(v, b.data[i]));
  if (i >= 0) {
    throw new RangeError(
      `load: "${name}" differs from the model's at element ${i}: ${e.data[i]} in the checkpoint, ${
        b.data[i]
      } in the model`,
    );
  }
}

/** Check a layout entry against the model's mask: dtype, shape, then the kept tiles. */
function checkLayout(s: Slot, name: string, e: SafetensorsEntry): void {
  const { rows, cols, bits } = s.layout!;
  if (e.dtype !== "I32" && e.dtype !== "U8") {
    throw new RangeError(
      `load: "${name}" is ${e.dtype} in the checkpoint; a layout is I32 or U8 (0 or 1 per tile), ` +
        `shape [${rows},${cols}]`,
    );
  }
  if (e.shape.length !== 2 || e.shape[0] !== rows || e.shape[1] !== cols) {
    throw new RangeError(
      `load: "${name}" has shape ${
        fmt(e.shape)
      } in the checkpoint but the model's layout is [${rows},${cols}] ` +
        `(tile rows, tile columns)`,
    );
  }
  let extra = -1, missing = -1, bad = -1;
  for (let i = 0; i < bits.length; i++) {
    const v = e.data[i];
    if (v !== 0 && v !== 1 && bad < 0) bad = i;
    if (v !== 0 && !bits[i] && extra < 0) extra = i;
    if (v === 0 && bits[i] && missing < 0) missing = i;
  }
  const at = (i: number) => `(${Math.floor(i / cols)}, ${i % cols})`;
  if (bad >= 0) {
    throw new RangeError(`load: "${name}" holds ${e.data[bad]} at tile ${at(bad)}; a layout holds 0 or 1`);
  }
  if (extra >= 0 || missing >= 0) {
    throw new RangeError(
      `load: "${name}" keeps other tiles than the model's mask: ` +
        (extra >= 0 ? `tile ${at(extra)} is kept in the checkpoint but not in the model` : "") +
        (extra >= 0 && missing >= 0 ? "; " : "") +
        (missing >= 0 ? `tile ${at(missing)} is kept in the model but not in the checkpoint` : ""),
    );
  }
}

/**
 * Save to a file atomically (a temporary file renamed over the target). On
 * Deno it needs `--allow-write`; on Node and Bun it uses `node:fs/promises`;
 * elsewhere (browsers, edge functions) it throws a TypeError: use
 * {@link save} there and store the bytes yourself.
 *
 * @example
 * ```ts ignore
 * import { Linear, saveFile } from "@pixelfly/pixelfly";
 * await saveFile(new Linear(3, 2, { seed: 1 }), "model.safetensors");
 * ```
 */
export async function saveFile(model: Module, path: string): Promise<void> {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`saveFile: path must be a non-empty string, got ${JSON.stringify(path)}`);
  }
  const fs = await fileSystem("saveFile");
  await fs.writeAtomic(path, await save(model));
}

/**
 * Load from a file: `--allow-read` on Deno, `node:fs/promises` on Node and
 * Bun; elsewhere a TypeError says to use {@link load} with bytes you fetched.
 *
 * @example
 * ```ts ignore
 * import { Linear, loadFile } from "@pixelfly/pixelfly";
 * await loadFile(new Linear(3, 2), "model.safetensors");
 * ```
 */
export async function loadFile(model: Module, path: string): Promise<void> {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`loadFile: path must be a non-empty string, got ${JSON.stringify(path)}`);
  }
  await load(model, await (await fileSystem("loadFile")).readFile(path));
}

function checkModule(op: string, model: unknown): void {
  const m = model as Module;
  if (!m || typeof m.namedParameters !== "function" || typeof m.namedBuffers !== "function") {
    throw new TypeError(`${op}: model must be a Module, got ${model}`);
  }
}
