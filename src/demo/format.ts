/**
 * Text formatting shared by the demos' reports: counts with a unit prefix
 * and aligned plain-text tables.
 *
 * @module
 */

/** `n` with a G/M/k prefix: `digits` decimals for G and M, `kDigits` for k. */
export function fmtCount(n: number, digits = 2, kDigits = digits): string {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(digits)} G`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(digits)} M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(kDigits)} k`
    : `${n}`;
}

/** Rows as an aligned table: the first column left-aligned, the rest right-aligned, a rule under the header. */
export function table(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r, i) => {
    const line = r.map((v, c) => (c === 0 ? v.padEnd(w[c]) : v.padStart(w[c]))).join("  ");
    return i === 0 ? `${line}\n${w.map((n) => "-".repeat(n)).join("  ")}` : line;
  }).join("\n");
}
