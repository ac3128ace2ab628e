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
import { assertEquals, assertOk } from "./_assert.ts";
import { type Entry, MAKERS, OPS } from "./_op_table.ts";

const SEED = 20261129;
const RUNS = 60;

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

async function fuzzOn(be: Backend, t: Deno.TestContext): Promise<void> {
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
        { seed: SEED, numRuns: RUNS },
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
      { seed: SEED, numRuns: 60 },
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
      { seed: SEED, numRuns: 80 },
    );
    x.dispose();
    w.dispose();
    await sane(be, sentinel);
  });
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
