/**
 * The long-context attention shapes of the attention benches: N = 8 (batch x
 * heads), dh = 64, L = 512..4096, and the butterfly + local + global layout
 * (density about 1/8 at L = 2048) that sparse attention keeps.
 *
 * @module
 */
import type { BlockMask } from "../src/masks/block_mask.ts";
import { attentionMask } from "../src/masks/sequence.ts";

/** Batch x heads. */
export const N = 8;
/** Head dimension. */
export const DH = 64;
/** Sequence lengths. */
export const LENGTHS = [512, 1024, 2048, 4096];
/** Tile edge of the sparse layouts. */
export const BLOCK = 32;

/** Butterfly (3 factors) + local band (1 tile each side) + 1 global tile, over L / 32 tiles (d = 0.107 at 2048). */
export function benchMask(L: number): BlockMask {
  return attentionMask(L, { block: BLOCK, nFactors: 3, local: 2, global: 1 });
}
