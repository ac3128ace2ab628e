/**
 * The wasm backend's worker threads (private to src/backends/): the Worker program and its job
 * protocol over a control block in the shared memory, and how a kernel's work splits between threads.
 *
 * @module
 */

// The Worker's program: instantiate the shared module, then serve jobs posted in its control block.
// Control block at `ctrl` (CTRL_BYTES): Int32 slots 0 job sequence, 1 finished sequence, 2 status (0 ok,
// 1 failed), 3 kernel (an index into `names`; -1 quit), 4 argument count, 5 the worker's state (0 idle,
// 1 gone, 2 claimed for a job, 3 starting); Float64 arguments from byte ARGS_AT (integers and pointers are exact in
// a double, and the engine converts each to the export's parameter type exactly as a call from the main
// thread does); bytes ERR_AT.. hold the error text of a failed job. An idle worker leaves after
// WORKER_IDLE_MS, so a backend nobody disposes does not keep the process alive for ever. The next job
// starts a new one and, without waiting for it, runs that worker's part on the calling thread (a browser
// starts a Worker only while its parent's event loop runs, never while the parent blocks in
// Atomics.wait); the new worker takes parts again once it has started (tens of ms).
const ARGS_AT = 64;
const MAX_ARGS = 24;
const ERR_AT = ARGS_AT + 8 * MAX_ARGS;
const ERR_BYTES = 128;

/** Bytes of the control block each worker serves jobs through. */
export const CTRL_BYTES = ERR_AT + ERR_BYTES;

const WORKER_SOURCE = `
const ARGS_AT = ${ARGS_AT}, MAX_ARGS = ${MAX_ARGS}, ERR_AT = ${ERR_AT}, ERR_BYTES = ${ERR_BYTES};
self.onmessage = async (e) => {
  const { module, memory, ctrl, idleMs, names } = e.data;
  let seen = e.data.seen;
  const i32 = new Int32Array(memory.buffer, ctrl, ARGS_AT / 4);
  const f64 = new Float64Array(memory.buffer, ctrl + ARGS_AT, MAX_ARGS);
  const bytes = new Uint8Array(memory.buffer, ctrl + ERR_AT, ERR_BYTES);
  const fail = (err) => {
    bytes.fill(0);
    bytes.set(new TextEncoder().encode(String(err && err.message || err)).subarray(0, ERR_BYTES - 1));
  };
  let fns;
  try {
    const k = (await WebAssembly.instantiate(module, { env: { memory } })).exports;
    fns = names.map((n) => k[n]);
  } catch (err) {
    // a restarted worker that cannot run stays "starting": its parts keep running on the main thread
    self.postMessage({ error: String(err && err.message || err) });
    return;
  }
  Atomics.compareExchange(i32, 5, 3, 0); // a restarted worker: starting -> idle, ready for jobs
  self.postMessage({ ready: true });
  for (;;) {
    if (Atomics.load(i32, 0) === seen && Atomics.wait(i32, 0, seen, idleMs) === "timed-out") {
      // idle: leave (state idle -> gone) unless the main thread has just claimed this worker for a job
      if (Atomics.compareExchange(i32, 5, 0, 1) === 0) {
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
      if (op >= 0) {
        const f = fns[op];
        if (typeof f !== "function") throw new Error("unknown job " + op);
        const n = i32[4];
        const a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = f64[i];
        f(...a);
      }
    } catch (err) {
      status = 1;
      fail(err);
    }
    Atomics.store(i32, 2, status);
    Atomics.store(i32, 5, 0); // idle again, before the main thread can see the job done
    Atomics.store(i32, 1, s);
    Atomics.notify(i32, 1);
    if (op < 0) {
      self.close();
      return;
    }
  }
};
`;

const WORKER_IDLE_MS = 1000;
// A worker that has not finished its part of a job within this time is taken for dead.
const JOB_TIMEOUT_MS = 120_000;

/** A started thread, whichever API made it: a web `Worker` or Node's `node:worker_threads` Worker. */
export interface ThreadHandle {
  postMessage(message: unknown): void;
  /** Called with each message's data; `onError` with the text of an uncaught error. */
  listen(onMessage: ((data: any) => void) | null, onError: ((text: string) => void) | null): void;
  terminate(): void;
}

/** Starts a thread running the given JavaScript source. */
export type Spawner = (source: string) => ThreadHandle;

// A web Worker (Deno, browsers) from a blob: URL, which needs no permission.
function webSpawner(source: string): ThreadHandle {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  let worker: Worker;
  try {
    worker = new Worker(url, { type: "module" });
  } finally {
    // the Worker has its own copy of the URL's target once constructed
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
  return {
    postMessage: (m) => worker.postMessage(m),
    listen(onMessage, onError) {
      worker.onmessage = onMessage && ((e: MessageEvent) => onMessage(e.data));
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        onError?.(e.message);
      };
    },
    terminate: () => worker.terminate(),
  };
}

