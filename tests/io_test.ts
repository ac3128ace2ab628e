/**
 * src/io: the safetensors codec (known-answer bytes built by hand from the
 * format's specification, bit-exact round trips, every corruption), the IDX
 * reader, the Fashion-MNIST loader and the synthetic image task.
 */
import { assertEquals, assertOk, assertRejects, assertThrows } from "./_assert.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  FASHION_MNIST_DEBIAN_DIR,
  gunzip,
  loadFashionMnist,
  parseIdx,
  readIdx,
  type SafetensorsEntry,
  syntheticImages,
  writeFileAtomic,
} from "../src/io/mod.ts";
import { Rng } from "../src/random.ts";

const enc = new TextEncoder();

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A safetensors file from a header (object or raw string) and data bytes, with an optional forced length. */
function stFile(header: unknown, data: number[] | Uint8Array = [], lengthField?: bigint): Uint8Array {
  const json = enc.encode(typeof header === "string" ? header : JSON.stringify(header));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, lengthField ?? BigInt(json.length), true);
  return concat(len, json, data);
}

function bytesOf(a: Float32Array | Int32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// ---------------------------------------------------------------- safetensors

Deno.test("safetensors: known-answer bytes from the specification, both ways", () => {
  // Layout as the Rust/Python library writes it: F32 tensors, then I32, then U8, each by name;
  // __metadata__ first; compact JSON; header padded with spaces to a multiple of 8.
  const json = '{"__metadata__":{"format":"pt"},' +
    '"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},' +
    '"b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]},' +
    '"c":{"dtype":"U8","shape":[0],"data_offsets":[12,12]},' +
    '"d.w":{"dtype":"U8","shape":[1,3],"data_offsets":[12,15]}}';
  assertEquals(json.length, 250); // so the header is padded with 6 spaces to 256
  const expected = concat(
    [0x00, 0x01, 0, 0, 0, 0, 0, 0], // 256, little-endian u64
    enc.encode(json + "      "),
    [0x00, 0x00, 0xc0, 0x3f], // 1.5f little-endian
    [0x01, 0x00, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff], // 1, -2
    [7, 8, 255],
  );
  const entries: Record<string, SafetensorsEntry> = {
    "d.w": { dtype: "U8", shape: [1, 3], data: new Uint8Array([7, 8, 255]) },
    c: { dtype: "U8", shape: [0], data: new Uint8Array(0) },
    b: { dtype: "I32", shape: [2], data: new Int32Array([1, -2]) },
    a: { dtype: "F32", shape: [], data: new Float32Array([1.5]) },
  };
  assertEquals(encodeSafetensors(entries, { format: "pt" }), expected);
  const back = decodeSafetensors(expected);
  assertEquals(back.metadata, { format: "pt" });
  assertEquals(back.tensors.a, { dtype: "F32", shape: [], data: new Float32Array([1.5]) });
  assertEquals(back.tensors.b, { dtype: "I32", shape: [2], data: new Int32Array([1, -2]) });
  assertEquals(back.tensors.c, { dtype: "U8", shape: [0], data: new Uint8Array(0) });
  assertEquals(back.tensors["d.w"], { dtype: "U8", shape: [1, 3], data: new Uint8Array([7, 8, 255]) });
});

Deno.test("safetensors: reads files of other writers (key order, whitespace, no padding, unaligned data)", () => {
  // A U8 tensor first puts the F32 at data offset 3: the decoder must still return an aligned Float32Array.
  const header = '{ "w" : {"data_offsets": [3, 11], "shape": [2], "dtype": "F32"},\n' +
    '"u": {"shape": [3], "dtype": "U8", "data_offsets": [0, 3], "extra": 1} }';
  const bytes = stFile(header, [9, 8, 7, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  const { tensors, metadata } = decodeSafetensors(bytes);
  assertEquals(metadata, {});
  assertEquals(tensors.u.data, new Uint8Array([9, 8, 7]));
  assertEquals(tensors.w.data, new Float32Array([1, -2]));
  assertEquals(tensors.w.data.byteOffset, 0);
  assertEquals(tensors.w.data.buffer.byteLength, 8);
  // Re-encoding gives our canonical layout, and that layout is stable.
  const again = encodeSafetensors(tensors);
  assertEquals(encodeSafetensors(decodeSafetensors(again).tensors), again);
});

function randomEntries(seed: number): Record<string, SafetensorsEntry> {
  const rng = new Rng(seed);
  const shapes = [[], [0], [3, 0, 2], [1], [1, 1, 1, 1], [3, 5], [7, 13, 3], [2, 1, 9]];
  const out: Record<string, SafetensorsEntry> = {};
  shapes.forEach((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const u32 = new Uint32Array(n);
    for (let k = 0; k < n; k++) u32[k] = rng.nextUint32();
    out[`layers.${i}.f`] = { dtype: "F32", shape, data: new Float32Array(u32.buffer.slice(0)) }; // any bits, NaNs too
    out[`layers.${i}.i`] = { dtype: "I32", shape, data: new Int32Array(u32.buffer.slice(0)) };
    out[`layers.${i}.u`] = { dtype: "U8", shape, data: new Uint8Array(u32.slice(0, n).map((v) => v & 255)) };
  });
  const special = new Float32Array([0, -0, Infinity, -Infinity, NaN, 1e-45, -3.4028234663852886e38, 0.1]);
  out["special"] = { dtype: "F32", shape: [2, 4], data: special };
  out["ints"] = { dtype: "I32", shape: [3], data: new Int32Array([-2147483648, 2147483647, 0]) };
  return out;
}

Deno.test("safetensors: round trip is bit-exact for every dtype and odd shapes, and save -> load -> save too", () => {
  const entries = randomEntries(11);
  const bytes = encodeSafetensors(entries, { note: 'ü ✓ "quoted"\n', "": "empty key" });
  const back = decodeSafetensors(bytes);
  assertEquals(Object.keys(back.tensors).sort(), Object.keys(entries).sort());
  for (const [name, e] of Object.entries(entries)) {
    const b = back.tensors[name];
    assertEquals(b.dtype, e.dtype, name);
    assertEquals(b.shape, e.shape, name);
    assertEquals(b.data.constructor, e.data.constructor, name);
    assertEquals(bytesOf(b.data), bytesOf(e.data), `${name}: bits differ`);
  }
  assertEquals(back.metadata, { note: 'ü ✓ "quoted"\n', "": "empty key" });
  assertEquals(encodeSafetensors(back.tensors, back.metadata), bytes);
  // Insertion order does not matter.
  const reversed = Object.fromEntries(Object.entries(entries).reverse());
  assertEquals(encodeSafetensors(reversed, { "": "empty key", note: 'ü ✓ "quoted"\n' }), bytes);
});

Deno.test("safetensors: header padded to 8 and every 4-byte tensor 4-aligned", () => {
  for (let extra = 0; extra < 10; extra++) {
    const entries: Record<string, SafetensorsEntry> = {
      ["u".repeat(extra + 1)]: { dtype: "U8", shape: [extra], data: new Uint8Array(extra) },
      w: { dtype: "F32", shape: [extra + 1], data: new Float32Array(extra + 1) },
      k: { dtype: "I32", shape: [2], data: new Int32Array(2) },
    };
    const bytes = encodeSafetensors(entries);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assertEquals(n % 8, 0, `header length ${n}`);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    assertEquals(header.w.data_offsets[0] % 4, 0);
    assertEquals(header.k.data_offsets[0] % 4, 0);
    assertOk(/^\{.*\} *$/.test(new TextDecoder().decode(bytes.subarray(8, 8 + n))), "padding is spaces");
  }
});

Deno.test("safetensors: awkward tensor names round trip", () => {
  const names = ["0", "10", "2", "__proto__", 'a"b\\c', "ünïcödé.𝔀", "constructor", " "];
  const entries: Record<string, SafetensorsEntry> = {};
  names.forEach((name, i) =>
    Object.defineProperty(entries, name, {
      value: { dtype: "I32", shape: [1], data: new Int32Array([i]) },
      enumerable: true,
    })
  );
  const back = decodeSafetensors(encodeSafetensors(entries)).tensors;
  assertEquals(Object.keys(back).sort(), names.slice().sort());
  names.forEach((name, i) => assertEquals(back[name].data[0], i, name));
  assertEquals(Object.getPrototypeOf(back), Object.prototype);
});

Deno.test("safetensors: decoded data is a copy of the file", () => {
  const bytes = encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
  const back = decodeSafetensors(bytes);
  bytes.fill(0, bytes.length - 8);
  assertEquals(back.tensors.w.data, new Float32Array([1, 2]));
  // and from a Uint8Array that is a view into a larger buffer
  const framed = new Uint8Array(bytes.length + 5);
  const good = encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([3, 4]) } });
  framed.set(good, 3);
  assertEquals(
    decodeSafetensors(framed.subarray(3, 3 + good.length)).tensors.w.data,
    new Float32Array([3, 4]),
  );
});

