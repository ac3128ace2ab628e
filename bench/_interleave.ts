/**
 * Interleaved timing for a machine shared with other work: every case runs
 * once per round, in an order that rotates from round to round, so a burst of
 * outside load hits all cases alike; a case's figure is its median over the
 * rounds. Ratios of medians taken in one run are what the benches report.
 *
 * @module
 */
import process from "node:process";

/** One timed thing. */
export interface Case {
  /** Unique name (the key of the result). */
  name: string;
  /** The work of one sample. */
  fn: () => void;
  /** Floating-point operations of one call of `fn` (for GFLOP/s), when meaningful. */
  flops?: number;
  /** Calls of `fn` per sample (1); a sample's time is their mean. */
  reps?: number;
}

/** The samples of one case, in milliseconds per call of `fn`. */
export interface Timing {
  samples: number[];
  median: number;
  min: number;
}

/** Options of {@link interleave}. */
export interface InterleaveOptions {
  /** Rounds (samples per case), 11. */
  rounds?: number;
  /** Untimed calls of every case before the first round (2). */
  warmup?: number;
  /** Called after each round with its number (for progress output). */
  onRound?: (round: number) => void;
  /** The clock in milliseconds (`performance.now` unless given; see {@link threadCpuClock}). */
  clock?: () => number;
}

/**
 * This process's CPU time in milliseconds (`process.cpuUsage()`, user + system), or undefined where it
 * cannot be read. On a machine shared with other processes, CPU time leaves out the time the process
 * waited for a core, so one-thread kernels time more steadily than by the wall clock (caches still
 * suffer from the neighbours). Only for one-thread work: worker threads' time adds up in it.
 */
export function threadCpuClock(): (() => number) | undefined {
  try {
    const read = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    return Number.isFinite(read()) ? read : undefined;
  } catch {
    return undefined;
  }
}

/** The median of a list of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Calls per sample so that one sample lasts about `ms` milliseconds (at least 1). */
export function repsFor(fn: () => void, ms = 20): number {
  fn();
  const t0 = performance.now();
  fn();
  const dt = performance.now() - t0;
  return Math.max(1, Math.min(1000, Math.round(ms / Math.max(dt, 1e-3))));
}

/** Times the cases interleaved; returns each case's samples, median and minimum (ms per call). */
export function interleave(cases: readonly Case[], opts: InterleaveOptions = {}): Map<string, Timing> {
  const rounds = opts.rounds ?? 11, warmup = opts.warmup ?? 2, now = opts.clock ?? (() => performance.now());
  for (let w = 0; w < warmup; w++) for (const c of cases) c.fn();
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + r) % cases.length];
      const reps = c.reps ?? 1;
      const t0 = now();
      for (let k = 0; k < reps; k++) c.fn();
      samples.get(c.name)!.push((now() - t0) / reps);
    }
    opts.onRound?.(r);
  }
  const out = new Map<string, Timing>();
  for (const [name, s] of samples) out.set(name, { samples: s, median: median(s), min: Math.min(...s) });
  return out;
}
