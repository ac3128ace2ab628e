/**
 * The paper's "flat block butterfly is ~3x faster than block butterfly"
 * (Chen, Dao et al., ICLR 2022, Section 3.2 and Figure 11), on this module's
 * kernels.
 *
 * A block butterfly matrix of size n with block b is the product of
 * log2(B) factors, B = n / b; factor k keeps tile (i, j) of its B x B grid of
 * b x b tiles when i == j or i XOR j == 2^k (`butterflyFactor(B, k, { block: b })`),
 * so multiplying by it is log2(B) block-sparse products (`dds`), one after
 * another, each reading the previous one's output. The flat block butterfly
 * of the same size replaces the product by the sum of the factors (the
 * first-order term of the product, Section 3.2): its support is the union of
 * the factors' supports, `flatBlockButterfly({ butterflySize: B, nFactors:
 * log2(B), block: b })`, so it is ONE `dds` with 1 + log2(B) tiles per block
 * row instead of log2(B) `dds` with 2 each (about half the FLOPs and one pass
 * over the activations instead of log2(B)).
 *
 * Groups: `butterfly <backend> n=<n> b=32 M=256`, one per backend and size,
 * with the product of factors as the baseline, so `deno bench` prints how
 * many times faster the flat one is; on wasm, dense gemm of the same shape is
 * listed for scale. wasm at n = 1024 and 4096; the js reference only at
 * n = 1024 (it is slow).
 *
 * Run: `deno bench --allow-read --allow-env bench/butterfly_bench.ts`
 *
 * @module
 */
import { JsBackend } from "../src/backends/js.ts";
import type { Backend, BackendBuffer, BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { butterflyFactor, flatBlockButterfly } from "../src/masks/patterns.ts";
import { Rng } from "../src/random.ts";

const M = 256, BLOCK = 32;
const SIZES: { n: number; backends: ("wasm" | "js")[] }[] = [
  { n: 1024, backends: ["wasm", "js"] },
  { n: 4096, backends: ["wasm"] },
];

const backends: Record<"wasm" | "js", Backend> = { wasm: await createWasmBackend(), js: new JsBackend() };
const rng = new Rng(7);

function upload(be: Backend, size: number, scale: number): BackendBuffer {
  const d = new Float32Array(size);
  for (let i = 0; i < size; i++) d[i] = (rng.uniform() - 0.5) * scale;
  return be.upload(d);
}

for (const { n, backends: names } of SIZES) {
  const B = n / BLOCK, logB = Math.log2(B);
  const factors: BlockLayout[] = Array.from(
    { length: logB },
    (_, k) => butterflyFactor(B, k, { block: BLOCK }).toBSR(),
  );
  const flat = flatBlockButterfly({
    outFeatures: n,
    inFeatures: n,
    block: BLOCK,
    butterflySize: B,
    nFactors: logB,
  })
    .toBSR();
  const bb = BLOCK * BLOCK;
  const productTiles = factors.reduce((s, l) => s + l.nnz, 0);
  for (const name of names) {
    const be = backends[name];
    const group =
      `butterfly ${name} n=${n} b=${BLOCK} M=${M} (${logB} factors: ${productTiles} tiles vs flat ${flat.nnz})`;
    const x = upload(be, M * n, 1), h0 = be.alloc(M * n), h1 = be.alloc(M * n);
    const ws = factors.map((l) => upload(be, l.nnz * bb, 1 / Math.sqrt(2 * BLOCK)));
    const wFlat = upload(be, flat.nnz * bb, 1 / Math.sqrt((1 + logB) * BLOCK));
    Deno.bench({ group, name: `${name}: block butterfly, ${logB} dds in sequence`, baseline: true }, () => {
      let src = x, dst = h0;
      factors.forEach((layout, k) => {
        be.dds(src, ws[k], dst, { M, layout, transW: true, accumulate: false });
        src = dst;
        dst = dst === h0 ? h1 : h0;
      });
      be.flush();
    });
    Deno.bench({ group, name: `${name}: flat block butterfly, 1 dds` }, () => {
      be.dds(x, wFlat, h0, { M, layout: flat, transW: true, accumulate: false });
      be.flush();
    });
    if (name === "wasm") {
      const wDense = upload(be, n * n, 1 / Math.sqrt(n));
      Deno.bench({ group, name: `${name}: dense gemm (for scale)` }, () => {
        be.gemm(x, wDense, h0, { M, N: n, K: n, transA: false, transB: true, accumulate: false });
        be.flush();
      });
    }
  }
}