Deno.test("safetensors: encode rejects bad input with clear errors", () => {
  const f = (data: any, shape: number[] = [2], dtype: any = "F32") => ({ w: { dtype, shape, data } });
  assertThrows(
    () => encodeSafetensors(f(new Int32Array(2))),
    TypeError,
    'tensor "w" has dtype F32, so its data must be a Float32Array, got Int32Array',
  );
  assertThrows(() => encodeSafetensors(f([1, 2])), TypeError, "must be a Float32Array, got Array");
  assertThrows(
    () => encodeSafetensors(f(new Float32Array(3))),
    RangeError,
    'tensor "w" has shape [2] (2 elements) but 3 data elements',
  );
  assertThrows(
    () => encodeSafetensors(f(new Float32Array(0), [-1])),
    RangeError,
    "dimensions must be non-negative integers",
  );
  assertThrows(() => encodeSafetensors(f(new Float32Array(1), [1.5])), RangeError, "shape [1.5]");
  assertThrows(
    () => encodeSafetensors(f(new Float32Array(2), [2], "F16")),
    RangeError,
    'dtype "F16"; expected F32, I32 or U8',
  );
  assertThrows(() => encodeSafetensors({ __metadata__: f(new Float32Array(2)).w }), RangeError, "reserved");
  assertThrows(
    () => encodeSafetensors({}, { a: 1 } as any),
    TypeError,
    'metadata "a" must be a string, got number 1',
  );
  assertThrows(
    () => encodeSafetensors(null as any),
    TypeError,
    "encodeSafetensors: entries must be an object",
  );
  assertThrows(() => encodeSafetensors({ w: null } as any), TypeError, 'tensor "w" must be an object');
});

