/**
 * The checkpoint fuzz that `checkpoint_fuzz_test.ts` runs in a child process
 * started with `--v8-flags=--expose-gc` (so each case starts from a collected
 * heap and the bytes it allocates can be measured). Seeded mutations and
 * truncations of valid safetensors bytes; each must either load, giving the
 * model exactly the values an independent reading of the bytes gives, or
 * throw a RangeError that names the operation, leaving the model's
 * parameters bit-identical. Prints one JSON line with the counts.
 *
 * Run alone: `deno run --v8-flags=--expose-gc tests/_checkpoint_fuzz.ts [cases] [seed]`
 */
import {
  decodeSafetensors,
  encodeSafetensors,
  Linear,
  load,
  PixelflyLinear,
  type SafetensorsEntry,
  save,
  Sequential,
} from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import { Rng } from "../src/random.ts";

const gc = (globalThis as { gc?: () => void }).gc;

/** The model every case loads into (and its twin that wrote the valid bytes). */
export function fuzzModel(seed: number): Sequential {
  const backend = new JsBackend();
  return new Sequential(
    new PixelflyLinear(64, 48, { block: 16, butterflySize: 4, rank: 4, seed, backend }),
    new Linear(48, 10, { seed: seed + 1, backend }),
  );
}

async function snapshot(m: Sequential): Promise<Map<string, Uint32Array>> {
  const out = new Map<string, Uint32Array>();
  for (const [n, p] of m.namedParameters()) out.set(n, new Uint32Array((await p.data()).buffer.slice(0)));
  return out;
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

const enc = new TextEncoder(), dec = new TextDecoder();

function withHeader(json: string, data: Uint8Array, length?: bigint): Uint8Array {
  const h = enc.encode(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function split(bytes: Uint8Array): { header: Record<string, any>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(dec.decode(bytes.subarray(8, 8 + n))), data: bytes.slice(8 + n) };
}

/**
 * The names a model tensor may have in a file, and how its values sit there:
 * an independent reading, written from the format and the layouts, not from
 * the loader.
 */
export interface Reading {
  /** Candidate file names of a model path. */
  names(path: string): string[];
  /** The model-order F32 values of `path` from a file entry (its shape and raw little-endian values). */
  values(path: string, shape: number[], raw: Float32Array): Float32Array;
}

/** Parameter values as an independent reader sees them in `bytes` (undefined: not loadable). */
function independentRead(
  bytes: Uint8Array,
  paths: string[],
  reading: Reading,
): Map<string, Uint32Array> | undefined {
  try {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = Number(v.getBigUint64(0, true));
    const header = JSON.parse(dec.decode(bytes.subarray(8, 8 + n)));
    const out = new Map<string, Uint32Array>();
    for (const path of paths) {
      const name = reading.names(path).find((c) => Object.hasOwn(header, c));
      if (name === undefined) return undefined;
      const { dtype, shape, data_offsets: [b, e] } = header[name];
      if (dtype !== "F32") return undefined;
      const raw = new Float32Array((e - b) / 4);
      for (let i = 0; i < raw.length; i++) raw[i] = v.getFloat32(8 + n + b + 4 * i, true);
      out.set(path, new Uint32Array(reading.values(path, shape, raw).buffer));
    }
    return out;
  } catch {
    return undefined;
  }
}

const DTYPES = ["F32", "I32", "U8", "F16", "BF16", "F64", "I64", "BOOL", "Q8", "", "f32", 3, null, ["F32"]];
const DIMS = [
  0,
  1,
  2,
  3,
  16,
  48,
  64,
  -1,
  1.5,
  2 ** 31,
  2 ** 32,
  2 ** 40,
  2 ** 53,
  2 ** 53 - 1,
  1e300,
  "4",
  null,
];
const HUGE = [2 ** 31, 2 ** 32 + 4, 2 ** 40, 2 ** 52, 2 ** 53 - 1, 2 ** 53, 2 ** 64, 1e308];

function pick<T>(rng: Rng, a: readonly T[]): T {
  return a[rng.int(a.length)];
}

/** One seeded mutation of valid bytes, with its kind (for the counts). */
function mutate(rng: Rng, good: Uint8Array): { kind: string; bytes: Uint8Array } {
  const len = good.length;
  const n = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(0, true));
  const op = rng.int(9);
  if (op === 0) return { kind: "truncate", bytes: good.slice(0, rng.int(len)) };
  if (op === 1) {
    const out = good.slice();
    const choices = [
      BigInt(n + 1),
      BigInt(n - 1),
      BigInt(rng.int(n + 1)),
      0n,
      BigInt(len - 8),
      BigInt(len - 7),
      BigInt(len),
      2n ** 32n,
      2n ** 53n,
      2n ** 63n,
      2n ** 64n - 1n,
      (BigInt(rng.nextUint32()) << 32n) | BigInt(rng.nextUint32()),
    ];
    new DataView(out.buffer).setBigUint64(0, pick(rng, choices), true);
    return { kind: "length field", bytes: out };
  }
  if (op === 2) {
    const out = good.slice();
    const k = 1 + rng.int(4);
    const chars = enc.encode('{}[],:"0123456789-.eE \\ufF');
    for (let i = 0; i < k; i++) {
      out[8 + rng.int(n)] = rng.int(2) ? chars[rng.int(chars.length)] : rng.int(256);
    }
    return { kind: "header bytes", bytes: out };
  }
  if (op === 3) {
    const out = good.slice();
    const k = 1 + rng.int(8);
    for (let i = 0; i < k; i++) out[8 + n + rng.int(len - 8 - n)] = rng.int(256);
    return { kind: "data bytes", bytes: out };
  }
  if (op === 4) {
    // insert or delete a run of bytes somewhere
    const at = rng.int(len + 1), k = 1 + rng.int(16);
    if (rng.int(2)) {
      const extra = new Uint8Array(k).map(() => rng.int(256));
      const out = new Uint8Array(len + k);
      out.set(good.subarray(0, at));
      out.set(extra, at);
      out.set(good.subarray(at), at + k);
      return { kind: "insert", bytes: out };
    }
    const out = new Uint8Array(Math.max(0, len - k));
    out.set(good.subarray(0, at).subarray(0, out.length));
    if (at + k < len) out.set(good.subarray(at + k), at);
    return { kind: "delete", bytes: out };
  }
  // structured mutations of the JSON header (of a file whose header still parses)
  let parts: ReturnType<typeof split>;
  try {
    parts = split(good);
    if (parts.header === null || typeof parts.header !== "object") throw new TypeError("not an object");
  } catch {
    return { kind: "truncate", bytes: good.slice(0, rng.int(len)) };
  }
  const { header, data } = parts;
  const names = Object.keys(header).filter((k) =>
    k !== "__metadata__" && Array.isArray(header[k]?.shape) && Array.isArray(header[k]?.data_offsets) &&
    header[k].data_offsets.length === 2
  );
  if (!names.length) return { kind: "truncate", bytes: good.slice(0, rng.int(len)) };
  const name = pick(rng, names);
  const info = header[name];
  let kind = "json";
  let json: string | undefined;
  let payload = data;
  if (op === 5) {
    kind = "dtype";
    info.dtype = pick(rng, DTYPES);
  } else if (op === 6) {
    kind = "shape";
    const s = info.shape.slice();
    const r = rng.int(6);
    if (r === 0 && s.length) s[rng.int(s.length)] = pick(rng, DIMS);
    else if (r === 1) s.push(pick(rng, DIMS));
    else if (r === 2) s.pop();
    else if (r === 3) s.reverse();
    else if (r === 4) {
      // a huge declared size with offsets that agree with it
      kind = "huge declared size";
      const d = pick(rng, [2 ** 20, 2 ** 24, 2 ** 26, 3 * 2 ** 25]);
      info.shape = [d, d];
      info.data_offsets = [info.data_offsets[0], info.data_offsets[0] + d * d * 4];
    } else info.shape = pick(rng, [null, "3", {}, [[1]], [1, [2]]]);
    if (r !== 4 && r !== 5) info.shape = s;
  } else if (op === 7) {
    kind = "offsets";
    const [b, e] = info.data_offsets;
    const r = rng.int(8);
    if (r === 0) info.data_offsets = [e, b];
    else if (r === 1) info.data_offsets = [b + pick(rng, [-4, -1, 1, 4]), e];
    else if (r === 2) info.data_offsets = [b, e + pick(rng, [-4, -1, 1, 4])];
    else if (r === 3) info.data_offsets = [b, pick(rng, HUGE)];
    else if (r === 4) info.data_offsets = [pick(rng, HUGE), pick(rng, HUGE)];
    else if (r === 5) info.data_offsets = pick(rng, [[b], [b, e, e], null, "0,4", [-4, e], [b + 0.5, e]]);
    else if (r === 6) {
      // swap with another tensor's offsets
      const other = header[pick(rng, names)];
      [info.data_offsets, other.data_offsets] = [other.data_offsets, info.data_offsets];
    } else {
      // grow the data to match huge offsets, so only the shape check stands between them and an allocation
      kind = "huge offsets";
      info.data_offsets = [b, e + 4 * (1 + rng.int(1 << 12))];
      payload = new Uint8Array(data.length + info.data_offsets[1] - e);
      payload.set(data);
    }
  } else {
    const r = rng.int(7);
    if (r === 0) {
      kind = "entry removed";
      delete header[name];
    } else if (r === 1) {
      kind = "field removed";
      delete info[pick(rng, ["dtype", "shape", "data_offsets"])];
    } else if (r === 2) {
      kind = "entry renamed";
      delete header[name];
      Object.defineProperty(header, pick(rng, [...names, "__proto__", "x", name + "x", name.toUpperCase()]), {
        value: info,
        enumerable: true,
        configurable: true,
        writable: true,
      });
    } else if (r === 3) {
      kind = "entry added";
      const d = pick(rng, [1, 16, 2 ** 20]);
      header[`extra.${d}`] = { dtype: "F32", shape: [d], data_offsets: [data.length, data.length + 4 * d] };
    } else if (r === 4) {
      kind = "metadata";
      header.__metadata__ = pick(rng, [{ a: 1 }, ["x"], null, "pt", { format: { x: 1 } }, {}]);
    } else if (r === 5) {
      kind = "duplicate key";
      const text = JSON.stringify(header);
      const other = pick(rng, names);
      json = text.replace(/}$/, `,${JSON.stringify(other)}:${JSON.stringify(header[name])}}`);
    } else {
      kind = "not an object";
      json = pick(rng, ["[]", "null", "1", '"x"', "{", "", "{}", '{"a":{}}', "[".repeat(5000)]);
    }
  }
  json ??= JSON.stringify(header);
  const lengthOff = rng.int(10) === 0 ? BigInt(enc.encode(json).length + pick(rng, [-1, 1, 8])) : undefined;
  return { kind, bytes: withHeader(json, payload, lengthOff) };
}

