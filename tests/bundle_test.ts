/**
 * `deno task bundle` (src/tools/bundle.ts): the one-file ESM bundle builds with
 * no warnings and no imports left, loads by dynamic import, and runs a
 * PixelflyLinear forward on the js and wasm backends with results equal to the
 * unbundled module's and close to a float64 reference computed here from the
 * layer's own parameters. The same bundle runs under Node when `node` is on
 * the PATH (it touches no `Deno` global at import time).
 */
import * as pf from "../mod.ts";
import { bundle, TSC } from "../src/tools/bundle.ts";
import { assertClose, assertEquals, assertOk } from "./_assert.ts";

type Pf = typeof pf;
const IN = 256, OUT = 128, M = 5;
const LAYER = { seed: 3, block: 16, butterflySize: 8, nFactors: 2, rank: 8 } as const;

/** Build the layer and the input from seeds in the given copy of the module, and run the forward pass. */
async function forward(mod: Pf, backend: "js" | "wasm") {
  await mod.setBackend(backend);
  const layer = new mod.PixelflyLinear(IN, OUT, LAYER);
  const x = mod.randn([M, IN], { seed: 4 });
  const y = await layer.forward(x).data();
  return { layer, x: await x.data(), y };
}

/** y = s + g·(l − s) + bias in float64, from the layer's parameters (Chen, Dao et al., Section 3). */
async function reference(layer: pf.PixelflyLinear, x: Float32Array): Promise<Float64Array> {
  const p = Object.fromEntries(
    await Promise.all(layer.namedParameters().map(async ([n, t]) => [n, await t.data()] as const)),
  );
  const { rows, block: b, rowPtr, colIdx } = layer.sparse.mask.toBSR();
  const w = p["sparse.weight"], V = p["low_rank.V"], U = p["low_rank.U"];
  const ga = p["gate.weight"], gc = p["gate.bias"][0], bias = p["bias"];
  const r = layer.lowRank!.rank;
  const y = new Float64Array(M * OUT);
  for (let m = 0; m < M; m++) {
    const xm = x.subarray(m * IN, (m + 1) * IN);
    const s = new Float64Array(OUT);
    for (let i = 0; i < rows; i++) {
      for (let e = rowPtr[i]; e < rowPtr[i + 1]; e++) {
        for (let rr = 0; rr < b; rr++) {
          let acc = 0;
          for (let c = 0; c < b; c++) acc += w[e * b * b + rr * b + c] * xm[colIdx[e] * b + c];
          s[i * b + rr] += acc;
        }
      }
    }
    const h = new Float64Array(r);
    for (let k = 0; k < r; k++) for (let j = 0; j < IN; j++) h[k] += V[k * IN + j] * xm[j];
    let z = gc;
    for (let j = 0; j < IN; j++) z += ga[j] * xm[j];
    const g = 1 / (1 + Math.exp(-z));
    for (let n = 0; n < OUT; n++) {
      let l = 0;
      for (let k = 0; k < r; k++) l += U[n * r + k] * h[k];
      y[m * OUT + n] = s[n] + g * (l - s[n]) + bias[n];
    }
  }
  return y;
}

