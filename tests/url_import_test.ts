/**
 * The module loads from a URL import with no build step and no permission
 * flags: the repository is served over 127.0.0.1 on an ephemeral port and a
 * child `deno run --no-prompt --allow-import=127.0.0.1:PORT` (and no other
 * flag) imports `mod.ts` from it, selects the wasm backend and runs a
 * PixelflyLinear forward pass. Its output must equal this process's. The
 * server is the repository's own `src/tools/serve_module.ts` (what the README
 * tells users to run).
 */
import * as pf from "../mod.ts";
import { assertEquals, assertOk } from "./_assert.ts";
import { serveModuleFile } from "../src/tools/serve_module.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const IN = 512, OUT = 256, M = 4;
const LAYER = { seed: 11, block: 32, butterflySize: 16, nFactors: 2, rank: 16 } as const;

Deno.test("url import: mod.ts over http with only --allow-import runs a wasm PixelflyLinear like here", async () => {
  const requested: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    requested.push(new URL(req.url).pathname);
    return serveModuleFile(req, ROOT);
  });
  const tmp = await Deno.makeTempDir({ prefix: "pixelfly_url_" });
  try {
    const host = `127.0.0.1:${server.addr.port}`;
    const script = `import * as pf from "http://${host}/mod.ts";
const perms = {};
for (const name of ["read", "write", "net", "env", "run", "ffi"]) perms[name] = Deno.permissions.querySync({ name }).state;
await pf.setBackend("wasm");
const layer = new pf.PixelflyLinear(${IN}, ${OUT}, ${JSON.stringify(LAYER)});
const y = await layer.forward(pf.randn([${M}, ${IN}], { seed: 12 })).data();
let checksum = 0;
for (let i = 0; i < y.length; i++) checksum += y[i] * ((i % 7) - 3);
console.log(JSON.stringify({ backend: pf.getBackend().name, perms, checksum, y: Array.from(y) }));
`;
    const args = [
      "run",
      "--no-prompt",
      `--allow-import=${host}`,
      `data:application/typescript;base64,${btoa(script)}`,
    ];
    // A fresh DENO_DIR and a cwd with no deno.json: the child sees nothing of this checkout but the server.
    const res = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: tmp,
      env: { DENO_DIR: `${tmp}/deno_dir`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(res.stderr);
    assertOk(res.success, `deno ${args.slice(0, 3).join(" ")} exited with ${res.code}:\n${err}`);
    const out = JSON.parse(new TextDecoder().decode(res.stdout));
    assertEquals(out.backend, "wasm");
    for (const [name, state] of Object.entries(out.perms)) {
      assertOk(state !== "granted", `the child was granted ${name} permission`);
    }
    assertOk(requested.includes("/mod.ts") && requested.includes("/asm/generated/kernels_relaxed.ts"));

    await pf.setBackend("wasm");
    const layer = new pf.PixelflyLinear(IN, OUT, LAYER);
    const y = await layer.forward(pf.randn([M, IN], { seed: 12 })).data();
    let checksum = 0;
    for (let i = 0; i < y.length; i++) checksum += y[i] * ((i % 7) - 3);
    assertEquals(Float32Array.from(out.y), y, "the URL-imported module's output differs from this process's");
    assertEquals(out.checksum, checksum);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});
