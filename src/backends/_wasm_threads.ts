/**
 * The wasm backend's worker threads (private to src/backends/): the Worker program, the job protocol over
 * one block of the shared memory, and how a kernel's work splits between threads.
 *
 * @module
 */

// A job is a kernel (an index into `names`) and a list of parts, each part that kernel's argument list
// over its own slice of the output. The calling thread and the workers claim parts one at a time with a
// compare-and-swap on CLAIM ((job sequence & 0xffff) << 16 | next part) until none is left, so a worker
// that is slow to wake, descheduled (more threads than cores), gone after an idle exit or still starting
// never holds a job up: the others take its parts. Whichever thread runs a part computes the same bits.
//
// The block at `base` (Int32 slots): SEQ job sequence (workers wait on it), CLAIM, DONE parts finished
// (the caller waits on it), NPARTS, OP, NARGS, WSARG (the argument that is the running thread's own
// workspace, -1 for none), STATUS (0 ok, 1 a part failed), QUIT, BY_WORKERS (parts the workers ran), IDLE
// (the idle limit in ms, -1 for none: each worker reads it before each wait); STATE + id is worker id's
// state (0 idle, 1 gone, 3 starting). Float64 from WS_AT: each thread's workspace; ERR_AT: a failed part's message;
// ARGS_AT: the parts' arguments, MAX_ARGS doubles each (integers and pointers are exact in a double, and
// the engine converts each to the export's parameter type exactly as a direct call does).
//
// An idle worker leaves after the idle limit, so a backend nobody disposes does not keep the process alive
// (a web Worker keeps Deno's process alive until it ends); the next job starts a replacement without
// waiting for it (a browser starts a Worker only while the parent's event loop runs, never while it blocks
// in Atomics.wait). In Deno each `new Worker` blocks the calling thread 20-40 ms, so by default the limit
// starts at WORKER_IDLE_MS and doubles, up to WORKER_IDLE_MAX_MS, each time a job finds workers that left
// idle: a program that pauses between bursts of work (a server between requests, an app between a user's
// actions) soon stops paying for replacements, and one that never pauses still exits within
// WORKER_IDLE_MS of its last kernel. Node's workers are unref'd (they never keep the process alive), so
// there they never leave.
const SEQ = 0, CLAIM = 1, DONE = 2, NPARTS = 3, OP = 4, NARGS = 5, WSARG = 6, STATUS = 7, QUIT = 8;
const BY_WORKERS = 9, IDLE = 10;
const STATE = 16;
const MAX_THREADS = 64;
const WS_AT = (STATE + MAX_THREADS) * 4;
const ERR_AT = WS_AT + 8 * MAX_THREADS;
const ERR_BYTES = 128;
const ARGS_AT = ERR_AT + ERR_BYTES;
const MAX_ARGS = 24;
/** The most parts a job takes per thread (a job of n threads holds up to n times this many parts). */
export const MAX_PARTS_PER_THREAD = 8;

// How long a thread polls before it sleeps in Atomics.wait, in ms: a worker after its last part (the next
// kernel of a step follows within tens of microseconds of JS; a sleeping thread takes tens of microseconds
// to wake, as much as a small kernel), and the calling thread, shorter, for the workers' last parts (a
// polling caller takes CPU time from its own workers where the process's share of the cores is fixed).
// On this shared 2-core VM (load 4-5) the step's 2-thread time varied more between runs than between
// settings (0, 0.03, 0.25 ms, with and without the caller polling): rerun on an idle machine.
const SPIN_MS = 0.25, CALLER_SPIN_MS = 0.05;