Deno.test("safetensors: every corruption is a clear error naming the operation and values", () => {
  const good = encodeSafetensors({
    a: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
    b: { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) },
  });
  const F32x2 = (offs: unknown, shape: unknown = [2]) => ({ dtype: "F32", shape, data_offsets: offs });
  const cases: [string, () => unknown, new (...a: any[]) => Error, string][] = [
    ["empty", () => decodeSafetensors(new Uint8Array(0)), RangeError, "truncated file: 0 bytes"],
    ["7 bytes", () => decodeSafetensors(good.subarray(0, 7)), RangeError, "truncated file: 7 bytes"],
    [
      "header cut",
      () => decodeSafetensors(good.subarray(0, 20)),
      RangeError,
      "goes beyond the file (20 bytes, so at most 12)",
    ],
    [
      "data cut",
      () => decodeSafetensors(good.subarray(0, good.length - 1)),
      RangeError,
      'tensor "b" at data_offsets [8, 11] is out of range: the data holds 10 bytes',
    ],
    [
      "huge length",
      () => decodeSafetensors(stFile("{}", [], 2n ** 64n - 1n)),
      RangeError,
      "header length 18446744073709551615 goes beyond the file",
    ],
    [
      "bad utf-8",
      () => decodeSafetensors(concat([2, 0, 0, 0, 0, 0, 0, 0], [0xc3, 0x28])),
      RangeError,
      "not valid UTF-8",
    ],
    [
      "not an object",
      () => decodeSafetensors(stFile("[1, 2]")),
      RangeError,
      'must be a JSON object starting with "{"',
    ],
    [
      "invalid JSON",
      () => decodeSafetensors(stFile('{"a": ')),
      RangeError,
      "decodeSafetensors: the 6-byte header is not valid JSON",
    ],
    [
      "unknown dtype",
      () => decodeSafetensors(stFile({ a: { dtype: "Q8", shape: [1], data_offsets: [0, 1] } }, [0])),
      RangeError,
      'tensor "a" has unknown dtype "Q8"; supported: F32, I32, U8',
    ],
    [
      "unsupported dtype",
      () => decodeSafetensors(stFile({ a: { dtype: "F16", shape: [1], data_offsets: [0, 2] } }, [0, 0])),
      RangeError,
      'unsupported dtype "F16"',
    ],
    [
      "shape vs bytes",
      () => decodeSafetensors(stFile({ a: F32x2([0, 4]) }, [0, 0, 0, 0])),
      RangeError,
      'tensor "a" of dtype F32 and shape [2] needs 8 bytes, but data_offsets [0, 4] span 4',
    ],
    [
      "negative dim",
      () => decodeSafetensors(stFile({ a: F32x2([0, 8], [-2]) }, new Uint8Array(8))),
      RangeError,
      "shape [-2]; dimensions must be non-negative integers",
    ],
    [
      "shape not array",
      () => decodeSafetensors(stFile({ a: F32x2([0, 8], "2") }, new Uint8Array(8))),
      RangeError,
      'has shape "2", which is not an array',
    ],
    [
      "offsets not pair",
      () => decodeSafetensors(stFile({ a: F32x2([0]) })),
      RangeError,
      "data_offsets [0]; expected [begin, end]",
    ],
    [
      "end before begin",
      () => decodeSafetensors(stFile({ a: F32x2([8, 0]) }, new Uint8Array(8))),
      RangeError,
      "with end before begin",
    ],
    [
      "overlap",
      () => decodeSafetensors(stFile({ a: F32x2([0, 8]), b: F32x2([4, 12]) }, new Uint8Array(12))),
      RangeError,
      'tensor "b" at data_offsets [4, 12] overlaps the previous tensor, which ends at 8',
    ],
    [
      "gap",
      () => decodeSafetensors(stFile({ a: F32x2([0, 8]), b: F32x2([12, 20]) }, new Uint8Array(20))),
      RangeError,
      'gap in the data: bytes [8, 12) belong to no tensor (next is "b")',
    ],
    [
      "leading gap",
      () => decodeSafetensors(stFile({ a: F32x2([4, 12]) }, new Uint8Array(12))),
      RangeError,
      "bytes [0, 4) belong to no tensor",
    ],
    [
      "out of range",
      () => decodeSafetensors(stFile({ a: F32x2([0, 8]) }, new Uint8Array(4))),
      RangeError,
      "is out of range: the data holds 4 bytes",
    ],
    [
      "trailing bytes",
      () => decodeSafetensors(stFile({ a: F32x2([0, 8]) }, new Uint8Array(9))),
      RangeError,
      "the data holds 9 bytes but the tensors cover only 8",
    ],
    [
      "metadata value",
      () => decodeSafetensors(stFile({ __metadata__: { a: 1 } })),
      RangeError,
      'metadata "a" must be a string, got 1',
    ],
    [
      "metadata type",
      () => decodeSafetensors(stFile({ __metadata__: ["x"] })),
      RangeError,
      "__metadata__ must be an object of string -> string",
    ],
    ["info type", () => decodeSafetensors(stFile({ a: 3 })), RangeError, 'tensor "a" must be an object'],
    [
      "not bytes",
      () => decodeSafetensors([1, 2, 3] as any),
      TypeError,
      "bytes must be a Uint8Array, got Array",
    ],
  ];
  for (const [label, fn, cls, msg] of cases) {
    const err = assertThrows(fn, cls, msg);
    assertOk(err.message.startsWith("decodeSafetensors: "), `${label}: ${err.message}`);
  }
  // The good file still decodes, and an empty file of tensors is valid.
  assertEquals(decodeSafetensors(good).tensors.b.data, new Uint8Array([1, 2, 3]));
  assertEquals(decodeSafetensors(encodeSafetensors({})), { tensors: {}, metadata: {} });
});

