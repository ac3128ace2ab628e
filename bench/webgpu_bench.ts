/**
 * WebGPU kernels: dense gemm as the baseline of each group against dds
 * forward, dds backward (dX) and sdd (dW) at densities 1/4 and 1/8 (flat
 * block butterfly at block 32), on the shapes of the WASM benches, plus a
 * PixelflyLinear forward+backward step. Adds M=N=K=4096 on a hardware
 * adapter (or with PIXELFLY_BENCH_BIG=1).
 *
 * Every iteration records REPS products into one submit and waits for the
 * GPU (`onSubmittedWorkDone`), so the ~11 ms a GPU await costs on a
 * software adapter is spread over several dispatches; the printed time is
 * per iteration. On a software adapter (Mesa llvmpipe) read only the
 * sparse/dense ratios: llvmpipe speed says nothing about GPU speed.
 *
 * Run: `deno bench --allow-read --allow-env bench/webgpu_bench.ts`
 * (PIXELFLY_WEBGPU_FAMILY=register|workgroup overrides the kernel family.)
 *
 * @module
 */
import type { BackendBuffer, BlockLayout } from "../src/backends/types.ts";
import { WebGpuBackend } from "../src/backends/webgpu.ts";
import { pixelflyStep, pixelflyStepBuffers } from "./pixelfly_step.ts";
import { Rng } from "../src/random.ts";

/** An environment variable, or undefined where env access is not granted (plain `deno bench`). */
function env(name: string): string | undefined {
  return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted"
    ? Deno.env.get(name)
    : undefined;
}
import { butterflyLayout, densityOf, PIXELFLY, type Shape, shapeName, SHAPES, SPARSE } from "./_shapes.ts";

// deno-lint-ignore no-explicit-any
const adapter: GPUAdapter | null = await (globalThis.navigator as any)?.gpu?.requestAdapter() ?? null;
if (adapter === null) {
  console.log("webgpu_bench: no WebGPU adapter here, nothing to measure");
} else {
  // deno-lint-ignore no-explicit-any
  const a = adapter as any;
  const fallback: boolean = a.isFallbackAdapter ?? a.info?.isFallbackAdapter ?? false;
  const fam = env("PIXELFLY_WEBGPU_FAMILY") as "register" | "workgroup" | undefined;
  const be = await WebGpuBackend.create({ adapter, family: fam });
  const desc = `${a.info?.description || a.info?.vendor || "adapter"}${fallback ? " (software)" : ""}`;
  console.log(`webgpu_bench: ${desc}, family ${be.family}`);
  const rng = new Rng(3);
  const buf = (n: number): BackendBuffer =>
    be.upload(Float32Array.from({ length: n }, () => rng.uniform(-1, 1)));
  // Enough products per submit that the GPU work outweighs the await.
  const reps = (flop: number) => Math.max(1, Math.min(16, Math.round((fallback ? 2e8 : 4e11) / flop)));
  const opts = fallback ? { n: 3, warmup: 1 } : { n: 20, warmup: 3 };

  const shapes: Shape[] = [...SHAPES];
  if (!fallback || env("PIXELFLY_BENCH_BIG") === "1") shapes.push({ M: 4096, K: 4096, N: 4096 });

  for (const s of shapes) {
    const { M, K, N } = s;
    const x = buf(M * K), dy = buf(M * N), y = be.alloc(M * N), dx = be.alloc(M * K);
    const wD = buf(N * K), dwD = be.alloc(N * K);
    const r = reps(2 * M * K * N);
    const timed = (fn: () => void) => async () => {
      for (let i = 0; i < r; i++) fn();
      await be.sync();
    };
    for (const { d, butterflySize, nFactors } of SPARSE.densities) {
      const l: BlockLayout = butterflyLayout(s, SPARSE.block, butterflySize, nFactors);
      const w = buf(l.nnz * l.block * l.block), dw = be.alloc(l.nnz * l.block * l.block);
      const tag = `${shapeName(s)} b${SPARSE.block} d=${d} x${r}`;
      const name = `butterfly B${butterflySize} f${nFactors} (d=${densityOf(l).toFixed(4)})`;
      Deno.bench(
        { group: `webgpu dds fwd ${tag}`, name: "dense gemm", baseline: true, ...opts },
        timed(() => be.gemm(x, wD, y, { M, N, K, transA: false, transB: true, accumulate: false })),
      );
      Deno.bench(
        { group: `webgpu dds fwd ${tag}`, name, ...opts },
        timed(() => be.dds(x, w, y, { M, layout: l, transW: true, accumulate: false })),
      );
      Deno.bench(
        { group: `webgpu dds bwd ${tag}`, name: "dense gemm", baseline: true, ...opts },
        timed(() => be.gemm(dy, wD, dx, { M, N: K, K: N, transA: false, transB: false, accumulate: false })),
      );
      Deno.bench(
        { group: `webgpu dds bwd ${tag}`, name, ...opts },
        timed(() => be.dds(dy, w, dx, { M, layout: l, transW: false, accumulate: false })),
      );
      Deno.bench(
        { group: `webgpu sdd ${tag}`, name: "dense gemm", baseline: true, ...opts },
        timed(() =>
          be.gemm(dy, x, dwD, { M: N, N: K, K: M, transA: true, transB: false, accumulate: false })
        ),
      );
      Deno.bench(
        { group: `webgpu sdd ${tag}`, name, ...opts },
        timed(() => be.sdd(dy, x, dw, { layout: l, K: M, transA: true, transB: false, accumulate: false })),
      );
    }
  }

  // PixelflyLinear forward+backward: sparse butterfly + rank-r term vs a dense linear layer.
  {
    const s = PIXELFLY.shape, { M, K, N } = s, r = PIXELFLY.rank;
    const l = butterflyLayout(s, PIXELFLY.block, PIXELFLY.butterflySize, PIXELFLY.nFactors);
    const group = `webgpu pixelfly fwd+bwd ${shapeName(s)}`;
    const x = buf(M * K), dy = buf(M * N), y = be.alloc(M * N), dx = be.alloc(M * K);
    const wD = buf(N * K), dwD = be.alloc(N * K);
    Deno.bench({ group, name: "dense linear", baseline: true, ...opts }, async () => {
      be.gemm(x, wD, y, { M, N, K, transA: false, transB: true, accumulate: false });
      be.gemm(dy, wD, dx, { M, N: K, K: N, transA: false, transB: false, accumulate: false });
      be.gemm(dy, x, dwD, { M: N, N: K, K: M, transA: true, transB: false, accumulate: false });
      await be.sync();
    });
    const sizes = { M, K, N, rank: r, layout: l };
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
    const bufs = { ...pixelflyStepBuffers(be, sizes, rand), x, dy, y, dx };
    const name = `pixelfly B${PIXELFLY.butterflySize} f${PIXELFLY.nFactors} + rank ${r} (d=${
      densityOf(l).toFixed(4)
    })`;
    Deno.bench({ group, name, ...opts }, async () => {
      pixelflyStep(be, bufs, sizes);
      await be.sync();
    });
  }
}
