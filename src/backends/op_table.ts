/**
 * The one table of elementwise operations. Every reader takes its names and
 * numeric codes from here: the Backend contract's types (`types.ts`), the WASM
 * and WebGPU adapters, the AssemblyScript and WGSL builds (which write the codes
 * into their generated outputs as named constants), and the tests' op lists.
 *
 * Adding a unary op means: a name here, its math in each backend (js.ts,
 * the asm elementwise kernels, wgsl/ops.wgsl), a reference value in the tests.
 * Its gradient needs nothing else: `unaryGrad` is generic.
 *
 * @module
 */

/**
 * Elementwise unary operations, in code order (code = index).
 *
 * - `gelu`: the exact GELU `x·Φ(x) = 0.5·x·(1 + erf(x/√2))`, PyTorch's `nn.GELU()` default.
 * - `geluTanh`: the tanh approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`,
 *   PyTorch's `nn.GELU(approximate="tanh")` (GPT-2's "gelu_new").
 * - `sqrt`: the square root (its gradient is infinite at 0, as in PyTorch).
 *
 * @example
 * ```ts
 * import { UNARY_OPS } from "@pixelfly/pixelfly";
 * console.log(UNARY_OPS.includes("relu")); // true
 * ```
 */
export const UNARY_OPS = [
  "relu",
  "gelu",
  "sigmoid",
  "tanh",
  "exp",
  "log",
  "neg",
  "geluTanh",
  "sqrt",
] as const;

/**
 * Elementwise binary operations, in code order.
 *
 * @example
 * ```ts
 * import { BINARY_OPS } from "@pixelfly/pixelfly";
 * console.log(BINARY_OPS.join(" ")); // "add sub mul div"
 * ```
 */
export const BINARY_OPS = ["add", "sub", "mul", "div"] as const;

/**
 * How the second operand of a binary op is broadcast over an (M, N) first
 * operand, in code order: `full` (M, N), `row` (N) repeated for every row,
 * `col` (M) repeated along every row, `scalar` (1).
 *
 * @example
 * ```ts
 * import { BROADCASTS } from "@pixelfly/pixelfly";
 * console.log(BROADCASTS.length); // 4
 * ```
 */
export const BROADCASTS = ["full", "row", "col", "scalar"] as const;

/** Elementwise unary operations (see {@link UNARY_OPS}). */
export type UnaryOp = (typeof UNARY_OPS)[number];
/** Elementwise binary operations. */
export type BinaryOp = (typeof BINARY_OPS)[number];
/** Broadcast of a binary op's second operand (see {@link BROADCASTS}). */
export type Broadcast = (typeof BROADCASTS)[number];

function codes<T extends string>(names: readonly T[]): Readonly<Record<T, number>> {
  return Object.freeze(Object.fromEntries(names.map((n, i) => [n, i]))) as Record<T, number>;
}

/** Numeric code of each unary op (its index in {@link UNARY_OPS}). */
export const UNARY_CODE: Readonly<Record<UnaryOp, number>> = codes(UNARY_OPS);
/** Numeric code of each binary op. */
export const BINARY_CODE: Readonly<Record<BinaryOp, number>> = codes(BINARY_OPS);
/** Numeric code of each broadcast. */
export const BROADCAST_CODE: Readonly<Record<Broadcast, number>> = codes(BROADCASTS);

/** `geluTanh` -> `GELU_TANH`. */
function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Every code as `[constant name, value]`: `UNARY_GELU`, `BINARY_ADD`, `BCAST_ROW`, ... */
export function opConstants(): [string, number][] {
  const out: [string, number][] = [];
  UNARY_OPS.forEach((n, i) => out.push([`UNARY_${upperSnake(n)}`, i]));
  BINARY_OPS.forEach((n, i) => out.push([`BINARY_${upperSnake(n)}`, i]));
  BROADCASTS.forEach((n, i) => out.push([`BCAST_${upperSnake(n)}`, i]));
  return out;
}

/**
 * The codes as source declarations for a build: WGSL (`const UNARY_GELU: u32 = 1u;`) or
 * AssemblyScript (`export const UNARY_GELU: i32 = 1;`).
 */
export function opConstantSource(lang: "wgsl" | "asc"): string {
  return opConstants()
    .map(([k, v]) => lang === "wgsl" ? `const ${k}: u32 = ${v}u;\n` : `export const ${k}: i32 = ${v};\n`)
    .join("");
}