// Node's worker_threads run the same program behind a small `self` shim (an eval'd CommonJS script).
const NODE_PRELUDE = `
const { parentPort } = require("node:worker_threads");
const self = {
  onmessage: null,
  postMessage: (m) => parentPort.postMessage(m),
  close: () => process.exit(0),
};
parentPort.on("message", (data) => self.onmessage && self.onmessage({ data }));
`;

type NodeWorkerClass = new (src: string, opts: { eval: boolean }) => {
  postMessage(m: unknown): void;
  on(ev: string, f: (x: any) => void): void;
  removeAllListeners(ev: string): void;
  terminate(): Promise<number>;
  unref(): void;
};

function nodeSpawner(NodeWorker: NodeWorkerClass): Spawner {
  return (source) => {
    const worker = new NodeWorker(NODE_PRELUDE + source, { eval: true });
    // an idle worker must not keep the process alive (the main thread blocks while one computes)
    worker.unref();
    worker.on("error", () => {});
    return {
      postMessage: (m) => worker.postMessage(m),
      listen(onMessage, onError) {
        worker.removeAllListeners("message");
        worker.removeAllListeners("error");
        if (onMessage) worker.on("message", onMessage);
        worker.on("error", (e: Error) => onError?.(String(e?.message ?? e)));
      },
      terminate: () => void worker.terminate(),
    };
  };
}

/** What this engine offers for threads: a way to start them and its core count, or why there is none. */
export type ThreadSupport = { spawn: Spawner; cores: number } | { reason: string };

// import() of a name a bundler does not try to resolve (Node's built-ins exist only on Node).
function importNode(name: string): Promise<any> {
  const specifier = ["node", name].join(":");
  return import(specifier);
}

/**
 * Whether worker threads can run here, checked in the order a user can act on: SharedArrayBuffer
 * (missing on a page that is not cross-origin isolated), `Atomics.wait` on this thread (refused on a
 * browser's main thread), then a Worker API (the web's, or `node:worker_threads` on Node).
 */
export async function threadSupport(): Promise<ThreadSupport> {
  const g = globalThis as any;
  if (typeof SharedArrayBuffer !== "function") {
    return {
      reason: g.crossOriginIsolated === false
        ? "SharedArrayBuffer is unavailable because the page is not cross-origin isolated (serve it with " +
          "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)"
        : "this engine has no SharedArrayBuffer",
    };
  }
  try {
    // returns "not-equal" at once where waiting is allowed, throws where it is not
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
  } catch {
    return {
      reason: "Atomics.wait is not allowed on this thread (a browser's main thread); " +
        "run pixelfly inside a Worker to use threads",
    };
  }
  const navCores = g.navigator?.hardwareConcurrency;
  if (
    typeof Worker === "function" && typeof Blob === "function" && typeof URL?.createObjectURL === "function"
  ) {
    return { spawn: webSpawner, cores: Number.isInteger(navCores) ? navCores : 1 };
  }
  if (typeof g.process?.versions?.node === "string") {
    try {
      const wt = await importNode("worker_threads");
      const os = await importNode("os");
      const cores = Number.isInteger(navCores) ? navCores : os.availableParallelism?.() ?? os.cpus().length;
      return { spawn: nodeSpawner(wt.Worker), cores };
    } catch (err) {
      return { reason: `node:worker_threads could not be loaded: ${(err as Error)?.message ?? err}` };
    }
  }
  return { reason: "this engine has no Worker" };
}

/** One worker thread that shares the backend's memory and runs one part of a kernel on request. */
export class WorkerThread {
  #worker: ThreadHandle;
  #spawner: Spawner;
  #module: WebAssembly.Module;
  #mem: WebAssembly.Memory;
  #ctrl: number;
  #names: readonly string[];
  #seq = 0;
  #pending = false;

  private constructor(
    worker: ThreadHandle,
    spawner: Spawner,
    module: WebAssembly.Module,
    mem: WebAssembly.Memory,
    ctrl: number,
    names: readonly string[],
  ) {
    this.#worker = worker;
    this.#spawner = spawner;
    this.#module = module;
    this.#mem = mem;
    this.#ctrl = ctrl;
    this.#names = names;
  }

