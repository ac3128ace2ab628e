// @ts-check
/**
 * What the browser and Node tests run, written once in plain JavaScript so the
 * very same source runs in Deno (against `mod.ts`), in Chromium (page or
 * Worker, against the bundle) and in Node (against the bundle). Every function
 * takes the module as its first argument and returns plain JSON-able data.
 *
 * @module
 */

/**
 * A short seeded training run of a small Pixelfly MLP (256 -> 128 Pixelfly -> GELU -> 10 dense) with
 * AdamW on a fixed batch, on a backend made from `o`. Returns the loss of every step and what the
 * backend reports about itself (name, build, threads and, where the backend has it, its info).
 *
 * @param {any} pf the pixelfly module (mod.ts or the bundle)
 * @param {{ backend: "js" | "wasm" | "webgpu", threads?: 1 | 2 | "auto", variant?: string,
 *   steps?: number, seed?: number, pauseMs?: number }} o (pauseMs: an idle pause before the third step)
 */
export async function trainRun(pf, o) {
  const steps = o.steps ?? 6, seed = o.seed ?? 7;
  /** @type {any} */
  let be;
  if (o.backend === "wasm") {
    const opts = /** @type {any} */ ({ threads: o.threads ?? 1, minSplitWork: 0 });
    if (o.variant) opts.variant = o.variant;
    be = await pf.createWasmBackend(opts);
  } else if (o.backend === "webgpu") be = await pf.createWebGpuBackend();
  else be = await pf.setBackend("js");
  const backend = {
    name: be.name,
    variant: be.variant ?? null,
    threads: be.threads ?? 1,
    info: typeof be.info === "object" && be.info !== null ? JSON.parse(JSON.stringify(be.info)) : null,
  };
  await pf.setBackend(be);
  pf.manualSeed(seed);
  const IN = 256, HID = 128, M = 64;
  const model = new pf.Sequential(
    new pf.PixelflyLinear(IN, HID, { block: 16, butterflySize: 8, nFactors: 2, rank: 8 }),
    new pf.GELU(),
    new pf.Linear(HID, 10),
  );
  const opt = new pf.AdamW(model.parameters(), { lr: 3e-3 });
  const x = pf.randn([M, IN], { seed: seed + 1 });
  const y = Int32Array.from({ length: M }, (_, i) => (i * 7 + 3) % 10);
  /** @type {number[]} */
  const losses = [];
  try {
    for (let s = 0; s < steps; s++) {
      if (s === 2 && o.pauseMs) await new Promise((resolve) => setTimeout(resolve, o.pauseMs));
      opt.zeroGrad();
      const loss = pf.tidy(() => {
        const l = pf.crossEntropy(model.forward(x), y);
        l.backward();
        opt.step();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
  } finally {
    x.dispose();
    opt.dispose();
    model.dispose();
    await pf.setBackend("js");
    if (o.backend !== "js") be.dispose();
  }
  return { losses, backend };
}

/**
 * Masks as plain data: flat block butterfly masks of several shapes, a union with a global mask and a
 * budget choice, each as its BSR arrays, density and text picture.
 *
 * @param {any} pf the pixelfly module (mod.ts or the bundle)
 */
export function maskSummary(pf) {
  /** @param {any} m */
  const plain = (m) => {
    const bsr = m.toBSR();
    return {
      rows: m.rows,
      cols: m.cols,
      block: m.block,
      nnz: m.nnz,
      density: m.density,
      rowPtr: Array.from(bsr.rowPtr),
      colIdx: Array.from(bsr.colIdx),
      text: m.toString(),
    };
  };
  const fbb = pf.flatBlockButterfly({
    outFeatures: 1024,
    inFeatures: 1024,
    block: 32,
    butterflySize: 16,
    nFactors: 2,
  });
  const rect = pf.flatBlockButterfly({
    outFeatures: 512,
    inFeatures: 256,
    block: 16,
    butterflySize: 8,
    nFactors: 3,
  });
  const glob = pf.union(
    pf.flatBlockButterfly({ outFeatures: 256, inFeatures: 256, block: 16, butterflySize: 8, nFactors: 1 }),
    pf.globalMask({ outFeatures: 256, inFeatures: 256, block: 16, globalSize: 1 }),
  );
  const budget = pf.pixelflyBudget({ inFeatures: 784, outFeatures: 1024, budget: 0.25 });
  return {
    fbb: plain(fbb),
    rect: plain(rect),
    glob: plain(glob),
    budget: { block: budget.block, rank: budget.rank, mask: plain(budget.mask) },
    svgRects: (fbb.toSVG({ cell: 4 }).match(/<rect /g) ?? []).length,
  };
}
