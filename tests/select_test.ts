import { backendInfo, createWasmBackend, getBackend, ones, setBackend } from "../mod.ts";
import { assertEquals, assertRejects } from "./_assert.ts";

Deno.test("setBackend takes a name or a backend instance, and rejects unknown names", async () => {
  await setBackend("js");
  assertEquals(getBackend().name, "js");
  assertEquals(backendInfo(), { name: "js", chosenBy: "name", notChosen: [] });
  const be = await createWasmBackend({ threads: 1 });
  await setBackend(be);
  assertEquals(getBackend(), be);
  assertEquals(backendInfo(), { name: "wasm", chosenBy: "instance", notChosen: [] });
  assertEquals(ones([2]).backend, be);
  await assertRejects(
    () => setBackend("cuda" as "js"),
    RangeError,
    'setBackend: unknown backend "cuda"; expected one of auto, js, wasm, webgpu or a Backend',
  );
  await setBackend("js");
  be.dispose();
});
