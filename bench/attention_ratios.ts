/**
 * The long-context attention table: forward + backward of block-sparse
 * attention (butterfly + local + global, `_attention_shapes.ts`) against
 * dense attention of the same shape at L = 512..4096, timed interleaved on
 * the wasm backend (medians; the machine may be shared), with the memory the
 * scores take. Dense attention that the backend refuses for memory is
 * reported as refused.
 *
 * Run: `deno run bench/attention_ratios.ts [--rounds N]` (prints a Markdown table)
 *
 * @module
 */
import { scaledDotProductAttention } from "../src/attention.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { Rng } from "../src/random.ts";
import { Tensor, tidy } from "../src/tensor.ts";
import { benchMask, DH, LENGTHS, N } from "./_attention_shapes.ts";
import { type Case, interleave } from "./_interleave.ts";

const roundsArg = Deno.args.indexOf("--rounds");
const rounds = roundsArg >= 0 ? Number(Deno.args[roundsArg + 1]) : 5;
const rng = new Rng(1);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 24 ? 1 : 0)} MiB`;

console.log(
  `| L | block | density | dense fwd+bwd | sparse fwd+bwd | sparse/dense | target 1.3·d | dense scores | sparse scores |`,
);
console.log(`|---|---|---|---|---|---|---|---|---|`);
for (const L of LENGTHS) {
  // a fresh backend per length, so one length's heap does not count against the next
  const be = await createWasmBackend();
  const leaf = (shape: number[]) => {
    const t = new Tensor(
      shape,
      be,
      be.upload(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal())),
    );
    t.requiresGrad = true;
    return t;
  };
  const q = leaf([N, L, DH]), k = leaf([N, L, DH]), v = leaf([N, L, DH]), g = leaf([N, L, DH]);
  const mask = benchMask(L), b = mask.block;
  const step = (sparse: boolean) => () => {
    tidy(() => scaledDotProductAttention(q, k, v, sparse ? { mask } : {}).backward(g));
    for (const t of [q, k, v]) {
      t.grad?.dispose();
      t.grad = undefined;
    }
  };
  const denseScores = N * L * L * 4, sparseScores = N * mask.nnz * b * b * 4;
  let denseOk = true, why = "";
  try {
    step(false)();
  } catch (e) {
    denseOk = false;
    why = (e as Error).message.split("\n")[0].slice(0, 80);
  }
  const cases: Case[] = [{ name: "sparse", fn: step(true) }];
  if (denseOk) cases.push({ name: "dense", fn: step(false) });
  const t = interleave(cases, { rounds, warmup: 1 });
  const sp = t.get("sparse")!.median, de = t.get("dense")?.median;
  console.log(
    `| ${L} | ${b} | ${mask.density.toFixed(3)} | ${
      de === undefined ? `refused (${why})` : `${de.toFixed(0)} ms`
    } | ` +
      `${sp.toFixed(0)} ms | ${de === undefined ? "-" : (sp / de).toFixed(3)} | ${
        (1.3 * mask.density).toFixed(3)
      } | ` +
      `${mib(denseScores)} | ${mib(sparseScores)} |`,
  );
  be.dispose();
}
