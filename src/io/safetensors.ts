/**
 * The safetensors checkpoint format (https://github.com/huggingface/safetensors),
 * written and read byte for byte as the reference library does:
 *
 * ```
 * [ 8 bytes: N, little-endian u64 ][ N bytes: JSON header, padded with spaces ][ data ]
 * header = {"__metadata__":{...},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...}
 * ```
 *
 * `data_offsets` are `[begin, end)` byte offsets into the data that follows the
 * header; the tensors cover it with no gap and no overlap; all numbers are
 * little-endian. The encoder orders tensors as the Rust library does (by dtype,
 * widest first, then by name) and pads the header to a multiple of 8 bytes, so
 * every 4-byte tensor starts 4-aligned and the same tensors always give the
 * same bytes: save -> load -> save is bit-exact.
 *
 * This module knows nothing of tensors or models; it needs no permissions,
 * except {@link writeFileAtomic}, which needs `--allow-write` on Deno (on
 * Node it uses `node:fs/promises`).
 *
 * @module
 */
import { fileSystem } from "./_fs.ts";

/** The element types pixelfly checkpoints use. */
export type SafetensorsDtype = "F32" | "I32" | "U8";

/** One tensor of a safetensors file: element type, shape and row-major data. */
export interface SafetensorsEntry {
  /** Element type; the data array must be of the matching class. */
  dtype: SafetensorsDtype;
  /** Dimensions; `[]` is a scalar (one element), a 0 anywhere makes it empty. */
  shape: number[];
  /** Row-major elements: `Float32Array` for F32, `Int32Array` for I32, `Uint8Array` for U8. */
  data: Float32Array | Int32Array | Uint8Array;
}

/** What {@link decodeSafetensors} returns. */
export interface SafetensorsFile {
  /** The tensors by name, each with its own copy of the data. */
  tensors: Record<string, SafetensorsEntry>;
  /** The `__metadata__` strings (empty when the file has none). */
  metadata: Record<string, string>;
}

const DTYPES: Record<
  SafetensorsDtype,
  {
    size: number;
    ctor: Float32ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;
    rank: number;
  }
> = {
  // rank: the Rust library's Dtype order; tensors are laid out by descending rank, then name.
  F32: { size: 4, ctor: Float32Array, rank: 2 },
  I32: { size: 4, ctor: Int32Array, rank: 1 },
  U8: { size: 1, ctor: Uint8Array, rank: 0 },
};

/** Dtypes of the format that this reader does not take (named in the error). */
const OTHER_DTYPES = new Set([
  "BOOL",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "I16",
  "U16",
  "F16",
  "BF16",
  "U32",
  "F64",
  "I64",
  "U64",
  "C64",
]);

/** The reference library refuses headers above 100 MB; so do we. */
const MAX_HEADER = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const utf8 = new TextEncoder();

function isDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === "string" && Object.hasOwn(DTYPES, d);
}

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function fmtShape(shape: unknown): string {
  return JSON.stringify(shape);
}

/** Compare two strings by their UTF-8 bytes, as Rust's `String` ordering does. */
function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a), y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  // defineProperty, so a tensor named "__proto__" is stored as a plain key.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Copy `n` elements of `dtype` from `src` at byte `begin` into a new, aligned typed array. */
function copyOut(
  src: Uint8Array,
  begin: number,
  n: number,
  dtype: SafetensorsDtype,
): Float32Array | Int32Array | Uint8Array {
  const bytes = n * DTYPES[dtype].size;
  if (dtype === "U8") return src.slice(begin, begin + n);
  if (LITTLE_ENDIAN) {
    const buf = src.slice(begin, begin + bytes).buffer;
    return dtype === "F32" ? new Float32Array(buf) : new Int32Array(buf);
  }
  const view = new DataView(src.buffer, src.byteOffset + begin, bytes);
  const out = dtype === "F32" ? new Float32Array(n) : new Int32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = dtype === "F32" ? view.getFloat32(4 * i, true) : view.getInt32(4 * i, true);
  }
  return out;
}

/** Write the elements of `data` little-endian into `dst` at byte `at`. */
function copyIn(dst: Uint8Array, at: number, data: Float32Array | Int32Array | Uint8Array): void {
  if (data instanceof Uint8Array || LITTLE_ENDIAN) {
    dst.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    return;
  }
  const view = new DataView(dst.buffer, dst.byteOffset + at, data.byteLength);
  for (let i = 0; i < data.length; i++) {
    if (data instanceof Float32Array) view.setFloat32(4 * i, data[i], true);
    else view.setInt32(4 * i, data[i], true);
  }
}

function checkShape(
  op: string,
  name: string,
  shape: unknown,
  where: string,
  NotArray: typeof TypeError | typeof RangeError = TypeError,
): number[] {
  if (!Array.isArray(shape)) {
    throw new NotArray(`${op}: ${where} "${name}" has shape ${fmtShape(shape)}, which is not an array`);
  }
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(
        `${op}: ${where} "${name}" has shape ${fmtShape(shape)}; dimensions must be non-negative integers`,
      );
    }
  }
  if (!Number.isSafeInteger(numel(shape))) {
    throw new RangeError(`${op}: ${where} "${name}" has shape ${fmtShape(shape)}, too many elements`);
  }
  return shape as number[];
}

