/**
 * Property-based hardening suite (issue 10), with fast-check: every public
 * op, creation helper and layer constructor gets random bad arguments (wrong
 * types, NaN/Infinity, negative, fractional and huge sizes, tensors of
 * mismatched shapes, out-of-range ids and labels, malformed layouts). Each
 * must throw a TypeError or RangeError that names the op (and the value, for
 * a bad number), or else succeed; afterwards a sentinel tensor allocated
 * beside the inputs is unchanged and the backend still computes correctly.
 * Seeded and bounded: the same runs every time.
 */
import fc from "fast-check";
import * as pf from "../mod.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend, BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { createWebGpuBackend } from "../src/backends/webgpu.ts";
import { hasWebGpuAdapter, ignoreWebGpu } from "./_backends.ts";
import { assertEquals, assertOk } from "./_assert.ts";
import { type Entry, MAKERS, OPS } from "./_op_table.ts";

const SEED = 20261129;
const RUNS = 60;
/** Fewer runs on WebGPU: each read-back costs ~11 ms on a software adapter. */
const GPU_RUNS = 20;

/** Values that are wrong for any argument slot. */
function badValue(be: Backend): fc.Arbitrary<unknown> {
  const shapes = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 });
  return fc.oneof(
    fc.constantFrom(
      undefined,
      null,
      "3",
      true,
      {},
      [],
      () => 1,
      NaN,
      Infinity,
      -Infinity,
      -1,
      0,
      0.5,
      -2.5,
      2 ** 40,
    ),
    fc.double(),
    shapes.map((s) => pf.zeros(s, { backend: be })), // a tensor of a random (mostly wrong) shape
    fc.array(fc.oneof(fc.integer({ min: -3, max: 9 }), fc.constantFrom(NaN, 0.5, Infinity)), {
      maxLength: 6,
    }),
  );
}

/** Block layouts that are wrong in one way. */
const badLayout: fc.Arbitrary<BlockLayout> = fc.record({
  field: fc.constantFrom("rowPtr", "colIdx", "colPtr", "rowIdx", "blockIdx", "rows", "nnz", "missing"),
  at: fc.nat(4),
  value: fc.integer({ min: -5, max: 9 }),
}).map(({ field, at, value }) => {
  const g = pf.BlockMask.fromFunction(2, 3, 2, (i, j) => (i + j) % 2 === 0).toBSR();
  const l: Record<string, unknown> = {
    ...g,
    rowPtr: g.rowPtr.slice(),
    colIdx: g.colIdx.slice(),
    colPtr: g.colPtr.slice(),
    rowIdx: g.rowIdx.slice(),
    blockIdx: g.blockIdx.slice(),
  };
  if (field === "missing") delete l.colPtr;
  else if (field === "rows" || field === "nnz") l[field] = value;
  else {
    const a = l[field] as Int32Array;
    a[at % a.length] = a[at % a.length] === value ? value + 7 : value;
  }
  return l as unknown as BlockLayout;
});

function describeBad(v: unknown): string | undefined {
  return typeof v === "number" ? String(v) : undefined;
}

async function sane(be: Backend, sentinel: pf.Tensor): Promise<void> {
  assertEquals(Array.from(await sentinel.data()), [1, -2, 3, -4, 5, -6]);
  const y = pf.matmul(
    pf.tensor([1, 2, 3, 4], [2, 2], { backend: be }),
    pf.tensor([1, 0, 0, 1], [2, 2], { backend: be }),
  );
  assertEquals(Array.from(await y.data()), [1, 2, 3, 4]);
}

function checkOutcome(e: Entry, bad: unknown, fn: () => unknown, numberSlot = true): void {
  try {
    pf.tidy(() => {
      fn();
    });
  } catch (err) {
    assertOk(
      err instanceof TypeError || err instanceof RangeError,
      `${e.name}: ${(err as Error)?.constructor?.name}: ${err}`,
    );
    const msg = (err as Error).message;
    assertOk(
      msg.startsWith(`${e.name}`) || msg.includes(`${e.name}:`),
      `${e.name}: message does not name the op: ${msg}`,
    );
    const shown = numberSlot ? describeBad(bad) : undefined;
    if (shown !== undefined) {
      assertOk(msg.includes(shown), `${e.name}: message does not show the value ${shown}: ${msg}`);
    }
  }
}

