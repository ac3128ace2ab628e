/** The `node` on PATH, for tests that run the bundle or the kernels under Node. */

/** `node --version` (e.g. "v20.19.2"), or undefined where no node runs. */
export function nodeVersion(): string | undefined {
  try {
    const out = new Deno.Command("node", { args: ["--version"], stdout: "piped", stderr: "null" })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}
