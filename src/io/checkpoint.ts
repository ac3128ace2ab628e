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
 * | `GPT`                            | HuggingFace GPT-2 (`GPT2LMHeadModel`), below             |  |
 *
 * A {@link GPT} is written under GPT-2's paths: `transformer.wte`, `transformer.wpe`,
 * `transformer.h.i.ln_1`, `.ln_2`, `transformer.ln_f`, `lm_head.weight` (tied: the
 * embedding again), dense projections as GPT-2's `Conv1D` (weight `(in, out)`, the
 * transpose of `nn.Linear`'s): `attn.c_attn` (q, k and v fused: weight `(D, 3D)`,
 * bias `(3D)`), `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`; and the two buffers GPT-2's
 * attention keeps in its state dict, `attn.bias` (U8 `(1, 1, context, context)`, the
 * causal triangle) and `attn.masked_bias` (F32 scalar, -1e4). A Pixelfly or
 * block-sparse layer stands under the same path with fly's layer names (`mlp.c_fc.sparse.weight`,
 * ...), as fly's Mixer and ViT configs substitute `SparseLRLinear` for a linear layer
 * (fly's public GPT-2 config is plain HuggingFace GPT-2); sparse q, k or v cannot be
 * fused and keep pixelfly's paths (`attn.q`, `attn.k`, `attn.v`), which no GPT-2
 * module has. A MlpMixer's stem is written as a linear layer `(channels, patchDim)`
 * unless `stemKernel: [c, p, p]` asks for timm's `Conv2d` form `(channels, c, p, p)`.
 * Where the models differ: LayerNorm eps is 1e-5 here (GPT-2's too; timm's Mixer uses
 * 1e-6), GPT's MLP uses GPT-2's tanh GELU and the Mixer PyTorch's exact one, and the
 * Mixer takes pre-cut patches (each `(c, py, px)`, patches row-major), not images.
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
import { GPT } from "../nn/gpt.ts";
import type { TransformerBlock } from "../nn/attention.ts";
import { Linear } from "../nn/linear.ts";
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
  /** Parameters stored as one tensor: GPT-2's Conv1D `(in, out)` (one weight, transposed), fused q, k, v. */
  group?: {
    parts: Slot[];
    shape: number[];
    pack: (v: Float32Array[]) => Float32Array;
    unpack: (d: Float32Array) => Float32Array[];
  };
  /** A tensor the reference keeps beside the parameters (GPT-2's causal `attn.bias`): written, checked if present. */
  constant?: SafetensorsEntry;
  /** A name for a parameter stored already (GPT-2's tied `lm_head.weight`): written again, must be equal if present. */
  tied?: Tensor;
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
    if (m instanceof GPT) return walkGPT(m, own, ref, out, walk);
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

type Walk = (m: Module, own: string, ref: string) => void;

/** One parameter as GPT-2's Conv1D stores it: `(in, out)`, the transpose of pixelfly's `(out, in)`. */
function conv1d(p: Tensor, name: string, own: string, owner: Module): Slot {
  const [N, K] = p.shape;
  return {
    name,
    own,
    owner,
    group: {
      parts: [{ name: own, own, param: p, owner }],
      shape: [K, N],
      pack: ([w]) => transpose2(w, N, K),
      unpack: (d) => [transpose2(d, K, N)],
    },
  };
}

/** (r, c) row-major -> (c, r) row-major. */
function transpose2(a: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j];
  return out;
}

/** A dense layer with a bias: the only kind GPT-2's Conv1D holds. */
function isDense(m: Module): m is Linear {
  return m instanceof Linear && m.bias !== undefined;
}

