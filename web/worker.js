// The demo page's training Worker: trains a dense and a Pixelfly MLP side by side (alternating steps, so
// both are timed under the same load), then the budget sweep, and posts every number to the page.
// Runs the one-file bundle; WASM on two threads when the page is cross-origin isolated, WebGPU on a
// hardware adapter (or when asked for).
import * as pf from "./pixelfly.js";

const post = (type, data = {}) => postMessage({ type, ...data });

/** The backend the page asked for; "auto" = WebGPU on a hardware adapter, else WASM with threads "auto". */
async function chooseBackend(name, threads) {
  const notes = [];
  if (name === "auto" || name === "webgpu") {
    let adapter = null;
    try {
      adapter = await navigator.gpu?.requestAdapter();
    } catch (e) {
      notes.push(`WebGPU: ${e.message}`);
    }
    const fallback = adapter?.info?.isFallbackAdapter ?? adapter?.isFallbackAdapter ?? false;
    if (name === "webgpu" || (adapter && !fallback)) {
      try {
        const be = await pf.createWebGpuBackend();
        if (fallback) notes.push("WebGPU on a software adapter: its times are not GPU speed");
        return { be, notes };
      } catch (e) {
        if (name === "webgpu") throw e;
        notes.push(`WebGPU: ${e.message}`);
      }
    } else {
      notes.push(
        !navigator.gpu
          ? "WebGPU: this browser has none"
          : !adapter
          ? "WebGPU: no adapter"
          : "WebGPU: only a software adapter, slower than WASM",
      );
    }
  }
  if (name === "js") return { be: await pf.setBackend("js"), notes };
  const be = await pf.createWasmBackend({ threads: threads === "auto" ? "auto" : Number(threads) });
  // the backend says why it runs fewer threads than asked, where it can (WasmBackend.info.notes)
  const why = Array.isArray(be.info?.notes) ? be.info.notes : [];
  notes.push(...why);
  if (why.length === 0 && be.threads < 2 && !self.crossOriginIsolated) {
    notes.push("one WASM thread: the page is not cross-origin isolated (no SharedArrayBuffer)");
  }
  return { be, notes };
}

async function fetchIdx(name) {
  const res = await fetch(`./data/${name}`);
  if (!res.ok) throw new Error(`GET /data/${name}: ${res.status}`);
  return pf.parseIdx(await pf.gunzip(new Uint8Array(await res.arrayBuffer())));
}

/** Fashion-MNIST when the server has it, else the module's seeded synthetic stroke images. */
async function loadData(which, nTrain, nTest) {
  if (which !== "synthetic") {
    let has = false;
    try {
      has = (await (await fetch("./data/index.json")).json()).fashionMnist;
    } catch {
      has = false;
    }
    if (has) {
      const split = async (images, labels, n) => {
        const [im, lb] = await Promise.all([fetchIdx(images), fetchIdx(labels)]);
        n = Math.min(n, lb.data.length);
        const x = new Float32Array(n * 784);
        for (let i = 0; i < x.length; i++) x[i] = im.data[i] / 255;
        return { images: x, labels: lb.data.subarray(0, n), n };
      };
      return {
        source: "Fashion-MNIST",
        train: await split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", nTrain),
        test: await split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", nTest),
      };
    }
  }
  return {
    source: "synthetic strokes (Fashion-MNIST not served)",
    train: pf.syntheticImages({ n: Math.min(nTrain, 8000), seed: 1 }),
    test: pf.syntheticImages({ n: Math.min(nTest, 2000), seed: 2 }),
  };
}

/** The demo's MLP, 784-H-H-10 with GELU; `mk` makes the two large layers. */
function mlp(hidden, mk) {
  return new pf.Sequential(
    mk(784, hidden),
    new pf.GELU(),
    mk(hidden, hidden),
    new pf.GELU(),
    new pf.Linear(hidden, 10),
  );
}

const PIXELFLY = { block: 32, butterflySize: 16, nFactors: 2, rank: 32 };

/** One model's trainer: a step on a given batch (timed up to the loss read-back), and evaluation. */
function trainer(model, be, lr) {
  const opt = new pf.AdamW(model.parameters(), { lr, weightDecay: 0.01 });
  return {
    model,
    async step(xb, yb) {
      const t0 = performance.now();
      const x = new pf.Tensor([yb.length, 784], be, be.upload(xb));
      opt.zeroGrad();
      const loss = pf.tidy(() => {
        const l = pf.crossEntropy(model.forward(x), yb);
        l.backward();
        opt.step();
        return l;
      });
      const value = await loss.item();
      loss.dispose();
      x.dispose();
      return { loss: value, ms: performance.now() - t0 };
    },
    async evaluate(test) {
      model.eval();
      let hit = 0;
      for (let s = 0; s < test.n; s += 500) {
        const n = Math.min(500, test.n - s);
        const x = new pf.Tensor([n, 784], be, be.upload(test.images.slice(s * 784, (s + n) * 784)));
        const logits = pf.tidy(() => pf.noGrad(() => model.forward(x)));
        const pred = await pf.argmax(logits);
        for (let i = 0; i < n; i++) if (pred[i] === test.labels[s + i]) hit++;
        logits.dispose();
        x.dispose();
      }
      model.train();
      return hit / test.n;
    },
    dispose() {
      opt.dispose();
      model.dispose();
    },
  };
}