  static #spawn(
    spawner: Spawner,
    module: WebAssembly.Module,
    mem: WebAssembly.Memory,
    ctrl: number,
    seen: number,
    names: readonly string[],
  ): ThreadHandle {
    const worker = spawner(WORKER_SOURCE);
    worker.postMessage({ module, memory: mem, ctrl, seen, idleMs: WORKER_IDLE_MS, names });
    return worker;
  }

  /**
   * Starts a worker serving the kernels `names` (exports of `module`) through the control block at `ctrl`.
   */
  static async start(
    spawner: Spawner,
    module: WebAssembly.Module,
    mem: WebAssembly.Memory,
    ctrl: number,
    names: readonly string[],
  ): Promise<WorkerThread> {
    const worker = WorkerThread.#spawn(spawner, module, mem, ctrl, 0, names);
    try {
      await new Promise<void>((resolve, reject) => {
        worker.listen((data) => {
          if (data?.ready) resolve();
          else reject(new Error(`createWasmBackend: a worker thread failed to start: ${data?.error}`));
        }, (text) => reject(new Error(`createWasmBackend: a worker thread failed to start: ${text}`)));
      });
    } catch (err) {
      worker.terminate();
      throw err;
    }
    worker.listen(null, null);
    return new WorkerThread(worker, spawner, module, mem, ctrl, names);
  }

  #i32(): Int32Array {
    return new Int32Array(this.#mem.buffer, this.#ctrl, ARGS_AT / 4);
  }

  /**
   * Posts a job: kernel `op` (an index into the names; -1 quits) with up to 24 numeric arguments. Returns
   * false, posting nothing, when the worker cannot take it now (it left while idle, or its replacement is
   * still starting): the caller then runs that part itself.
   */
  post(op: number, args: readonly number[]): boolean {
    if (args.length > MAX_ARGS) throw new Error(`wasm backend: a job takes at most ${MAX_ARGS} arguments`);
    const i32 = this.#i32();
    const state = Atomics.compareExchange(i32, 5, 0, 2);
    if (state === 1 && op >= 0) {
      // the worker left while idle: start another (it marks itself idle once it runs)
      Atomics.store(i32, 5, 3);
      this.#worker.terminate();
      this.#worker = WorkerThread.#spawn(
        this.#spawner,
        this.#module,
        this.#mem,
        this.#ctrl,
        this.#seq,
        this.#names,
      );
      this.#worker.listen(null, null);
    }
    if (state !== 0) return false;
    const f64 = new Float64Array(this.#mem.buffer, this.#ctrl + ARGS_AT, MAX_ARGS);
    i32[3] = op;
    i32[4] = args.length;
    for (let i = 0; i < args.length; i++) f64[i] = args[i];
    this.#pending = true;
    Atomics.store(i32, 0, ++this.#seq);
    Atomics.notify(i32, 0);
    return true;
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
          `wasm backend: a worker thread did not finish its part of ${what} within ${JOB_TIMEOUT_MS} ms`,
        );
      }
    }
    if (Atomics.load(i32, 2) !== 0) {
      const bytes = new Uint8Array(this.#mem.buffer, this.#ctrl + ERR_AT, ERR_BYTES);
      const end = bytes.indexOf(0);
      const msg = new TextDecoder().decode(bytes.slice(0, end < 0 ? ERR_BYTES : end));
      throw new Error(`wasm backend: a worker thread failed in ${what}: ${msg}`);
    }
  }

  /** Asks the worker to quit and terminates it. */
  stop(): void {
    try {
      this.post(-1, []);
    } finally {
      this.#pending = false;
      this.#worker.terminate();
    }
  }
}

/**
 * Splits `[0, n)` into at most `parts` contiguous ranges whose inner boundaries are multiples of `align`,
 * as even as that allows; returns the boundaries `[0, b1, ..., n]` (no empty range).
 */
export function evenSplit(n: number, parts: number, align = 1): number[] {
  const units = Math.ceil(n / align);
  const p = Math.max(1, Math.min(parts, units));
  const out = [0];
  for (let t = 1; t < p; t++) {
    const b = Math.min(n, Math.round((units * t) / p) * align);
    if (b > out[out.length - 1] && b < n) out.push(b);
  }
  out.push(n);
  return out;
}

/**
 * Splits the block rows (or columns) of a BSR walk with pointers `ptr` into at most `parts` contiguous
 * ranges holding about equal numbers of kept blocks; returns the boundaries `[0, ..., rows]`.
 */
export function balancedSplit(ptr: Int32Array, parts: number): number[] {
  const rows = ptr.length - 1, total = ptr[rows];
  const out = [0];
  let o = 0;
  for (let t = 1; t < parts; t++) {
    const target = (total * t) / parts;
    while (o < rows && ptr[o] < target) o++;
    if (o < rows && ptr[o] > ptr[out[out.length - 1]] && ptr[o] < total) out.push(o);
  }
  out.push(rows);
  return out;
}
