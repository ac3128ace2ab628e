/**
 * File access for checkpoints on Deno (its own API and permissions) and on
 * Node or Bun (`node:fs/promises`, imported only when called), with a clear
 * error elsewhere (browsers, edge functions) naming what to use instead.
 *
 * @module
 */

interface Fs {
  readFile(path: string): Promise<Uint8Array>;
  /** Write to `path + ".tmp-<random>"`, flush, rename over `path`. */
  writeAtomic(path: string, bytes: Uint8Array): Promise<void>;
}

// deno-lint-ignore no-explicit-any
const deno = (globalThis as any).Deno as typeof Deno | undefined;

function tmpName(path: string): string {
  const rnd = crypto.getRandomValues(new Uint8Array(6));
  return `${path}.tmp-${Array.from(rnd, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const denoFs: Fs = {
  readFile: (path) => deno!.readFile(path),
  async writeAtomic(path, bytes) {
    const tmp = tmpName(path);
    try {
      const file = await deno!.open(tmp, { write: true, createNew: true });
      try {
        let done = 0;
        while (done < bytes.length) done += await file.write(bytes.subarray(done));
        await file.syncData();
      } finally {
        file.close();
      }
      await deno!.rename(tmp, path);
    } catch (e) {
      await deno!.remove(tmp).catch(() => {});
      throw e;
    }
  },
};

async function nodeFs(op: string): Promise<Fs> {
  let fs: typeof import("node:fs/promises");
  try {
    fs = await import("node:fs/promises");
  } catch {
    throw new TypeError(
      `${op}: no file system here (neither Deno nor Node's node:fs/promises); use save(model) to get the ` +
        `checkpoint's bytes and load(model, bytes) to restore them, and store the bytes yourself ` +
        `(a download, IndexedDB, fetch)`,
    );
  }
  return {
    async readFile(path) {
      const b = await fs.readFile(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    async writeAtomic(path, bytes) {
      const tmp = tmpName(path);
      try {
        const file = await fs.open(tmp, "wx");
        try {
          let done = 0;
          while (done < bytes.length) done += (await file.write(bytes, done)).bytesWritten;
          await file.datasync();
        } finally {
          await file.close();
        }
        await fs.rename(tmp, path);
      } catch (e) {
        await fs.rm(tmp, { force: true }).catch(() => {});
        throw e;
      }
    },
  };
}

/** The file system of this runtime, or a TypeError naming `op` and what to use instead. */
export function fileSystem(op: string): Promise<Fs> {
  return typeof deno?.readFile === "function" ? Promise.resolve(denoFs) : nodeFs(op);
}
