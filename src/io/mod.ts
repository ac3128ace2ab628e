/**
 * Input and output: safetensors checkpoints and IDX data sets (Fashion-MNIST),
 * plus a seeded synthetic image task. Re-exported by the package's `mod.ts`.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./mod.ts";
 * const bytes = encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([0.5, -1]) } });
 * console.log(decodeSafetensors(bytes).tensors.w.data); // Float32Array(2) [ 0.5, -1 ]
 * ```
 *
 * @module
 */
export {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsFile,
  writeFileAtomic,
} from "./safetensors.ts";
export {
  FASHION_MNIST_DEBIAN_DIR,
  type FashionMnist,
  gunzip,
  type IdxArray,
  type IdxDtype,
  type ImageSplit,
  loadFashionMnist,
  type LoadFashionMnistOptions,
  parseIdx,
  readIdx,
  syntheticImages,
  type SyntheticImagesOptions,
} from "./idx.ts";
export { load, loadFile, save, saveFile } from "./checkpoint.ts";