/**
 * Encode tensors (and optional string metadata) as safetensors bytes.
 *
 * Deterministic: tensors are laid out as the Rust/Python library lays them out
 * (F32, then I32, then U8; by name within a dtype), metadata keys are sorted,
 * and the header is padded with spaces to a multiple of 8 bytes.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./mod.ts";
 * const bytes = encodeSafetensors(
 *   { "fc.weight": { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   { format: "pt" },
 * );
 * const back = decodeSafetensors(bytes);
 * console.log(back.tensors["fc.weight"].data); // Float32Array(4) [ 1, 2, 3, 4 ]
 * console.log(back.metadata.format); // "pt"
 * ```
 */
export function encodeSafetensors(
  entries: Record<string, SafetensorsEntry>,
  metadata?: Record<string, string>,
): Uint8Array {
  const op = "encodeSafetensors";
  if (entries === null || typeof entries !== "object") {
    throw new TypeError(`${op}: entries must be an object of name -> tensor, got ${entries}`);
  }
  const names = Object.keys(entries);
  for (const name of names) {
    if (name === "__metadata__") {
      throw new RangeError(`${op}: "__metadata__" is reserved for the metadata and cannot name a tensor`);
    }
    const e = entries[name];
    if (e === null || typeof e !== "object") {
      throw new TypeError(`${op}: tensor "${name}" must be an object { dtype, shape, data }, got ${e}`);
    }
    if (!isDtype(e.dtype)) {
      throw new RangeError(
        `${op}: tensor "${name}" has dtype ${JSON.stringify(e.dtype)}; expected F32, I32 or U8`,
      );
    }
    const shape = checkShape(op, name, e.shape, "tensor");
    const want = DTYPES[e.dtype].ctor;
    if (!(e.data instanceof want)) {
      throw new TypeError(
        `${op}: tensor "${name}" has dtype ${e.dtype}, so its data must be a ${want.name}, got ${
          e.data?.constructor?.name ?? e.data
        }`,
      );
    }
    if (e.data.length !== numel(shape)) {
      throw new RangeError(
        `${op}: tensor "${name}" has shape ${fmtShape(shape)} (${
          numel(shape)
        } elements) but ${e.data.length} data elements`,
      );
    }
  }
  const meta: [string, string][] = [];
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object") {
      throw new TypeError(`${op}: metadata must be an object of string -> string, got ${metadata}`);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new TypeError(`${op}: metadata "${k}" must be a string, got ${typeof v} ${String(v)}`);
      }
      meta.push([k, v]);
    }
    meta.sort((a, b) => compareUtf8(a[0], b[0]));
  }

  names.sort((a, b) => DTYPES[entries[b].dtype].rank - DTYPES[entries[a].dtype].rank || compareUtf8(a, b));
  // Build the header by hand so key order is exactly ours (JSON.stringify would move "0", "1", ... first).
  const parts: string[] = [];
  if (metadata !== undefined) {
    parts.push(
      `"__metadata__":{${meta.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`,
    );
  }
  let offset = 0;
  for (const name of names) {
    const e = entries[name];
    const end = offset + e.data.byteLength;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${e.dtype}","shape":[${
        e.shape.join(",")
      }],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = utf8.encode(`{${parts.join(",")}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let at = 8 + headerLen;
  for (const name of names) {
    copyIn(out, at, entries[name].data);
    at += entries[name].data.byteLength;
  }
  return out;
}

/**
 * Decode safetensors bytes into tensors and metadata, validating every
 * declared size against the byte length before allocating anything: a
 * `RangeError` names the problem (truncated file, header length beyond the
 * file, invalid UTF-8 or JSON, unsupported dtype, shape that does not match
 * the byte length, overlapping, out-of-range or gapped offsets, non-string
 * metadata); a `TypeError` only when `bytes` is not a `Uint8Array`. Each
 * tensor's data is copied into its own aligned typed array, so the decoded
 * tensors never take more than the file's size.
 *
 * @example
 * ```ts
 * import { decodeSafetensors } from "./mod.ts";
 * // A hand-made file: one U8 tensor of shape [3].
 * const header = '{"x":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}';
 * const json = new TextEncoder().encode(header);
 * const bytes = new Uint8Array(8 + json.length + 3);
 * new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
 * bytes.set(json, 8);
 * bytes.set([7, 8, 9], 8 + json.length);
 * console.log(decodeSafetensors(bytes).tensors.x); // { dtype: "U8", shape: [ 3 ], data: Uint8Array(3) [ 7, 8, 9 ] }
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  const op = "decodeSafetensors";
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `${op}: bytes must be a Uint8Array, got ${(bytes as any)?.constructor?.name ?? bytes}`,
    );
  }
  if (bytes.length < 8) {
    throw new RangeError(`${op}: truncated file: ${bytes.length} bytes, fewer than the 8-byte header length`);
  }
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) {
    throw new RangeError(
      `${op}: header length ${n64} goes beyond the file (${bytes.length} bytes, so at most ${
        bytes.length - 8
      })`,
    );
  }
  const n = Number(n64);
  if (n > MAX_HEADER) {
    throw new RangeError(`${op}: header length ${n} is above the limit of ${MAX_HEADER} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new RangeError(`${op}: the ${n}-byte header is not valid UTF-8`);
  }
  if (!text.startsWith("{")) {
    throw new RangeError(
      `${op}: the header must be a JSON object starting with "{", got ${JSON.stringify(text.slice(0, 20))}`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new RangeError(`${op}: the ${n}-byte header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new RangeError(
      `${op}: the header must be a JSON object, got ${JSON.stringify(header).slice(0, 40)}`,
    );
  }

  const metadata: Record<string, string> = {};
  const infos: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (info === null || typeof info !== "object" || Array.isArray(info)) {
        throw new RangeError(
          `${op}: __metadata__ must be an object of string -> string, got ${JSON.stringify(info)}`,
        );
      }
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== "string") {
          throw new RangeError(`${op}: metadata "${k}" must be a string, got ${JSON.stringify(v)}`);
        }
        setOwn(metadata, k, v);
      }
      continue;
    }
    if (info === null || typeof info !== "object" || Array.isArray(info)) {
      throw new RangeError(`${op}: tensor "${name}" must be an object { dtype, shape, data_offsets }`);
    }
    const { dtype, shape, data_offsets: offs } = info as Record<string, unknown>;
    if (!isDtype(dtype)) {
      const known = typeof dtype === "string" && OTHER_DTYPES.has(dtype);
      throw new RangeError(
        `${op}: tensor "${name}" has ${known ? "unsupported" : "unknown"} dtype ${
          JSON.stringify(dtype)
        }; supported: F32, I32, U8`,
      );
    }
    checkShape(op, name, shape, "tensor", RangeError);
    if (
      !Array.isArray(offs) || offs.length !== 2 ||
      !offs.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new RangeError(
        `${op}: tensor "${name}" has data_offsets ${
          JSON.stringify(offs)
        }; expected [begin, end] of non-negative integers`,
      );
    }
    const [begin, end] = offs as number[];
    if (end < begin) {
      throw new RangeError(
        `${op}: tensor "${name}" has data_offsets [${begin}, ${end}] with end before begin`,
      );
    }
    const want = numel(shape as number[]) * DTYPES[dtype].size;
    if (end - begin !== want) {
      throw new RangeError(
        `${op}: tensor "${name}" of dtype ${dtype} and shape ${fmtShape(shape)} needs ${want} bytes, ` +
          `but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    infos.push({ name, dtype, shape: (shape as number[]).slice(), begin, end });
  }

  const dataStart = 8 + n, dataLen = bytes.length - dataStart;
  const sorted = infos.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const t of sorted) {
    if (t.begin < at) {
      throw new RangeError(
        `${op}: tensor "${t.name}" at data_offsets [${t.begin}, ${t.end}] overlaps the previous tensor, ` +
          `which ends at ${at}`,
      );
    }
    if (t.begin > at) {
      throw new RangeError(
        `${op}: gap in the data: bytes [${at}, ${t.begin}) belong to no tensor (next is "${t.name}")`,
      );
    }
    if (t.end > dataLen) {
      throw new RangeError(
        `${op}: tensor "${t.name}" at data_offsets [${t.begin}, ${t.end}] is out of range: ` +
          `the data holds ${dataLen} bytes (file truncated?)`,
      );
    }
    at = t.end;
  }
  if (at !== dataLen) {
    throw new RangeError(`${op}: the data holds ${dataLen} bytes but the tensors cover only ${at}`);
  }

  const tensors: Record<string, SafetensorsEntry> = {};
  for (const t of infos) {
    setOwn(tensors, t.name, {
      dtype: t.dtype,
      shape: t.shape,
      data: copyOut(bytes, dataStart + t.begin, numel(t.shape), t.dtype),
    });
  }
  return { tensors, metadata };
}

/**
 * Write `bytes` to `path` atomically: into `path + ".tmp-<random>"` first,
 * flushed to disk, then renamed over `path`, so a reader never sees half a
 * file. On Deno it needs `--allow-write` (and `--allow-read` on some systems
 * for the rename); on Node and Bun it uses `node:fs/promises`; elsewhere it
 * throws a TypeError naming what to use instead.
 *
 * @example
 * ```ts
 * import { encodeSafetensors, writeFileAtomic } from "./mod.ts";
 * const dir = await Deno.makeTempDir();
 * const bytes = encodeSafetensors({ b: { dtype: "I32", shape: [], data: new Int32Array([42]) } });
 * await writeFileAtomic(`${dir}/model.safetensors`, bytes);
 * console.log((await Deno.readFile(`${dir}/model.safetensors`)).length === bytes.length); // true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`writeFileAtomic: path must be a non-empty string, got ${JSON.stringify(path)}`);
  }
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `writeFileAtomic: bytes must be a Uint8Array, got ${(bytes as any)?.constructor?.name}`,
    );
  }
  await (await fileSystem("writeFileAtomic")).writeAtomic(path, bytes);
}