const WORKER_SOURCE = `
const SEQ = ${SEQ}, CLAIM = ${CLAIM}, DONE = ${DONE}, NPARTS = ${NPARTS}, OP = ${OP}, NARGS = ${NARGS};
const WSARG = ${WSARG}, STATUS = ${STATUS}, QUIT = ${QUIT}, STATE = ${STATE}, BY_WORKERS = ${BY_WORKERS};
const IDLE = ${IDLE};
const WS_AT = ${WS_AT}, ERR_AT = ${ERR_AT}, ERR_BYTES = ${ERR_BYTES}, ARGS_AT = ${ARGS_AT}, MAX_ARGS = ${MAX_ARGS};
const SPIN_MS = ${SPIN_MS};
self.onmessage = async (e) => {
  const { module, memory, base, id, names, parts } = e.data;
  let seen = e.data.seen;
  const i32 = new Int32Array(memory.buffer, base, STATE + ${MAX_THREADS});
  const ws = new Float64Array(memory.buffer, base + WS_AT, ${MAX_THREADS});
  const args = new Float64Array(memory.buffer, base + ARGS_AT, parts * ${MAX_PARTS_PER_THREAD} * MAX_ARGS);
  const bytes = new Uint8Array(memory.buffer, base + ERR_AT, ERR_BYTES);
  let fns;
  try {
    const k = (await WebAssembly.instantiate(module, { env: { memory } })).exports;
    fns = names.map((n) => k[n]);
  } catch (err) {
    // a worker that cannot run stays "starting": the other threads take every part
    self.postMessage({ error: String(err && err.message || err) });
    return;
  }
  Atomics.compareExchange(i32, STATE + id, 3, 0); // starting -> idle: takes parts from the next job on
  self.postMessage({ ready: true });
  const work = (s) => {
    const tag = (s & 0xffff) << 16;
    for (;;) {
      const w = Atomics.load(i32, CLAIM);
      if ((w & ~0xffff) !== tag) return;
      const p = w & 0xffff, n = Atomics.load(i32, NPARTS);
      if (p >= n) return;
      if (Atomics.compareExchange(i32, CLAIM, w, w + 1) !== w) continue;
      try {
        const f = fns[Atomics.load(i32, OP)], na = Atomics.load(i32, NARGS), wa = Atomics.load(i32, WSARG);
        const a = new Array(na);
        for (let i = 0; i < na; i++) a[i] = args[p * MAX_ARGS + i];
        if (wa >= 0) a[wa] = ws[id];
        f(...a);
      } catch (err) {
        if (Atomics.compareExchange(i32, STATUS, 0, 1) === 0) {
          bytes.fill(0);
          bytes.set(new TextEncoder().encode(String(err && err.message || err)).subarray(0, ERR_BYTES - 1));
        }
      }
      Atomics.add(i32, BY_WORKERS, 1);
      if (Atomics.add(i32, DONE, 1) + 1 === n) Atomics.notify(i32, DONE);
    }
  };
  for (;;) {
    let s = Atomics.load(i32, SEQ);
    if (s === seen) {
      // spin a while first: a training step's next kernel usually comes within it, and a sleeping thread
      // takes tens of microseconds to wake
      const until = performance.now() + SPIN_MS;
      while (s === seen && performance.now() < until) {
        for (let k = 0; k < 64 && s === seen; k++) s = Atomics.load(i32, SEQ);
      }
    }
    if (s === seen) {
      const idle = Atomics.load(i32, IDLE);
      if (Atomics.wait(i32, SEQ, seen, idle < 0 ? Infinity : idle) === "timed-out" && Atomics.load(i32, SEQ) === seen) {
        Atomics.store(i32, STATE + id, 1); // gone: the next job starts a replacement
        self.close();
        return;
      }
      continue;
    }
    seen = s;
    if (Atomics.load(i32, QUIT) === 1) {
      self.close();
      return;
    }
    // worker id takes parts only of jobs with more than id parts (they have that many workspaces)
    if (Atomics.load(i32, NPARTS) > id) work(s);
  }
};
`;

/** The idle limit a pool starts with by default (see the protocol above), in ms. */
export const WORKER_IDLE_MS = 1000;
/**
 * The most the default idle limit grows to, in ms: how long at most a program that paused between bursts
 * of work and never disposed its backend waits at its end for the workers to leave.
 */
export const WORKER_IDLE_MAX_MS = 8000;
// Backing off (ThreadPool's #pace): late jobs in a row that start it, the slack in ms, the jobs run alone.
const LATE_JOBS = 3, LATE_MS = 0.05, BACKOFF_MIN = 16, BACKOFF_MAX = 1024;
// A job whose parts have not all finished within this time is taken for hung.
const JOB_TIMEOUT_MS = 120_000;

