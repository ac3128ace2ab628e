/**
 * The wasm backend's own tests: committed bytes are fresh, both builds load,
 * the build choice follows WebAssembly.validate, the allocator reuses and
 * grows, memory stays flat over a training-shaped loop, and the module loads
 * with no permissions. Kernel results are checked by tests/conformance_test.ts;
 * a quick product check against the js reference is here too.
 */
import { BINARY_OPS, BROADCASTS, UNARY_OPS } from "../src/backends/op_table.ts";
import { buildModules } from "../asm/build.ts";
import { JsBackend } from "../src/backends/js.ts";
import type { Backend, BackendBuffer, BlockLayout } from "../src/backends/types.ts";
import { createWasmBackend, pickWasmVariant, WasmBackend, wasmBytes } from "../src/backends/wasm.ts";
import { flatBlockButterfly, randomMask } from "../src/masks/patterns.ts";
import { Rng } from "../src/random.ts";
import { PixelflyLinear } from "../src/nn/linear.ts";
import { fromArray } from "../src/nn/module.ts";
import { assertClose, assertEquals, assertOk, assertRejects, assertThrows } from "./_assert.ts";
import { nodeVersion } from "./_node.ts";
import { pixelflyBackward, pixelflyForward } from "../bench/pixelfly_step.ts";

Deno.test("wasm: committed asm/generated modules match a fresh build of asm/", async () => {
  const fresh = await buildModules();
  for (const [file, text] of Object.entries(fresh)) {
    const committed = await Deno.readTextFile(new URL(`../asm/generated/${file}`, import.meta.url));
    assertOk(
      committed === text,
      `asm/generated/${file} is stale against asm/*.ts and asm/_gen_micro.ts: run \`deno task build\``,
    );
  }
});

Deno.test("wasm: both builds validate and load; the pick follows WebAssembly.validate", async () => {
  for (const variant of ["relaxed", "simd128"] as const) {
    assertOk(WebAssembly.validate(await wasmBytes(variant) as BufferSource), `${variant} does not validate`);
    const be = await createWasmBackend({ variant, threads: 1 });
    assertEquals(be.variant, variant);
    assertEquals(be.name, "wasm");
  }
  assertEquals(await pickWasmVariant(), "relaxed");
  const relaxed = await wasmBytes("relaxed");
  assertEquals(await pickWasmVariant((b) => b !== relaxed), "simd128");
  assertEquals(await pickWasmVariant(() => false), undefined);
  await assertRejects(
    () => createWasmBackend({ variant: "avx" as "relaxed" }),
    RangeError,
    'variant must be "relaxed" or "simd128", got avx',
  );
  for (const bad of [0, 2.5, 65, -1, NaN, "many"]) {
    await assertRejects(
      () => createWasmBackend({ threads: bad as number }),
      RangeError,
      `threads must be an integer from 1 to 64 or "auto", got ${bad}`,
    );
  }
  await assertRejects(() => createWasmBackend({ minSplitWork: -1 }), RangeError, "minSplitWork must be");
});

Deno.test('wasm: threads work on the simd128 build too ("auto" on engines without relaxed SIMD)', async () => {
  // an engine without relaxed SIMD picks simd128; threads "auto" and 2 must not throw there
  for (const threads of ["auto", 2] as const) {
    const be = await createWasmBackend({ variant: "simd128", threads, minSplitWork: 0 });
    const one = await createWasmBackend({ variant: "simd128", threads: 1 });
    try {
      assertEquals(be.variant, "simd128");
      assertEquals(be.threads, threads === 2 ? 2 : Math.min(8, navigator.hardwareConcurrency));
      const rng = new Rng(9);
      const M = 40, N = 24, K = 37;
      const a = Float32Array.from({ length: M * K }, () => rng.normal());
      const b = Float32Array.from({ length: K * N }, () => rng.normal());
      const out = [be, one].map((x) => {
        const c = x.alloc(M * N);
        x.gemm(x.upload(a), x.upload(b), c, { M, N, K, transA: false, transB: false, accumulate: false });
        return x.readSync(c);
      });
      assertClose(out[0], out[1], { atol: 0, rtol: 0, label: `simd128 gemm, threads ${threads}` });
    } finally {
      be.dispose();
    }
  }
});

Deno.test("wasm: heap growth stops at the memory maximum; exhaustion is a RangeError with the figures", async () => {
  // The threads build's shared memory has a 2 GiB maximum. Growing by an eighth from 1.8 GiB would pass
  // it: an allocation that fits below the maximum must still succeed.
  const be = await createWasmBackend({ threads: 2 });
  try {
    const big = be.alloc(1.8 * 2 ** 30 / 4);
    const fits = be.alloc(64 * 2 ** 20 / 4);
    be.write(fits, Float32Array.of(5), 2 ** 20);
    assertEquals((await be.read(fits))[2 ** 20], 5);
    const err = assertThrows(
      () => be.alloc(300 * 2 ** 20 / 4),
      RangeError,
      "wasm backend: out of memory in alloc",
    );
    for (
      const want of ["314572800 bytes requested", "of at most 2147483648 bytes", "2 live buffers", "tidy("]
    ) {
      assertOk(err.message.includes(want), `missing "${want}" in: ${err.message}`);
    }
    // nothing changed: the backend still allocates and computes
    be.free(fits);
    const c = be.upload(Float32Array.of(1, 2)), d = be.alloc(2);
    be.scale(c, d, { size: 2, alpha: 3, beta: 0, accumulate: false });
    assertEquals(Array.from(await be.read(d)), [3, 6]);
    be.free(big);
  } finally {
    be.dispose();
  }
});

Deno.test("wasm: two threads load with no permissions, split products, and dispose stops the worker", async () => {
  const be = await createWasmBackend({ threads: 2, minSplitWork: 0 });
  assertEquals(be.threads, 2);
  const auto = await createWasmBackend({ threads: "auto" });
  assertEquals(auto.threads, Math.min(8, navigator.hardwareConcurrency));
  auto.dispose();
  // the default is "auto"
  const byDefault = await createWasmBackend();
  assertEquals(byDefault.threads, Math.min(8, navigator.hardwareConcurrency));
  byDefault.dispose();
  assertEquals((await createWasmBackend({ threads: 1 })).threads, 1);
  // a product split across both threads equals the single-thread one bit for bit (same kernels, same tiles)
  const one = await createWasmBackend({ variant: "relaxed", threads: 1 });
  const rng = new Rng(5);
  const M = 40, N = 24, K = 37;
  const a = Float32Array.from({ length: M * K }, () => rng.normal());
  const b = Float32Array.from({ length: K * N }, () => rng.normal());
  const out: Float32Array[] = [];
  for (const x of [be, one]) {
    const c = x.alloc(M * N);
    x.gemm(x.upload(a), x.upload(b), c, { M, N, K, transA: false, transB: false, accumulate: false });
    out.push(x.readSync(c));
  }
  assertClose(out[0], out[1], { atol: 0, rtol: 0, label: "gemm on 2 threads vs 1" });
  be.dispose();
  assertEquals(be.threads, 1);
  // still usable on one thread after dispose
  const c = be.alloc(M * N);
  be.gemm(be.upload(a), be.upload(b), c, { M, N, K, transA: false, transB: false, accumulate: false });
  assertClose(be.readSync(c), out[1], { atol: 0, rtol: 0, label: "gemm after dispose" });
});

