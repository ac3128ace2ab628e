import {
  BlockSparseLinear,
  decodeSafetensors,
  encodeSafetensors,
  GPT,
  Linear,
  load,
  MlpMixer,
  PixelflyLinear,
  type SafetensorsEntry,
  save,
  Sequential,
} from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import { assertEquals, assertOk, assertRejects } from "./_assert.ts";
import { backendsUnderTest, disposing } from "./_backends.ts";

function model(seed: number, backend = new JsBackend()) {
  return new Sequential(
    new PixelflyLinear(64, 64, { block: 16, butterflySize: 4, rank: 4, seed, backend }),
    new Linear(64, 10, { seed: seed + 1, backend }),
  );
}

async function params(m: { namedParameters(): [string, { data(): Promise<Float32Array> }][] }) {
  const out: Record<string, number[]> = {};
  for (const [n, p] of m.namedParameters()) out[n] = Array.from(await p.data());
  return out;
}

Deno.test("save -> load round-trips bit-exactly, and save is deterministic", async () => {
  const a = model(1), b = model(7);
  const bytes = await save(a);
  await load(b, bytes);
  assertEquals(await params(b), await params(a));
  assertEquals(await save(b), bytes);
  const file = decodeSafetensors(bytes);
  assertEquals(file.tensors["0.sparse.layout"].dtype, "I32");
  assertEquals(file.tensors["0.sparse.weight"].shape, [
    a.layers[0] instanceof PixelflyLinear ? a.layers[0].sparse.mask.nnz : 0,
    16,
    16,
  ]);
  assertEquals(file.tensors["0.low_rank.lr_weight2"].shape, [64, 4]);
  assertEquals(file.tensors["0.low_rank.lr_weight1"].shape, [4, 64]);
  assertEquals(file.metadata.format, "pt");
});

for (const entry of backendsUnderTest) {
  Deno.test(
    { name: `checkpoints move between the reference and ${entry.label}`, ignore: entry.ignore },
    async () => {
      const be = await entry.make();
      if (be === undefined) return;
      using _dispose = disposing(be);
      const a = model(3), b = model(9, be as unknown as JsBackend);
      await load(b, await save(a));
      assertEquals(await params(b), await params(a));
    },
  );
}

Deno.test("corrupt, truncated and mismatched checkpoints throw and leave the model untouched", async () => {
  const m = model(2), before = await params(m);
  const good = await save(m);
  await assertRejects(() => load(m, good.subarray(0, good.length - 9)), RangeError, "decodeSafetensors");
  await assertRejects(() => load(m, new Uint8Array([1, 2, 3])), RangeError, "decodeSafetensors");
  const file = decodeSafetensors(good);
  const withExtra = encodeSafetensors({
    ...file.tensors,
    "2.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) },
  });
  await assertRejects(() => load(m, withExtra), RangeError, "does not have: 2.weight");
  const missing = { ...file.tensors };
  delete missing["1.bias"];
  await assertRejects(() => load(m, encodeSafetensors(missing)), RangeError, 'no tensor "1.bias"');
  const wrongShape = {
    ...file.tensors,
    "1.bias": { dtype: "F32" as const, shape: [5, 2], data: new Float32Array(10) },
  };
  await assertRejects(
    () => load(m, encodeSafetensors(wrongShape)),
    RangeError,
    '"1.bias" has shape [5,2] in the checkpoint but [10] in the model',
  );
  const otherMask = model(2).layers[0] as PixelflyLinear;
  const bits = Int32Array.from(otherMask.sparse.mask.bits());
  const kept = bits[1];
  bits[1] ^= 1;
  const badMask = {
    ...file.tensors,
    "0.sparse.layout": { dtype: "I32" as const, shape: [4, 4], data: bits },
  };
  await assertRejects(
    () => load(m, encodeSafetensors(badMask)),
    RangeError,
    kept
      ? '"0.sparse.layout" keeps other tiles than the model\'s mask: tile (0, 1) is kept in the model but not in the checkpoint'
      : '"0.sparse.layout" keeps other tiles than the model\'s mask: tile (0, 1) is kept in the checkpoint but not in the model',
  );
  // a checkpoint of another architecture
  const mixer = new MlpMixer({
    patches: 4,
    patchDim: 4,
    channels: 8,
    depth: 1,
    classes: 2,
    seed: 1,
    backend: new JsBackend(),
  });
  const mixerBytes = await save(mixer);
  await assertRejects(() => load(m, mixerBytes), RangeError, "load:");
  await assertRejects(
    () => load(m, "nope" as unknown as Uint8Array),
    TypeError,
    "load: bytes must be a Uint8Array",
  );
  assertEquals(await params(m), before);
});

