import { backendInfo, createWasmBackend, getBackend, ones, setBackend } from "../mod.ts";
import { assertEquals, assertOk, assertRejects } from "./_assert.ts";

Deno.test("setBackend takes a name or a backend instance, and rejects unknown names", async () => {
  await setBackend("js");
  assertEquals(getBackend().name, "js");
  assertEquals(backendInfo(), { name: "js", chosenBy: "name", notChosen: [], notes: [] });
  const be = await createWasmBackend({ threads: 1 });
  await setBackend(be);
  assertEquals(getBackend(), be);
  assertEquals(backendInfo(), { name: "wasm", chosenBy: "instance", notChosen: [], notes: be.info.notes });
  assertEquals(ones([2]).backend, be);
  await assertRejects(
    () => setBackend("cuda" as "js"),
    RangeError,
    'setBackend: unknown backend "cuda"; expected one of auto, js, wasm, webgpu or a Backend',
  );
  await setBackend("js");
  be.dispose();
});

Deno.test("backendInfo carries the chosen backend's own fallbacks (wasm: 1 thread without SharedArrayBuffer)", async () => {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const script = `delete globalThis.SharedArrayBuffer;
const { backendInfo, createWasmBackend, setBackend } = await import(${JSON.stringify(mod)});
const be = await createWasmBackend({ threads: 2 });
await setBackend(be);
console.log(JSON.stringify(backendInfo()));
be.dispose();`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertOk(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  assertEquals(info.name, "wasm");
  assertEquals(info.chosenBy, "instance");
  assertEquals(info.notes.length, 1);
  assertOk(String(info.notes[0]).startsWith("1 thread instead of 2"), info.notes[0]);
});
