/**
 * A best-fit allocator with coalescing over a byte range that only grows
 * (WASM linear memory). Private to the wasm backend.
 *
 * @module
 */

/** Alignment of every allocation, in bytes (a cache line). */
export const ALIGN = 64;

/**
 * Best-fit free list over `[base, top)`; `grow(bytes)` must make the memory at least that large (or throw,
 * leaving the allocator as it was).
 */
export class Allocator {
  #free: { off: number; size: number }[] = [];
  #top: number;
  #grow: (bytes: number) => void;

  constructor(base: number, grow: (bytes: number) => void) {
    this.#top = Math.ceil(base / ALIGN) * ALIGN;
    this.#grow = grow;
  }

  /** One past the highest byte handed out. */
  get top(): number {
    return this.#top;
  }

  /** Bytes in free holes below top, and the largest such hole. */
  get freeBelowTop(): { total: number; largest: number } {
    let total = 0, largest = 0;
    for (const f of this.#free) {
      total += f.size;
      largest = Math.max(largest, f.size);
    }
    return { total, largest };
  }

  /** The rounded size actually reserved for a request of `bytes`. */
  static roundUp(bytes: number): number {
    return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  }

  /** Reserve `bytes` (rounded up to ALIGN); returns the byte offset. */
  alloc(bytes: number): number {
    const need = Allocator.roundUp(bytes);
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const f = this.#free[i];
      if (f.size >= need && (best < 0 || f.size < this.#free[best].size)) {
        best = i;
        if (f.size === need) break;
      }
    }
    if (best >= 0) {
      const f = this.#free[best];
      const off = f.off;
      if (f.size === need) this.#free.splice(best, 1);
      else {
        f.off += need;
        f.size -= need;
      }
      return off;
    }
    const off = this.#top;
    this.#grow(off + need);
    this.#top = off + need;
    return off;
  }

  /** Release a block returned by alloc with the same `bytes`. */
  free(off: number, bytes: number): void {
    const size = Allocator.roundUp(bytes);
    const list = this.#free;
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].off < off) lo = mid + 1;
      else hi = mid;
    }
    let idx = lo;
    const prev = list[idx - 1];
    if (prev !== undefined && prev.off + prev.size === off) {
      prev.size += size;
      idx--;
    } else {
      list.splice(idx, 0, { off, size });
    }
    const cur = list[idx], next = list[idx + 1];
    if (next !== undefined && cur.off + cur.size === next.off) {
      cur.size += next.size;
      list.splice(idx + 1, 1);
    }
    if (cur.off + cur.size === this.#top) {
      this.#top = cur.off;
      list.splice(idx, 1);
    }
  }
}