// Every kernel on `threads` threads (minSplitWork 0: split whatever can be split) against one thread,
// bit for bit, on random shapes at the tile edges. Returns the number of kernel calls compared.
// partsPerThread > 1: gemm, dds and sdd split finer than one part per thread (threads claim parts in turn).
async function threadsMatchOne(threads: number, seed: number, partsPerThread = 1): Promise<number> {
  const many = await createWasmBackend({ threads, minSplitWork: 0 });
  many.partsPerThread = partsPerThread;
  const one = await createWasmBackend({ variant: "relaxed", threads: 1 });
  assertEquals(many.threads, threads);
  const rng = new Rng(seed);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const pos = (n: number) => Float32Array.from({ length: n }, () => 0.1 + rng.uniform());
  const ints = (n: number, hi: number) => Float32Array.from({ length: n }, () => rng.int(hi));
  let calls = 0;
  // runs `call` on both backends with the same inputs (uploaded fresh) and compares every input after it
  const same = (
    label: string,
    inputs: Float32Array[],
    call: (be: WasmBackend, b: BackendBuffer[]) => void,
  ) => {
    const out = [many, one].map((be) => {
      const bufs = inputs.map((x) => be.upload(x));
      call(be, bufs);
      const r = bufs.map((b) => be.readSync(b));
      for (const b of bufs) be.free(b);
      return r;
    });
    for (let i = 0; i < inputs.length; i++) {
      assertClose(out[0][i], out[1][i], {
        atol: 0,
        rtol: 0,
        label: `${threads} threads: ${label} (buffer ${i})`,
      });
    }
    calls++;
  };
  const dim = (hi: number) => 1 + rng.int(hi);
  try {
    // thin products (asm/thin.ts): one dimension of 1 to 10, the others up to 140
    for (let it = 0; it < 18; it++) {
      const small = 1 + rng.int(10), d = [dim(140), dim(140)];
      const [M, N, K] = it % 3 === 0 ? [small, ...d] : it % 3 === 1 ? [d[0], small, d[1]] : [...d, small];
      const transA = rng.int(2) === 1, transB = rng.int(2) === 1, accumulate = rng.int(2) === 1;
      same(`thin gemm M=${M} N=${N} K=${K} ${transA} ${transB} ${accumulate}`, [
        rand(M * K),
        rand(K * N),
        rand(M * N),
      ], (be, [a, b, c]) => be.gemm(a, b, c, { M, N, K, transA, transB, accumulate, alpha: 0.75 }));
    }
    // dds' weight pack (once per update) splits by ranges of blocks of the walk, writing panel-major
    // over the whole walk: b = 32 (4 panels per block), both directions, packed then reused
    for (const [block, rows, cols] of [[32, 8, 5], [16, 7, 12], [24, 5, 5]]) {
      const l = randomMask({
        outFeatures: rows * block,
        inFeatures: cols * block,
        block,
        density: 0.5,
        seed: block,
      })
        .toBSR();
      const Mx = 13 + rng.int(60);
      same(`dds packed W b=${block} ${rows}x${cols} forward then backward, twice`, [
        rand(Mx * cols * block),
        rand(Mx * rows * block),
        rand(l.nnz * block * block),
        rand(Mx * rows * block),
        rand(Mx * cols * block),
      ], (be, [x, dy, w, y, dx]) => {
        for (let r = 0; r < 2; r++) {
          be.dds(x, w, y, { M: Mx, layout: l, transW: true, accumulate: r === 1 });
          be.dds(dy, w, dx, { M: Mx, layout: l, transW: false, accumulate: r === 1 });
        }
      });
    }
    for (let it = 0; it < 24; it++) {
      const big = it < 6;
      const M = big ? 65 + rng.int(8) : dim(70),
        N = big ? 37 + rng.int(40) : dim(70),
        K = big ? 130 : dim(40);
      const transA = rng.int(2) === 1, transB = rng.int(2) === 1, accumulate = rng.int(2) === 1;
      same(`gemm M=${M} N=${N} K=${K} ${transA} ${transB} ${accumulate}`, [
        rand(M * K),
        rand(K * N),
        rand(M * N),
      ], (
        be,
        [a, b, c],
      ) => be.gemm(a, b, c, { M, N, K, transA, transB, accumulate, alpha: 0.75 }));
      // block-sparse: random layouts (empty block rows and columns included), block 4 below the 8-wide tile
      const block = [4, 8, 16][rng.int(3)];
      const rows = big ? 8 : dim(6), cols = big ? 8 : dim(6);
      const l = randomMask({
        outFeatures: rows * block,
        inFeatures: cols * block,
        block,
        density: 0.4,
        seed: it,
      })
        .toBSR();
      const transW = rng.int(2) === 1, Mx = big ? 257 : dim(40);
      const inF = transW ? cols * block : rows * block, outF = transW ? rows * block : cols * block;
      same(`dds M=${Mx} b=${block} ${rows}x${cols} ${transW}`, [
        rand(Mx * inF),
        rand(l.nnz * block * block),
        rand(Mx * outF),
      ], (be, [x, w, y]) => be.dds(x, w, y, { M: Mx, layout: l, transW, accumulate }));
      same(`dds batch 3 M=${Mx} b=${block} ${rows}x${cols} ${transW}`, [
        rand(3 * Mx * inF),
        rand(3 * l.nnz * block * block),
        rand(3 * Mx * outF),
      ], (be, [x, w, y]) => be.dds(x, w, y, { M: Mx, layout: l, transW, accumulate, batch: 3 }));
      const Ks = big ? 129 : dim(40);
      same(`sdd batch 2 K=${Ks} b=${block} ${rows}x${cols}`, [
        rand(2 * rows * block * Ks),
        rand(2 * Ks * cols * block),
        rand(2 * l.nnz * block * block),
      ], (be, [a, b, w]) => be.sdd(a, b, w, { layout: l, K: Ks, transA, transB, accumulate, batch: 2 }));
      same(`sdd K=${Ks} b=${block} ${rows}x${cols} ${transA} ${transB}`, [
        rand(rows * block * Ks),
        rand(Ks * cols * block),
        rand(l.nnz * block * block),
      ], (be, [a, b, w]) => be.sdd(a, b, w, { layout: l, K: Ks, transA, transB, accumulate }));
      // reductions and elementwise kernels
      same(
        `sumRows ${M}x${N}`,
        [rand(M * N), rand(N)],
        (be, [x, y]) => be.sumRows(x, y, { M, N, accumulate }),
      );
      same(
        `sumCols ${M}x${N}`,
        [rand(M * N), rand(M)],
        (be, [x, y]) => be.sumCols(x, y, { M, N, accumulate }),
      );
      same(
        `sumSquares ${M * N}`,
        [rand(M * N), rand(1)],
        (be, [x, y]) => be.sumSquares(x, y, { size: M * N, accumulate }),
      );
      for (const bcast of BROADCASTS) {
        const op = BINARY_OPS[rng.int(BINARY_OPS.length)];
        const nb = bcast === "full" ? M * N : bcast === "row" ? N : bcast === "col" ? M : 1;
        same(
          `binary ${op} ${bcast} ${M}x${N}`,
          [rand(M * N), pos(nb), rand(M * N)],
          (be, [a, b, o]) => be.binary(op, a, b, o, { M, N, bcast }),
        );
      }
      const size = M * N;
      for (const op of UNARY_OPS) {
        const x = op === "log" || op === "sqrt" ? pos(size) : rand(size);
        same(`unary ${op} ${size}`, [x, rand(size)], (be, [a, y]) => be.unary(op, a, y, { size }));
        same(
          `unaryGrad ${op} ${size}`,
          [x, rand(size), rand(size), rand(size)],
          (be, [a, y, dy, dx]) => be.unaryGrad(op, a, y, dy, dx, { size, accumulate }),
        );
      }
      same(
        `scale ${size}`,
        [rand(size), rand(size)],
        (be, [x, y]) => be.scale(x, y, { size, alpha: 1.5, beta: -0.25, accumulate }),
      );
      same(`fill ${size}`, [rand(size)], (be, [x]) => be.fill(x, { size, value: 3.5 }));
      const sh = rng.int(5);
      same(
        `copy ${size} (overlapping by ${sh})`,
        [rand(size + 8)],
        (be, [x]) => be.copy(x, x, { size, srcOffset: sh, dstOffset: 2 }),
      );
      same(
        `copy ${size}`,
        [rand(size), rand(size)],
        (be, [x, y]) => be.copy(x, y, { size, srcOffset: 0, dstOffset: 0 }),
      );
      const B = dim(4);
      same(
        `transpose ${B}x${M}x${N}`,
        [rand(B * M * N), rand(B * M * N)],
        (be, [x, y]) => be.transpose(x, y, { B, M, N }),
      );
      // rows
      same(`softmax ${M}x${N}`, [rand(M * N), rand(M * N)], (be, [x, y]) => be.softmax(x, y, { M, N }));
      same(
        `softmaxGrad ${M}x${N}`,
        [pos(M * N), rand(M * N), rand(M * N)],
        (be, [y, dy, dx]) => be.softmaxGrad(y, dy, dx, { M, N, accumulate }),
      );
      same(
        `crossEntropy ${M}x${N}`,
        [rand(M * N), ints(M, N), rand(M * N), rand(M)],
        (be, [x, lab, p, l]) => be.crossEntropy(x, lab, p, l, { M, N }),
      );
      same(
        `crossEntropyGrad ${M}x${N}`,
        [pos(M * N), ints(M, N), rand(M), rand(M * N)],
        (be, [p, lab, dl, dx]) => be.crossEntropyGrad(p, lab, dl, dx, { M, N, accumulate }),
      );
      same(
        `layerNorm ${M}x${N}`,
        [rand(M * N), rand(N), rand(N), rand(M * N), rand(M), rand(M)],
        (be, [x, g, b, y, mu, rs]) => be.layerNorm(x, g, b, y, mu, rs, { M, N, eps: 1e-5 }),
      );
      same(
        `layerNormGrad ${M}x${N}`,
        [rand(M * N), rand(M * N), rand(N), rand(M), pos(M), rand(M * N), rand(N), rand(N)],
        (be, [dy, x, g, mu, rs, dx, dg, db]) =>
          be.layerNormGrad(dy, x, g, mu, rs, dx, dg, db, { M, N, accumulate }),
      );
      same(
        `gatedCombine ${M}x${N}`,
        [rand(M * N), rand(M * N), pos(M), rand(N), rand(M * N)],
        (be, [s, l, g, b, y]) => be.gatedCombine(s, l, g, b, y, { M, N, bias: accumulate }),
      );
      same(
        `gatedCombineGrad ${M}x${N}`,
        [rand(M * N), rand(M * N), rand(M * N), pos(M), rand(M * N), rand(M * N), rand(M)],
        (be, [dy, s, l, g, ds, dl, dg]) => be.gatedCombineGrad(dy, s, l, g, ds, dl, dg, { M, N, accumulate }),
      );
      const T = dim(5); // few table rows: ids repeat, so scatterAddRows adds into one row many times
      same(
        `gatherRows ${M}x${N}`,
        [rand(T * N), ints(M, T), rand(M * N)],
        (be, [t, i, o]) => be.gatherRows(t, i, o, { M, N }),
      );
      same(
        `scatterAddRows ${M}x${N}`,
        [rand(M * N), ints(M, T), rand(T * N)],
        (be, [d, i, t]) => be.scatterAddRows(d, i, t, { M, N }),
      );
      // optimizers
      same(
        `adamw ${size}`,
        [rand(size), rand(size), rand(size), pos(size)],
        (be, [p, g, m, v]) =>
          be.adamw(p, g, m, v, {
            size,
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weightDecay: 0.1,
            step: 3,
          }),
      );
      same(`sgd ${size}`, [rand(size), rand(size), rand(size)], (be, [p, g, m]) =>
        be.sgd(p, g, m, {
          size,
          lr: 0.1,
          momentum: 0.9,
          dampening: 0.1,
          nesterov: accumulate,
          weightDecay: 0.01,
          first: transA,
        }));
      same(
        `clipScale ${size}`,
        [rand(size), pos(1)],
        (be, [g, n]) => be.clipScale(g, n, { size, maxNorm: 0.5 }),
      );
    }
  } finally {
    many.dispose();
  }
  return calls;
}

