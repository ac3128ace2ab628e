/**
 * The README's install lines work as pasted: the `src/tools/serve_module.ts`
 * command (taken from the README, on a free port) serves the checkout with
 * TypeScript content types, and the README's URL import runs in a child Deno
 * with only `--allow-import`, computing what this process computes. The
 * `jsr:` line names the package and version in deno.json, which
 * `deno publish --dry-run` (in `deno task check`) validates.
 */
import * as pf from "../mod.ts";
import { assertEquals, assertOk } from "./_assert.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const README = await Deno.readTextFile(`${ROOT}README.md`);

Deno.test("install: the README's jsr line names deno.json's package and version", async () => {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  assertOk(
    README.includes(`from "jsr:${cfg.name}@${cfg.version}"`),
    `README lacks jsr:${cfg.name}@${cfg.version}`,
  );
  assertEquals(cfg.license, "Apache-2.0");
  assertOk((await Deno.readTextFile(`${ROOT}LICENSE`)).includes("Apache License"), "LICENSE");
});

Deno.test("install: the README's serve_module command and URL import work as pasted", async () => {
  const command = README.match(/^deno run (.*) src\/tools\/serve_module\.ts --port 8080$/m);
  assertOk(command, "README lacks the serve_module command");
  const importLine = README.match(/^import \{ (.*) \} from "http:\/\/127\.0\.0\.1:8080\/mod\.ts";$/m);
  assertOk(importLine, "README lacks the URL import");
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...command[1].split(" "), "src/tools/serve_module.ts", "--port", "0"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderr = new Response(server.stderr).text();
  const tmp = await Deno.makeTempDir({ prefix: "pixelfly_install_" });
  try {
    let out = "", url: string | undefined;
    while (url === undefined) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
      url = out.match(/(http:\/\/127\.0\.0\.1:\d+)\/mod\.ts/)?.[1];
    }
    assertOk(url, `serve_module did not start: ${out}`);
    const ts = await fetch(`${url}/mod.ts`);
    assertEquals(ts.headers.get("content-type"), "application/typescript; charset=utf-8");
    await ts.body?.cancel();
    const host = url.slice("http://".length);
    const app = `${importLine[0].replace("127.0.0.1:8080", host)}
await setBackend("wasm");
const y = await new PixelflyLinear(64, 32, { block: 16, butterflySize: 4, rank: 4, seed: 3 }).forward(
  (await import("${url}/mod.ts")).ones([2, 64]),
).data();
console.log(JSON.stringify(Array.from(y)));
`;
    await Deno.writeTextFile(`${tmp}/app.ts`, app);
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", `--allow-import=${host}`, `${tmp}/app.ts`],
      env: { NO_COLOR: "1", DENO_DIR: `${tmp}/deno_dir` }, // a fresh cache: the import really goes over HTTP
    }).output();
    const err = new TextDecoder().decode(res.stderr);
    assertOk(res.success, `the URL import failed: ${err}`);
    await pf.setBackend("wasm");
    const here = await new pf.PixelflyLinear(64, 32, { block: 16, butterflySize: 4, rank: 4, seed: 3 })
      .forward(pf.ones([2, 64])).data();
    assertEquals(JSON.parse(new TextDecoder().decode(res.stdout)), Array.from(here));
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await lines.cancel();
    await stderr;
    await Deno.remove(tmp, { recursive: true });
  }
});