/** A file's tensors renamed and retyped by `edit` (undefined drops a tensor). */
function rewrite(
  bytes: Uint8Array,
  edit: (name: string, e: SafetensorsEntry) => [string, SafetensorsEntry] | undefined,
): Uint8Array {
  const out: Record<string, SafetensorsEntry> = {};
  for (const [n, e] of Object.entries(decodeSafetensors(bytes).tensors)) {
    const r = edit(n, e);
    if (r) out[r[0]] = r[1];
  }
  return encodeSafetensors(out);
}

Deno.test("save writes the reference implementation's names, shapes and dtypes", async () => {
  const be = new JsBackend();
  const layer = new PixelflyLinear(64, 48, { block: 16, butterflySize: 4, rank: 4, seed: 1, backend: be });
  const t = decodeSafetensors(await save(layer)).tensors;
  const nnz = layer.sparse.mask.nnz;
  assertEquals(
    Object.fromEntries(Object.entries(t).map(([n, e]) => [n, `${e.dtype} [${e.shape}]`])),
    {
      "sparse.weight": `F32 [${nnz},16,16]`,
      "sparse.layout": "I32 [3,4]",
      "low_rank.lr_weight1": "F32 [4,64]",
      "low_rank.lr_weight2": "F32 [48,4]",
      "gate.weight": "F32 [1,64]",
      "gate.bias": "F32 [1]",
      "bias": "F32 [48]",
    },
  );
  assertEquals(Array.from(t["sparse.layout"].data), Array.from(layer.sparse.mask.bits()));
  // fly's MlpCustom (fc1, fc2) and MLP-Mixer (stem.proj, blocks.i.{norm1,mlp_tokens,norm2,mlp_channels}, norm, head)
  const mixer = new MlpMixer({
    patches: 16,
    patchDim: 12,
    channels: 32,
    depth: 1,
    classes: 3,
    linear: { kind: "pixelfly", block: 8, butterflySize: 4, rank: 2 },
    seed: 2,
    backend: be,
  });
  const names = Object.keys(decodeSafetensors(await save(mixer)).tensors).sort();
  for (
    const n of [
      "stem.proj.weight",
      "stem.proj.bias",
      "blocks.0.norm1.weight",
      "blocks.0.mlp_tokens.fc1.sparse.layout",
      "blocks.0.mlp_tokens.fc2.low_rank.lr_weight1",
      "blocks.0.norm2.bias",
      "blocks.0.mlp_channels.fc1.gate.weight",
      "blocks.0.mlp_channels.fc2.bias",
      "norm.weight",
      "head.weight",
    ]
  ) assertOk(names.includes(n), `${n} missing from ${names.join(", ")}`);
  assertOk(!names.some((n) => /token_mixing|channel_mixing|\.mask$|\.U$|\.V$/.test(n)), names.join(", "));
});

Deno.test("load takes pixelfly's earlier names, fly's triton and huggingface weight forms, and a 4-D stem", async () => {
  const be = new JsBackend();
  const make = (seed: number) =>
    new Sequential(
      new PixelflyLinear(64, 32, { block: 16, butterflySize: 4, rank: 4, seed, backend: be }),
      new BlockSparseLinear(32, 32, { block: 8, butterflySize: 4, seed: seed + 1, backend: be }),
    );
  const a = make(1), want = await params(a);
  const bytes = await save(a);
  // pixelfly's earlier names: U, V and a U8 mask
  const old = rewrite(bytes, (n, e) => {
    if (n.endsWith(".layout")) {
      return [n.replace(/layout$/, "mask"), { dtype: "U8", shape: e.shape, data: Uint8Array.from(e.data) }];
    }
    return [n.replace("lr_weight1", "V").replace("lr_weight2", "U"), e];
  });
  const b = make(5);
  await load(b, old);
  assertEquals(await params(b), want);
  // the triton form (1, nnz, b, b) and the huggingface form (nnz*b, b) with each tile transposed
  for (const form of ["triton", "huggingface"]) {
    const other = rewrite(bytes, (n, e) => {
      if (!n.endsWith("sparse.weight") && n !== "1.weight") return [n, e];
      const [nnz, bl] = e.shape;
      if (form === "triton") return [n, { ...e, shape: [1, nnz, bl, bl] }];
      const t = new Float32Array(e.data.length);
      for (let k = 0; k < nnz; k++) {
        for (let i = 0; i < bl; i++) {
          for (let j = 0; j < bl; j++) t[(k * bl + j) * bl + i] = e.data[(k * bl + i) * bl + j];
        }
      }
      return [n, { dtype: "F32", shape: [nnz * bl, bl], data: t }];
    });
    const c = make(7);
    await load(c, other);
    assertEquals(await params(c), want, form);
  }
  // a patch-embedding convolution weight (C, 3, 2, 2) for a 12-input stem
  const mixer = (seed: number) =>
    new MlpMixer({ patches: 4, patchDim: 12, channels: 8, depth: 1, classes: 2, seed, backend: be });
  const m1 = mixer(1),
    conv = rewrite(
      await save(m1),
      (n, e) => [n, n === "stem.proj.weight" ? { ...e, shape: [8, 3, 2, 2] } : e],
    );
  const m2 = mixer(2);
  await load(m2, conv);
  assertEquals(await params(m2), await params(m1));
});

