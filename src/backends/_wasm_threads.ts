/**
 * The wasm backend's worker threads (private to src/backends/): the Worker program and its job
 * protocol over a control block in the shared memory, and where a product splits between threads.
 *
 * @module
 */

// The Worker's program: instantiate the shared module, then serve jobs posted in the control block.
// Control block (Int32 slots at `ctrl`): 0 job sequence, 1 finished sequence, 2 status (0 ok, 1 failed),
// 3 kernel (1 gemm, 2 dds, 3 quit), 4..19 arguments (slot 13 is gemm's alpha as float32), 20 the
// worker's state (0 idle, 1 gone, 2 claimed for a job); bytes 128..255 hold the error text of a failed
// job. An idle worker leaves after WORKER_IDLE_MS, so a backend nobody disposes does not keep the
// process alive for ever; the next product starts a new one (tens of ms) without waiting for it.
const WORKER_SOURCE = `
self.onmessage = async (e) => {
  const { module, memory, ctrl, idleMs } = e.data;
  let seen = e.data.seen;
  const i32 = new Int32Array(memory.buffer, ctrl, 64);
  const f32 = new Float32Array(memory.buffer, ctrl, 64);
  const bytes = new Uint8Array(memory.buffer, ctrl + 128, 128);
  let k;
  try {
    k = (await WebAssembly.instantiate(module, { env: { memory } })).exports;
  } catch (err) {
    const text = String(err && err.message || err);
    // a restart while the main thread waits: answer its job with the failure
    bytes.fill(0);
    bytes.set(new TextEncoder().encode(text).subarray(0, 127));
    Atomics.store(i32, 2, 1);
    Atomics.store(i32, 1, Atomics.load(i32, 0));
    Atomics.notify(i32, 1);
    self.postMessage({ error: text });
    return;
  }
  self.postMessage({ ready: true });
  for (;;) {
    if (Atomics.load(i32, 0) === seen && Atomics.wait(i32, 0, seen, idleMs) === "timed-out") {
      // idle: leave (state idle -> gone) unless the main thread has just claimed this worker for a job
      if (Atomics.compareExchange(i32, 20, 0, 1) === 0) {
        self.close();
        return;
      }
      continue;
    }
    const s = Atomics.load(i32, 0);
    if (s === seen) continue;
    seen = s;
    const op = i32[3];
    let status = 0;
    try {
      if (op === 1) {
        k.gemm(i32[4], i32[5], i32[6], i32[7], i32[8], i32[9], i32[10], i32[11], i32[12], f32[13], i32[14], i32[15], i32[16], i32[17]);
      } else if (op === 2) {
        k.dds(i32[4], i32[5], i32[6], i32[7], i32[8], i32[9], i32[10], i32[11], i32[12], i32[13], i32[14], i32[15], i32[16], i32[17], i32[18], i32[19]);
      } else if (op !== 3) {
        throw new Error("unknown job " + op);
      }
    } catch (err) {
      status = 1;
      const msg = new TextEncoder().encode(String(err && err.message || err)).subarray(0, 127);
      bytes.fill(0);
      bytes.set(msg);
    }
    Atomics.store(i32, 2, status);
    Atomics.store(i32, 20, 0); // idle again, before the main thread can see the job done
    Atomics.store(i32, 1, s);
    Atomics.notify(i32, 1);
    if (op === 3) {
      self.close();
      return;
    }
  }
};
`;

/** Bytes of the control block a {@link WorkerThread} serves jobs through. */
export const CTRL_BYTES = 256;
const WORKER_IDLE_MS = 1000;
// A worker that has not finished its half of a product within this time is taken for dead.
const JOB_TIMEOUT_MS = 120_000;

/** One Worker that shares the backend's memory and runs half of a product on request. */
export class WorkerThread {
  #worker: Worker;
  #module: WebAssembly.Module;
  #mem: WebAssembly.Memory;
  #ctrl: number;
  #seq = 0;
  #pending = false;

  private constructor(worker: Worker, module: WebAssembly.Module, mem: WebAssembly.Memory, ctrl: number) {
    this.#worker = worker;
    this.#module = module;
    this.#mem = mem;
    this.#ctrl = ctrl;
  }