for (const threads of [2, 3, 4]) {
  Deno.test(`wasm: ${threads} threads equal 1 thread bit for bit in every kernel on random edge shapes`, async () => {
    // 4 threads on a 2-core machine oversubscribe the cores: slower, never different
    assertOk((await threadsMatchOne(threads, 100 + threads)) > 500, "too few kernel calls compared");
  });
}

for (const [threads, parts] of [[2, 3], [3, 8]]) {
  Deno.test(`wasm: ${threads} threads with ${parts} parts per thread of every product equal 1 thread bit for bit`, async () => {
    // more parts than threads: whichever thread is free claims the next part, each with its own workspace
    assertOk((await threadsMatchOne(threads, 200 + threads, parts)) > 500, "too few kernel calls compared");
  });
}

// sdd split between threads packs each block column of B once, into a region the parts share (the part
// that claims a column first packs it; the others wait for it): random layouts whose parts use the same
// columns, K over one 256-deep pass (flags and panels per pass), every transpose, b = 32 (5 full 6-row
// panels and a 2-row one), 16 and 8; bit for bit against 1 thread and within rounding of a float64 sum.
Deno.test("wasm: sdd's B packing shared between 2-4 threads equals 1 thread bit for bit and the float64 product", async () => {
  const one = await createWasmBackend({ variant: "relaxed", threads: 1 });
  const configs: [number, number][] = [[2, 1], [3, 1], [4, 1], [2, 3]];
  const many: WasmBackend[] = [];
  const rng = new Rng(77);
  try {
    for (const [threads, parts] of configs) {
      const be = await createWasmBackend({ threads, minSplitWork: 0 });
      be.partsPerThread = parts;
      many.push(be);
    }
    for (
      const [block, rows, cols, K] of [[32, 9, 5, 300], [16, 13, 7, 520], [8, 6, 11, 37], [32, 4, 3, 257]]
    ) {
      const l = randomMask({
        outFeatures: rows * block,
        inFeatures: cols * block,
        block,
        density: 0.6,
        seed: K,
      })
        .toBSR();
      const R = rows * block, C = cols * block;
      for (
        const [transA, transB, accumulate] of [[true, false, false], [false, true, true], [true, true, false]]
      ) {
        const a = Float32Array.from({ length: R * K }, () => rng.normal());
        const b = Float32Array.from({ length: K * C }, () => rng.normal());
        const w0 = Float32Array.from({ length: l.nnz * block * block }, () => rng.normal());
        const run = (be: WasmBackend) => {
          const w = be.upload(w0);
          be.sdd(be.upload(a), be.upload(b), w, { layout: l, K, transA, transB, accumulate });
          return be.readSync(w);
        };
        const want = run(one);
        // float64 reference: W[e] (+)= op(A)[rows of block row i] · op(B)[columns of block column j]
        const ref = new Float64Array(l.nnz * block * block);
        for (let i = 0; i < rows; i++) {
          for (let e = l.rowPtr[i]; e < l.rowPtr[i + 1]; e++) {
            const j = l.colIdx[e];
            for (let r = 0; r < block; r++) {
              for (let c = 0; c < block; c++) {
                const gr = i * block + r, gc = j * block + c, o = (e * block + r) * block + c;
                let sum = accumulate ? w0[o] : 0;
                for (let k = 0; k < K; k++) {
                  sum += (transA ? a[k * R + gr] : a[gr * K + k]) * (transB ? b[gc * K + k] : b[k * C + gc]);
                }
                ref[o] = sum;
              }
            }
          }
        }
        const label = `b=${block} ${rows}x${cols} K=${K} ${transA} ${transB} ${accumulate}`;
        assertClose(want, ref, {
          atol: 2e-4 * Math.sqrt(K),
          rtol: 1e-4,
          label: `1 thread, ${label} vs float64`,
        });
        many.forEach((be, t) => {
          const [threads, parts] = configs[t];
          assertClose(run(be), want, {
            atol: 0,
            rtol: 0,
            label: `${threads} threads x ${parts} parts, ${label}`,
          });
        });
      }
    }
  } finally {
    for (const be of many) be.dispose();
    one.dispose();
  }
});

