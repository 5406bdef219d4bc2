// Positioned whole-buffer reads and writes, directory creation and sync, and the naming and
// keeping of backups, which Deno.FsFile leaves to loops.

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

/**
 * Appends `from[start, end)` to `to` at its current position, through `buffer`. Throws
 * RangeError if `from` ends before `end`: the caller measured the file and it shrank.
 */
export async function copyRange(
  from: Deno.FsFile,
  to: Deno.FsFile,
  start: number,
  end: number,
  buffer: Uint8Array,
): Promise<void> {
  for (let at = start; at < end;) {
    const n = await readAt(from, buffer.subarray(0, Math.min(buffer.length, end - at)), at);
    if (n === 0) throw new RangeError(`file ends at offset ${at}, before ${end}`);
    await writeAll(to, buffer.subarray(0, n));
    at += n;
  }
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

/**
 * Creates the missing directories above `path` with `mode`, outermost first, each made
 * durable in its parent; returns the ones it created. One created meanwhile by someone else
 * is left as it is.
 */
export async function makeParents(path: string, mode: number): Promise<string[]> {
  const missing: string[] = [];
  for (let dir = dirname(path); !(await exists(dir)); dir = dirname(dir)) {
    missing.push(dir);
    if (dirname(dir) === dir) break;
  }
  const created: string[] = [];
  for (const dir of missing.reverse()) {
    try {
      await Deno.mkdir(dir, { mode });
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) continue;
      throw e;
    }
    await syncDirectoryOf(dir);
    created.push(dir);
  }
  return created;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * A name for a backup of `path` taken at `now` (ms since the epoch) that does not exist yet:
 * `<path>.2026-12-03T10-15-00.123Z.bak`. Names sort by time; the colons of ISO 8601 become
 * dashes, as they are not allowed in Windows file names and read as host names by scp. If
 * the name is taken (two backups in one millisecond), the next free millisecond's is used,
 * so the order still holds.
 */
export async function backupName(path: string, now: number): Promise<string> {
  for (let ms = now;; ms++) {
    const stamp = new Date(ms).toISOString().replaceAll(":", "-");
    const candidate = `${path}.${stamp}.bak`;
    if (!(await exists(candidate))) return candidate;
  }
}

/**
 * Gives the file at `path` the second name `backupPath` (a hard link, the default `link`),
 * or, on a file system without hard links, copies it there with `mode`; either way durably.
 */
export async function keepAs(
  path: string,
  backupPath: string,
  mode: number,
  link: (from: string, to: string) => Promise<void> = Deno.link,
): Promise<void> {
  try {
    await link(path, backupPath);
    await syncDirectoryOf(backupPath);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) throw e;
    await durableCopy(path, backupPath, mode);
  }
}

/** Copies `from` to a new file `to` with `mode`, and makes the copy durable. */
async function durableCopy(from: string, to: string, mode: number): Promise<void> {
  await Deno.copyFile(from, to);
  await Deno.chmod(to, mode);
  using copy = await Deno.open(to, { read: true, write: true });
  await copy.sync();
  await syncDirectoryOf(to);
}

/** Removes the file at `path` if there is one. */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
