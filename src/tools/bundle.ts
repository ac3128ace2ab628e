/**
 * `deno task bundle`: build the whole module (`mod.ts`) into one ES module,
 * `dist/pixelfly.js`, for browsers, Node and other runtimes. The compiled
 * WASM kernels (base64 in `asm/generated/`) and the WGSL shaders (strings in
 * `wgsl/generated/`) are already in the module graph, so the bundle is the
 * only file to ship: it fetches nothing and touches no `Deno` global at import
 * time. `saveFile`/`loadFile` import `node:fs/promises` when called on Node
 * (kept external); IDX file reading still needs Deno.
 *
 * Run: `deno run --allow-read --allow-write --allow-env --allow-run src/tools/bundle.ts [--outfile PATH] [--minify]`
 *
 * Not exported from `mod.ts`.
 *
 * @module
 */
import * as esbuild from "esbuild";

/** Options of {@link bundle}. */
export interface BundleOptions {
  /** The output file (`dist/pixelfly.js` under the repository root). */
  outfile?: string;
  /** Minify identifiers, whitespace and syntax (false). */
  minify?: boolean;
  /** Keep esbuild's service running after the build (false: stopped, as tests need). */
  keepService?: boolean;
}

/** What {@link bundle} wrote. */
export interface BundleResult {
  /** Absolute path of the bundle. */
  outfile: string;
  /** Its size in bytes. */
  bytes: number;
  /** esbuild's warnings, formatted. */
  warnings: string[];
}

/** The repository root (two folders above this file). */
export const ROOT: string = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/**
 * Build `mod.ts` into one ESM file with esbuild (target es2022, so no
 * `Uint8Array.fromBase64` that Node 20 lacks). Needs --allow-read,
 * --allow-write, --allow-env and --allow-run (esbuild is a native binary).
 *
 * @example
 * ```ts ignore
 * import { bundle } from "./bundle.ts";
 * const { outfile, bytes } = await bundle({ outfile: "/tmp/pixelfly.js" });
 * console.log(outfile, bytes);
 * ```
 */
export async function bundle(opts: BundleOptions = {}): Promise<BundleResult> {
  const outfile = opts.outfile ?? `${ROOT}dist/pixelfly.js`;
  try {
    const result = await esbuild.build({
      entryPoints: [`${ROOT}mod.ts`],
      outfile,
      bundle: true,
      format: "esm",
      platform: "neutral",
      // saveFile/loadFile import node:fs/promises on Node only when called (src/io/_fs.ts)
      external: ["node:*"],
      target: "es2022",
      minify: opts.minify ?? false,
      sourcemap: false,
      legalComments: "none",
      logLevel: "silent",
      banner: {
        js: "// pixelfly: one-file ES module bundle built by src/tools/bundle.ts from mod.ts with esbuild.",
      },
    });
    const warnings = result.warnings.length
      ? await esbuild.formatMessages(result.warnings, { kind: "warning" })
      : [];
    const { size } = await Deno.stat(outfile);
    return { outfile, bytes: size, warnings };
  } finally {
    if (!opts.keepService) await esbuild.stop();
  }
}

function parseArgs(args: string[]): BundleOptions {
  const opts: BundleOptions = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--minify") opts.minify = true;
    else if (a === "--outfile") {
      const v = args[++i];
      if (!v) throw new RangeError("bundle: --outfile needs a path");
      opts.outfile = v;
    } else if (a.startsWith("--outfile=")) opts.outfile = a.slice("--outfile=".length);
    else if (a === "--help" || a === "-h") {
      console.log("usage: deno task bundle [--outfile PATH] [--minify]");
      Deno.exit(0);
    } else throw new RangeError(`bundle: unknown argument "${a}"; expected --outfile PATH or --minify`);
  }
  return opts;
}

if (import.meta.main) {
  const { outfile, bytes, warnings } = await bundle(parseArgs(Deno.args));
  for (const w of warnings) console.warn(w);
  console.log(`bundle: wrote ${outfile} (${(bytes / 1024).toFixed(1)} KiB)`);
}