Deno.test("safetensors: writeFileAtomic writes, replaces, and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/m.safetensors`;
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    await writeFileAtomic(path, new Uint8Array([4, 5]));
    assertEquals(await Deno.readFile(path), new Uint8Array([4, 5]));
    await assertRejects(
      () => writeFileAtomic(`${dir}/no/such/dir/m`, new Uint8Array(1)),
      Deno.errors.NotFound,
    );
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, ["m.safetensors"]);
    await assertRejects(
      () => writeFileAtomic("", new Uint8Array(1)),
      TypeError,
      "path must be a non-empty string",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- IDX

/** An IDX file built by hand: magic, big-endian dims, then `data` bytes as given. */
function idx(type: number, dims: number[], data: number[]): Uint8Array {
  const head = [0, 0, type, dims.length];
  for (const d of dims) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return new Uint8Array([...head, ...data]);
}

Deno.test("idx: parses hand-built u8 files of 1, 2 and 3 dimensions", () => {
  assertEquals(parseIdx(idx(0x08, [3], [5, 0, 255])), {
    dtype: "u8",
    shape: [3],
    data: new Uint8Array([5, 0, 255]),
  });
  assertEquals(parseIdx(idx(0x08, [2, 3], [1, 2, 3, 4, 5, 6])).shape, [2, 3]);
  const big = idx(0x08, [2, 2, 300], Array.from({ length: 1200 }, (_, i) => i % 251));
  assertEquals(big.subarray(0, 16), new Uint8Array([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 1, 0x2c]));
  const a = parseIdx(big);
  assertEquals(a.shape, [2, 2, 300]);
  assertEquals(a.data.length, 1200);
  assertEquals(a.data[1199], 1199 % 251);
  assertEquals(parseIdx(idx(0x08, [0], [])).data, new Uint8Array(0));
});

Deno.test("idx: big-endian elements of every type", () => {
  // 1.5f = 3F C0 00 00, -2f = C0 00 00 00 (big-endian)
  assertEquals(parseIdx(idx(0x0d, [2], [0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0])).data, new Float32Array([1.5, -2]));
  assertEquals(
    parseIdx(idx(0x0d, [1, 2, 1], [0x3f, 0x80, 0, 0, 0x7f, 0x80, 0, 0])),
    { dtype: "f32", shape: [1, 2, 1], data: new Float32Array([1, Infinity]) },
  );
  assertEquals(parseIdx(idx(0x09, [2], [0xff, 0x7f])).data, new Int8Array([-1, 127]));
  assertEquals(parseIdx(idx(0x0b, [2], [0x01, 0x02, 0xff, 0xfe])).data, new Int16Array([258, -2]));
  assertEquals(parseIdx(idx(0x0c, [1], [0x80, 0, 0, 1])).data, new Int32Array([-2147483647]));
  // 0.1 as f64 = 3F B9 99 99 99 99 99 9A
  assertEquals(
    parseIdx(idx(0x0e, [1], [0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a])).data,
    new Float64Array([0.1]),
  );
});

Deno.test("idx: bad magic, truncation and trailing bytes are clear errors", () => {
  assertThrows(() => parseIdx(new Uint8Array([0, 0, 8])), RangeError, "parseIdx: truncated file: 3 bytes");
  assertThrows(
    () => parseIdx(new Uint8Array([1, 0, 8, 1, 0, 0, 0, 0])),
    RangeError,
    "bad magic number: the first two bytes must be 0x00 0x00, got 0x01 0x00",
  );
  assertThrows(
    () => parseIdx(new Uint8Array([0x1f, 0x8b, 8, 0])),
    RangeError,
    "this is gzip data: gunzip it first",
  );
  assertThrows(() => parseIdx(idx(0x0a, [1], [0])), RangeError, "unknown type byte 0x0A");
  assertThrows(
    () => parseIdx(new Uint8Array([0, 0, 8, 3, 0, 0, 0, 2, 0, 0])),
    RangeError,
    "3 dimensions need a 16-byte header, the file has 10 bytes",
  );
  assertThrows(
    () => parseIdx(idx(0x08, [2, 3], [1, 2, 3, 4, 5])),
    RangeError,
    "shape [2, 3] of u8 needs 6 data bytes, the file has 5",
  );
  assertThrows(
    () => parseIdx(idx(0x0d, [2], [0, 0, 0, 0, 0, 0, 0])),
    RangeError,
    "shape [2] of f32 needs 8 data bytes, the file has 7",
  );
  assertThrows(
    () => parseIdx(idx(0x08, [2], [1, 2, 3])),
    RangeError,
    "1 trailing bytes after the data of shape [2] of u8",
  );
  assertThrows(() => parseIdx(idx(0x08, [0xffffffff, 0xffffffff], [])), RangeError, "truncated file");
  assertThrows(() => parseIdx("abc" as any), TypeError, "parseIdx: bytes must be a Uint8Array");
});

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("idx: gunzip round trip and corrupt input", async () => {
  const raw = idx(0x08, [4, 5], Array.from({ length: 20 }, (_, i) => i * 7));
  const gz = await gzip(raw);
  assertEquals([gz[0], gz[1]], [0x1f, 0x8b]);
  assertEquals(await gunzip(gz), raw);
  await assertRejects(
    () => gunzip(raw),
    TypeError,
    "gunzip: not gzip data: it must start with 0x1F 0x8B, got 0x00 0x00",
  );
  await assertRejects(() => gunzip(new Uint8Array(0)), TypeError, "got an empty array");
  await assertRejects(
    () => gunzip(gz.subarray(0, gz.length - 9)),
    TypeError,
    "gunzip: corrupt or truncated gzip data",
  );
  const bad = gz.slice();
  bad[12] ^= 0xff;
  await assertRejects(() => gunzip(bad), TypeError, "gunzip: corrupt or truncated gzip data");
});

Deno.test("idx: readIdx decides gzip by the magic bytes, not the name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const raw = idx(0x08, [2, 2], [1, 2, 3, 4]);
    await Deno.writeFile(`${dir}/a.gz`, raw); // raw bytes under a .gz name
    await Deno.writeFile(`${dir}/b`, await gzip(raw)); // gzip without the suffix
    assertEquals((await readIdx(`${dir}/a.gz`)).data, new Uint8Array([1, 2, 3, 4]));
    assertEquals((await readIdx(`${dir}/b`)).data, new Uint8Array([1, 2, 3, 4]));
    await Deno.writeFile(`${dir}/c`, raw.subarray(0, 10));
    await assertRejects(() => readIdx(`${dir}/c`), RangeError, `readIdx: ${dir}/c: parseIdx: truncated file`);
    await assertRejects(() => readIdx(`${dir}/missing`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- Fashion-MNIST

/** Write tiny Fashion-MNIST-format files: pixel (e, p) = (e * 31 + p) % 256, label e % 10. */
async function writeFake(
  dir: string,
  { train = 5, test = 3, side = 28, gz = true, label = (e: number) => e % 10 } = {},
): Promise<void> {
  const images = (n: number) =>
    idx(
      0x08,
      [n, side, side],
      Array.from({ length: n * side * side }, (_, i) => (Math.floor(i / (side * side)) * 31 + i) % 256),
    );
  const labels = (n: number) => idx(0x08, [n], Array.from({ length: n }, (_, e) => label(e)));
  const files: [string, Uint8Array][] = [
    ["train-images-idx3-ubyte", images(train)],
    ["train-labels-idx1-ubyte", labels(train)],
    ["t10k-images-idx3-ubyte", images(test)],
    ["t10k-labels-idx1-ubyte", labels(test)],
  ];
  for (const [i, [name, bytes]] of files.entries()) {
    // Mix: some gzipped with .gz, some raw, when gz is on.
    if (gz && i % 2 === 0) await Deno.writeFile(`${dir}/${name}.gz`, await gzip(bytes));
    else await Deno.writeFile(`${dir}/${name}`, bytes);
  }
}

Deno.test("fashion-mnist: loads tiny files of the right format from a folder, gz and raw", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeFake(dir);
    const d = await loadFashionMnist(dir, { counts: null });
    assertOk(d);
    assertEquals(d.source, dir);
    assertEquals([d.train.n, d.test.n], [5, 3]);
    assertEquals(d.train.labels, new Uint8Array([0, 1, 2, 3, 4]));
    assertEquals(d.train.images.length, 5 * 784);
    for (const [e, p] of [[0, 0], [0, 255], [2, 100], [4, 783]]) {
      assertEquals(
        d.train.images[e * 784 + p],
        Math.fround(((e * 784 + p + e * 31) % 256) / 255),
        `pixel ${e},${p}`,
      );
    }
    assertEquals(d.test.images[255], 1);
    // The real counts are required by default.
    await assertRejects(() => loadFashionMnist(dir), RangeError, "has 5 images; Fashion-MNIST has 60000");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fashion-mnist: partial folders, wrong shapes and labels are clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeFake(dir, { gz: false });
    await Deno.remove(`${dir}/t10k-labels-idx1-ubyte`);
    await assertRejects(
      () => loadFashionMnist(dir, { counts: null }),
      RangeError,
      "has only some of the Fashion-MNIST files: missing t10k-labels-idx1-ubyte[.gz]",
    );
    await writeFake(dir, { gz: false, side: 27 });
    await assertRejects(
      () => loadFashionMnist(dir, { counts: null }),
      RangeError,
      "must hold u8 images of shape [n, 28, 28], got u8 [5, 27, 27]",
    );
    await writeFake(dir, { gz: false, label: (e) => (e === 3 ? 10 : 0) });
    await assertRejects(
      () => loadFashionMnist(dir, { counts: null }),
      RangeError,
      "label 3 is 10, outside the 10 classes 0..9",
    );
    await writeFake(dir, { gz: false });
    await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte`, idx(0x08, [2], [0, 1]));
    await assertRejects(() => loadFashionMnist(dir, { counts: null }), RangeError, "has 3 images but");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fashion-mnist: no files and no permission give undefined, not an error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // An empty folder is skipped (then the Debian folder is tried).
    const skipped: string[] = [];
    const d = await loadFashionMnist(dir, { counts: null, onSkip: (d, why) => skipped.push(`${d}: ${why}`) });
    assertEquals(skipped[0], `${dir}: no Fashion-MNIST files there`);
    if (d) assertEquals(d.source, FASHION_MNIST_DEBIAN_DIR);
    // Without --allow-read: a child Deno with no permissions.
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { loadFashionMnist } from ${
        JSON.stringify(new URL("../src/io/mod.ts", import.meta.url).href)
      };\n` +
        `const why = [];\nconst d = await loadFashionMnist(${
          JSON.stringify(dir)
        }, { onSkip: (_, w) => why.push(w) });\n` +
        `console.log(JSON.stringify({ d: d === undefined ? "undefined" : "data", why }));\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-lock", "--no-config", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    const res = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(res.d, "undefined");
    assertEquals(res.why.length, 2);
    assertOk(
      res.why.every((w: string) => w.includes("no permission") && w.includes("--allow-read")),
      res.why.join("; "),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fashion-mnist: the Debian package's files, when installed", async () => {
  let present = true;
  try {
    await Deno.stat(`${FASHION_MNIST_DEBIAN_DIR}/train-images-idx3-ubyte.gz`);
  } catch {
    present = false;
  }
  if (!present) {
    console.log(
      `skipped: ${FASHION_MNIST_DEBIAN_DIR} has no Fashion-MNIST (apt-get install dataset-fashion-mnist)`,
    );
    return;
  }
  const d = await loadFashionMnist();
  assertOk(d, "the files are there, so the loader must find them");
  assertEquals(d.source, FASHION_MNIST_DEBIAN_DIR);
  assertEquals([d.train.n, d.test.n], [60000, 10000]);
  assertEquals([d.train.images.length, d.test.images.length], [60000 * 784, 10000 * 784]);
  // Fashion-MNIST is balanced: 6000 and 1000 of each class.
  for (const [split, per] of [[d.train, 6000], [d.test, 1000]] as const) {
    const count = new Array(10).fill(0);
    for (const l of split.labels) count[l]++;
    assertEquals(count, new Array(10).fill(per));
  }
  let lo = Infinity, hi = -Infinity;
  for (const v of d.test.images) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  assertEquals([lo, hi], [0, 1]);
});

// ---------------------------------------------------------------- synthetic images

Deno.test("synthetic: deterministic, seeded, in range, right shapes", () => {
  const a = syntheticImages({ n: 300, seed: 5 }), b = syntheticImages({ n: 300, seed: 5 });
  assertEquals(a, b);
  const c = syntheticImages({ n: 300, seed: 6 });
  assertOk(!c.labels.every((l, i) => l === a.labels[i]), "another seed gives other examples");
  assertEquals([a.n, a.images.length, a.labels.length], [300, 300 * 784, 300]);
  assertOk(a.images.every((v) => v >= 0 && v <= 1), "pixels in [0, 1]");
  assertOk(a.labels.every((l) => l < 10), "labels < 10");
  assertEquals(new Set(a.labels).size, 10);
  const s = syntheticImages({ n: 50, seed: 1, classes: 3, side: 16 });
  assertEquals([s.images.length, Math.max(...s.labels)], [50 * 256, 2]);
  assertEquals(syntheticImages({ n: 0, seed: 1 }).images.length, 0);
  // A pinned fingerprint, so the demo's fallback task does not change by accident.
  const sum = a.images.reduce((x, v) => x + v, 0);
  assertEquals(Array.from(a.labels.subarray(0, 12)), [8, 9, 5, 3, 8, 2, 8, 5, 4, 8, 4, 9]);
  assertOk(Math.abs(sum - 36601.844966894074) < 1e-6, `pixel sum ${sum}`);
});

Deno.test("synthetic: learnable but not trivial (nearest class mean, float64)", () => {
  // Nearest class mean is a linear classifier: it must beat chance by far but stay below 100%.
  const train = syntheticImages({ n: 3000, seed: 1 }), test = syntheticImages({ n: 1000, seed: 2 });
  const D = 784, mean = new Float64Array(10 * D), cnt = new Float64Array(10);
  for (let e = 0; e < train.n; e++) {
    const c = train.labels[e];
    cnt[c]++;
    for (let i = 0; i < D; i++) mean[c * D + i] += train.images[e * D + i];
  }
  for (let c = 0; c < 10; c++) for (let i = 0; i < D; i++) mean[c * D + i] /= cnt[c];
  let ok = 0;
  for (let e = 0; e < test.n; e++) {
    let best = -1, bestD = Infinity;
    for (let c = 0; c < 10; c++) {
      let d = 0;
      for (let i = 0; i < D; i++) d += (test.images[e * D + i] - mean[c * D + i]) ** 2;
      if (d < bestD) [best, bestD] = [c, d];
    }
    if (best === test.labels[e]) ok++;
  }
  const acc = ok / test.n;
  assertOk(acc > 0.5 && acc < 0.95, `nearest-class-mean accuracy ${acc}`);
});

Deno.test("synthetic: bad options are clear errors", () => {
  assertThrows(
    () => syntheticImages({ n: -1, seed: 1 }),
    RangeError,
    "syntheticImages: n must be in [0, 2147483647], got -1",
  );
  assertThrows(() => syntheticImages({ n: 1.5, seed: 1 }), TypeError, "n must be an integer, got 1.5");
  assertThrows(
    () => syntheticImages({ n: 1, seed: 1, classes: 1 }),
    RangeError,
    "classes must be in [2, 256], got 1",
  );
  assertThrows(
    () => syntheticImages({ n: 1, seed: 1, side: 8 }),
    RangeError,
    "side must be in [12, 128], got 8",
  );
  assertThrows(
    () => syntheticImages({ n: 1, seed: NaN }),
    TypeError,
    "seed must be a finite number, got NaN",
  );
});
