/**
 * `deno task bundle`: build the whole module (`mod.ts`) into one ES module,
 * `dist/pixelfly.js`, for browsers, Node and other runtimes. The compiled
 * WASM kernels (base64 in `asm/generated/`) and the WGSL shaders (strings in
 * `wgsl/generated/`) are already in the module graph, so the bundle is the
 * only file to ship: it fetches nothing and touches no `Deno` global at import
 * time. `saveFile`/`loadFile` import `node:fs/promises` when called on Node
 * (kept external); IDX file reading still needs Deno.
 *
 * With `dist/pixelfly.d.ts` and `dist/types/` beside it: the module's type
 * declarations, emitted by TypeScript's tsc (npm:typescript, pinned).
 *
 * Run: `deno run --allow-read --allow-write --allow-env --allow-run src/tools/bundle.ts [--outfile PATH] [--minify] [--no-declarations]`
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
  /**
   * Also write type declarations beside the bundle (`pixelfly.d.ts` and a
   * `types/` tree, emitted by TypeScript's tsc from npm) so TypeScript users
   * of the bundle get the module's types (false; `deno task bundle` turns it on).
   */
  declarations?: boolean;
}

/** What {@link bundle} wrote. */
export interface BundleResult {
  /** Absolute path of the bundle. */
  outfile: string;
  /** Its size in bytes. */
  bytes: number;
  /** esbuild's warnings, formatted. */
  warnings: string[];
  /** The declaration entry (`pixelfly.d.ts` beside the bundle) when asked for. */
  declarations?: string;
}

/** The TypeScript compiler that emits the declarations (pinned). */
export const TSC = "npm:typescript@5.9.3/tsc";

/**
 * Declarations tsc needs beyond Deno's (`deno types`) to check the module:
 * the web timer global and the few `node:fs/promises` calls of src/io/_fs.ts.
 */
const TSC_SHIMS = `declare function setTimeout(fn: () => void, ms?: number): number;
declare module "node:fs/promises" {
  interface FileHandle {
    write(data: Uint8Array, offset: number): Promise<{ bytesWritten: number }>;
    datasync(): Promise<void>;
    close(): Promise<void>;
  }
  export function open(path: string, flags: string): Promise<FileHandle>;
  export function readFile(path: string): Promise<Uint8Array>;
  export function rename(from: string, to: string): Promise<void>;
  export function rm(path: string, opts: { force: boolean }): Promise<void>;
}
`;

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const res = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(res.stdout), err = new TextDecoder().decode(res.stderr);
  if (!res.success) throw new Error(`bundle: ${cmd} ${args.join(" ")} failed (${res.code}):\n${out}${err}`);
  return out;
}

/**
 * Emit the declarations of mod.ts with tsc into `<dir>/types/`, rewrite their
 * relative `.ts` specifiers to `.js` (which every TypeScript resolution mode
 * maps to the `.d.ts` beside it), add empty stand-ins for the WebGPU types the
 * public API names (they merge with `@webgpu/types` where a project has it),
 * and write `<dir>/pixelfly.d.ts` for the bundle.
 */
async function emitDeclarations(outfile: string): Promise<string> {
  const dir = outfile.replace(/[^/]*$/, ""), base = outfile.slice(dir.length).replace(/\.m?js$/, "");
  const types = `${dir}types`;
  await Deno.remove(types, { recursive: true }).catch(() => {});
  const work = await Deno.makeTempDir({ prefix: "pixelfly_dts_" });
  try {
    await Deno.writeTextFile(`${work}/deno.d.ts`, await run(Deno.execPath(), ["types"]));
    await Deno.writeTextFile(`${work}/shims.d.ts`, TSC_SHIMS);
    const config = {
      compilerOptions: {
        declaration: true,
        emitDeclarationOnly: true,
        allowImportingTsExtensions: true,
        target: "es2022",
        module: "esnext",
        moduleResolution: "bundler",
        lib: ["es2023"],
        types: [],
        strict: true,
        skipLibCheck: true,
        rootDir: ROOT,
        outDir: types,
      },
      files: [`${work}/deno.d.ts`, `${work}/shims.d.ts`, `${ROOT}mod.ts`],
    };
    await Deno.writeTextFile(`${work}/tsconfig.json`, JSON.stringify(config));
    await run(Deno.execPath(), ["run", "--allow-all", TSC, "-p", `${work}/tsconfig.json`], ROOT);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  const gpuNames = new Set<string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const path = `${d}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".d.ts")) {
        const text = (await Deno.readTextFile(path))
          .replace(/(["'])(\.{1,2}\/[^"'\n]*?)\.ts\1/g, "$1$2.js$1");
        for (const m of text.matchAll(/\bGPU[A-Z]\w*/g)) gpuNames.add(m[0]);
        await Deno.writeTextFile(path, text);
      }
    }
  };
  await walk(types);
  await Deno.writeTextFile(
    `${types}/_webgpu.d.ts`,
    "// Generated by src/tools/bundle.ts: do not edit\n" +
      "// Stand-ins for the WebGPU types pixelfly's API names; they merge with @webgpu/types when present.\n" +
      `declare global {\n${
        [...gpuNames].sort().map((n) => `  interface ${n} {}`).join("\n")
      }\n}\nexport {};\n`,
  );
  const entry = `${dir}${base}.d.ts`;
  await Deno.writeTextFile(
    entry,
    "// Generated by src/tools/bundle.ts from mod.ts (tsc declarations in types/): do not edit\n" +
      '/// <reference path="./types/_webgpu.d.ts" />\n' +
      'export * from "./types/mod.js";\n',
  );
  return entry;
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
    const declarations = opts.declarations ? await emitDeclarations(outfile) : undefined;
    return { outfile, bytes: size, warnings, declarations };
  } finally {
    if (!opts.keepService) await esbuild.stop();
  }
}

function parseArgs(args: string[]): BundleOptions {
  const opts: BundleOptions = { declarations: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--minify") opts.minify = true;
    else if (a === "--no-declarations") opts.declarations = false;
    else if (a === "--outfile") {
      const v = args[++i];
      if (!v) throw new RangeError("bundle: --outfile needs a path");
      opts.outfile = v;
    } else if (a.startsWith("--outfile=")) opts.outfile = a.slice("--outfile=".length);
    else if (a === "--help" || a === "-h") {
      console.log("usage: deno task bundle [--outfile PATH] [--minify] [--no-declarations]");
      Deno.exit(0);
    } else throw new RangeError(`bundle: unknown argument "${a}"; expected --outfile PATH or --minify`);
  }
  return opts;
}

if (import.meta.main) {
  const { outfile, bytes, warnings, declarations } = await bundle(parseArgs(Deno.args));
  for (const w of warnings) console.warn(w);
  console.log(
    `bundle: wrote ${outfile} (${(bytes / 1024).toFixed(1)} KiB)${
      declarations ? ` and ${declarations}` : ""
    }`,
  );
}