/** A GPT under HuggingFace GPT-2's paths (see the module documentation). */
function walkGPT(g: GPT, own: string, ref: string, out: Slot[], walk: Walk): void {
  const t = ref + "transformer.";
  const param = (p: Tensor, name: string, ownName: string, owner: Module) =>
    out.push({ name, own: ownName, param: p, owner });
  param(g.wte.weight, t + "wte.weight", own + "wte.weight", g.wte);
  param(g.wpe.weight, t + "wpe.weight", own + "wpe.weight", g.wpe);
  const C = g.config.context;
  const tril = new Uint8Array(C * C);
  for (let i = 0; i < C; i++) for (let j = 0; j <= i; j++) tril[i * C + j] = 1;
  g.blocks.forEach((b: TransformerBlock, i) => {
    const o = `${own}h${i}.`, r = `${t}h.${i}.`;
    walk(b.ln1, o + "ln1.", r + "ln_1.");
    const { q, k, v } = b.attn;
    if (isDense(q) && isDense(k) && isDense(v)) {
      const D = q.weight.shape[1], N = q.weight.shape[0];
      const ws = [q, k, v].map((l, s) => ({
        name: `${o}attn.${"qkv"[s]}.weight`,
        own: `${o}attn.${"qkv"[s]}.weight`,
        param: l.weight,
        owner: l,
      }));
      out.push({
        name: r + "attn.c_attn.weight",
        own: o + "attn.qkv.weight",
        owner: b.attn,
        group: {
          parts: ws,
          shape: [D, 3 * N],
          // c_attn.weight[i][s*N + j] = W_s[j][i]
          pack: (vs) => {
            const w = new Float32Array(D * 3 * N);
            vs.forEach((x, s) => {
              for (let j = 0; j < N; j++) for (let c = 0; c < D; c++) w[c * 3 * N + s * N + j] = x[j * D + c];
            });
            return w;
          },
          unpack: (d) =>
            [0, 1, 2].map((s) => {
              const x = new Float32Array(N * D);
              for (let j = 0; j < N; j++) for (let c = 0; c < D; c++) x[j * D + c] = d[c * 3 * N + s * N + j];
              return x;
            }),
        },
      });
      const bs = [q, k, v].map((l, s) => ({
        name: `${o}attn.${"qkv"[s]}.bias`,
        own: `${o}attn.${"qkv"[s]}.bias`,
        param: l.bias!,
        owner: l,
      }));
      out.push({
        name: r + "attn.c_attn.bias",
        own: o + "attn.qkv.bias",
        owner: b.attn,
        group: {
          parts: bs,
          shape: [3 * N],
          pack: (vs) => {
            const x = new Float32Array(3 * N);
            vs.forEach((v, s) => x.set(v, s * N));
            return x;
          },
          unpack: (d) => [0, 1, 2].map((s) => d.slice(s * N, (s + 1) * N)),
        },
      });
    } else {
      // no GPT-2 module holds sparse q, k, v: pixelfly's paths under the block's
      for (const n of ["q", "k", "v"] as const) walk(b.attn[n], `${o}attn.${n}.`, `${r}attn.${n}.`);
    }
    const proj = (l: Module, ownPath: string, refPath: string) => {
      if (isDense(l)) {
        out.push(conv1d(l.weight, refPath + "weight", ownPath + "weight", l));
        param(l.bias!, refPath + "bias", ownPath + "bias", l);
      } else walk(l, ownPath, refPath);
    };
    proj(b.attn.o, o + "attn.o.", r + "attn.c_proj.");
    out.push({
      name: r + "attn.bias",
      own: r + "attn.bias",
      owner: b.attn,
      constant: { dtype: "U8", shape: [1, 1, C, C], data: tril },
    });
    out.push({
      name: r + "attn.masked_bias",
      own: r + "attn.masked_bias",
      owner: b.attn,
      constant: { dtype: "F32", shape: [], data: new Float32Array([-1e4]) },
    });
    walk(b.ln2, o + "ln2.", r + "ln_2.");
    proj(b.mlp.fc1, o + "mlp.fc1.", r + "mlp.c_fc.");
    proj(b.mlp.fc2, o + "mlp.fc2.", r + "mlp.c_proj.");
  });
  walk(g.lnF, own + "ln_f.", t + "ln_f.");
  out.push({ name: ref + "lm_head.weight", own: ref + "lm_head.weight", owner: g, tied: g.wte.weight });
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
  { metadata = {}, stemKernel }: {
    metadata?: Record<string, string>;
    /** Write a stem (`stem.proj`) as timm's patch-embedding `Conv2d` weight `(channels, c, p, p)`: `[c, p, p]`. */
    stemKernel?: [number, number, number];
  } = {},
): Promise<Uint8Array> {
  checkModule("save", model);
  const entries: Record<string, SafetensorsEntry> = {};
  for (const s of slots(model)) {
    if (s.group) {
      const values = await Promise.all(s.group.parts.map((p) => p.param!.data()));
      entries[s.name] = { dtype: "F32", shape: s.group.shape, data: s.group.pack(values) };
    } else if (s.constant) entries[s.name] = s.constant;
    else if (s.tied) entries[s.name] = { dtype: "F32", shape: [...s.tied.shape], data: await s.tied.data() };
    else if (s.param) {
      let shape = [...s.param.shape];
      if (stemKernel !== undefined && isStem(s)) shape = stemShape(shape, stemKernel);
      entries[s.name] = { dtype: "F32", shape, data: await s.param.data() };
    } else if (s.layout) {
      entries[s.name] = {
        dtype: "I32",
        shape: [s.layout.rows, s.layout.cols],
        data: Int32Array.from(s.layout.bits),
      };
    } else entries[s.name] = { dtype: s.buffer!.dtype, shape: [...s.buffer!.shape], data: s.buffer!.data };
  }
  return encodeSafetensors(entries, { format: "pt", producer: "pixelfly", ...metadata });
}

