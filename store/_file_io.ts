// Positioned whole-buffer reads and writes and directory sync, which Deno.FsFile leaves to loops.

import { dirname } from "node:path";

/** Reads into `buffer` from `offset` until it is full or the file ends; returns bytes read. */
export async function readAt(
  file: Deno.FsFile,
  buffer: Uint8Array,
  offset: number,
): Promise<number> {
  await file.seek(offset, Deno.SeekMode.Start);
  return await readFully(file, buffer);
}

/** Reads into `buffer` from the current position until it is full or the file ends. */
export async function readFully(file: Deno.FsFile, buffer: Uint8Array): Promise<number> {
  let done = 0;
  while (done < buffer.length) {
    const n = await file.read(buffer.subarray(done));
    if (n === null) break;
    done += n;
  }
  return done;
}

/** Writes all of `bytes` at the current position (a write may be short). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/** Makes a create, rename or link in the directory of `path` durable (fsync of the directory). */
export async function syncDirectoryOf(path: string): Promise<void> {
  const dir = await Deno.open(dirname(path), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** A name beside `path` that does not exist yet: `<path>.<tag>-<now>`, then `-1`, `-2`, … */
export async function freshSibling(path: string, tag: string, now: number): Promise<string> {
  for (let i = 0;; i++) {
    const candidate = `${path}.${tag}-${now}${i === 0 ? "" : `-${i}`}`;
    try {
      await Deno.lstat(candidate);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return candidate;
      throw e;
    }
  }
}

/** Copies `from` to a new file `to` with `mode`, and makes the copy durable. */
export async function durableCopy(from: string, to: string, mode: number): Promise<void> {
  await Deno.copyFile(from, to);
  await Deno.chmod(to, mode);
  using copy = await Deno.open(to, { read: true, write: true });
  await copy.sync();
  await syncDirectoryOf(to);
}
