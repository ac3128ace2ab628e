/**
 * `node:process` for a bench bundled into a page (`bench/runtimes.ts`, runtime `chromium`): the arguments
 * the page sets in `globalThis.benchArgs`, stdout as console output, and no CPU clock (`cpuUsage` throws, so
 * `threadCpuClock()` gives undefined and the benches time by the wall clock).
 *
 * @module
 */
const process = {
  get argv(): string[] {
    return ["page", "bench", ...((globalThis as { benchArgs?: string[] }).benchArgs ?? [])];
  },
  stdout: { write: (s: string): boolean => (console.log(s), true) },
  cpuUsage(): never {
    throw new Error("process.cpuUsage: no CPU clock in a page");
  },
  versions: {} as Record<string, string>,
};
export default process;