function stemShape(shape: number[], k: unknown): number[] {
  const ok = Array.isArray(k) && k.length === 3 && k.every((v) => Number.isInteger(v) && v > 0);
  if (!ok || shape.length !== 2 || k[0] * k[1] * k[2] !== shape[1]) {
    throw new RangeError(
      `save: stemKernel must be [c, p, p] with c·p·p = the stem's ${shape[1]} inputs, got ${
        JSON.stringify(k)
      }`,
    );
  }
  return [shape[0], ...(k as number[])];
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
  const ties: [Slot, string][] = [];
  const find = (names: string[], what: string): string => {
    const found = names.filter((n) => Object.hasOwn(tensors, n));
    const called = names.map((n) => `"${n}"`).join(" or ");
    if (found.length === 0) throw new RangeError(`load: the checkpoint has no tensor ${called} (${what})`);
    if (found.length > 1) {
      throw new RangeError(`load: the checkpoint holds both ${called}: one tensor under two names`);
    }
    used.add(found[0]);
    return found[0];
  };
  for (const s of all) {
    if (s.constant || s.tied) {
      // kept beside the parameters by the reference: checked where present, never needed
      if (!Object.hasOwn(tensors, s.name)) continue;
      used.add(s.name);
      const e = tensors[s.name], want = s.constant ?? { dtype: "F32", shape: [...s.tied!.shape] };
      if (e.dtype !== want.dtype) {
        throw new RangeError(
          `load: "${s.name}" is ${e.dtype} in the checkpoint but ${want.dtype} in the model`,
        );
      }
      if (fmt(e.shape) !== fmt(want.shape)) {
        throw new RangeError(
          `load: "${s.name}" has shape ${fmt(e.shape)} in the checkpoint but ${fmt(want.shape)} in the model`,
        );
      }
      if (s.tied) ties.push([s, s.name]);
      continue;
    }
    if (s.group) {
      const g = s.group;
      if (Object.hasOwn(tensors, s.name)) {
        used.add(s.name);
        const e = tensors[s.name];
        if (e.dtype !== "F32") {
          throw new RangeError(`load: "${s.name}" is ${e.dtype} in the checkpoint but parameters are F32`);
        }
        if (fmt(e.shape) !== fmt(g.shape)) {
          throw new RangeError(
            `load: "${s.name}" has shape ${fmt(e.shape)} in the checkpoint but ${fmt(g.shape)} in the model` +
              (g.parts.length === 1 ? " (GPT-2's Conv1D: (in, out))" : " (GPT-2's c_attn: q, k, v fused)"),
          );
        }
        g.unpack(e.data as Float32Array).forEach((v, i) => writes.push([g.parts[i].param!, v]));
      } else {
        // pixelfly's own paths, one tensor per parameter
        for (const p of g.parts) {
          writes.push([
            p.param!,
            paramValues(p, find([p.own], `shape ${fmt(p.param!.shape)}`), tensors[p.own]),
          ]);
        }
      }
      continue;
    }
    const names = s.name === s.own ? [s.name] : [s.name, s.own];
    const what = s.param
      ? `shape ${fmt(s.param.shape)}`
      : s.layout
      ? `layout ${s.layout.rows}x${s.layout.cols}`
      : `${s.buffer!.dtype} ${fmt(s.buffer!.shape)}`;
    const name = find(names, what);
    const e = tensors[name];
    if (s.param) writes.push([s.param, paramValues(s, name, e)]);
    else if (s.layout) checkLayout(s, name, e);
    else checkBuffer(s.buffer!, name, e);
  }
  for (const [s, name] of ties) {
    const own = writes.find(([p]) => p === s.tied)![1], e = tensors[name].data;
    const i = own.findIndex((v, i) => !Object.is(v, e[i]));
    if (i >= 0) {
      throw new RangeError(
        `load: "${name}" differs from the token embedding at element ${i} (${e[i]} vs ${own[i]}); ` +
          `pixelfly's GPT ties its LM head to the embedding, as GPT-2 does`,
      );
    }
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