// sdd's fallback when a block column another part claimed never becomes ready (its packer descheduled on a
// busy machine): the part polls a while, packs its own copy (same bits), and waits no more in that call.
// Forced on the raw threads build by flags left "being packed" (1) by nobody and shared panels of NaN, so a
// read of the shared copy would show; K = 600 is three passes (flags and panels per pass, and the own
// copies of one pass are stale in the next). Every transpose; b = 32 and 16.
Deno.test("wasm: sdd packs its own copy of a shared block column nobody finishes packing (the spin fallback), same bits", async () => {
  const module = await WebAssembly.compile(await wasmBytes("threads") as BufferSource);
  const memory = new WebAssembly.Memory({ initial: 96, maximum: 32768, shared: true });
  // deno-lint-ignore no-explicit-any
  const k = (await WebAssembly.instantiate(module, { env: { memory } })).exports as any;
  const f32 = new Float32Array(memory.buffer), i32 = new Int32Array(memory.buffer);
  const rng = new Rng(41);
  for (const [block, rows, cols, K] of [[32, 5, 7, 600], [16, 6, 9, 600]]) {
    const l = randomMask({
      outFeatures: rows * block,
      inFeatures: cols * block,
      block,
      density: 0.7,
      seed: block,
    })
      .toBSR();
    const R = rows * block, C = cols * block, size = l.nnz * block * block;
    let top = (k.heapBase() + 63) & ~63;
    const take = (bytes: number) => {
      const at = top;
      top = (top + bytes + 63) & ~63;
      return at;
    };
    const pa = take(R * K * 4), pb = take(K * C * 4), pw0 = take(size * 4), pw1 = take(size * 4);
    const pRow = take((rows + 1) * 4),
      pCol = take(l.nnz * 4),
      ws = take(k.sddWorkspace(rows, cols, block, K));
    const shared = take(k.sddSharedBytes(cols, block, K)), flagBytes = k.sddFlagBytes(cols, K);
    assertOk(top <= memory.buffer.byteLength, "test data fits the memory");
    i32.set(l.rowPtr, pRow >>> 2);
    i32.set(l.colIdx, pCol >>> 2);
    // the stuck columns: two that the layout uses
    const used = [...new Set(l.colIdx)].sort((x, y) => x - y);
    const stuck = [used[1], used[used.length - 1]];
    const passes = Math.ceil(K / 256);
    for (const [transA, transB, beta] of [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]]) {
      for (let i = 0; i < R * K; i++) f32[(pa >>> 2) + i] = rng.normal();
      for (let i = 0; i < K * C; i++) f32[(pb >>> 2) + i] = rng.normal();
      for (let i = 0; i < size; i++) f32[(pw0 >>> 2) + i] = f32[(pw1 >>> 2) + i] = rng.normal();
      const args = [pa, pb, 0, rows, cols, block, K, transA, transB, pRow, pCol, beta, ws, 0, rows];
      // one part alone, nothing shared: the reference bits
      args[2] = pw0;
      k.sdd(...args, 0, 0, 1);
      // part 1 of 2 over every block row, sharing: the stuck columns' flags say "being packed" in every pass
      f32.fill(NaN, (shared + flagBytes) >>> 2, (shared + k.sddSharedBytes(cols, block, K)) >>> 2);
      i32.fill(0, shared >>> 2, (shared + flagBytes) >>> 2);
      for (let p = 0; p < passes; p++) for (const j of stuck) i32[(shared >>> 2) + p * cols + j] = 1;
      args[2] = pw1;
      k.sdd(...args, shared, 1, 2);
      const label = `b=${block} transA=${transA} transB=${transB} beta=${beta}`;
      const want = f32.slice(pw0 >>> 2, (pw0 >>> 2) + size), got = f32.slice(pw1 >>> 2, (pw1 >>> 2) + size);
      assertOk(want.every(Number.isFinite), `${label}: reference finite`);
      assertClose(got, want, { atol: 0, rtol: 0, label: `${label}: own copies of the stuck columns` });
      for (let p = 0; p < passes; p++) {
        for (const j of used) {
          const flag = i32[(shared >>> 2) + p * cols + j];
          assertEquals(flag, stuck.includes(j) ? 1 : 2, `${label}: pass ${p} column ${j} flag`);
        }
      }
    }
  }
});

// threadStats of a backend whose kernels have split nothing yet (or that is disposed)
const NO_THREAD_WORK = {
  parts: 0,
  onWorkers: 0,
  aloneJobs: 0,
  jobs: 0,
  workedMs: 0,
  waitedMs: 0,
  restarts: 0,
};

Deno.test("wasm: the workers take parts of the work (not only the calling thread)", async () => {
  const be = await createWasmBackend({ threads: 2, minSplitWork: 0 });
  try {
    const n = 384, a = be.upload(new Float32Array(n * n).fill(0.5)), c = be.alloc(n * n);
    const before = be.threadStats;
    // each part takes milliseconds, while a waiting worker wakes in microseconds: it claims the other part
    for (let i = 0; i < 200 && be.threadStats.onWorkers === before.onWorkers; i++) {
      be.gemm(a, a, c, { M: n, N: n, K: n, transA: false, transB: false, accumulate: false });
    }
    const after = be.threadStats;
    assertOk(after.onWorkers > before.onWorkers, `no part ran on a worker: ${JSON.stringify(after)}`);
    assertOk(after.parts >= after.onWorkers, JSON.stringify(after));
    // every shared-out job is counted, with the calling thread's time in its parts and waiting
    assertOk(after.jobs > before.jobs && after.jobs * 2 <= after.parts, JSON.stringify(after));
    assertOk(after.workedMs > before.workedMs && after.waitedMs >= before.waitedMs, JSON.stringify(after));
    assertEquals((await be.read(c))[0], n * 0.25);
  } finally {
    be.dispose();
  }
  assertEquals(be.threadStats, NO_THREAD_WORK);
});

// A 65x37x130 gemm on `be` (every part split off with minSplitWork 0), read back.
function idleGemm(be: WasmBackend): Float32Array {
  const rng = new Rng(3);
  const M = 65, N = 37, K = 130;
  const a = Float32Array.from({ length: M * K }, () => rng.normal());
  const b = Float32Array.from({ length: K * N }, () => rng.normal());
  const c = be.alloc(M * N);
  be.gemm(be.upload(a), be.upload(b), c, { M, N, K, transA: false, transB: false, accumulate: false });
  return be.readSync(c);
}

// Runs gemms on `be` until a part runs on a Worker (a replacement starts while this thread computes; in a
// browser only while the event loop runs), at most about 2 s.
async function untilAWorkerTakesParts(be: WasmBackend): Promise<void> {
  const before = be.threadStats.onWorkers;
  const n = 384, x = be.upload(new Float32Array(n * n).fill(0.5)), y = be.alloc(n * n);
  for (let i = 0; i < 400 && be.threadStats.onWorkers === before; i++) {
    be.gemm(x, x, y, { M: n, N: n, K: n, transA: false, transB: false, accumulate: false });
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 10));
  }
  assertOk(be.threadStats.onWorkers > before, "no Worker took a part");
}