async function fuzzOn(be: Backend, t: Deno.TestContext, runs = RUNS): Promise<void> {
  const sentinel = pf.keep(pf.tensor([1, -2, 3, -4, 5, -6], [6], { backend: be }));
  for (const e of [...OPS, ...MAKERS]) {
    await t.step(`${e.name}`, async () => {
      // one argument swapped for a bad value
      fc.assert(
        fc.property(fc.nat(8), badValue(be), (pos, bad) => {
          const args = pf.tidy(() => e.args(be));
          const k = pos % args.length;
          const wasNumber = typeof args[k] === "number";
          args[k] = bad;
          checkOutcome(e, bad, () => e.call(args), wasNumber);
        }),
        { seed: SEED, numRuns: runs },
      );
      // sizes: fractional, negative, zero, huge; numbers: NaN and infinities
      for (const k of e.sizes ?? []) {
        for (const bad of [0.5, -3, 0, 2 ** 40, NaN, Infinity]) {
          const args = e.args(be);
          args[k] = bad;
          checkOutcome(e, bad, () => e.call(args));
        }
      }
      for (const k of e.numbers ?? []) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          const args = e.args(be);
          args[k] = bad;
          let threw = false;
          try {
            pf.tidy(() => {
              e.call(args);
            });
          } catch (err) {
            threw = true;
            assertOk(err instanceof RangeError && err.message.includes(String(bad)), `${e.name}: ${err}`);
          }
          assertOk(threw, `${e.name}: accepted the number ${bad}`);
        }
      }
      await sane(be, sentinel);
    });
  }
  await t.step("out-of-range ids and labels, as tensors and arrays", async () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -4, max: 12 }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (ids, asTensor) => {
          const table = pf.randn([5, 3], { seed: 1, backend: be, requiresGrad: true });
          const labelsOk = ids.every((i) => i >= 0 && i < 5);
          const idx = asTensor ? pf.tensor(ids, [ids.length], { backend: be }) : ids;
          const logits = pf.randn([ids.length, 5], { seed: 2, backend: be });
          for (
            const [name, fn] of [["gather", () => pf.gather(table, idx)], [
              "crossEntropy",
              () => pf.crossEntropy(logits, idx),
            ]] as const
          ) {
            try {
              pf.tidy(() => {
                fn();
              });
              assertOk(labelsOk, `${name} accepted ids ${ids}`);
            } catch (err) {
              assertOk(!labelsOk && err instanceof RangeError, `${name}: ${err}`);
              const bad = ids.findIndex((i) => i < 0 || i >= 5);
              assertOk((err as Error).message.includes(`${name}: `), String(err));
              assertOk(
                (err as Error).message.includes(String(ids[bad])) ||
                  ids.some((i) => (err as Error).message.includes(`is ${i},`)),
                String(err),
              );
            }
          }
        },
      ),
      { seed: SEED, numRuns: runs },
    );
    await sane(be, sentinel);
  });
  await t.step("malformed layouts in dds and sdd", async () => {
    const x = pf.keep(pf.ones([3, 6], { backend: be })), w = pf.keep(pf.ones([3, 2, 2], { backend: be }));
    fc.assert(
      fc.property(badLayout, fc.boolean(), (layout, forward) => {
        try {
          pf.tidy(() => {
            if (forward) pf.dds(x, w, layout);
            else {pf.sdd(pf.ones([5, 4], { backend: be }), pf.ones([5, 6], { backend: be }), layout, {
                transA: true,
              });}
          });
          // a mutation can leave a valid layout (e.g. nnz unchanged): then it must compute like the mask
        } catch (err) {
          assertOk(err instanceof TypeError || err instanceof RangeError, String(err));
          assertOk((err as Error).message.startsWith(forward ? "dds:" : "sdd:"), String(err));
        }
      }),
      { seed: SEED, numRuns: Math.round(runs * 4 / 3) },
    );
    x.dispose();
    w.dispose();
    await sane(be, sentinel);
  });
  await fuzzTransformers(be, t, sentinel, runs);
  sentinel.dispose();
}

