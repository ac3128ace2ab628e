/**
 * The edge example (src/examples/edge.ts): the committed checkpoint module is
 * fresh against its generator; the handler served on 127.0.0.1 answers GET /
 * and classifies single images and batches exactly as a direct forward pass
 * of the loaded model (and close to the js reference backend), rejects bad
 * input with 400 and a message naming the rule; and the script runs as a
 * server with only --allow-net=127.0.0.1.
 */
import { load, loadBackend, noGrad, softmax, syntheticImages, tensor } from "../mod.ts";
import { edgeModelBytes, handler, MAX_BATCH } from "../src/examples/edge.ts";
import { CLASSES, createEdgeModel, PIXELS } from "../src/examples/edge_net.ts";
import { makeEdgeModelSource } from "../src/examples/make_edge_model.ts";
import { assertClose, assertEquals, assertOk } from "./_assert.ts";

const images = syntheticImages({ n: 64, seed: 2 }); // the generator's test split: held out from training

/** Softmax of the checkpoint model's logits on the given backend, computed here without the handler. */
async function directProbs(backendName: "js" | "wasm", x: Float32Array, n: number): Promise<Float32Array> {
  const backend = await loadBackend(backendName);
  const model = createEdgeModel({ seed: 123, backend }).eval(); // other initial weights: load must replace them
  await load(model, edgeModelBytes());
  const p = noGrad(() => softmax(model.forward(tensor(x, [n, PIXELS], { backend }))));
  const out = await p.data();
  p.dispose();
  model.dispose();
  return out;
}

function image(i: number): number[] {
  return Array.from(images.images.subarray(i * PIXELS, (i + 1) * PIXELS));
}

async function post(base: string, body: string): Promise<{ status: number; json: any }> {
  const res = await fetch(base, { method: "POST", body, headers: { "content-type": "application/json" } });
  return { status: res.status, json: await res.json() };
}

Deno.test("edge: src/examples/edge_model.ts is fresh against make_edge_model.ts", async () => {
  const committed = await Deno.readTextFile(new URL("../src/examples/edge_model.ts", import.meta.url));
  assertOk(
    committed === await makeEdgeModelSource(),
    "src/examples/edge_model.ts is stale: run `deno run --allow-write=src/examples src/examples/make_edge_model.ts`",
  );
});

Deno.test("edge: the handler on 127.0.0.1 classifies like a direct forward and rejects bad input", async () => {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
  const base = `http://127.0.0.1:${server.addr.port}/`;
  try {
    const info = await fetch(base);
    assertEquals(info.status, 200);
    assertOk((await info.text()).includes("POST / with"));

    // one image
    const one = await post(base, JSON.stringify({ pixels: image(0) }));
    assertEquals(one.status, 200);
    const x0 = images.images.slice(0, PIXELS);
    const direct0 = await directProbs("wasm", x0, 1);
    assertEquals(Float32Array.from(one.json.probs), direct0, "served probs differ from a direct forward");
    assertEquals(one.json.label, direct0.indexOf(Math.max(...direct0)));

    // a batch
    const n = images.n;
    const batch = await post(base, JSON.stringify({ pixels: Array.from({ length: n }, (_, i) => image(i)) }));
    assertEquals(batch.status, 200);
    assertEquals(batch.json.probs.length, n);
    const served = Float32Array.from(batch.json.probs.flat());
    assertEquals(served, await directProbs("wasm", images.images, n));
    assertClose(served, await directProbs("js", images.images, n), {
      atol: 1e-5,
      rtol: 1e-4,
      label: "vs js",
    });
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const row = served.subarray(i * CLASSES, (i + 1) * CLASSES);
      assertEquals(batch.json.label[i], row.indexOf(Math.max(...row)));
      assertClose([row.reduce((a, b) => a + b)], [1], { atol: 1e-5, label: `sum of probs ${i}` });
      if (batch.json.label[i] === images.labels[i]) correct++;
    }
    assertOk(correct / n > 0.6, `the trained checkpoint gets only ${correct} of ${n} held-out images right`);

    // bad input
    const bad: [string, string][] = [
      ["not json", "the body is not JSON"],
      [JSON.stringify([1, 2]), 'a JSON object with a "pixels" field, got an array of 2'],
      [JSON.stringify({ image: image(0) }), 'with a "pixels" field'],
      [
        JSON.stringify({ pixels: "0.5" }),
        'pixels must be an array of 784 numbers or of such arrays, got string "0.5"',
      ],
      [
        JSON.stringify({ pixels: image(0).slice(1) }),
        "pixels must hold 784 numbers (28x28, row-major), got 783",
      ],
      [JSON.stringify({ pixels: image(0).map((v) => v * 255) }), "must be a number in [0, 1] (divide 0-255"],
      [
        JSON.stringify({ pixels: [...image(0).slice(0, 783), null] }),
        "pixels[783] must be a number in [0, 1]",
      ],
      [JSON.stringify({ pixels: [image(0), image(1).slice(0, 10)] }), "pixels[1] must hold 784 numbers"],
      [JSON.stringify({ pixels: [] }), "pixels must hold 784 numbers (28x28, row-major), got 0"],
      [
        JSON.stringify({ pixels: Array.from({ length: MAX_BATCH + 1 }, () => [0]) }),
        `at most ${MAX_BATCH} images, got ${MAX_BATCH + 1}`,
      ],
    ];
    for (const [body, message] of bad) {
      const r = await post(base, body);
      assertEquals(r.status, 400, `status for ${body.slice(0, 40)}`);
      assertOk(
        r.json.error.startsWith("edge: ") && r.json.error.includes(message),
        `error for ${body.slice(0, 40)}: "${r.json.error}" lacks "${message}"`,
      );
    }
    const put = await fetch(base, { method: "PUT", body: "{}" });
    assertEquals([put.status, (await put.json()).error], [
      405,
      "edge: method PUT is not allowed; use GET or POST",
    ]);
    const other = await fetch(`${base}predict`);
    assertEquals(other.status, 404);
    await other.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("edge: runs as a server with only --allow-net=127.0.0.1", async () => {
  const script = new URL("../src/examples/edge.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-net=127.0.0.1", script, "--hostname", "127.0.0.1", "--port", "0"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let status: Deno.CommandStatus | undefined;
  try {
    let out = "", url: string | undefined;
    while (url === undefined) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
      url = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)/)?.[1];
    }
    assertOk(url, `the server did not start: ${out}`);
    const r = await post(url, JSON.stringify({ pixels: image(5) }));
    assertEquals(r.status, 200);
    assertEquals(
      Float32Array.from(r.json.probs),
      await directProbs("wasm", images.images.slice(5 * PIXELS, 6 * PIXELS), 1),
    );
  } finally {
    child.kill("SIGTERM");
    status = await child.status;
    await lines.cancel();
    const err = await stderr;
    assertOk(status.signal === "SIGTERM" || status.success, `the server failed: ${err}`);
  }
});
