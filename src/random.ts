/**
 * Seeded randomness: every random number in pixelfly comes from here.
 *
 * @module
 */

/**
 * A small, fast, seeded generator (SplitMix32 seeding a xoshiro128**).
 *
 * @example
 * ```ts
 * import { Rng } from "@pixelfly/pixelfly";
 * const a = new Rng(7), b = new Rng(7);
 * console.log(a.uniform() === b.uniform()); // true
 * ```
 */
export class Rng {
  #s = new Uint32Array(4);
  #spare: number | undefined;

  /** A generator for this integer seed. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed must be a finite number, got ${seed}`);
    let x = (Math.trunc(seed) >>> 0) ^ 0x9e3779b9;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * (this.nextUint32() / 4294967296);
  }

  /** Standard normal (Box-Muller), times std plus mean. */
  normal(mean = 0, std = 1): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return mean + std * v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Shuffle an array in place (Fisher-Yates) and return it. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): typeof a {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

let global = new Rng(0);

/**
 * Seed the generator that layers draw their default seeds from (as
 * `torch.manual_seed`): the same program after the same call builds the
 * same initial weights.
 *
 * @example
 * ```ts
 * import { manualSeed, nextSeed } from "@pixelfly/pixelfly";
 * manualSeed(3);
 * const a = nextSeed();
 * manualSeed(3);
 * console.log(nextSeed() === a); // true
 * ```
 */
export function manualSeed(seed: number): void {
  global = new Rng(seed);
}

/** A fresh seed from the global generator (used when a layer is given no seed). */
export function nextSeed(): number {
  return global.nextUint32();
}