Deno.test("load errors name the real difference: name, dtype, shape, tiles", async () => {
  const m = model(2), before = await params(m);
  const good = await save(m);
  const cases: [Uint8Array, string][] = [
    [
      rewrite(
        good,
        (n, e) =>
          n === "0.sparse.layout"
            ? [n, { dtype: "F32", shape: e.shape, data: Float32Array.from(e.data) }]
            : [n, e],
      ),
      'load: "0.sparse.layout" is F32 in the checkpoint; a layout is I32 or U8 (0 or 1 per tile), shape [4,4]',
    ],
    [
      rewrite(good, (n, e) => n === "0.sparse.layout" ? [n, { ...e, shape: [2, 8] }] : [n, e]),
      'load: "0.sparse.layout" has shape [2,8] in the checkpoint but the model\'s layout is [4,4]',
    ],
    [
      rewrite(
        good,
        (n, e) =>
          n === "0.sparse.layout" ? [n, { ...e, data: Int32Array.from(e.data, (v) => v * 2) }] : [n, e],
      ),
      'load: "0.sparse.layout" holds 2 at tile (0, 0); a layout holds 0 or 1',
    ],
    [
      rewrite(
        good,
        (n, e) =>
          n === "1.weight"
            ? [n, { dtype: "I32", shape: e.shape, data: new Int32Array(e.data.length) }]
            : [n, e],
      ),
      'load: "1.weight" is I32 in the checkpoint but parameters are F32 (shape [10,64])',
    ],
    [
      rewrite(
        good,
        (n, e) => n === "0.sparse.weight" ? [n, { ...e, shape: [e.shape[0] * 16 * 16] }] : [n, e],
      ),
      "(nnz, b, b); also taken: [1,",
    ],
    [
      rewrite(good, (n, e) => n === "0.low_rank.lr_weight2" ? ["0.low_rank.U", e] : [n, e]),
      "", // the old name alone is fine
    ],
    [
      encodeSafetensors({
        ...decodeSafetensors(good).tensors,
        "0.low_rank.U": decodeSafetensors(good).tensors["0.low_rank.lr_weight2"],
      }),
      'load: the checkpoint holds both "0.low_rank.lr_weight2" or "0.low_rank.U"',
    ],
    [
      rewrite(good, (n, e) => n === "0.low_rank.lr_weight1" ? undefined : [n, e]),
      'load: the checkpoint has no tensor "0.low_rank.lr_weight1" or "0.low_rank.V" (shape [4,64])',
    ],
  ];
  for (const [bytes, message] of cases) {
    if (message === "") {
      await load(m, bytes);
      continue;
    }
    await assertRejects(() => load(m, bytes), RangeError, message);
  }
  assertEquals(await params(m), before);
});