Deno.test("wasm: an idle worker leaves after threadIdleMs and the next kernel brings one back, same bits", async () => {
  // 300 ms: well past a stall of a loaded machine between this test's kernels, which would also restart it
  const two = await createWasmBackend({ threads: 2, minSplitWork: 0, threadIdleMs: 300 });
  const one = await createWasmBackend({ variant: "relaxed", threads: 1 });
  const want = idleGemm(one);
  try {
    assertEquals(two.threadIdleMs, 300);
    assertEquals(one.threadIdleMs, undefined);
    for (let round = 0; round < 3; round++) {
      assertClose(idleGemm(two), want, { atol: 0, rtol: 0, label: `round ${round}` });
      await untilAWorkerTakesParts(two);
      await new Promise((r) => setTimeout(r, 800)); // past the limit: the worker leaves
      assertEquals(two.threadStats.restarts, round, "restarts");
    }
    // a limit asked for stays as asked
    assertEquals([two.threads, two.threadIdleMs], [2, 300]);
  } finally {
    two.dispose();
  }
});

Deno.test("wasm: after the Workers left idle each kernel starts one again (a Deno Worker blocks 20-40 ms to start)", async () => {
  const four = await createWasmBackend({ threads: 4, minSplitWork: 0, threadIdleMs: 300 });
  const one = await createWasmBackend({ variant: "relaxed", threads: 1 });
  const want = idleGemm(one);
  try {
    await untilAWorkerTakesParts(four);
    await new Promise((r) => setTimeout(r, 800)); // past the limit: all three leave
    const restarts: number[] = [];
    for (let i = 0; i < 4; i++) {
      assertClose(idleGemm(four), want, { atol: 0, rtol: 0, label: `gemm ${i} after the pause` });
      restarts.push(four.threadStats.restarts);
    }
    assertEquals(restarts, [1, 2, 3, 3]);
  } finally {
    four.dispose();
  }
});

Deno.test("wasm: the default idle limit starts at 1 s and doubles when a kernel finds the workers gone", async () => {
  const two = await createWasmBackend({ threads: 2, minSplitWork: 0 });
  const one = await createWasmBackend({ variant: "relaxed", threads: 1 });
  const want = idleGemm(one);
  try {
    // Deno's web Workers keep the process alive: they leave after the limit
    assertEquals(two.threadIdleMs, 1000);
    await untilAWorkerTakesParts(two);
    await new Promise((r) => setTimeout(r, 1300)); // past 1 s: the worker leaves
    assertClose(idleGemm(two), want, { atol: 0, rtol: 0, label: "after the worker left" });
    assertEquals(two.threadStats.restarts, 1, "restarts");
    assertEquals(two.threadIdleMs, 2000, "a kernel that found the worker gone doubles the limit");
    await untilAWorkerTakesParts(two);
    await new Promise((r) => setTimeout(r, 1300)); // within 2 s: the worker stays
    assertClose(idleGemm(two), want, { atol: 0, rtol: 0, label: "after a pause within the limit" });
    assertEquals(two.threadIdleMs, 2000, "the worker was still there: the limit holds");
    assertEquals(two.threadStats.restarts, 1, "restarts");
  } finally {
    two.dispose();
  }
});

Deno.test("wasm: threadIdleMs other than a number >= 0 or Infinity is a RangeError naming it; Infinity and 0 run, same bits", async () => {
  for (const bad of [-1, NaN, "5", null]) {
    await assertRejects(
      () => createWasmBackend({ threads: 2, threadIdleMs: bad as number }),
      RangeError,
      `createWasmBackend: threadIdleMs must be a number >= 0 or Infinity, got ${bad}`,
    );
  }
  const one = await createWasmBackend({ variant: "relaxed", threads: 1 });
  const want = idleGemm(one);
  // Infinity: never leaves; 0: leaves as soon as it has polled after its last part (each kernel then starts one)
  for (const idle of [Infinity, 0]) {
    const be = await createWasmBackend({ threads: 2, minSplitWork: 0, threadIdleMs: idle });
    try {
      assertEquals(be.threadIdleMs, idle);
      for (let i = 0; i < 3; i++) {
        assertClose(idleGemm(be), want, { atol: 0, rtol: 0, label: `idle ${idle}, ${i}` });
      }
      await untilAWorkerTakesParts(be);
      assertEquals(be.threadIdleMs, idle);
    } finally {
      be.dispose();
    }
  }
});

