/**
 * Tile choices of the WebGPU kernels (private to src/backends). A choice is a
 * set of WGSL constants: they, and only they, go into the pipeline cache key;
 * sizes travel in uniforms.
 *
 * @module
 */

/** Compile-time constants prepended to a shader (`const NAME: u32 = 4u;`). */
export type Consts = Record<string, number | boolean>;

/** The two kernel families. */
export type Family = "register" | "workgroup";

/** WGSL declarations of the constants, in a stable order (also the cache key). */
export function constPrelude(c: Consts): string {
  return Object.keys(c).sort().map((k) => {
    const v = c[k];
    return typeof v === "boolean" ? `const ${k}: bool = ${v};\n` : `const ${k}: u32 = ${v}u;\n`;
  }).join("");
}

/** Largest of `options` that divides n (options in decreasing order, ending in 1). */
function largestDivisor(n: number, options: number[]): number {
  for (const o of options) if (n % o === 0) return o;
  return 1;
}

/** Tiles of the dense product and sdd. `big` is for hardware adapters. */
export function gemmTiles(family: Family, big: boolean, sddBlock?: number): Consts {
  if (family === "register") return { TM: 4, TN: 4, WGX: 8, WGY: 8 };
  if (sddBlock !== undefined) {
    // one output block is covered by ceil(b / 32) x ceil(b / 32) (or 64) tiles
    const t = sddBlock % 64 === 0 && big ? 64 : 32;
    return { BM: t, BN: t, BK: big ? 16 : 4, TM: 4, TN: 4, WGX: t / 4, WGY: t / 4 };
  }
  return big
    ? { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, WGX: 16, WGY: 16 }
    : { BM: 32, BN: 32, BK: 4, TM: 4, TN: 4, WGX: 8, WGY: 8 };
}

/** Tiles of dds for block size b. The tile never straddles two output blocks. */
export function ddsTiles(family: Family, big: boolean, b: number): Consts {
  if (family === "register") {
    const TN = largestDivisor(b, [4, 2, 1]);
    return { TM: 4, TN, WGX: 8, WGY: 8 };
  }
  const BN = b <= 64 ? b : largestDivisor(b, [64, 32, 16, 8, 4, 2, 1]);
  const TN = largestDivisor(BN, [4, 2, 1]);
  const WGX = BN / TN;
  const TM = big ? 8 : 4;
  const WGY = Math.max(1, Math.min(16, Math.floor(256 / WGX)));
  // software adapters compile unrolled barrier loops slowly: keep their K step short
  const BK = largestDivisor(b, big ? [16, 8, 4, 2, 1] : [4, 2, 1]);
  return { BM: WGY * TM, BN, BK, TM, TN, WGX, WGY };
}
