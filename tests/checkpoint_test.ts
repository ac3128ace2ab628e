import {
  decodeSafetensors,
  encodeSafetensors,
  Linear,
  load,
  MlpMixer,
  PixelflyLinear,
  save,
  Sequential,
} from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
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
  assertEquals(file.tensors["0.sparse.mask"].dtype, "U8");
  assertEquals(file.tensors["0.sparse.weight"].shape, [
    a.layers[0] instanceof PixelflyLinear ? a.layers[0].sparse.mask.nnz : 0,
    16,
    16,
  ]);
  assertEquals(file.tensors["0.low_rank.U"].shape, [64, 4]);
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
    '"1.bias" has shape [5,2] in the checkpoint but [10]',
  );
  const otherMask = model(2).layers[0] as PixelflyLinear;
  const bits = otherMask.sparse.mask.bits();
  bits[1] ^= 1;
  const badMask = { ...file.tensors, "0.sparse.mask": { dtype: "U8" as const, shape: [4, 4], data: bits } };
  await assertRejects(
    () => load(m, encodeSafetensors(badMask)),
    RangeError,
    '"0.sparse.mask" in the checkpoint differs',
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