Deno.test("a GPT is written under GPT-2's paths: fused Conv1D c_attn, transposed c_proj, tied lm_head; read back", async () => {
  const backend = new JsBackend();
  const gpt = (seed: number, projections?: "dense") =>
    new GPT({
      vocabSize: 11,
      context: 8,
      dim: 16,
      depth: 2,
      heads: 2,
      linear: { kind: "pixelfly", block: 4, butterflySize: 4, nFactors: 2, rank: 2 },
      projections: projections ? { q: "dense", k: "dense", v: "dense", o: "dense" } : undefined,
      seed,
      backend,
    });
  const a = gpt(1, "dense"), bytes = await save(a);
  const t = decodeSafetensors(bytes).tensors;
  const shape = (n: string) => t[n]?.shape;
  assertEquals(shape("transformer.wte.weight"), [11, 16]);
  assertEquals(shape("transformer.wpe.weight"), [8, 16]);
  assertEquals(shape("lm_head.weight"), [11, 16]);
  assertEquals(shape("transformer.h.1.attn.c_attn.weight"), [16, 48]);
  assertEquals(shape("transformer.h.1.attn.c_attn.bias"), [48]);
  assertEquals(shape("transformer.h.0.attn.c_proj.weight"), [16, 16]);
  assertEquals([t["transformer.h.0.attn.bias"].dtype, shape("transformer.h.0.attn.bias")], ["U8", [
    1,
    1,
    8,
    8,
  ]]);
  assertEquals([t["transformer.h.0.attn.masked_bias"].dtype, shape("transformer.h.0.attn.masked_bias")], [
    "F32",
    [],
  ]);
  assertEquals(shape("transformer.h.0.mlp.c_fc.sparse.weight"), [48, 4, 4]);
  assertEquals(t["transformer.h.0.mlp.c_proj.sparse.layout"].dtype, "I32");
  assertEquals(shape("transformer.ln_f.weight"), [16]);
  // c_attn.weight[c][s*16 + j] = W_s[j][c] for s = q, k, v; c_proj.weight[c][j] = W_o[j][c]
  const blk = a.blocks[1].attn, w = t["transformer.h.1.attn.c_attn.weight"].data;
  for (const [s, l] of [blk.q, blk.k, blk.v].entries()) {
    const W = await (l as Linear).weight.data();
    assertEquals([w[3 * 48 + s * 16 + 5], w[7 * 48 + s * 16 + 2]], [W[5 * 16 + 3], W[2 * 16 + 7]]);
  }
  const Wo = await (a.blocks[0].attn.o as Linear).weight.data();
  assertEquals(t["transformer.h.0.attn.c_proj.weight"].data[3 * 16 + 5], Wo[5 * 16 + 3]);
  // read back, from GPT-2's paths and from pixelfly's own
  const ids = [[1, 2, 3, 4, 5]];
  const want = await a.forward(ids).data();
  const b = gpt(2, "dense");
  await load(b, bytes);
  assertEquals(await b.forward(ids).data(), want);
  const own: Record<string, SafetensorsEntry> = {};
  for (const [n, p] of a.namedParameters()) {
    own[n] = { dtype: "F32", shape: [...p.shape], data: await p.data() };
  }
  for (const [n, buf] of a.namedBuffers()) {
    own[n] = { dtype: buf.dtype, shape: [...buf.shape], data: buf.data };
  }
  const c = gpt(3, "dense");
  await load(c, encodeSafetensors(own));
  assertEquals(await c.forward(ids).data(), want);
  // an untied head, a wrong c_attn shape: errors that say so, model untouched
  const untied = { ...t, "lm_head.weight": { ...t["lm_head.weight"], data: new Float32Array(11 * 16) } };
  await assertRejects(
    () => load(c, encodeSafetensors(untied)),
    RangeError,
    "ties its LM head to the embedding",
  );
  const fused = {
    ...t,
    "transformer.h.0.attn.c_attn.weight": { ...t["transformer.h.0.attn.c_attn.weight"], shape: [48, 16] },
  };
  await assertRejects(
    () => load(c, encodeSafetensors(fused)),
    RangeError,
    'load: "transformer.h.0.attn.c_attn.weight" has shape [48,16] in the checkpoint but [16,48] in the model',
  );
  assertEquals(await c.forward(ids).data(), want);
  // Pixelfly q, k, v cannot be fused: they keep pixelfly's names under GPT-2's block path
  const names = Object.keys(decodeSafetensors(await save(gpt(4))).tensors);
  assertOk(
    names.includes("transformer.h.0.attn.q.sparse.weight") && !names.some((n) => n.includes("c_attn")),
  );
  assertOk(names.includes("transformer.h.0.attn.c_proj.sparse.weight"), names.join(", "));
});

Deno.test("save's stemKernel writes a Mixer's stem as timm's Conv2d weight, and checks it", async () => {
  const m = new MlpMixer({
    patches: 16,
    patchDim: 8,
    channels: 16,
    depth: 1,
    classes: 5,
    seed: 1,
    backend: new JsBackend(),
  });
  const t = decodeSafetensors(await save(m, { stemKernel: [2, 2, 2] })).tensors;
  assertEquals(t["stem.proj.weight"].shape, [16, 2, 2, 2]);
  await assertRejects(
    () => save(m, { stemKernel: [3, 2, 2] }),
    RangeError,
    "save: stemKernel must be [c, p, p] with c·p·p = the stem's 8 inputs, got [3,2,2]",
  );
});