/** What {@link runFuzz} counts. */
export interface FuzzSummary {
  cases: number;
  loaded: number;
  rejected: number;
  kinds: Record<string, { loaded: number; rejected: number }>;
  fileBytes: number;
  maxAllocated: number;
  failures: string[];
}

/**
 * Run `cases` seeded mutations of each valid file in `files` against
 * `model`; `reading` resolves names and layouts independently.
 */
export async function runFuzz(
  model: Sequential,
  files: Uint8Array[],
  reading: Reading,
  { cases, seed }: { cases: number; seed: number },
): Promise<FuzzSummary> {
  const rng = new Rng(seed);
  const paths = model.namedParameters().map(([n]) => n);
  const s: FuzzSummary = {
    cases: 0,
    loaded: 0,
    rejected: 0,
    kinds: {},
    fileBytes: Math.max(...files.map((f) => f.length)),
    maxAllocated: 0,
    failures: [],
  };
  let current = await snapshot(model);
  for (let c = 0; c < cases && s.failures.length < 5; c++) {
    const good = files[c % files.length];
    let { kind, bytes } = mutate(rng, good);
    if (rng.int(8) === 0) ({ bytes } = mutate(rng, bytes.length >= 16 ? bytes : good)); // a second mutation
    const count = (s.kinds[kind] ??= { loaded: 0, rejected: 0 });
    const fail = (why: string) => s.failures.push(`case ${c} (${kind}): ${why}`);
    if (c % 64 === 0) gc?.();
    const before = Deno.memoryUsage().external;
    let error: unknown;
    try {
      await load(model, bytes);
    } catch (e) {
      error = e;
    }
    const allocated = Deno.memoryUsage().external - before;
    s.maxAllocated = Math.max(s.maxAllocated, allocated);
    if (allocated > 4 * s.fileBytes + (1 << 16)) {
      fail(`allocated ${allocated} bytes for a ${bytes.length}-byte file`);
    }
    const after = await snapshot(model);
    s.cases++;
    if (error === undefined) {
      s.loaded++;
      count.loaded++;
      const want = independentRead(bytes, paths, reading);
      if (want === undefined) {
        fail("loaded a file that the independent reading cannot read");
        continue;
      }
      for (const p of paths) {
        if (!sameBits(after.get(p)!, want.get(p)!)) {
          fail(`loaded "${p}" with other values than the file holds`);
        }
      }
      current = after;
    } else {
      s.rejected++;
      count.rejected++;
      const msg = (error as Error)?.message ?? String(error);
      if (!(error instanceof RangeError)) fail(`threw ${(error as Error)?.name}: ${msg}`);
      else if (!/^(load|decodeSafetensors): ./.test(msg) || msg.length > 600) fail(`unclear message: ${msg}`);
      for (const p of paths) {
        if (!sameBits(after.get(p)!, current.get(p)!)) fail(`a failed load changed "${p}": ${msg}`);
      }
    }
  }
  return s;
}