function hasNode(): boolean {
  try {
    return new Deno.Command("node", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

Deno.test("bundle: one self-contained ESM file whose PixelflyLinear matches the module on js and wasm", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pixelfly_bundle_" });
  try {
    const { outfile, bytes, warnings } = await bundle({ outfile: `${dir}/pixelfly.js` });
    assertEquals(warnings, []);
    assertOk(bytes > 50_000, `the bundle is only ${bytes} bytes`);
    const text = await Deno.readTextFile(outfile);
    assertOk(!/^\s*import[\s{*"']/m.test(text), "the bundle still holds an import statement");
    assertOk(!/\bfetch\(|\.wasm["']/.test(text), "the bundle fetches a side file");
    const bundled: Pf = await import(new URL(`file://${outfile}`).href);
    assertOk(bundled.PixelflyLinear !== pf.PixelflyLinear, "the bundle is a separate copy of the module");
    for (const backend of ["js", "wasm"] as const) {
      const b = await forward(bundled, backend), m = await forward(pf, backend);
      assertEquals(bundled.getBackend().name, backend);
      assertEquals(b.x, m.x, `${backend}: same seeded input`);
      assertEquals(b.y, m.y, `${backend}: the bundle's output differs from the module's`);
      assertClose(m.y, await reference(m.layer, m.x), { atol: 1e-5, rtol: 1e-4, label: `${backend} vs f64` });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "bundle: runs under Node (no Deno global at import time), same outputs as the module",
  ignore: !hasNode(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_bundle_node_" });
    try {
      await bundle({ outfile: `${dir}/pixelfly.js` });
      const script = `import * as pf from "./pixelfly.js";
const out = {};
for (const backend of ["js", "wasm"]) {
  await pf.setBackend(backend);
  const layer = new pf.PixelflyLinear(${IN}, ${OUT}, ${JSON.stringify(LAYER)});
  const y = await layer.forward(pf.randn([${M}, ${IN}], { seed: 4 })).data();
  out[backend] = { name: pf.getBackend().name, variant: pf.getBackend().variant, y: Array.from(y) };
}
console.log(JSON.stringify(out));
`;
      await Deno.writeTextFile(`${dir}/run.mjs`, script);
      const res = await new Deno.Command("node", { args: [`${dir}/run.mjs`], cwd: dir }).output();
      const err = new TextDecoder().decode(res.stderr);
      assertOk(res.success, `node exited with ${res.code}: ${err}`);
      const out = JSON.parse(new TextDecoder().decode(res.stdout));
      for (const backend of ["js", "wasm"] as const) {
        const m = await forward(pf, backend);
        const variant = (pf.getBackend() as { variant?: string }).variant;
        assertEquals(out[backend].name, backend);
        const y = Float32Array.from(out[backend].y);
        if (out[backend].variant === variant) {
          assertEquals(y, m.y, `node ${backend}: output differs from the module's`);
        } else {
          // Node 20's V8 has no relaxed SIMD, so it runs the simd128 build: unfused multiply-adds.
          assertClose(y, m.y, { atol: 1e-5, rtol: 1e-5, label: `node ${backend} (${out[backend].variant})` });
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bundle: saveFile and loadFile work under Node (node:fs/promises), and the files load in Deno",
  ignore: !hasNode(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_bundle_node_fs_" });
    try {
      await bundle({ outfile: `${dir}/pixelfly.js` });
      const script = `import * as pf from "./pixelfly.js";
const a = new pf.PixelflyLinear(${IN}, ${OUT}, ${JSON.stringify(LAYER)});
await pf.saveFile(a, "model.safetensors");
const b = new pf.PixelflyLinear(${IN}, ${OUT}, { ...${JSON.stringify(LAYER)}, seed: 99 });
await pf.loadFile(b, "model.safetensors");
const ya = await a.forward(pf.ones([2, ${IN}])).data(), yb = await b.forward(pf.ones([2, ${IN}])).data();
let missing;
try { await pf.loadFile(b, "no-such-file.safetensors"); } catch (e) { missing = e.code ?? e.name; }
console.log(JSON.stringify({ equal: ya.every((v, i) => v === yb[i]), missing, deno: typeof Deno }));
`;
      await Deno.writeTextFile(`${dir}/run.mjs`, script);
      const res = await new Deno.Command("node", { args: [`${dir}/run.mjs`], cwd: dir }).output();
      assertOk(res.success, `node exited with ${res.code}: ${new TextDecoder().decode(res.stderr)}`);
      const out = JSON.parse(new TextDecoder().decode(res.stdout));
      assertEquals(out, { equal: true, missing: "ENOENT", deno: "undefined" });
      // the file Node wrote is a checkpoint Deno loads, equal to the same seeded layer made here
      const here = new pf.PixelflyLinear(IN, OUT, LAYER),
        other = new pf.PixelflyLinear(IN, OUT, { ...LAYER, seed: 7 });
      await pf.loadFile(other, `${dir}/model.safetensors`);
      for (
        const [[n, p], [, q]] of here.namedParameters().map((e, i) =>
          [e, other.namedParameters()[i]] as const
        )
      ) {
        assertEquals(await q.data(), await p.data(), n);
      }
      const names = await Array.fromAsync(Deno.readDir(dir), (e) => e.name);
      assertEquals(names.sort(), ["model.safetensors", "pixelfly.js", "run.mjs"], "no temporary file left");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("bundle: the generated .d.ts lets a strict TypeScript consumer type-check against the bundle", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pixelfly_bundle_dts_" });
  try {
    const { declarations } = await bundle({ outfile: `${dir}/pixelfly.js`, declarations: true });
    assertEquals(declarations, `${dir}/pixelfly.d.ts`);
    const entry = await Deno.readTextFile(`${dir}/pixelfly.d.ts`);
    assertOk(entry.startsWith("// Generated by src/tools/bundle.ts"), entry);
    await Deno.writeTextFile(
      `${dir}/consumer.ts`,
      `import { AdamW, crossEntropy, load, ones, PixelflyLinear, save, type Tensor } from "./pixelfly.js";
const layer = new PixelflyLinear(64, 64, { block: 16, butterflySize: 4, rank: 4, seed: 0 });
const y: Tensor = layer.forward(ones([2, 64]));
const n: number = y.shape[0];
const loss: Tensor = crossEntropy(y, [1, 2]);
const opt = new AdamW(layer.parameters(), { lr: 1e-3 });
const bytes: Uint8Array = await save(layer);
await load(layer, bytes);
const values: Float32Array = await loss.data();
// @ts-expect-error in-features must be a number
new PixelflyLinear("64", 64);
// @ts-expect-error data() is a Promise, not an array
const wrong: Float32Array = y.data();
export { n, opt, values, wrong };
`,
    );
    for (const moduleResolution of ["bundler", "nodenext"]) {
      const config = {
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: "es2022",
          module: moduleResolution === "bundler" ? "esnext" : "nodenext",
          moduleResolution,
          lib: ["es2022", "dom"],
          types: [],
        },
        files: ["consumer.ts"],
      };
      await Deno.writeTextFile(`${dir}/tsconfig.json`, JSON.stringify(config));
      if (moduleResolution === "nodenext") {
        await Deno.writeTextFile(`${dir}/package.json`, '{"type": "module"}');
      }
      const res = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", TSC, "-p", `${dir}/tsconfig.json`],
        cwd: dir,
      }).output();
      const out = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
      assertOk(res.success, `tsc (${moduleResolution}) rejected the consumer:\n${out}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