/** A started thread, whichever API made it: a web `Worker` or Node's `node:worker_threads` Worker. */
export interface ThreadHandle {
  postMessage(message: unknown): void;
  /** Called with each message's data; `onError` with the text of an uncaught error. */
  listen(onMessage: ((data: any) => void) | null, onError: ((text: string) => void) | null): void;
  terminate(): void;
}

/** How the threads shared the work so far (see {@link ThreadPool.stats}). */
export interface ThreadStats {
  /** Parts of jobs run (a job is one kernel call split between threads). */
  parts: number;
  /** Parts the workers ran (the calling thread ran the others). */
  onWorkers: number;
  /** Jobs run on the calling thread alone while backing off (the workers kept arriving late). */
  aloneJobs: number;
  /** Jobs shared out between the threads. */
  jobs: number;
  /** The calling thread's milliseconds running parts of those jobs. */
  workedMs: number;
  /** The calling thread's milliseconds waiting for the workers' last parts, once it found none to take. */
  waitedMs: number;
  /** Workers started again after they left idle (see the idle limit above). */
  restarts: number;
}

/**
 * Starts a thread running the given JavaScript source. `unrefs`: the threads it starts never keep the
 * process alive (Node's), so they need not leave when idle.
 */
export type Spawner = ((source: string) => ThreadHandle) & { unrefs?: boolean };

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
  const spawn: Spawner = (source) => {
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
  spawn.unrefs = true;
  return spawn;
}

/** What this engine offers for threads: a way to start them and its core count, or why there is none. */
export type ThreadSupport = { spawn: Spawner; cores: number } | { reason: string };