/** The valid files the fuzz starts from: fly's names and forms, and pixelfly's earlier names. */
export async function fuzzFiles(): Promise<{ model: Sequential; files: Uint8Array[]; reading: Reading }> {
  const source = fuzzModel(1), model = fuzzModel(2);
  const own = await save(source);
  const { tensors } = decodeSafetensors(own);
  const variant = (edit: (n: string, e: SafetensorsEntry) => [string, SafetensorsEntry]) =>
    encodeSafetensors(Object.fromEntries(Object.entries(tensors).map(([n, e]) => edit(n, e))), { a: "b" });
  const earlier = variant((n, e) =>
    n.endsWith(".layout")
      ? [n.replace(/layout$/, "mask"), { dtype: "U8", shape: e.shape, data: Uint8Array.from(e.data) }]
      : [n.replace("lr_weight1", "V").replace("lr_weight2", "U"), e]
  );
  const triton = variant((n, e) => n === "0.sparse.weight" ? [n, { ...e, shape: [1, ...e.shape] }] : [n, e]);
  const huggingface = variant((n, e) => {
    if (n !== "0.sparse.weight") return [n, e];
    const [nnz, b] = e.shape, t = new Float32Array(e.data.length);
    for (let k = 0; k < nnz; k++) {
      for (let i = 0; i < b; i++) {
        for (let j = 0; j < b; j++) t[(k * b + j) * b + i] = e.data[(k * b + i) * b + j];
      }
    }
    return [n, { dtype: "F32", shape: [nnz * b, b], data: t }];
  });
  const reading: Reading = {
    names: (
      p,
    ) => [p.replace(/low_rank\.V$/, "low_rank.lr_weight1").replace(/low_rank\.U$/, "low_rank.lr_weight2"), p],
    values: (p, shape, raw) => {
      if (!p.endsWith("sparse.weight") || shape.length !== 2) return raw;
      const b = shape[1], nnz = shape[0] / b, out = new Float32Array(raw.length);
      for (let k = 0; k < nnz; k++) {
        for (let i = 0; i < b; i++) {
          for (let j = 0; j < b; j++) out[(k * b + i) * b + j] = raw[(k * b + j) * b + i];
        }
      }
      return out;
    },
  };
  return { model, files: [own, earlier, triton, huggingface], reading };
}

if (import.meta.main) {
  const cases = Number(Deno.args[0] ?? 3000), seed = Number(Deno.args[1] ?? 1);
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  const { model, files, reading } = await fuzzFiles();
  const t0 = performance.now();
  const summary = await runFuzz(model, files, reading, { cases, seed });
  console.log(JSON.stringify({ ...summary, ms: Math.round(performance.now() - t0) }));
}
