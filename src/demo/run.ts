/**
 * The demo's training loop: seeded shuffles, AdamW, a progress bar on a
 * terminal (plain lines otherwise), evaluation after every epoch.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { noGrad } from "../autograd.ts";
import type { Module } from "../nn/module.ts";
import { crossEntropy } from "../ops.ts";
import { AdamW } from "../optim/adamw.ts";
import { Rng } from "../random.ts";
import { Tensor, tidy } from "../tensor.ts";
import { argmax } from "../train.ts";

/** What one epoch gave. */
export interface EpochResult {
  epoch: number;
  trainLoss: number;
  testAccuracy: number;
  /** Wall time of the training steps of the epoch (evaluation excluded). */
  seconds: number;
}

/** Examples as flat float32 rows with labels. */
export interface Split {
  x: Float32Array;
  y: ArrayLike<number>;
  n: number;
}

const enc = new TextEncoder();

function progress(line: string, tty: boolean): void {
  if (tty) Deno.stdout.writeSync(enc.encode(`\r${line}\x1b[K`));
}

/** Train for `epochs` and evaluate after each; same seed ⇒ same data order. */
export async function trainAndEvaluate(
  o: {
    model: Module;
    train: Split;
    test: Split;
    shape: (batch: number) => number[];
    epochs: number;
    batch: number;
    lr: number;
    seed: number;
    backend: Backend;
    quiet?: boolean;
  },
): Promise<EpochResult[]> {
  const { model, train, test, batch, backend: be } = o;
  const per = train.x.length / train.n;
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: 0.01 });
  const rng = new Rng(o.seed + 1);
  const order = Int32Array.from({ length: train.n }, (_, i) => i);
  const xb = new Float32Array(batch * per), yb = new Int32Array(batch);
  const tty = !o.quiet && Deno.stdout.isTerminal();
  const steps = Math.floor(train.n / batch);
  const readEvery = be.name === "webgpu" ? 20 : 1;
  const out: EpochResult[] = [];
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    model.train();
    rng.shuffle(order);
    let lossSum = 0, lossCount = 0, seconds = 0;
    for (let s = 0; s < steps; s++) {
      for (let i = 0; i < batch; i++) {
        const k = order[s * batch + i];
        xb.set(train.x.subarray(k * per, (k + 1) * per), i * per);
        yb[i] = train.y[k];
      }
      const t0 = performance.now();
      const x = new Tensor(o.shape(batch), be, be.upload(xb));
      opt.zeroGrad();
      const loss = tidy(() => {
        const l = crossEntropy(model.forward(x), yb);
        l.backward();
        opt.step();
        return l;
      });
      x.dispose();
      if (s % readEvery === 0 || s === steps - 1) {
        lossSum += await loss.item();
        lossCount++;
      } else be.flush();
      loss.dispose();
      seconds += (performance.now() - t0) / 1000;
      if (tty && (s % 5 === 0 || s === steps - 1)) {
        const done = (s + 1) / steps,
          rate = ((s + 1) * batch) / seconds,
          eta = (steps - s - 1) * batch / rate;
        const bar = "#".repeat(Math.round(done * 24)).padEnd(24, ".");
        progress(
          `  epoch ${epoch}/${o.epochs} [${bar}] ${(100 * done).toFixed(0)}% loss ${
            (lossSum / lossCount).toFixed(4)
          } ` +
            `${rate.toFixed(0)} ex/s ETA ${eta.toFixed(0)}s`,
          tty,
        );
      }
    }
    const testAccuracy = await evaluate(model, test, o.shape, be);
    const r = { epoch, trainLoss: lossSum / lossCount, testAccuracy, seconds };
    out.push(r);
    if (tty) progress("", tty);
    if (!o.quiet) {
      console.log(
        `${tty ? "\r" : ""}  epoch ${epoch}/${o.epochs}: loss ${r.trainLoss.toFixed(4)}, test accuracy ` +
          `${(100 * testAccuracy).toFixed(2)}%, ${seconds.toFixed(2)} s (${
            (steps * batch / seconds).toFixed(0)
          } ex/s)`,
      );
    }
  }
  opt.dispose();
  return out;
}

/** Test accuracy in batches of 500, without the tape. */
export async function evaluate(
  model: Module,
  test: Split,
  shape: (batch: number) => number[],
  be: Backend,
): Promise<number> {
  model.eval();
  const per = test.x.length / test.n, B = 500;
  let hit = 0;
  for (let s = 0; s < test.n; s += B) {
    const n = Math.min(B, test.n - s);
    const x = new Tensor(shape(n), be, be.upload(test.x.slice(s * per, (s + n) * per)));
    const logits = tidy(() => noGrad(() => model.forward(x)));
    const pred = await argmax(logits);
    for (let i = 0; i < n; i++) if (pred[i] === test.y[s + i]) hit++;
    logits.dispose();
    x.dispose();
  }
  model.train();
  return hit / test.n;
}