// One of Node's built-in modules, without an import a bundler or a publish step would try to resolve:
// process.getBuiltinModule (Node 20.16 and later), else an import() made at run time (only on Node).
function importNode(name: string): Promise<any> {
  const proc = (globalThis as any).process;
  if (typeof proc?.getBuiltinModule === "function") {
    return Promise.resolve(proc.getBuiltinModule(`node:${name}`));
  }
  return new Function("s", "return import(s)")(`node:${name}`);
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

/**
 * The calling thread plus `workers` Workers sharing the backend's memory and serving jobs through one
 * block of it ({@link ThreadPool.blockBytes}); see the protocol above.
 */
export class ThreadPool {
  #handles: (ThreadHandle | undefined)[];
  #spawner: Spawner;
  #module: WebAssembly.Module;
  #mem: WebAssembly.Memory;
  #base: number;
  #names: readonly string[];
  #parts: number;
  #seq = 0;
  #total = 0;
  #onFailure: ((message: string) => void) | undefined;
  // the idle limit (ms; Infinity: none), whether it grows when workers left too early, and which workers
  // were ever started (a "gone" worker that was started left idle; one never started is only due to start)
  #idleMs = WORKER_IDLE_MS;
  #idleGrows = true;
  #started: boolean[];
  #grownAt = -Infinity; // when the limit last grew (performance.now())

  private constructor(
    spawner: Spawner,
    module: WebAssembly.Module,
    mem: WebAssembly.Memory,
    base: number,
    names: readonly string[],
    parts: number,
  ) {
    this.#handles = new Array(parts - 1).fill(undefined);
    this.#started = new Array(parts).fill(false);
    this.#spawner = spawner;
    this.#module = module;
    this.#mem = mem;
    this.#base = base;
    this.#names = names;
    this.#parts = parts;
  }

  /** Bytes of the job block for `threads` threads in all (the calling thread included). */
  static blockBytes(threads: number): number {
    return ARGS_AT + 8 * MAX_ARGS * MAX_PARTS_PER_THREAD * threads;
  }

  /** The most threads a pool takes. */
  static readonly MAX_THREADS = MAX_THREADS;

  /**
   * Starts `threads - 1` workers serving the kernels `names` (exports of `module`) through the zeroed
   * block at `base` ({@link ThreadPool.blockBytes} bytes); rejects when one fails to start. With
   * `onFailure`, starts none yet: the jobs that split start them, one per job (in Deno a `new Worker` blocks
   * the calling thread 20-40 ms, which a backend that never splits a kernel should not pay, and one call
   * should not pay more than once), the threads running take every part until they are ready, and a worker
   * that fails to start is reported there.
   * `idleMs`: how long a worker waits for the next job before it leaves (Infinity: never); by default
   * {@link WORKER_IDLE_MS}, doubled up to {@link WORKER_IDLE_MAX_MS} each time a job finds workers that
   * left idle, or never where the spawner's threads never keep the process alive.
   */
  static async start(
    spawner: Spawner,
    module: WebAssembly.Module,
    mem: WebAssembly.Memory,
    base: number,
    names: readonly string[],
    threads: number,
    onFailure?: (message: string) => void,
    idleMs?: number,
  ): Promise<ThreadPool> {
    const pool = new ThreadPool(spawner, module, mem, base, names, threads);
    if (idleMs !== undefined) pool.#setIdle(idleMs, false);
    else pool.#setIdle(spawner.unrefs ? Infinity : WORKER_IDLE_MS, !spawner.unrefs);
    if (onFailure) {
      pool.#onFailure = onFailure;
      // "gone": run() starts them when a job has parts for them
      for (let id = 1; id < threads; id++) Atomics.store(pool.#i32(), STATE + id, 1);
      return pool;
    }
    try {
      for (let id = 1; id < threads; id++) {
        const h = pool.#spawn(id);
        await new Promise<void>((resolve, reject) => {
          h.listen((data) => {
            if (data?.ready) resolve();
            else reject(new Error(`createWasmBackend: a worker thread failed to start: ${data?.error}`));
          }, (text) => reject(new Error(`createWasmBackend: a worker thread failed to start: ${text}`)));
        });
        h.listen(null, null);
      }
    } catch (err) {
      pool.stop();
      throw err;
    }
    return pool;
  }

  /**
   * Whether any worker is started or starting (not "gone"). A memory-bound job (packing) splits only
   * then: starting a worker for it (20-40 ms blocking in Deno) costs more than the split saves.
   */
  get live(): boolean {
    const i32 = this.#i32();
    for (let id = 1; id < this.#parts; id++) if (Atomics.load(i32, STATE + id) !== 1) return true;
    return false;
  }

  #i32(): Int32Array {
    return new Int32Array(this.#mem.buffer, this.#base, STATE + MAX_THREADS);
  }

  /** How long a worker waits for the next job before it leaves, in ms (Infinity: never); see {@link start}. */
  get idleMs(): number {
    return this.#idleMs;
  }

  #setIdle(ms: number, grows: boolean): void {
    this.#idleMs = ms;
    this.#idleGrows = grows;
    // whole ms; above 2^31 - 1 (24 days) as none
    Atomics.store(this.#i32(), IDLE, ms >= 2 ** 31 - 1 ? -1 : Math.ceil(ms));
  }

  // Starts worker `id` (state "starting" until it runs).
  #spawn(id: number): ThreadHandle {
    Atomics.store(this.#i32(), STATE + id, 3);
    this.#started[id] = true;
    this.#handles[id - 1]?.terminate();
    const h = this.#spawner(WORKER_SOURCE);
    const onFailure = this.#onFailure;
    if (onFailure) {
      // a worker that cannot start stays "starting" (the other threads take its parts): say so once
      const failed = (text: string) => {
        h.listen(null, null);
        onFailure(`a worker thread failed to start: ${text}`);
      };
      h.listen((data) => data?.ready ? h.listen(null, null) : failed(String(data?.error)), failed);
    } else h.listen(null, null);
    h.postMessage({
      module: this.#module,
      memory: this.#mem,
      base: this.#base,
      id,
      names: this.#names,
      parts: this.#parts,
      seen: this.#seq,
    });
    this.#handles[id - 1] = h;
    return h;
  }

  /**
   * Runs kernel `name` once per argument list in `parts` (at most MAX_PARTS_PER_THREAD times the pool's
   * thread count) on whichever threads are free, this one included (`here` runs a part on it): a thread
   * that finishes its part takes the next, so parts finer than one per thread even out threads that run at
   * different speeds. Argument `wsArg` (when >= 0) is replaced by the running thread's workspace, thread
   * t's being `ws[t]` (one per thread, not per part). Returns when every part has
   * finished; then throws the first failure, naming the kernel. `backOff` false: always share the parts
   * out, even while the workers are late.
   */
  run(
    name: string,
    parts: number[][],
    wsArg: number,
    ws: number[],
    here: (args: number[]) => void,
    backOff = true,
  ): void {
    const n = parts.length, i32 = this.#i32();
    if (this.#alone > 0 && backOff) {
      // backing off (see below): every part here, in order; the same bits as on any thread
      this.#alone--;
      this.#total += n;
      this.#aloneJobs++;
      let err: unknown;
      for (const part of parts) {
        const args = part.slice();
        if (wsArg >= 0) args[wsArg] = ws[0];
        try {
          here(args);
        } catch (e) {
          err ??= e;
        }
      }
      if (err !== undefined) {
        throw new Error(`wasm backend: a thread failed in ${name}: ${(err as Error)?.message ?? err}`, {
          cause: err,
        });
      }
      return;
    }
    const op = this.#names.indexOf(name);
    if (n > this.#parts * MAX_PARTS_PER_THREAD) {
      throw new Error(`wasm backend: a job takes at most ${MAX_PARTS_PER_THREAD} parts per thread`);
    }
    const argv = new Float64Array(
      this.#mem.buffer,
      this.#base + ARGS_AT,
      MAX_ARGS * MAX_PARTS_PER_THREAD * this.#parts,
    );
    const wsv = new Float64Array(this.#mem.buffer, this.#base + WS_AT, MAX_THREADS);
    for (let p = 0; p < n; p++) {
      if (parts[p].length > MAX_ARGS) {
        throw new Error(`wasm backend: a job takes at most ${MAX_ARGS} arguments`);
      }
      argv.set(parts[p], p * MAX_ARGS);
    }
    const threads = Math.min(n, this.#parts);
    if (wsArg >= 0) { for (let t = 0; t < threads; t++) wsv[t] = ws[t]; }
    // workers not running (gone after an idle exit, or never started): start one per job, which takes
    // parts of later jobs (in Deno each `new Worker` blocks this thread 20-40 ms: one per call, not all of
    // them in one, and a job on the calling thread meanwhile loses little, as a Worker starting takes no
    // parts yet). Workers that left idle mean the program paused longer than the idle limit and came back:
    // by default, wait twice as long from now on (once per such pause).
    // (the jobs that restart the workers after one pause follow each other within milliseconds: the limit
    // grows at most once per idle limit's time)
    let gone = 1;
    while (gone < threads && Atomics.load(i32, STATE + gone) !== 1) gone++;
    if (gone === threads) gone = 0;
    if (gone > 0) {
      if (this.#started[gone]) {
        this.#restarts++;
        const now = performance.now();
        if (this.#idleGrows && this.#idleMs < WORKER_IDLE_MAX_MS && now - this.#grownAt > this.#idleMs) {
          this.#setIdle(Math.min(WORKER_IDLE_MAX_MS, 2 * this.#idleMs), true);
          this.#grownAt = now;
        }
      }
      this.#spawn(gone);
    }
    this.#total += n;
    i32[NPARTS] = n;
    i32[OP] = op;
    i32[NARGS] = parts[0].length;
    i32[WSARG] = wsArg;
    i32[STATUS] = 0;
    i32[DONE] = 0;
    const seq = ++this.#seq;
    const tag = (seq & 0xffff) << 16;
    Atomics.store(i32, CLAIM, tag);
    Atomics.store(i32, SEQ, seq);
    Atomics.notify(i32, SEQ);
    let err: unknown;
    const t0 = performance.now();
    for (;;) {
      const w = Atomics.load(i32, CLAIM);
      const p = w & 0xffff;
      if ((w & ~0xffff) !== tag || p >= n) break;
      if (Atomics.compareExchange(i32, CLAIM, w, w + 1) !== w) continue;
      const args = parts[p].slice();
      if (wsArg >= 0) args[wsArg] = ws[0];
      try {
        here(args);
      } catch (e) {
        err ??= e;
      }
      Atomics.add(i32, DONE, 1);
    }
    const t1 = performance.now(), until = t1 + CALLER_SPIN_MS;
    for (;;) {
      const d = Atomics.load(i32, DONE);
      if (d >= n) break;
      const now = performance.now();
      if (now < until) continue;
      Atomics.wait(i32, DONE, d, 1000);
      if (now - t1 > JOB_TIMEOUT_MS) {
        throw new Error(`wasm backend: the threads did not finish ${name} within ${JOB_TIMEOUT_MS} ms`);
      }
    }
    const t2 = performance.now();
    this.#jobs++;
    this.#workedMs += t1 - t0;
    this.#waitedMs += t2 - t1;
    if (backOff) this.#pace(t1 - t0, t2 - t1);
    // the same message whichever thread ran the failing part
    if (err !== undefined) {
      throw new Error(`wasm backend: a thread failed in ${name}: ${(err as Error)?.message ?? err}`, {
        cause: err,
      });
    }
    if (Atomics.load(i32, STATUS) !== 0) {
      const bytes = new Uint8Array(this.#mem.buffer, this.#base + ERR_AT, ERR_BYTES);
      const end = bytes.indexOf(0);
      const msg = new TextDecoder().decode(bytes.slice(0, end < 0 ? ERR_BYTES : end));
      throw new Error(`wasm backend: a thread failed in ${name}: ${msg}`);
    }
  }

  // Backing off when the cores are taken (more runnable threads than cores: other processes, or more
  // threads than cores): a worker that is descheduled while it holds a part makes this thread wait for it,
  // far longer than the part takes. After LATE_JOBS jobs in a row in which this thread waited longer for
  // the workers than it worked itself (plus LATE_MS), the next #backoff jobs run here alone (16, doubling
  // while the lateness lasts, at most 1024), then the threads are tried again. An idle machine never
  // backs off: a polling worker is at most microseconds late, a sleeping one tens of microseconds once.
  #late = 0;
  #alone = 0;
  #backoff = BACKOFF_MIN;
  #aloneJobs = 0;
  #jobs = 0;
  #workedMs = 0;
  #waitedMs = 0;
  #restarts = 0;

  #pace(worked: number, waited: number): void {
    if (waited <= worked + LATE_MS) {
      this.#late = 0;
      this.#backoff = Math.max(BACKOFF_MIN, this.#backoff >> 1);
      return;
    }
    if (++this.#late < LATE_JOBS) return;
    this.#late = 0;
    this.#alone = this.#backoff;
    this.#backoff = Math.min(BACKOFF_MAX, this.#backoff * 2);
  }

  /**
   * Parts of jobs run so far, how many of them ran on the workers, and how many jobs ran on the calling
   * thread alone because the workers were late (backing off on a machine whose cores are taken); of the
   * jobs shared out, how many, the calling thread's milliseconds running parts in them, and its
   * milliseconds waiting for the workers' last parts after it found none left to take (imbalance between
   * the threads, a worker's wake-up, or a worker off its core).
   */
  get stats(): ThreadStats {
    return {
      parts: this.#total,
      onWorkers: Atomics.load(this.#i32(), BY_WORKERS),
      aloneJobs: this.#aloneJobs,
      jobs: this.#jobs,
      workedMs: this.#workedMs,
      waitedMs: this.#waitedMs,
      restarts: this.#restarts,
    };
  }

  /** Stops every worker at once. */
  stop(): void {
    const i32 = this.#i32();
    Atomics.store(i32, QUIT, 1);
    Atomics.store(i32, SEQ, ++this.#seq);
    Atomics.notify(i32, SEQ);
    for (const h of this.#handles) h?.terminate();
    this.#handles = [];
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