Deno.test("wasm: a script that never disposes its threads backend exits within the idle limit of its last kernel", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pixelfly_idle_" });
  try {
    const mod = new URL("../src/backends/wasm.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/run.ts`,
      `import { createWasmBackend } from ${JSON.stringify(mod)};
const be = await createWasmBackend({ threads: 2, minSplitWork: 0 });
const n = 256, x = be.upload(new Float32Array(n * n).fill(0.5)), y = be.alloc(n * n);
for (let i = 0; i < 200 && be.threadStats.onWorkers === 0; i++) {
  be.gemm(x, x, y, { M: n, N: n, K: n, transA: false, transB: false, accumulate: false });
  await new Promise((r) => setTimeout(r, 5));
}
console.log(JSON.stringify({ onWorkers: be.threadStats.onWorkers, idle: be.threadIdleMs, at: Date.now() }));
`,
    );
    const res = await new Deno.Command(Deno.execPath(), { args: ["run", `${dir}/run.ts`] }).output();
    const end = Date.now();
    assertOk(res.success, new TextDecoder().decode(res.stderr));
    const out = JSON.parse(new TextDecoder().decode(res.stdout));
    assertOk(out.onWorkers > 0, "no part ran on the Worker");
    assertEquals(out.idle, 1000);
    // the Worker leaves 1 s after the last kernel, then the process ends (generous for a loaded machine)
    assertOk(end - out.at < 6000, `the process ended ${end - out.at} ms after its last kernel`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("wasm: a failure on any thread surfaces as an Error naming the kernel", async () => {
  // Sizes the backend trusts (ops validate them): rows past the end of memory land in the worker's half only.
  const be = await createWasmBackend({ threads: 2, minSplitWork: 0 });
  try {
    const N = 8, K = 8, M = Math.ceil((1.3 * be.memoryBytes) / (N * 4));
    const a = be.alloc(16), b = be.alloc(64), c = be.alloc(16);
    assertThrows(
      () => be.gemm(a, b, c, { M, N, K, transA: false, transB: false, accumulate: false }),
      Error,
      "wasm backend: a thread failed in gemm: memory access out of bounds",
    );
  } finally {
    be.dispose();
  }
});

Deno.test("wasm: the allocator reuses freed memory, coalesces, and survives growth", async () => {
  const be = await createWasmBackend();
  using _dispose = { [Symbol.dispose]: () => be.dispose() }; // no Worker outlives the test
  // a guard above b keeps the holes below the top (a hole at the top lowers the top instead)
  const a = be.alloc(1000), b = be.alloc(1000), guard = be.alloc(16);
  const top = be.heapTop;
  const pa = (a as unknown as { ptr: number }).ptr;
  be.free(a);
  const c = be.alloc(900); // fits in a's hole
  assertEquals((c as unknown as { ptr: number }).ptr, pa);
  assertEquals(be.heapTop, top);
  be.free(c);
  be.free(b); // a and b coalesce into one hole that holds both
  const ab = be.alloc(2000);
  assertEquals((ab as unknown as { ptr: number }).ptr, pa);
  assertEquals(be.heapTop, top);
  be.free(ab);
  // A reused block is zeroed by alloc.
  const d = be.upload(new Float32Array(64).fill(7));
  be.free(d);
  const e = be.alloc(64);
  assertEquals(Array.from(await be.read(e)), new Array(64).fill(0));
  // so is one large enough for the fill kernel (run on the calling thread), on 1-3 threads
  for (const threads of [1, 2, 3]) {
    const bt = await createWasmBackend({ threads, minSplitWork: 0 });
    try {
      for (const n of [1023, 1024, 5000, 300_001]) {
        const junk = bt.upload(new Float32Array(n).fill(-3));
        bt.free(junk);
        const z = await bt.read(bt.alloc(n));
        assertOk(z.length === n && z.every((v) => v === 0), `alloc(${n}) on ${threads} threads is zero`);
      }
    } finally {
      bt.dispose();
    }
  }
  // Growth: views taken before memory.grow must not be used stale.
  const before = be.memoryBytes;
  const keep = be.upload(Float32Array.from({ length: 100 }, (_, i) => i));
  const big = be.alloc(before / 4 + 1_000_000);
  assertOk(be.memoryBytes > before, "memory should have grown");
  be.write(keep, new Float32Array([42]), 3);
  const got = await be.read(keep);
  assertEquals(got[3], 42);
  assertEquals(got[99], 99);
  be.free(big);
  be.free(keep);
  be.free(e);
  be.free(guard);
  assertEquals(be.liveBuffers, 0);
});

function pixelflyProblem(inF: number, outF: number, rank: number, seed: number) {
  // A PixelflyLinear-shaped step as an autograd tape would run it: every buffer is made and freed per step.
  const layout = flatBlockButterfly({
    outFeatures: outF,
    inFeatures: inF,
    block: 16,
    butterflySize: 8,
    nFactors: 2,
  })
    .toBSR();
  const rng = new Rng(seed);
  const rnd = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() - 0.5);
  const W = rnd(layout.nnz * 256), U = rnd(outF * rank), V = rnd(rank * inF);
  return { layout, W, U, V, rnd };
}

function runStep(
  be: Backend,
  bufs: { w: BackendBuffer; u: BackendBuffer; v: BackendBuffer },
  layout: BlockLayout,
  x0: Float32Array,
  M: number,
  inF: number,
  outF: number,
  rank: number,
): BackendBuffer[] {
  // the shared PixelflyLinear step (bench/pixelfly_step.ts) on freshly allocated activations
  const s = { M, K: inF, N: outF, rank, layout };
  const x = be.upload(x0), y = be.alloc(M * outF), h = be.alloc(M * rank), dy = be.alloc(M * outF);
  const dx = be.alloc(M * inF), dw = be.alloc(layout.nnz * layout.block * layout.block);
  const dh = be.alloc(M * rank), du = be.alloc(outF * rank), dv = be.alloc(rank * inF);
  const b = { ...bufs, x, y, h, dy, dx, dw, dh, du, dv };
  pixelflyForward(be, b, s);
  be.scale(y, dy, { size: M * outF, alpha: 1e-3, beta: 0, accumulate: false });
  pixelflyBackward(be, b, s);
  be.scale(dw, bufs.w, { size: dw.size, alpha: -1e-3, beta: 0, accumulate: true });
  return [x, y, h, dy, dx, dw, dh, du, dv];
}

Deno.test("wasm: a PixelflyLinear-shaped forward+backward loop keeps linear memory flat", async () => {
  const be = await createWasmBackend();
  using _dispose = { [Symbol.dispose]: () => be.dispose() }; // no Worker outlives the test
  const M = 16, inF = 128, outF = 128, rank = 4;
  const { layout, W, U, V, rnd } = pixelflyProblem(inF, outF, rank, 3);
  const bufs = { w: be.upload(W), u: be.upload(U), v: be.upload(V) };
  const x0 = rnd(M * inF);
  let topAfterWarm = 0, memAfterWarm = 0;
  for (let step = 0; step < 2000; step++) {
    for (const b of runStep(be, bufs, layout, x0, M, inF, outF, rank)) be.free(b);
    if (step === 10) {
      topAfterWarm = be.heapTop;
      memAfterWarm = be.memoryBytes;
    }
  }
  assertEquals(be.heapTop, topAfterWarm);
  assertEquals(be.memoryBytes, memAfterWarm);
  assertEquals(be.liveBuffers, 3);
});

Deno.test("wasm: the loop's products match the js reference", async () => {
  const M = 40, inF = 128, outF = 64, rank = 4;
  const results: Float32Array[][] = [];
  for (
    const be of [new JsBackend(), await createWasmBackend({ variant: "relaxed", threads: 1 })] as Backend[]
  ) {
    const { layout, W, U, V, rnd } = pixelflyProblem(inF, outF, rank, 5);
    const bufs = { w: be.upload(W), u: be.upload(U), v: be.upload(V) };
    const outs = runStep(be, bufs, layout, rnd(M * inF), M, inF, outF, rank);
    results.push(await Promise.all([...outs, bufs.w].map((b) => be.read(b))));
  }
  const names = ["x", "y", "h", "dy", "dx", "dw", "dh", "du", "dv", "w"];
  for (let i = 0; i < names.length; i++) {
    assertClose(results[1][i], results[0][i], { atol: 1e-4, rtol: 1e-4, label: `wasm ${names[i]}` });
  }
});

Deno.test("wasm: src/backends/wasm.ts loads and computes under deno run with no permissions", async () => {
  const url = new URL("../src/backends/wasm.ts", import.meta.url).href;
  const script = `import { createWasmBackend } from ${JSON.stringify(url)};
const be = await createWasmBackend();
const a = be.upload(new Float32Array([1, 2, 3, 4])), b = be.upload(new Float32Array([1, 0, 0, 1])), c = be.alloc(4);
be.gemm(a, b, c, { M: 2, N: 2, K: 2, transA: false, transB: false, accumulate: false });
const t = await createWasmBackend({ threads: 2, minSplitWork: 0 });
const x = t.upload(new Float32Array(64 * 64).fill(1)), y = t.alloc(64 * 64);
t.gemm(x, x, y, { M: 64, N: 64, K: 64, transA: false, transB: false, accumulate: false });
const ys = await t.read(y);
const threads = t.threads; // read before dispose(), which drops to 1 thread
t.dispose();
console.log(be.variant, Array.from(await be.read(c)).join(","), threads, ys[0], ys[64 * 64 - 1]);`;
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/load.ts`;
    await Deno.writeTextFile(file, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-config", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assertOk(out.success, `deno run failed: ${new TextDecoder().decode(out.stderr)}`);
    assertEquals(text, "relaxed 1,2,3,4 2 64 64");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("wasm: createWasmBackend returns a WasmBackend", async () => {
  const be = await createWasmBackend();
  assertOk(be instanceof WasmBackend);
  be.dispose();
});

Deno.test("wasm: buffers above 2 GiB of linear memory keep their values (unsigned pointer arithmetic)", async () => {
  const be = await createWasmBackend({ threads: 1 });
  try {
    const big = be.alloc(560 * 2 ** 20); // 2.19 GiB of floats pushes everything after it past 2^31
    const a = be.upload(Float32Array.of(1, 2, 3, 4)), b = be.upload(Float32Array.of(1, 0, 0, 1));
    const c = be.alloc(4);
    be.write(c, Float32Array.of(9), 3);
    be.gemm(a, b, c, { M: 2, N: 2, K: 2, transA: false, transB: false, accumulate: true });
    assertEquals(Array.from(await be.read(c)), [1, 2, 3, 13]);
    be.free(big);
  } finally {
    be.dispose();
  }
});

Deno.test("wasm: info names the build and the threads asked for and got, with no notes when nothing fell back", async () => {
  const be = await createWasmBackend({ threads: 3 });
  try {
    assertEquals(be.info, { variant: "relaxed", threads: 3, requestedThreads: 3, notes: [] });
    const auto = await createWasmBackend({ threads: "auto" });
    const cores = Math.min(8, navigator.hardwareConcurrency);
    assertEquals(auto.info, { variant: "relaxed", threads: cores, requestedThreads: cores, notes: [] });
    auto.dispose();
    assertEquals(auto.info.threads, 1);
    const byDefault = await createWasmBackend();
    assertEquals(byDefault.info, { variant: "relaxed", threads: cores, requestedThreads: cores, notes: [] });
    byDefault.dispose();
    assertEquals((await createWasmBackend({ threads: 1 })).info, {
      variant: "relaxed",
      threads: 1,
      requestedThreads: 1,
      notes: [],
    });
  } finally {
    be.dispose();
  }
});

// Runs a script under `deno run` with no permissions and returns its last stdout line as JSON.
async function runIsolated(script: string): Promise<any> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/s.ts`, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-config", `${dir}/s.ts`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertOk(out.success, `deno run failed: ${new TextDecoder().decode(out.stderr)}`);
    return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("wasm: without SharedArrayBuffer (a page without cross-origin isolation) threads fall back to 1 and info says why", async () => {
  const url = new URL("../src/backends/wasm.ts", import.meta.url).href;
  // what a browser page without COOP/COEP offers: no SharedArrayBuffer, crossOriginIsolated false
  const info = await runIsolated(`delete (globalThis as any).SharedArrayBuffer;
(globalThis as any).crossOriginIsolated = false;
const { createWasmBackend } = await import(${JSON.stringify(url)});
const out = [];
for (const threads of [2, "auto"]) {
  const be = await createWasmBackend({ threads });
  const x = be.upload(new Float32Array([1, 2, 3, 4])), y = be.alloc(4);
  be.gemm(x, x, y, { M: 2, N: 2, K: 2, transA: false, transB: false, accumulate: false });
  out.push({ ...be.info, y: Array.from(await be.read(y)) });
}
console.log(JSON.stringify(out));`);
  for (const got of info) {
    assertEquals(got.threads, 1);
    assertEquals(got.variant, "relaxed");
    assertEquals(got.y, [7, 10, 15, 22]);
    assertEquals(got.notes.length, 1);
    assertOk(
      got.notes[0].startsWith(
        `1 thread instead of ${got.requestedThreads}: SharedArrayBuffer is unavailable`,
      ) &&
        got.notes[0].includes("Cross-Origin-Opener-Policy: same-origin"),
      got.notes[0],
    );
  }
});

Deno.test({
  name:
    "wasm: on Node (the bundle) threads run on node:worker_threads; relaxed SIMD is detected and its flag named",
  ignore: nodeVersion() === undefined,
  async fn() {
    const { bundle } = await import("../src/tools/bundle.ts");
    const dir = await Deno.makeTempDir({ prefix: "pixelfly_wasm_node_" });
    try {
      await bundle({ outfile: `${dir}/pixelfly.js` });
      await Deno.writeTextFile(
        `${dir}/run.mjs`,
        `import * as pf from "./pixelfly.js";
const out = [];
for (const threads of [1, 2, 3, "auto"]) {
  const be = await pf.createWasmBackend({ threads, minSplitWork: 0 });
  const one = await pf.createWasmBackend({ variant: be.variant, threads: 1 });
  const M = 70, N = 45, K = 33;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));
  const ys = [be, one].map((x) => {
    const c = x.alloc(M * N);
    x.gemm(x.upload(a), x.upload(b), c, { M, N, K, transA: false, transB: false, accumulate: false });
    return Array.from(x.readSync(c));
  });
  out.push({ asked: threads, ...be.info, idle: String(be.threadIdleMs), same: JSON.stringify(ys[0]) === JSON.stringify(ys[1]) });
  be.dispose();
}
console.log(JSON.stringify(out));
`,
      );
      const cores = navigator.hardwareConcurrency;
      for (const flags of [[], ["--experimental-wasm-relaxed-simd"]]) {
        const res = await new Deno.Command("node", { args: [...flags, `${dir}/run.mjs`], cwd: dir }).output();
        assertOk(
          res.success,
          `node ${flags} exited with ${res.code}: ${new TextDecoder().decode(res.stderr)}`,
        );
        const runs = JSON.parse(new TextDecoder().decode(res.stdout));
        // Node 20 has relaxed SIMD behind the flag; later versions have it on
        const relaxed = flags.length > 0 || Number(nodeVersion()!.slice(1).split(".")[0]) >= 22;
        for (const r of runs) {
          const want = r.asked === "auto" ? Math.min(8, cores) : r.asked;
          assertEquals([r.threads, r.requestedThreads], [want, want], `node ${flags}: threads ${r.asked}`);
          assertOk(r.same, `node ${flags}: threads ${r.asked} differ from one thread`);
          // Node's worker_threads are unref'd: they never keep the process alive, so they never leave
          assertEquals(r.idle, want > 1 ? "Infinity" : "undefined", `node ${flags}: idle limit`);
          assertEquals(r.variant, relaxed ? "relaxed" : "simd128");
          if (relaxed) assertEquals(r.notes, []);
          else {
            assertEquals(r.notes.length, 1);
            assertOk(r.notes[0].includes("--experimental-wasm-relaxed-simd"), r.notes[0]);
          }
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test('wasm: threads "auto" (the default) starts its Workers at the first kernel that splits, and they take parts', async () => {
  const be = await createWasmBackend({ minSplitWork: 0 });
  const one = await createWasmBackend({ threads: 1 });
  try {
    assertEquals(be.threads, Math.min(8, navigator.hardwareConcurrency));
    // creating it started no Worker (Deno's new Worker blocks 20-40 ms): warming ran on this thread only
    assertEquals(be.threadStats, NO_THREAD_WORK);
    const rng = new Rng(11);
    const M = 64, N = 96, K = 80;
    const a = Float32Array.from({ length: M * K }, () => rng.normal());
    const b = Float32Array.from({ length: K * N }, () => rng.normal());
    const want = one.alloc(M * N);
    one.gemm(one.upload(a), one.upload(b), want, {
      M,
      N,
      K,
      transA: false,
      transB: false,
      accumulate: false,
    });
    const pa = be.upload(a), pb = be.upload(b), c = be.alloc(M * N);
    // the Workers start in the background; give them up to 5 s of idle event loop to join
    for (let i = 0; i < 500 && be.threadStats.onWorkers === 0; i++) {
      be.gemm(pa, pb, c, { M, N, K, transA: false, transB: false, accumulate: false });
      assertClose(be.readSync(c), one.readSync(want), { atol: 0, rtol: 0, label: `auto gemm, try ${i}` });
      await new Promise((r) => setTimeout(r, 10));
    }
    assertOk(be.threadStats.onWorkers > 0, "no part ran on a Worker");
    assertEquals(be.info.notes, []);
  } finally {
    be.dispose();
    one.dispose();
  }
});

Deno.test('wasm: threads "auto": a cold PixelflyLinear 1024->4096 first forward on one row starts no Worker (the weight pack stays one part until Workers run)', async () => {
  const be = await createWasmBackend();
  try {
    if (be.threads === 1) return; // one core: nothing to split
    const layer = new PixelflyLinear(1024, 4096, { seed: 1, backend: be });
    const y = layer.forward(fromArray(new Float32Array(1024).fill(1), [1, 1024], be));
    await y.data();
    assertEquals(be.threadStats.parts, 0, "a part was split off (a Worker started) in the cold forward");
  } finally {
    be.dispose();
  }
});

Deno.test("wasm: thin products (a small M, N or K) equal the packed GEMM's within rounding and the js reference", async () => {
  const be = await createWasmBackend({ threads: 1 }), js = new JsBackend();
  const rng = new Rng(21);
  try {
    for (
      const [M, N, K] of [[1, 300, 77], [3, 41, 130], [4, 64, 9], [130, 1, 77], [70, 10, 301], [90, 37, 1], [
        50,
        4,
        3,
      ], [129, 3, 64]]
    ) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = Float32Array.from({ length: M * K }, () => rng.normal());
          const b = Float32Array.from({ length: K * N }, () => rng.normal());
          const c0 = Float32Array.from({ length: M * N }, () => rng.normal());
          const p = { M, N, K, transA, transB, accumulate: true, alpha: 0.5 };
          const out = [true, false].map((thin) => {
            be.thinProducts = thin;
            const c = be.upload(c0);
            be.gemm(be.upload(a), be.upload(b), c, p);
            return be.readSync(c);
          });
          const ref = js.upload(c0);
          js.gemm(js.upload(a), js.upload(b), ref, p);
          const want = await js.read(ref);
          const label = `M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`;
          assertClose(out[0], want, { atol: 1e-4 * Math.sqrt(K), rtol: 1e-4, label: `thin ${label}` });
          assertClose(out[1], want, { atol: 1e-4 * Math.sqrt(K), rtol: 1e-4, label: `packed ${label}` });
        }
      }
    }
  } finally {
    be.thinProducts = true;
    be.dispose();
  }
});

Deno.test("wasm: sumSquares splits its fixed chunks between threads with the same bits as one thread", async () => {
  const one = await createWasmBackend({ threads: 1 }), js = new JsBackend();
  const rng = new Rng(31);
  const size = 3 * 65536 + 1234;
  const x = Float32Array.from({ length: size }, () => rng.normal());
  const ref = js.upload(Float32Array.of(2));
  js.sumSquares(js.upload(x), ref, { size, accumulate: true });
  const want = (await js.read(ref))[0];
  const y1 = one.upload(Float32Array.of(2));
  one.sumSquares(one.upload(x), y1, { size, accumulate: true });
  const got1 = one.readSync(y1)[0];
  assertOk(Math.abs(got1 - want) <= 1e-6 * want, `sumSquares ${got1} vs js ${want}`);
  for (const threads of [2, 3, 4]) {
    const many = await createWasmBackend({ threads, minSplitWork: 0 });
    try {
      const y = many.upload(Float32Array.of(2));
      many.sumSquares(many.upload(x), y, { size, accumulate: true });
      assertEquals(many.readSync(y)[0], got1, `${threads} threads`);
    } finally {
      many.dispose();
    }
  }
  one.dispose();
});

Deno.test("wasm: bsrSoftmax and its gradient split by batch entry with the same bits as one thread", async () => {
  const one = await createWasmBackend({ threads: 1 });
  const rng = new Rng(41);
  const layout = randomMask({ outFeatures: 5 * 8, inFeatures: 6 * 8, block: 8, density: 0.5, seed: 4 })
    .toBSR();
  const batch = 7, n = batch * layout.nnz * 64;
  const x = Float32Array.from({ length: n }, () => rng.normal());
  const dy = Float32Array.from({ length: n }, () => rng.normal());
  const dx0 = Float32Array.from({ length: n }, () => rng.normal());
  const run = (be: WasmBackend) => {
    const px = be.upload(x), y = be.alloc(n), pdy = be.upload(dy), pdx = be.upload(dx0);
    const p = { layout, batch, L: 37, S: 45, causal: true, scale: 0.3 };
    be.bsrSoftmax(px, y, p);
    be.bsrSoftmaxGrad(y, pdy, pdx, { ...p, accumulate: true });
    return [be.readSync(y), be.readSync(pdx)];
  };
  const want = run(one);
  for (const threads of [2, 3, 4]) {
    const many = await createWasmBackend({ threads, minSplitWork: 0 });
    try {
      const got = run(many);
      assertClose(got[0], want[0], { atol: 0, rtol: 0, label: `bsrSoftmax, ${threads} threads` });
      assertClose(got[1], want[1], { atol: 0, rtol: 0, label: `bsrSoftmaxGrad, ${threads} threads` });
      assertOk(many.threadStats.parts > 0, "nothing was split");
    } finally {
      many.dispose();
    }
  }
  one.dispose();
});

Deno.test("wasm: GELU's backward (Φ from the forward's y/x) at 0, denormals, the |x| > 8 cutoff, ±Inf and NaN", async () => {
  // float64 derivative Φ(x) + x·φ(x); its limits 1 and 0 at ±Inf
  const { unaryDerivative } = await import("../src/backends/js.ts");
  const xs = [
    0,
    -0,
    1e-45,
    -1e-40,
    1e-30,
    -3e-19,
    1e-10,
    0.5,
    -0.5,
    3,
    -3,
    -5.5,
    -6,
    7.99,
    -7.99,
    8.01,
    -8.01,
  ];
  const x = new Float32Array([...xs, 30, -30, Infinity, -Infinity, NaN]);
  const want = [...x].map((v) =>
    Number.isNaN(v) ? NaN : v === Infinity ? 1 : v === -Infinity ? 0 : unaryDerivative("gelu", v, 0)
  );
  for (const variant of ["relaxed", "simd128"] as const) {
    const be = await createWasmBackend({ variant, threads: 1 });
    const bx = be.upload(x), by = be.alloc(x.length), dy = be.upload(new Float32Array(x.length).fill(1));
    const dx = be.alloc(x.length);
    be.unary("gelu", bx, by, { size: x.length });
    be.unaryGrad("gelu", bx, by, dy, dx, { size: x.length, accumulate: false });
    assertClose(await be.read(dx), want, { atol: 2e-7, rtol: 2e-6, label: `gelu backward, ${variant}` });
    be.dispose();
  }
});

Deno.test("wasm: sumRows row by row (long rows) and by strips give the float64 row-order sum, on 1-3 threads", async () => {
  // M >= 16 rows at a stride of >= 1024 floats take the row-by-row path (blocks of 1024 columns, 4 rows per
  // step, then the rest); the others the register strips. Each column: Σ in float64 in row order, then + y.
  const rng = new Rng(11);
  const cases = [[16, 1024], [19, 1025], [37, 2051], [21, 3000], [15, 2048], [40, 1030], [64, 130]];
  for (const threads of [1, 2, 3]) {
    const be = await createWasmBackend({ threads, minSplitWork: 0 });
    try {
      for (const [M, N] of cases) {
        for (const accumulate of [false, true]) {
          const x = Float32Array.from({ length: M * N }, () => rng.uniform() * 2 - 1);
          const y0 = Float32Array.from({ length: N }, () => rng.uniform() * 2 - 1);
          const want = new Float32Array(N);
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let i = 0; i < M; i++) s += x[i * N + j];
            want[j] = (accumulate ? y0[j] : 0) + s;
          }
          const y = be.upload(y0);
          be.sumRows(be.upload(x), y, { M, N, accumulate });
          const got = await be.read(y);
          for (let j = 0; j < N; j++) {
            if (!Object.is(got[j], want[j])) {
              throw new Error(
                `sumRows ${M}x${N} acc ${accumulate} ${threads} threads: column ${j} ${got[j]} != ${want[j]}`,
              );
            }
          }
        }
      }
    } finally {
      be.dispose();
    }
  }
});
