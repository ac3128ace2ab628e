/**
 * `node:util`'s `parseArgs` for a bench bundled into a page (`bench/runtimes.ts`, runtime `chromium`): the
 * part the benches use (`--name value`, `--name=value` and boolean `--flag` options with defaults).
 *
 * @module
 */
interface Option {
  type: "string" | "boolean";
  default?: string | boolean;
}

/** Parses `args` against `options`; throws on an unknown option or a string option without a value. */
export function parseArgs(
  config: { args: string[]; options: Record<string, Option> },
): { values: Record<string, string | boolean> } {
  const values: Record<string, string | boolean> = {};
  for (const [k, o] of Object.entries(config.options)) if (o.default !== undefined) values[k] = o.default;
  const args = config.args;
  for (let i = 0; i < args.length; i++) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(args[i]);
    const o = m ? config.options[m[1]] : undefined;
    if (!m || !o) throw new TypeError(`parseArgs: unknown option "${args[i]}"`);
    if (o.type === "boolean") values[m[1]] = true;
    else {
      const v = m[2] ?? args[++i];
      if (v === undefined) throw new TypeError(`parseArgs: option "--${m[1]}" needs a value`);
      values[m[1]] = v;
    }
  }
  return { values };
}
