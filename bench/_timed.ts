/**
 * Per-kernel timing of whole steps for the benches: a Proxy over a backend that times each backend method
 * call (the kernels) while switched on, by name or by name and sizes.
 *
 * @module
 */
import type { Backend } from "../src/backends/types.ts";

/** A kernel's name with its sizes (gemm MxNxK, dds/sdd by layout, elementwise by size). */
export function shapeKey(name: string, args: unknown[]): string {
  const p = args.at(-1) as Record<string, unknown> | undefined;
  if (name === "gemm" && p) {
    return `gemm ${p.M}x${p.N}x${p.K}${p.transA ? " tA" : ""}${p.transB ? " tB" : ""}`;
  }
  if (name === "dds" && p) {
    const l = p.layout as { nnz: number; block: number };
    return `dds M${p.M} nnz${l.nnz} b${l.block}${p.transW ? " tW" : ""}`;
  }
  if (name === "sdd" && p) return `sdd K${p.K} nnz${(p.layout as { nnz: number }).nnz}`;
  if (p && typeof p === "object") {
    const d = p as { size?: number; M?: number; N?: number; bcast?: string };
    return `${name} ${d.size ?? `${d.M}x${d.N}`}${d.bcast ? " " + d.bcast : ""}`;
  }
  return name;
}

/** Times every backend method call (the kernels) while `on` is set. */
export class Timed {
  /** Time calls now. */
  on = false;
  /** The clock, in ms. */
  clock: () => number = () => performance.now();
  /** Key the totals by {@link shapeKey} instead of the method name. */
  byShape = false;
  /** Milliseconds and calls per key since the last clear. */
  readonly totals = new Map<string, { ms: number; calls: number }>();
  /** The timed backend: make the model's tensors on it. */
  readonly backend: Backend;
  /** Wraps `be`. */
  constructor(be: Backend) {
    this.backend = new Proxy(be, {
      get: (target, key) => {
        const v = Reflect.get(target, key, target);
        if (typeof v !== "function" || key === "constructor") return v;
        return (...args: unknown[]) => {
          if (!this.on) return v.apply(target, args);
          const t0 = this.clock();
          try {
            return v.apply(target, args);
          } finally {
            const name = this.byShape ? shapeKey(String(key), args) : String(key);
            const e = this.totals.get(name) ?? { ms: 0, calls: 0 };
            e.ms += this.clock() - t0;
            e.calls++;
            this.totals.set(name, e);
          }
        };
      },
    });
  }
  /** The sum of every total, in ms. */
  kernelMs(): number {
    let s = 0;
    for (const e of this.totals.values()) s += e.ms;
    return s;
  }
}
