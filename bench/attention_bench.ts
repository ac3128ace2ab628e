/**
 * Attention forward + backward, block-sparse against dense of the same shape
 * (N = 8, dh = 64, butterfly + local + global layout), on the wasm backend, so
 * `deno bench` prints the sparse/dense ratio per length. L = 4096 and the
 * memory figures are in `bench/attention_ratios.ts` (dense attention there
 * needs gigabytes).
 *
 * Run: `deno bench bench/attention_bench.ts`
 *
 * @module
 */
import { scaledDotProductAttention } from "../src/attention.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { Rng } from "../src/random.ts";
import { Tensor, tidy } from "../src/tensor.ts";
import { benchMask, DH, N } from "./_attention_shapes.ts";

const be = await createWasmBackend();
const rng = new Rng(1);

function leaf(shape: number[]): Tensor {
  const t = new Tensor(
    shape,
    be,
    be.upload(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal())),
  );
  t.requiresGrad = true;
  return t;
}

for (const L of [512, 1024, 2048]) {
  const q = leaf([N, L, DH]), k = leaf([N, L, DH]), v = leaf([N, L, DH]);
  const g = new Tensor(
    [N, L, DH],
    be,
    be.upload(Float32Array.from({ length: N * L * DH }, () => rng.normal())),
  );
  const mask = benchMask(L);
  const group = `attention fwd+bwd N=${N} L=${L} dh=${DH} b=${mask.block} d=${mask.density.toFixed(3)}`;
  const step = (sparse: boolean) => () => {
    tidy(() => scaledDotProductAttention(q, k, v, sparse ? { mask } : {}).backward(g));
    for (const t of [q, k, v]) {
      t.grad?.dispose();
      t.grad = undefined;
    }
  };
  Deno.bench({ group, name: "dense", baseline: true, n: 5, warmup: 1 }, step(false));
  Deno.bench({ group, name: "block-sparse", n: 5, warmup: 1 }, step(true));
}