Deno.test("fuzz: bad arguments on js are TypeErrors or RangeErrors naming the op; nothing is corrupted", async (t) => {
  await fuzzOn(new JsBackend(), t);
});

Deno.test("fuzz: bad arguments on wasm are TypeErrors or RangeErrors naming the op; nothing is corrupted", async (t) => {
  const be = await createWasmBackend();
  try {
    await fuzzOn(be, t);
  } finally {
    be.dispose();
  }
});

Deno.test({
  name: "fuzz: bad arguments on webgpu are TypeErrors or RangeErrors naming the op; nothing is corrupted",
  ignore: ignoreWebGpu,
  fn: async (t) => {
    if (!hasWebGpuAdapter) {
      throw new Error("PIXELFLY_REQUIRE_GPU=1 but this machine offers no WebGPU adapter");
    }
    const be = await createWebGpuBackend();
    try {
      await fuzzOn(be, t, GPU_RUNS);
    } finally {
      be.dispose();
    }
  },
});

/** Throws unless `err` is a TypeError/RangeError whose message starts with `name:` (one of `names`). */
function assertNamed(err: unknown, names: string[], what: string): string {
  assertOk(
    err instanceof TypeError || err instanceof RangeError,
    `${what}: ${(err as Error)?.constructor?.name}: ${err}`,
  );
  const msg = (err as Error).message;
  assertOk(names.some((n) => msg.startsWith(`${n}:`)), `${what}: message does not name ${names}: ${msg}`);
  return msg;
}

/** Host float64 reference of (masked, causal) attention for (N, L, dh), (N, S, dh), (N, S, dv). */
function attentionRef(
  q: number[],
  k: number[],
  v: number[],
  [N, L, S, dh, dv]: number[],
  scale: number,
  keep: (i: number, j: number) => boolean,
): number[] {
  const out = new Array(N * L * dv).fill(0);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < L; i++) {
      const s: number[] = [], js: number[] = [];
      for (let j = 0; j < S; j++) {
        if (!keep(i, j)) continue;
        let d = 0;
        for (let c = 0; c < dh; c++) d += q[(n * L + i) * dh + c] * k[(n * S + j) * dh + c];
        s.push(d * scale);
        js.push(j);
      }
      if (s.length === 0) continue;
      const m = Math.max(...s), e = s.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t < js.length; t++) {
        for (let c = 0; c < dv; c++) out[(n * L + i) * dv + c] += (e[t] / z) * v[(n * S + js[t]) * dv + c];
      }
    }
  }
  return out;
}

const oddValues = [undefined, null, "1", true, {}, [], NaN, Infinity, -Infinity, -1, 0, 0.5, -2.5, 2 ** 40];