  static #spawn(module: WebAssembly.Module, mem: WebAssembly.Memory, ctrl: number, seen: number): Worker {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    try {
      const worker = new Worker(url, { type: "module" });
      worker.postMessage({ module, memory: mem, ctrl, seen, idleMs: WORKER_IDLE_MS });
      return worker;
    } finally {
      // the Worker has its own copy of the URL's target once constructed
      setTimeout(() => URL.revokeObjectURL(url), 0);
    }
  }

  static async start(
    module: WebAssembly.Module,
    mem: WebAssembly.Memory,
    ctrl: number,
  ): Promise<WorkerThread> {
    const worker = WorkerThread.#spawn(module, mem, ctrl, 0);
    try {
      await new Promise<void>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent) => {
          if (e.data?.ready) resolve();
          else reject(new Error(`createWasmBackend: the worker thread failed to start: ${e.data?.error}`));
        };
        worker.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          reject(new Error(`createWasmBackend: the worker thread failed to start: ${e.message}`));
        };
      });
    } catch (err) {
      worker.terminate();
      throw err;
    }
    worker.onmessage = null;
    worker.onerror = (e: ErrorEvent) => e.preventDefault();
    return new WorkerThread(worker, module, mem, ctrl);
  }

  #i32(): Int32Array {
    return new Int32Array(this.#mem.buffer, this.#ctrl, CTRL_BYTES / 4);
  }

  /** Posts a job: kernel 1 gemm, 2 dds, 3 quit; ints go to slots 4.., floats as [slot, value] pairs. */
  post(kernel: number, ints: number[], floats: [number, number][] = []): void {
    const i32 = this.#i32();
    const f32 = new Float32Array(i32.buffer, this.#ctrl, CTRL_BYTES / 4);
    if (Atomics.compareExchange(i32, 20, 0, 2) === 1) {
      // the worker left while idle: start another, which serves the job posted below
      if (kernel === 3) return;
      Atomics.store(i32, 20, 2);
      this.#worker.terminate();
      this.#worker = WorkerThread.#spawn(this.#module, this.#mem, this.#ctrl, this.#seq);
      this.#worker.onerror = (e: ErrorEvent) => e.preventDefault();
    }
    i32[3] = kernel;
    for (let i = 0; i < ints.length; i++) i32[4 + i] = ints[i];
    for (const [slot, v] of floats) f32[slot] = v;
    this.#pending = true;
    Atomics.store(i32, 0, ++this.#seq);
    Atomics.notify(i32, 0);
  }

  /** Waits for the posted job; throws when it failed or the worker does not answer. */
  join(what: string): void {
    if (!this.#pending) return;
    this.#pending = false;
    const i32 = this.#i32();
    const t0 = Date.now();
    for (;;) {
      const done = Atomics.load(i32, 1);
      if (done === this.#seq) break;
      Atomics.wait(i32, 1, done, 1000);
      if (Date.now() - t0 > JOB_TIMEOUT_MS) {
        throw new Error(
          `wasm backend: the worker thread did not finish its part of ${what} within ${JOB_TIMEOUT_MS} ms`,
        );
      }
    }
    if (Atomics.load(i32, 2) !== 0) {
      const bytes = new Uint8Array(i32.buffer, this.#ctrl + 128, 128);
      const end = bytes.indexOf(0);
      const msg = new TextDecoder().decode(bytes.slice(0, end < 0 ? 128 : end));
      throw new Error(`wasm backend: the worker thread failed in ${what}: ${msg}`);
    }
  }

  /** Asks the worker to quit and terminates it. */
  stop(): void {
    try {
      this.post(3, []);
    } finally {
      this.#pending = false;
      this.#worker.terminate();
    }
  }
}

// Where two threads split n rows or columns: half, rounded up to the register tile (8); 0 when too small.
export function splitPoint(n: number): number {
  const s = Math.ceil(n / 16) * 8;
  return s >= 8 && s < n ? s : 0;
}

// The block row (of a BSR walk with these pointers) that splits the kept blocks about in half; 0 when
// no split leaves work on both sides.
export function balancedSplit(ptr: Int32Array): number {
  const rows = ptr.length - 1, half = ptr[rows] / 2;
  let o = 1;
  while (o < rows && ptr[o] < half) o++;
  return o < rows && ptr[o] > 0 ? o : 0;
}
