/**
 * The backends every conformance and gradient test runs on, besides the js
 * reference. Each backend's issue adds its entries here.
 *
 * @module
 */
import type { Backend } from "../src/backends/types.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";

/** A backend under test: a label for messages and a factory. */
export interface BackendUnderTest {
  label: string;
  /** Resolves to the backend, or to undefined when it cannot run here (and is not required). */
  make: () => Promise<Backend | undefined>;
}

/** Every backend to test against the js reference. */
export const backendsUnderTest: BackendUnderTest[] = [];

backendsUnderTest.push(
  { label: "wasm-relaxed", make: () => createWasmBackend({ variant: "relaxed" }) },
  { label: "wasm-simd128", make: () => createWasmBackend({ variant: "simd128" }) },
);