async function fuzzTransformers(be: Backend, t: Deno.TestContext, sentinel: pf.Tensor, runs: number) {
  await t.step("scaledDotProductAttention: bad shapes, masks, layouts, scales and causal", async () => {
    const op = "scaledDotProductAttention";
    let computed = 0;
    const dimA = fc.integer({ min: 0, max: 3 }), lenA = fc.integer({ min: 0, max: 9 });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          N: fc.integer({ min: 1, max: 2 }),
          L: fc.integer({ min: 1, max: 9 }),
          S: fc.integer({ min: 1, max: 9 }),
          dh: fc.integer({ min: 1, max: 3 }),
          dv: fc.integer({ min: 1, max: 3 }),
          // which of q, k, v gets a wrong shape (3: none), and its shape
          wrong: fc.integer({ min: 0, max: 7 }),
          wrongShape: fc.array(fc.oneof(dimA, lenA), { minLength: 1, maxLength: 4 }),
          maskKind: fc.constantFrom(
            "none",
            "fit",
            "fit",
            "fit",
            "tiles",
            "object",
            "layout",
            "null",
            "string",
          ),
          block: fc.constantFrom(1, 2, 4, 8),
          extra: fc.integer({ min: -1, max: 1 }),
          keepBits: fc.nat(),
          causal: fc.constantFrom(undefined, true, false, true, false, 1, "yes", null),
          scale: fc.constantFrom(
            undefined,
            undefined,
            undefined,
            0.7,
            -1.3,
            0,
            NaN,
            Infinity,
            -Infinity,
            "1",
            null,
          ),
        }),
        async (c) => {
          const { N, L, S, dh, dv, block: b } = c;
          const shapes = [[N, L, dh], [N, S, dh], [N, S, dv]];
          if (c.wrong < 3) shapes[c.wrong] = c.wrongShape;
          const vals = shapes.map((s, x) =>
            Array.from({ length: s.reduce((a, y) => a * y, 1) }, (_, i) => Math.sin(i * 1.3 + x))
          );
          const [qv, kv, vv] = vals;
          const rows = Math.ceil(L / b), cols = Math.ceil(S / b);
          const keepTile = (i: number, j: number) => ((c.keepBits >>> ((i * 7 + j * 3) % 31)) & 1) === 1;
          let mask: unknown;
          if (c.maskKind === "fit") mask = pf.BlockMask.fromFunction(rows, cols, b, keepTile);
          else if (c.maskKind === "tiles") {
            mask = pf.BlockMask.fromFunction(
              Math.max(1, rows + c.extra),
              Math.max(1, cols - c.extra),
              b,
              keepTile,
            );
          } else if (c.maskKind === "object") mask = { rows, cols, block: b, nnz: 1, has: () => true };
          else if (c.maskKind === "layout") mask = pf.BlockMask.fromFunction(rows, cols, b, keepTile).toBSR();
          else if (c.maskKind === "null") mask = null;
          else if (c.maskKind === "string") mask = "local";
          const opts: Record<string, unknown> = {};
          if (mask !== undefined) opts.mask = mask;
          if (c.causal !== undefined) opts.causal = c.causal;
          if (c.scale !== undefined) opts.scale = c.scale;
          const shapeOk = shapes.every((s) => s.length === 3 && s.every((y) => y > 0)) &&
            shapes[1][0] === shapes[0][0] && shapes[2][0] === shapes[0][0] && shapes[1][2] === shapes[0][2] &&
            shapes[2][1] === shapes[1][1];
          const maskOk = mask === undefined ||
            (mask instanceof pf.BlockMask && shapeOk &&
              mask.rows === Math.ceil(shapes[0][1] / mask.block) &&
              mask.cols === Math.ceil(shapes[1][1] / mask.block));
          const ok = shapeOk && maskOk && (c.causal === undefined || typeof c.causal === "boolean") &&
            (c.scale === undefined || (typeof c.scale === "number" && Number.isFinite(c.scale)));
          const [q, k, v] = shapes.map((s, x) => pf.tensor(vals[x], s, { backend: be }));
          let out: pf.Tensor | undefined;
          try {
            out = pf.tidy(() => pf.scaledDotProductAttention(q, k, v, opts as pf.AttentionOptions));
          } catch (err) {
            const msg = assertNamed(err, [op], `${op} ${JSON.stringify(c)}`);
            assertOk(!ok, `${op} refused valid arguments ${JSON.stringify(c)}: ${msg}`);
            if (
              typeof c.scale === "number" && !Number.isFinite(c.scale) && shapeOk &&
              (c.causal === undefined || typeof c.causal === "boolean")
            ) {
              assertOk(msg.includes(String(c.scale)), `${op}: message does not show the scale: ${msg}`);
            }
          }
          try {
            if (out) {
              computed++;
              assertOk(ok, `${op} accepted bad arguments ${JSON.stringify(c)}`);
              const scale = (c.scale as number | undefined) ?? 1 / Math.sqrt(dh);
              const m = mask as pf.BlockMask | undefined;
              const want = attentionRef(
                qv,
                kv,
                vv,
                [N, L, S, dh, dv],
                scale,
                (i, j) =>
                  (c.causal !== true || j <= i) &&
                  (m === undefined || m.has(Math.floor(i / b), Math.floor(j / b))),
              );
              const got = Array.from(await out.data());
              assertEquals(out.shape, [N, L, dv]);
              for (let i = 0; i < want.length; i++) {
                assertOk(
                  Math.abs(got[i] - want[i]) <= 1e-4 + 1e-4 * Math.abs(want[i]),
                  `${op} ${JSON.stringify(c)} [${i}]: ${got[i]} vs ${want[i]}`,
                );
              }
            }
          } finally {
            out?.dispose();
            for (const x of [q, k, v]) x.dispose();
          }
        },
      ),
      { seed: SEED, numRuns: runs * 4 },
    );
    assertOk(computed >= runs / 10, `${op}: only ${computed} of ${runs * 4} cases were valid and computed`);
    await sane(be, sentinel);
  });

  type Ctor = {
    name: string;
    base: Record<string, unknown>;
    strict: string[];
    build: (c: unknown) => pf.Module;
    run: (m: pf.Module, c: Record<string, unknown>) => pf.Tensor;
  };
  // one example of the config's patches (ViT, MlpMixer)
  const patchInput = (c: Record<string, unknown>) =>
    pf.randn([1, c.patches as number, c.patchDim as number], { seed: 2, backend: be });
  const ctors: Ctor[] = [
    {
      name: "MultiHeadAttention",
      base: { dim: 8, heads: 2, causal: true, seed: 1 },
      strict: ["dim", "heads", "causal", "context", "projections", "backend"],
      build: (c) => {
        if (c === null || typeof c !== "object") {
          return new pf.MultiHeadAttention(8, c as pf.MultiHeadAttentionOptions);
        }
        const { dim, ...o } = c as Record<string, unknown>;
        return new pf.MultiHeadAttention(dim as number, o as unknown as pf.MultiHeadAttentionOptions);
      },
      run: (m, c) =>
        (m as pf.MultiHeadAttention).forward(pf.randn([1, 3, c.dim as number], { seed: 2, backend: be })),
    },
    {
      name: "TransformerBlock",
      base: { dim: 8, heads: 2, mlpHidden: 12, seed: 1 },
      strict: ["dim", "heads", "causal", "mlpHidden", "dropout", "mlpLinear", "projections", "backend"],
      build: (c) => {
        if (c === null || typeof c !== "object") {
          return new pf.TransformerBlock(8, c as pf.TransformerBlockOptions);
        }
        const { dim, ...o } = c as Record<string, unknown>;
        return new pf.TransformerBlock(dim as number, o as unknown as pf.TransformerBlockOptions);
      },
      run: (m, c) =>
        (m as pf.TransformerBlock).forward(pf.randn([1, 3, c.dim as number], { seed: 2, backend: be })),
    },
    {
      name: "GPT",
      base: { vocabSize: 16, context: 8, dim: 8, depth: 1, heads: 2, seed: 1 },
      strict: [
        "vocabSize",
        "context",
        "dim",
        "depth",
        "heads",
        "mlpHidden",
        "dropout",
        "projections",
        "backend",
      ],
      build: (c) => new pf.GPT(c as unknown as pf.GPTConfig),
      run: (m, c) => (m as pf.GPT).forward([[0, 1 % (c.vocabSize as number)].slice(0, c.context as number)]),
    },
    {
      name: "ViT",
      base: { patches: 4, patchDim: 4, dim: 8, depth: 1, heads: 2, classes: 3, seed: 1 },
      strict: [
        "patches",
        "patchDim",
        "dim",
        "depth",
        "heads",
        "classes",
        "mlpHidden",
        "dropout",
        "pool",
        "projections",
        "backend",
      ],
      build: (c) => new pf.ViT(c as unknown as pf.ViTConfig),
      run: (m, c) => (m as pf.ViT).forward(patchInput(c)),
    },
    {
      name: "MlpMixer",
      base: { patches: 4, patchDim: 4, channels: 8, depth: 1, classes: 3, seed: 1 },
      strict: [
        "patches",
        "patchDim",
        "channels",
        "depth",
        "classes",
        "tokenHidden",
        "channelHidden",
        "budgetBlock",
        "backend",
      ],
      build: (c) => new pf.MlpMixer(c as unknown as pf.MlpMixerOptions),
      run: (m, c) => (m as pf.MlpMixer).forward(patchInput(c)),
    },
    {
      name: "MLP",
      base: { inFeatures: 8, hidden: 8, seed: 1 },
      strict: ["inFeatures", "hidden", "outFeatures", "budgetBlock", "backend"],
      build: (c) => {
        if (c === null || typeof c !== "object") return new pf.MLP(8, c as pf.MLPOptions);
        const { inFeatures, ...o } = c as Record<string, unknown>;
        return new pf.MLP(inFeatures as number, o as unknown as pf.MLPOptions);
      },
      run: (m, c) => (m as pf.MLP).forward(pf.randn([2, c.inFeatures as number], { seed: 2, backend: be })),
    },
  ];
  for (const e of ctors) {
    await t.step(`${e.name}: bad dims, heads, sizes and types`, async () => {
      const fields = [...new Set([...Object.keys(e.base), ...e.strict, "attention", "linear", "budget"])];
      if (e.name === "MultiHeadAttention" || e.name === "TransformerBlock") {
        fields.push("scoreMask", "context");
      }
      if (e.name === "TransformerBlock") fields.push("activation");
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...fields),
          fc.oneof(
            fc.constantFrom(...oddValues),
            fc.integer({ min: -3, max: 40 }),
            fc.double({ min: -10, max: 10, noNaN: true }),
          ),
          fc.boolean(),
          async (field, bad, whole) => {
            const cfg: Record<string, unknown> = { ...e.base, backend: be, [field]: bad };
            let m: pf.Module | undefined;
            try {
              m = e.build(whole && field === "seed" ? bad : cfg);
            } catch (err) {
              const strict = e.strict.includes(field) || (whole && field === "seed");
              const msg = assertNamed(
                err,
                strict ? [e.name] : [
                  e.name,
                  "MultiHeadAttention",
                  "makeLinear",
                  "Linear",
                  "PixelflyLinear",
                  "allocateBudget",
                  "Rng",
                  "attentionMask",
                ],
                `${e.name} ${field}=${String(bad)}`,
              );
              if (strict && typeof bad === "number" && !(whole && field === "seed")) {
                assertOk(
                  msg.includes(String(bad)),
                  `${e.name}: message does not show ${field} ${bad}: ${msg}`,
                );
              }
              return;
            }
            try {
              const y = pf.tidy(() => e.run(m!, cfg));
              const d = await y.data();
              y.dispose();
              assertOk(d.every(Number.isFinite), `${e.name} ${field}=${String(bad)}: non-finite output`);
            } catch (err) {
              // a built layer may still refuse a later call, but only by name
              assertNamed(err, [
                e.name,
                `${e.name}.forward`,
                "MultiHeadAttention",
                "attentionMask",
                "GPT.forward",
                "ViT",
              ], `${e.name} ${field}=${String(bad)} (forward)`);
            } finally {
              m.dispose();
            }
          },
        ),
        { seed: SEED, numRuns: runs },
      );
      await sane(be, sentinel);
    });
  }

  await t.step(
    "GPT.forward and generate: out-of-range ids, bad maxNewTokens, temperature, topK, seed",
    async () => {
      const gpt = new pf.GPT({ vocabSize: 16, context: 8, dim: 8, depth: 1, heads: 2, seed: 3, backend: be });
      try {
        const idA = fc.oneof(
          { arbitrary: fc.integer({ min: 0, max: 15 }), weight: 12 },
          { arbitrary: fc.integer({ min: -4, max: 20 }), weight: 1 },
          { arbitrary: fc.constantFrom(0.5, NaN, Infinity, "3"), weight: 1 },
        );
        let computed = 0, generated = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.array(idA, { minLength: 0, maxLength: 10 }), { minLength: 1, maxLength: 2 }),
            fc.constantFrom("forward", "forwardTensor", "generate"),
            fc.constantFrom(undefined, 0, 1, 3, -1, 1.5, NaN, "2"),
            fc.constantFrom(undefined, 0, 0.7, -1, NaN, Infinity, "1"),
            fc.constantFrom(undefined, 1, 3, 100, 0, 1.5, -2, NaN),
            fc.constantFrom(undefined, 5, NaN, "x"),
            async (ids, how, maxNewTokens, temperature, topK, seed) => {
              const L = ids[0].length;
              const idsOk = L > 0 && ids.every((r) => r.length === L) &&
                ids.every((r) =>
                  r.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 16)
                );
              const what = `${how} ${JSON.stringify(ids)} ${maxNewTokens} ${temperature} ${topK} ${seed}`;
              if (how === "generate") {
                const optsOk = Number.isInteger(maxNewTokens) && (maxNewTokens as number) >= 0 &&
                  (temperature === undefined ||
                    (typeof temperature === "number" && temperature >= 0 && Number.isFinite(temperature))) &&
                  (topK === undefined || (Number.isInteger(topK) && topK >= 1)) &&
                  (seed === undefined || (typeof seed === "number" && Number.isFinite(seed)));
                const opts = { maxNewTokens, temperature, topK, seed } as unknown as pf.GenerateOptions;
                let out: number[][];
                try {
                  out = await gpt.generate(ids as number[][], opts);
                } catch (err) {
                  assertNamed(err, ["GPT.generate"], what);
                  assertOk(!(idsOk && optsOk), `refused valid ${what}: ${err}`);
                  return;
                }
                assertOk(idsOk && optsOk, `accepted ${what}`);
                generated++;
                assertEquals(out.map((r) => r.length), ids.map(() => L + (maxNewTokens as number)));
                assertOk(
                  out.every((r) => r.every((x) => Number.isInteger(x) && x >= 0 && x < 16)),
                  `${what}: ${out}`,
                );
                return;
              }
              const okLen = idsOk && L <= 8;
              let arg: unknown = ids;
              if (how === "forwardTensor") {
                if (
                  !(L > 0 && ids.every((r) => r.length === L) &&
                    ids.every((r) => r.every((x) => typeof x === "number")))
                ) return;
                arg = pf.tensor(ids.flat() as number[], [ids.length, L], { backend: be });
              }
              let y: pf.Tensor | undefined;
              try {
                y = pf.tidy(() => gpt.forward(arg as number[][]));
              } catch (err) {
                const msg = assertNamed(
                  err,
                  how === "forwardTensor" ? ["GPT.forward", "gather"] : ["GPT.forward"],
                  what,
                );
                assertOk(!okLen, `refused valid ${what}: ${msg}`);
                const badId = ids.flat().find((x) =>
                  !(Number.isInteger(x) && (x as number) >= 0 && (x as number) < 16)
                );
                if (
                  L <= 8 && idsOk === false && ids.every((r) => r.length === L) && L > 0 &&
                  typeof badId === "number"
                ) {
                  assertOk(
                    msg.includes(String(badId)) ||
                      ids.flat().some((x) => msg.includes(`is ${x},`) || msg.includes(`id ${x} `)),
                    `${what}: ${msg}`,
                  );
                }
                return;
              } finally {
                if (arg instanceof pf.Tensor) arg.dispose();
              }
              try {
                assertOk(okLen, `accepted ${what}`);
                computed++;
                assertEquals(y.shape, [ids.length, L, 16]);
                assertOk((await y.data()).every(Number.isFinite), what);
              } finally {
                y.dispose();
              }
            },
          ),
          { seed: SEED, numRuns: runs * 2 },
        );
      } finally {
        gpt.dispose();
      }
      await sane(be, sentinel);
    },
  );
}
