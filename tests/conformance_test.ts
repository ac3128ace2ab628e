/**
 * The conformance suite: every kernel case of `_cases.ts` on every backend
 * under test, compared with the js reference backend.
 */
import { JsBackend } from "../src/backends/js.ts";
import type { Backend, BlockLayout } from "../src/backends/types.ts";
import { backendsUnderTest, disposing } from "./_backends.ts";
import { assertClose, assertThrows } from "./_assert.ts";
import { kernelCases, runCase } from "./_cases.ts";

const cases = kernelCases();
const reference = new JsBackend();

for (const entry of backendsUnderTest) {
  Deno.test(
    { name: `conformance: ${entry.label} matches the js reference`, ignore: entry.ignore },
    async (t) => {
      const be: Backend | undefined = await entry.make();
      if (be === undefined) {
        console.log(`  ${entry.label}: not available on this machine (not required here)`);
        return;
      }
      using _dispose = disposing(be);
      await t.step(
        "products refuse an output that is one of their inputs (a RangeError, not a wrong answer)",
        () => {
          noAliasedProducts(be);
        },
      );
      await t.step("memory: alloc zeros, upload, write at an offset, read copies", async () => {
        const b = be.alloc(7);
        assertClose(await be.read(b), new Float32Array(7), {
          atol: 0,
          rtol: 0,
          label: `${entry.label} alloc`,
        });
        be.write(b, Float32Array.of(1, 2, 3), 4);
        const u = be.upload(Float32Array.of(5, 6));
        be.flush();
        const r = await be.read(b);
        assertClose(r, Float32Array.of(0, 0, 0, 0, 1, 2, 3), {
          atol: 0,
          rtol: 0,
          label: `${entry.label} write`,
        });
        r[4] = 99;
        assertClose(await be.read(b), Float32Array.of(0, 0, 0, 0, 1, 2, 3), {
          atol: 0,
          rtol: 0,
          label: "read copies",
        });
        assertClose(await be.read(u), Float32Array.of(5, 6), {
          atol: 0,
          rtol: 0,
          label: `${entry.label} upload`,
        });
        be.free(b);
        be.free(u);
      });
      const ops = [...new Set(cases.map((c) => c.op))];
      for (const op of ops) {
        await t.step(op, async () => {
          for (const c of cases.filter((c) => c.op === op)) {
            const want = await runCase(reference, c);
            const got = await runCase(be, c);
            for (let k = 0; k < want.length; k++) {
              assertClose(got[k], want[k], {
                atol: c.atol ?? 1e-5,
                rtol: c.rtol ?? 1e-4,
                label: `${entry.label} ${c.op} ${c.name} output ${c.outputs[k]}`,
              });
            }
          }
        });
      }
    },
  );
}

Deno.test("conformance: the case table covers every Backend method", () => {
  const methods = Object.getOwnPropertyNames(JsBackend.prototype).filter(
    (m) =>
      ![
        "constructor",
        "alloc",
        "upload",
        "write",
        "read",
        "readExact",
        "writeExact",
        "free",
        "flush",
        "dispose",
      ]
        .includes(m),
  );
  const covered = new Set(cases.map((c) => c.op));
  const missing = methods.filter((m) => !covered.has(m));
  assertClose([missing.length], [0], { label: `methods without a conformance case: ${missing.join(", ")}` });
});

// gemm, dds and sdd read their inputs after they begin writing the output: an aliased output is refused.
function noAliasedProducts(be: Backend): void {
  const a = be.upload(new Float32Array(64 * 64).fill(1)), b = be.upload(new Float32Array(64 * 64).fill(1));
  const layout: BlockLayout = {
    rows: 2,
    cols: 2,
    block: 32,
    nnz: 2,
    rowPtr: Int32Array.of(0, 1, 2),
    colIdx: Int32Array.of(0, 1),
    colPtr: Int32Array.of(0, 1, 2),
    rowIdx: Int32Array.of(0, 1),
    blockIdx: Int32Array.of(0, 1),
  };
  const g = { M: 64, N: 64, K: 64, transA: false, transB: false, accumulate: false };
  assertThrows(() => be.gemm(a, b, a, g), RangeError, "the output c is also the input a");
  assertThrows(() => be.gemm(a, b, b, g), RangeError, "the output c is also the input b");
  assertThrows(
    () => be.dds(a, b, a, { M: 32, layout, transW: true, accumulate: false }),
    RangeError,
    "output y",
  );
  assertThrows(
    () => be.sdd(a, b, b, { layout, K: 32, transA: false, transB: false, accumulate: false }),
    RangeError,
    "output w",
  );
  be.gemm(a, b, be.alloc(64 * 64), g); // distinct buffers still run
  be.free(a), be.free(b);
}

Deno.test("conformance: js products refuse an output that is one of their inputs", () => {
  noAliasedProducts(new JsBackend());
});