/** Seeded batches in a fixed shuffled order, the same for every model. */
function batches(train, batch, seed) {
  const rng = new pf.Rng(seed);
  const order = Int32Array.from({ length: train.n }, (_, i) => i);
  rng.shuffle(order);
  const xb = new Float32Array(batch * 784), yb = new Int32Array(batch);
  return (s) => {
    for (let i = 0; i < batch; i++) {
      const k = order[(s * batch + i) % train.n];
      xb.set(train.images.subarray(k * 784, (k + 1) * 784), i * 784);
      yb[i] = train.labels[k];
    }
    return [xb, yb];
  };
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : NaN;
};

async function run(p) {
  // The data first: a WASM helper thread that sits idle for a second leaves, and restarting it from a
  // Worker that then blocks in Atomics.wait does not work in Chromium (see the report in tests/browser_test.ts).
  const data = await loadData(p.data, p.train, p.test);
  const { be, notes } = await chooseBackend(p.backend, p.threads);
  await pf.setBackend(be);
  post("backend", {
    name: be.name,
    variant: be.variant ?? null,
    threads: be.threads ?? 1,
    isolated: self.crossOriginIsolated,
    notes,
  });
  post("data", { source: data.source, train: data.train.n, test: data.test.n });
  const next = batches(data.train, p.batch, p.seed + 1);
  const warm = Math.min(3, Math.floor(p.steps / 4));

  // 1. dense and Pixelfly side by side
  pf.manualSeed(p.seed);
  const dense = trainer(mlp(p.hidden, (i, o) => new pf.Linear(i, o)), be, p.lr);
  pf.manualSeed(p.seed);
  const fly = trainer(mlp(p.hidden, (i, o) => new pf.PixelflyLinear(i, o, PIXELFLY)), be, p.lr);
  const masks = [];
  for (const m of fly.model.namedChildren()) {
    const layer = m[1];
    if (layer instanceof pf.PixelflyLinear) {
      const mask = layer.sparse.mask, cell = Math.max(2, Math.floor(256 / Math.max(mask.rows, mask.cols)));
      masks.push({
        name: `${m[0]}: ${layer.outFeatures}x${layer.inFeatures}`,
        svg: mask.toSVG({
          cell,
          title: `${layer.outFeatures}x${layer.inFeatures}, density ${mask.density.toFixed(3)}`,
        }),
        rows: mask.rows,
        cols: mask.cols,
        nnz: mask.nnz,
        density: mask.density,
      });
    }
  }
  post("models", {
    dense: { params: dense.model.parameterCount(), flops: pf.linearFlops(dense.model) },
    pixelfly: { params: fly.model.parameterCount(), flops: pf.linearFlops(fly.model) },
    masks,
  });
  const ms = { dense: [], pixelfly: [] };
  for (let s = 0; s < p.steps; s++) {
    const [xb, yb] = next(s);
    // alternate which model goes first, so neither always runs on a warmer cache
    const order = s % 2 ? [["pixelfly", fly], ["dense", dense]] : [["dense", dense], ["pixelfly", fly]];
    for (const [name, t] of order) {
      const r = await t.step(xb, yb);
      if (s >= warm) ms[name].push(r.ms);
      post("step", { model: name, step: s + 1, loss: r.loss, ms: r.ms });
    }
    if (s >= warm) post("speed", { dense: median(ms.dense), pixelfly: median(ms.pixelfly) });
    if ((s + 1) % p.evalEvery === 0 || s === p.steps - 1) {
      for (const [name, t] of [["dense", dense], ["pixelfly", fly]]) {
        post("eval", { model: name, step: s + 1, accuracy: await t.evaluate(data.test) });
      }
    }
  }
  dense.dispose();
  fly.dispose();

  // 2. the budget sweep: the same MLP at several parameter budgets, accuracy against measured speed-up.
  // All models step in turn on the same batches (rotating the order), so every one is timed under the same load.
  if (p.sweepSteps > 0) {
    const build = (budget) => {
      pf.manualSeed(p.seed);
      const model = mlp(p.hidden, (i, o) => {
        if (budget === "dense") return new pf.Linear(i, o);
        const c = pf.pixelflyBudget({ inFeatures: i, outFeatures: o, budget });
        return new pf.PixelflyLinear(i, o, { block: c.block, mask: c.mask, rank: c.rank });
      });
      return { budget, params: model.parameterCount(), t: trainer(model, be, p.lr), times: [] };
    };
    const runs = ["dense", ...p.budgets].map(build);
    for (let s = 0; s < p.sweepSteps; s++) {
      const [xb, yb] = next(s);
      for (let k = 0; k < runs.length; k++) {
        const r = runs[(k + s) % runs.length];
        const { ms } = await r.t.step(xb, yb);
        if (s >= warm) r.times.push(ms);
      }
      post("sweep-step", { step: s + 1, of: p.sweepSteps });
    }
    const denseMs = median(runs[0].times);
    for (const r of runs) {
      const ms = median(r.times);
      post("sweep", {
        budget: r.budget,
        params: r.params,
        ms,
        speedup: r.budget === "dense" ? 1 : denseMs / ms,
        accuracy: await r.t.evaluate(data.test),
      });
      r.t.dispose();
    }
  }
  await pf.setBackend("js");
  be.dispose?.();
  post("done");
}

self.onmessage = async (e) => {
  try {
    await run(e.data);
  } catch (err) {
    post("error", { message: String(err?.stack ?? err) });
  }
};
