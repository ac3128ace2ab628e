/**
 * Issue 10 defects in the core (tape, ops, layers): each test here failed
 * before its fix. Bad data (ids, labels, layouts) is refused before a kernel
 * sees it, errors name the right op and value, and nothing leaks.
 */
import {
  BlockMask,
  crossEntropy,
  dds,
  Embedding,
  fromArray,
  gather,
  layerNorm,
  memory,
  MlpMixer,
  mul,
  noGrad,
  ones,
  PixelflyLinear,
  randn,
  sdd,
  sum,
  tensor,
  tidy,
  validateLayout,
  zeros,
} from "../mod.ts";
import * as ops from "../src/ops.ts";
import * as pf from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import type { Backend, BlockLayout } from "../src/backends/types.ts";
import { assertClose, assertEquals, assertOk, assertRejects, assertThrows } from "./_assert.ts";

async function withBackends(fn: (be: Backend) => Promise<void> | void): Promise<void> {
  const js = new JsBackend(), wasm = await createWasmBackend();
  try {
    await fn(js);
    await fn(wasm);
  } finally {
    wasm.dispose();
  }
}

Deno.test("Tensor.backward works with only tensor.ts and ops.ts imported (no autograd side-effect hook)", async () => {
  const code = `
    import { tensor } from "./src/tensor.ts";
    import { mul, sum } from "./src/ops.ts";
    const x = tensor([1, 2, 3], [3], { requiresGrad: true });
    sum(mul(x, x)).backward();
    console.log(Array.from(await x.grad.data()).join(","));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: new URL("..", import.meta.url),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assertEquals(text, "2,4,6", new TextDecoder().decode(out.stderr));
});

Deno.test("ops.ts exports no backward-only helpers; hasRule is gone", async () => {
  const names = Object.keys(ops);
  assertEquals(names.filter((n) => n.startsWith("_") || n === "broadcastScalar" || n === "addInto"), []);
  const autograd = await import("../src/autograd.ts");
  assertOk(!("hasRule" in autograd));
});

Deno.test("fromArray rejects extra or missing values, as tensor() does", () => {
  assertThrows(
    () => fromArray(new Float32Array(5), [2, 2]),
    RangeError,
    "fromArray: data has 5 values but shape [2,2] needs 4",
  );
  assertThrows(() => fromArray(new Float32Array(3), [2, 2]), RangeError, "needs 4");
  assertThrows(() => tensor([1, 2, 3, 4, 5], [2, 2]), RangeError, "tensor: data has 5 values");
});

Deno.test("gather/Embedding: out-of-range ids in a Tensor are refused before the kernel; neighbours untouched", async () => {
  await withBackends(async (be) => {
    const table = randn([4, 3], { seed: 1, backend: be, requiresGrad: true });
    const sentinel = tensor([7, 7, 7, 7], [4], { backend: be });
    for (
      const [ids, pos, v] of [[[0, -1], 1, -1], [[3, 4, 0], 1, 4], [[0.5], 0, 0.5], [[NaN], 0, NaN]] as const
    ) {
      const idx = tensor(ids as unknown as number[], [ids.length], { backend: be });
      assertThrows(
        () => gather(table, idx),
        RangeError,
        `gather: idx[${pos}] is ${v}, but the table has rows [0, 4)`,
      );
      assertThrows(
        () => gather(table, ids as unknown as number[]),
        RangeError,
        `gather: idx[${pos}] is ${v}`,
      );
      idx.dispose();
    }
    const emb = new Embedding(4, 3, { seed: 2, backend: be });
    assertThrows(() => emb.forward(tensor([1, 9], [2], { backend: be })), RangeError, "gather: idx[1] is 9");
    // an index tensor computed on the backend cannot be checked on the host: refused
    const computed = mul(tensor([1, 2], [2], { backend: be }), 1);
    assertThrows(() => gather(table, computed), TypeError, "gather: idx");
    assertEquals(Array.from(await sentinel.data()), [7, 7, 7, 7]);
    // the backend still computes correctly
    const y = gather(table, tensor([3, 0], [2], { backend: be }));
    const t = await table.data();
    assertClose(await y.data(), Float32Array.of(...t.slice(9, 12), ...t.slice(0, 3)), { atol: 0 });
  });
});

Deno.test("crossEntropy: out-of-range labels in a Tensor are a RangeError on every backend, not NaN or a wrong loss", async () => {
  await withBackends(async (be) => {
    const logits = randn([2, 3], { seed: 3, backend: be });
    for (const [labels, pos, v] of [[[0, 3], 1, 3], [[-1, 0], 0, -1], [[1.5, 0], 0, 1.5]] as const) {
      const t = tensor(labels as unknown as number[], [2], { backend: be });
      assertThrows(
        () => crossEntropy(logits, t),
        RangeError,
        `crossEntropy: labels[${pos}] is ${v}, but classes are integers in [0, 3)`,
      );
      assertThrows(
        () => crossEntropy(logits, labels as unknown as number[]),
        RangeError,
        `labels[${pos}] is ${v}`,
      );
    }
    assertOk(Number.isFinite(await crossEntropy(logits, tensor([2, 0], [2], { backend: be })).item()));
  });
});

Deno.test("layouts: only a BlockMask or a valid layout reaches a kernel; changes after the first check are refused", () => {
  const be = new JsBackend();
  const mask = BlockMask.fromFunction(2, 2, 2, (i, j) => i === j || j === 0);
  const good = mask.toBSR();
  const x = ones([1, 4], { backend: be }), w = ones([good.nnz, 2, 2], { backend: be });
  const copy = (l: BlockLayout, over: Partial<Record<keyof BlockLayout, unknown>>) =>
    ({
      ...l,
      rowPtr: l.rowPtr.slice(),
      colIdx: l.colIdx.slice(),
      colPtr: l.colPtr.slice(),
      rowIdx: l.rowIdx.slice(),
      blockIdx: l.blockIdx.slice(),
      ...over,
    }) as BlockLayout;
  // a column index outside the grid used to give zeros silently
  assertThrows(
    () => dds(x, w, copy(good, { colIdx: Int32Array.of(0, 0, 5) })),
    RangeError,
    "dds: layout colIdx[2] is 5, but block columns are in [0, 2)",
  );
  // a layout missing the transposed arrays used to fail with "Cannot read properties of undefined"
  const { colPtr: _c, rowIdx: _r, blockIdx: _b, ...partial } = good;
  assertThrows(
    () => dds(x, w, partial as unknown as BlockLayout),
    TypeError,
    "dds: layout colPtr must be an Int32Array",
  );
  assertThrows(
    () => sdd(x, x, copy(good, { rowPtr: Int32Array.of(0, 2, 1) }), { transA: true }),
    RangeError,
    "sdd: layout rowPtr[2] is 1, below rowPtr[1] = 2",
  );
  assertThrows(
    () => dds(x, w, copy(good, { colIdx: Int32Array.of(0, 1, 0) })),
    RangeError,
    "dds: layout colIdx[2] is 0, not above colIdx[1] = 1 in block row 1",
  );
  assertThrows(
    () => dds(x, w, copy(good, { blockIdx: Int32Array.of(0, 0, 2) })),
    RangeError,
    "transposed walk is inconsistent",
  );
  assertThrows(
    () => dds(x, w, copy(good, { nnz: 2 })),
    RangeError,
    "layout colIdx has 3 entries but must have 2",
  );
  assertThrows(
    () => dds(x, w, { rowPtr: new Int32Array(3), colIdx: new Int32Array(0) } as unknown as BlockLayout),
    TypeError,
    "dds: layout rows must be a number",
  );
  assertThrows(
    () => validateLayout("dds", "mask"),
    TypeError,
    "dds: mask must be a BlockMask or a BlockLayout, got string mask",
  );
  // a valid copy is accepted once checked
  const ok = copy(good, {});
  assertEquals(validateLayout("dds", ok), ok);
  dds(x, w, ok);
  // mutate after the check: refused (backends cache layouts by identity)
  ok.colIdx[2] = 0;
  assertThrows(
    () => dds(x, w, ok),
    RangeError,
    "dds: the layout's index arrays changed after it was first checked",
  );
  const bsr = BlockMask.fromFunction(2, 2, 2, (i, j) => i === j).toBSR();
  (bsr.colIdx as Int32Array)[1] = 7;
  assertThrows(
    () => dds(x, ones([2, 2, 2], { backend: be }), bsr),
    RangeError,
    "changed after it was first checked",
  );
});

Deno.test("errors name the right op: mixed backends (with .to), mul by Infinity, MlpMixer odd channels", async () => {
  const a = new JsBackend(), b = new JsBackend();
  const x = ones([2, 2], { backend: a }), y = ones([2, 2], { backend: b });
  assertThrows(() => ops.matmul(x, y), RangeError, "matmul: a lives on js backend #");
  const e = assertThrows(() => ops.add(x, y), RangeError, "move one with `await b.to(backend)` first");
  assertOk(/js backend #(\d+) but b on js backend #(?!\1)\d+/.test(e.message), e.message);
  const moved = await y.to(a);
  assertEquals(Array.from(await ops.add(x, moved).data()), [2, 2, 2, 2]);
  assertThrows(() => mul(x, Infinity), RangeError, "mul: scalar b must be finite, got Infinity");
  assertThrows(() => mul(NaN, x), RangeError, "mul: scalar a must be finite, got NaN");
  // 15 channels: the default token-mixing width floor(15 / 2) = 7 is an integer
  const net = new MlpMixer({
    patches: 4,
    patchDim: 3,
    channels: 15,
    depth: 1,
    classes: 2,
    seed: 0,
    backend: a,
  });
  assertEquals(net.forward(ones([2, 4, 3], { backend: a })).shape, [2, 2]);
  assertThrows(
    () => new MlpMixer({ patches: 4, patchDim: 3, channels: 8, depth: 1, classes: 2, tokenHidden: 2.5 }),
    RangeError,
    "MlpMixer: tokenHidden must be a positive integer, got 2.5",
  );
});

Deno.test("PixelflyLinear takes a 1-D (in) input and gives (out), like the 2-D row", async () => {
  const be = new JsBackend();
  const layer = new PixelflyLinear(16, 24, {
    block: 4,
    butterflySize: 4,
    nFactors: 1,
    rank: 2,
    seed: 1,
    backend: be,
  });
  const v = randn([16], { seed: 2, backend: be });
  const y1 = layer.forward(v);
  assertEquals(y1.shape, [24]);
  const y2 = layer.forward(ops.reshape(v, [1, 16]));
  assertClose(await y1.data(), await y2.data(), { atol: 0 });
  assertThrows(
    () => layer.forward(ones([15], { backend: be })),
    RangeError,
    "PixelflyLinear: x [15] has 15 features",
  );
});

Deno.test("no leaks under noGrad: crossEntropy, layerNorm and gather free what they saved for backward", async () => {
  await withBackends((be) => {
    const logits = randn([4, 5], { seed: 1, backend: be, requiresGrad: true });
    const g = ones([5], { backend: be, requiresGrad: true }),
      bt = zeros([5], { backend: be, requiresGrad: true });
    const table = randn([6, 5], { seed: 2, backend: be, requiresGrad: true });
    const labels = tensor([0, 1, 2, 3], [4], { backend: be });
    const before = memory(be).buffers;
    for (let i = 0; i < 5; i++) {
      noGrad(() => crossEntropy(logits, [0, 1, 2, 3])).dispose();
      noGrad(() => crossEntropy(logits, labels)).dispose();
      noGrad(() => layerNorm(logits, g, bt)).dispose();
      noGrad(() => gather(table, [0, 5, 2])).dispose();
    }
    assertEquals(memory(be).buffers, before);
  });
});

Deno.test("tidy(async fn) frees what fn made before its first await, then throws", async () => {
  const be = new JsBackend();
  const before = memory(be).buffers;
  assertThrows(
    () =>
      tidy(
        (async () => {
          ones([3], { backend: be });
          zeros([4], { backend: be });
          await Promise.resolve();
        }) as unknown as () => void,
      ),
    TypeError,
    "tidy: fn must be synchronous",
  );
  assertEquals(memory(be).buffers, before);
  await assertRejects(() => Promise.reject(new TypeError("x")), TypeError);
});

Deno.test("backward frees the graph: saved tensors are released, a second pass throws unless retainGraph", () => {
  const be = new JsBackend();
  const x = randn([3, 4], { seed: 1, backend: be, requiresGrad: true });
  const g = ones([4], { backend: be, requiresGrad: true }), b = zeros([4], { backend: be });
  const before = memory(be).buffers;
  const loss = crossEntropy(layerNorm(x, g, b), [0, 1, 3]);
  loss.backward();
  // live now: x.grad, g.grad, the LayerNorm output, the loss and the backend's cached 1 of the implicit
  // output gradient (probabilities, labels, mean and rstd were freed, and so was every intermediate gradient)
  assertEquals(memory(be).buffers, before + 5);
  assertThrows(() => loss.backward(), Error, "was freed by an earlier backward()");
  const l2 = sum(mul(x, x));
  l2.backward(undefined, { retainGraph: true });
  l2.backward();
  assertOk(!loss.disposed);
});

Deno.test("a backend option that is not a Backend is a TypeError naming the layer or op, for every layer", () => {
  const bad: unknown[] = [{}, "wasm", 3, { alloc: () => 0 }];
  const makers: [string, (be: any) => unknown][] = [
    ["Linear", (be) => new pf.Linear(8, 4, { backend: be })],
    ["BlockSparseLinear", (be) => new pf.BlockSparseLinear(64, 64, { backend: be, block: 32 })],
    ["LowRank", (be) => new pf.LowRank(8, 4, { rank: 2, backend: be })],
    ["PixelflyLinear", (be) => new pf.PixelflyLinear(64, 64, { backend: be, block: 32 })],
    ["LayerNorm", (be) => new pf.LayerNorm(8, { backend: be })],
    ["Embedding", (be) => new pf.Embedding(8, 4, { backend: be })],
    ["MLP", (be) => new pf.MLP(8, { hidden: 8, outFeatures: 2, backend: be })],
    [
      "MlpMixer",
      (be) => new pf.MlpMixer({ patches: 4, patchDim: 8, channels: 8, depth: 1, classes: 2, backend: be }),
    ],
    ["zeros", (be) => zeros([2], { backend: be })],
    ["tensor", (be) => tensor([1, 2], [2], { backend: be })],
    ["randn", (be) => randn([2], { seed: 1, backend: be })],
  ];
  for (const [op, make] of makers) {
    for (const be of bad) {
      assertThrows(() => make(be), TypeError, `${op}: backend must be a Backend`);
    }
  }
});
