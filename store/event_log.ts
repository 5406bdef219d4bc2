// The durable, append-only event log: open with recovery and an exclusive lock,
// group-committed appends that resolve once synced, and a read-only reader for tools.

import {
  backupName,
  copyRange,
  keepAs,
  makeParents,
  removeIfPresent,
  syncDirectoryOf,
  writeAll,
} from "./_file_io.ts";
import { GroupCommit } from "./_group_commit.ts";
import { inspectHeader, scanRecords, type TornTail } from "./_scan.ts";
import { type DamagedRegion, StoreCorruptError, StoreError } from "./errors.ts";
import type { Event } from "./events.ts";
import { plural } from "./progress.ts";
import { evolve, initialState, type State } from "./projection.ts";
import {
  decodeHeader,
  encodeHeader,
  encodeRecordTransient,
  HEADER_BYTES,
} from "./record_format.ts";

export type { TornTail } from "./_scan.ts";
export { DEFERRED_COMMIT_MS } from "./_group_commit.ts";

/**
 * `always`: an append resolves once its bytes are written and synced (`syncData`), the
 * default. `off`: once written to the OS, for benchmarks only; a power cut loses them.
 */
export type FsyncMode = "always" | "off";

/** The largest write one group commit makes; further appends wait for the next one. */
export const MAX_BATCH_BYTES = 8 << 20;
/** First size of the buffer appends are encoded into; it doubles as needed. */
const FIRST_BATCH_BUFFER = 16 * 1024;
/** A written batch buffer up to this size is reused for a later batch; larger ones are let go. */
const MAX_KEPT_BATCH_BUFFER = 1 << 20;
/** The log and its backups hold password hashes and messages: owner read/write only. */
export const LOG_FILE_MODE = 0o600;
/** Directories created for a log: owner only, for the same reason. */
export const LOG_DIR_MODE = 0o700;
/** Bytes copied per read and write while repair rewrites a log. */
const REPAIR_COPY_BYTES = 1 << 20;

/** Options of `openEventLog`. */
export interface OpenOptions {
  /** Default `always`. */
  fsync?: FsyncMode;
  /**
   * Instead of refusing a log with damaged regions, keep the damaged file as a backup and
   * replace it by a copy without them: every whole, valid record is kept.
   */
  repair?: boolean;
  /** Called as replay reads the file (every few MiB, and at the end). */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /**
   * Called with each replayed event, after it is applied to the state (which it may read, not
   * change); throwing stops the replay and the open.
   */
  onEvent?: (event: Event, offset: number, state: State) => void;
  /** Clock for backup names; default `Date.now`. */
  now?: () => number;
  /** Checksum salt of a log this call creates (see record_format.ts); default random. */
  salt?: number;
}

/** What opening did. */
export interface OpenReport {
  path: string;
  /** The file did not exist and was created. */
  created: boolean;
  /** Directories created above the new file (mode 0700), outermost first. */
  createdDirectories?: string[];
  /** Events replayed. */
  events: number;
  /** Size of the log after recovery. */
  bytes: number;
  /** Milliseconds spent opening and replaying. */
  ms: number;
  /** A torn final record (or header) was cut off: where, how many bytes, and why. */
  tornTail?: TornTail;
  /**
   * `repair` dropped damaged regions: each one (offsets in the damaged file), their total
   * bytes, and the backup holding the damaged file as it was. A torn tail cut at the same
   * time is reported in `tornTail`.
   */
  repaired?: { dropped: DamagedRegion[]; bytes: number; backupPath: string };
}

/** Counters of an open log, for tests and benchmarks. */
export interface LogStats {
  /** Events appended (resolved) since opening. */
  appends: number;
  /** Group commits made: writes, each followed by one sync under `fsync: "always"`. */
  batches: number;
}

/** An open, locked event log. */
export interface EventLog {
  readonly path: string;
  readonly fsync: FsyncMode;
  /** Bytes in the file, counting only appends already written. */
  readonly size: number;
  readonly stats: LogStats;
  /**
   * Appends one event. Resolves once it is written and (under `fsync: "always"`) synced;
   * appends made while a sync runs are written together, in call order, with one sync.
   * Rejects with TypeError or RangeError for an event that cannot be written, and with
   * StoreError once the log is closed or after a failed write (the log then refuses
   * everything: the caller's state may be ahead of the disk and it should stop).
   * The log does not touch any `State`: the caller applies `evolve` itself.
   */
  append(event: Event): Promise<void>;
  /** Appends events contiguously and in order, like `append` for each (not atomic across a crash). */
  appendMany(events: readonly Event[]): Promise<void>;
  /**
   * Appends an event that nobody is waiting on (a delivery receipt, a failed login): it is
   * queued in order like `append`, but starts no group commit of its own. It is written with
   * the next append's commit, or after DEFERRED_COMMIT_MS if none comes, and resolves once
   * synced like `append`. Under load this saves a write and a sync per such event.
   */
  appendDeferred(event: Event): Promise<void>;
  /** Writes and syncs everything pending, then closes the file and releases the lock. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What `openEventLog` returns: the log, the projection of its events, and what recovery did. */
export interface OpenedLog {
  log: EventLog;
  state: State;
  report: OpenReport;
}

/**
 * Opens (creating it, mode 0600, and any missing directories above it, mode 0700) and locks
 * the log at `path`, recovers it and replays it into a fresh state. A torn final record is
 * cut off and reported. Damaged regions before the tail throw StoreCorruptError, listing
 * them, unless `repair` is set. A log open elsewhere (any process, or another handle in this
 * one) throws StoreError `locked`; a path that cannot hold a log, StoreError `bad_path`.
 */
export async function openEventLog(path: string, options: OpenOptions = {}): Promise<OpenedLog> {
  const started = performance.now();
  const fsync = options.fsync ?? "always";
  if (fsync !== "always" && fsync !== "off") {
    throw new TypeError(`fsync must be "always" or "off", got ${JSON.stringify(fsync)}`);
  }
  const now = options.now ?? Date.now;
  let { file, created, createdDirectories } = await openLocked(path);
  try {
    let size = (await file.stat()).size;
    let tornTail: OpenReport["tornTail"];
    let repaired: OpenReport["repaired"];
    const header = await inspectHeader(file, size, path);
    let salt: number;
    if (header.kind === "ok") {
      salt = header.salt;
    } else {
      if (header.kind === "torn") {
        tornTail = { offset: 0, bytes: size, reason: "partial header left by a crash at creation" };
      }
      const bytes = encodeHeader(options.salt);
      salt = decodeHeader(bytes).salt;
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await writeAll(file, bytes);
      await file.syncData();
      if (created) await syncDirectoryOf(path);
      size = HEADER_BYTES;
    }
    const state = initialState();
    const onEvent = options.onEvent;
    const scan = await scanRecords(file, size, salt, {
      onEvent(event, offset) {
        evolve(state, event);
        onEvent?.(event, offset, state);
      },
      onProgress: options.onProgress,
    });
    if (scan.tornTail) tornTail = scan.tornTail;
    if (scan.damaged.length > 0) {
      if (!options.repair) throw corruptError(path, scan.damaged, scan.tornTail, scan.records);
      const end = scan.tornTail?.offset ?? size;
      const rewritten = await rewriteWithout(path, file, scan.damaged, end, now());
      file.close(); // the damaged file, now only the backup: its lock goes with it
      file = rewritten.file;
      size = rewritten.size;
      const bytes = scan.damaged.reduce((sum, region) => sum + region.bytes, 0);
      repaired = { dropped: scan.damaged, bytes, backupPath: rewritten.backupPath };
    } else if (scan.tornTail) {
      await file.truncate(scan.tornTail.offset);
      await file.syncData();
      size = scan.tornTail.offset;
    }
    await file.seek(size, Deno.SeekMode.Start);
    const log = new FileEventLog(path, file, fsync, size, salt);
    const report: OpenReport = {
      path,
      created,
      events: scan.records,
      bytes: size,
      ms: performance.now() - started,
    };
    if (createdDirectories.length > 0) report.createdDirectories = createdDirectories;
    if (tornTail) report.tornTail = tornTail;
    if (repaired) report.repaired = repaired;
    return { log, state, report };
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * Repair: writes the header and every whole record of the locked log `file` at `path` (its
 * bytes before `end` less the `damaged` regions) to a new file, locked before anyone can
 * see it; keeps the damaged file as a backup; renames the new one over `path`. At every
 * instant `path` is the damaged log or the repaired one, never a mix; a repair that dies
 * leaves at most `<path>.repair-tmp`, replaced by the next one. Returns the new file, open
 * and locked, its size and the backup's path.
 */
async function rewriteWithout(
  path: string,
  file: Deno.FsFile,
  damaged: readonly DamagedRegion[],
  end: number,
  now: number,
): Promise<{ file: Deno.FsFile; size: number; backupPath: string }> {
  const tmpPath = `${path}.repair-tmp`;
  // We hold the log's lock, so a leftover temporary file is from a repair that died.
  await removeIfPresent(tmpPath);
  const fresh = await Deno.open(tmpPath, {
    read: true,
    write: true,
    createNew: true,
    mode: LOG_FILE_MODE,
  });
  let backupPath: string | undefined;
  let renamed = false;
  try {
    if (!(await fresh.tryLock(true))) {
      throw new StoreError("locked", `${tmpPath}, just created, is locked by another process`);
    }
    const buffer = new Uint8Array(REPAIR_COPY_BYTES);
    let from = 0;
    for (const region of damaged) {
      await copyRange(file, fresh, from, region.offset, buffer);
      from = region.offset + region.bytes;
    }
    await copyRange(file, fresh, from, end, buffer);
    await fresh.syncData();
    backupPath = await backupName(path, now);
    await keepAs(path, backupPath, LOG_FILE_MODE);
    await Deno.rename(tmpPath, path);
    renamed = true;
    await syncDirectoryOf(path);
    const size = (await fresh.stat()).size;
    return { file: fresh, size, backupPath };
  } catch (e) {
    fresh.close();
    if (!renamed) {
      // The damaged log is still in place and whole: leave nothing else behind.
      await removeIfPresent(tmpPath).catch(() => {});
      if (backupPath !== undefined) await removeIfPresent(backupPath).catch(() => {});
    }
    throw e;
  }
}

/** Options of `readEventLog`. */
export interface ReadOptions {
  /** Called with each event in log order. */
  onEvent: (event: Event, offset: number) => void;
  /** Called with each damaged region, in log order among the events. */
  onDamage?: (region: DamagedRegion) => void;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/** What `readEventLog` saw. */
export interface ReadReport {
  path: string;
  events: number;
  bytes: number;
  ms: number;
  /** Damaged regions between whole records, skipped (the file is left as it is). */
  damaged: DamagedRegion[];
  /** A torn final record that was skipped (the file is left as it is). */
  tornTail?: TornTail;
}

/**
 * Reads the log at `path` without locking or changing it (a running server may hold it):
 * for tools. Every whole record is read; damaged regions between them and a torn tail are
 * skipped and reported. Throws StoreCorruptError if the file is not an event log, StoreError
 * `bad_path` if it is a directory, Deno.errors.NotFound if it does not exist.
 */
export async function readEventLog(path: string, options: ReadOptions): Promise<ReadReport> {
  const started = performance.now();
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (info.isDirectory) {
    throw new StoreError("bad_path", `${path} is a directory, not an event log`);
  }
  const size = info.size;
  const report: ReadReport = { path, events: 0, bytes: size, ms: 0, damaged: [] };
  const header = await inspectHeader(file, size, path);
  if (header.kind === "torn") {
    report.tornTail = { offset: 0, bytes: size, reason: "partial header" };
  } else if (header.kind === "ok") {
    const scan = await scanRecords(file, size, header.salt, options);
    report.events = scan.records;
    report.damaged = scan.damaged;
    if (scan.tornTail) report.tornTail = scan.tornTail;
  }
  report.ms = performance.now() - started;
  return report;
}

/** Each damaged region in words: where, how long, why, and where whole records resume. */
export function describeDamage(region: DamagedRegion): string {
  const { kind, offset, bytes, reason } = region;
  return kind === "corrupt"
    ? `${plural(bytes, "byte")} at offset ${offset} hold no whole record (${reason}); ` +
      `whole records resume at offset ${offset + bytes}`
    : `the record of ${plural(bytes, "byte")} at offset ${offset} holds no valid event (${reason})`;
}

function corruptError(
  path: string,
  damaged: readonly DamagedRegion[],
  tornTail: TornTail | undefined,
  records: number,
): StoreCorruptError {
  const first = damaged[0]!;
  const bytes = damaged.reduce((sum, region) => sum + region.bytes, 0);
  const lines = damaged.map((region) => `  - ${describeDamage(region)}`);
  if (tornTail) {
    lines.push(
      `  - and a torn tail: ${plural(tornTail.bytes, "byte")} at offset ${tornTail.offset} ` +
        `(${tornTail.reason}), which opening cuts in any case`,
    );
  }
  return new StoreCorruptError(
    first.kind === "corrupt" ? "corrupt_record" : "bad_event",
    first.offset,
    `event log ${path} is damaged in ${plural(damaged.length, "region")}:\n${lines.join("\n")}\n` +
      `Repairing keeps the damaged file as a backup, then drops ${plural(bytes, "byte")} ` +
      `in ${plural(damaged.length, "region")} and keeps every whole record ` +
      `(${plural(records, "event")}), those after the damage included.`,
    first.cause === undefined ? undefined : { cause: first.cause },
    damaged,
  );
}

/** How often `openLocked` reopens when a compaction swapped the file under it. */
const OPEN_ATTEMPTS = 5;

/** What `openLocked` opened. */
interface Locked {
  file: Deno.FsFile;
  created: boolean;
  createdDirectories: string[];
}

/**
 * Opens or creates the file (and the directories above it) and takes its exclusive lock
 * without waiting: `flock`, held per open file, so a second handle is refused even in this
 * process, and freed by the kernel when a process dies, so no stale lock survives a crash.
 */
async function openLocked(path: string): Promise<Locked> {
  const createdDirectories: string[] = [];
  for (let attempt = 1;; attempt++) {
    let file: Deno.FsFile;
    let created = false;
    try {
      file = await Deno.open(path, { read: true, write: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw badPath(path, e);
      try {
        createdDirectories.push(...await makeParents(path, LOG_DIR_MODE));
        file = await Deno.open(path, {
          read: true,
          write: true,
          createNew: true,
          mode: LOG_FILE_MODE,
        });
        created = true;
      } catch (e2) {
        if (e2 instanceof Deno.errors.AlreadyExists && attempt < OPEN_ATTEMPTS) continue;
        throw badPath(path, e2);
      }
    }
    try {
      if (!(await file.tryLock(true))) {
        throw new StoreError(
          "locked",
          `event log ${path} is locked by another process (is a server or compaction already running on it?)`,
        );
      }
      // A compaction may have renamed a new log over `path` between our open and our lock;
      // holding the lock of the old file (now the backup) would be holding nothing.
      const [held, named] = await Promise.all([file.stat(), Deno.stat(path).catch(() => null)]);
      if (named && held.ino === named.ino && held.dev === named.dev) {
        return { file, created, createdDirectories };
      }
      if (attempt >= OPEN_ATTEMPTS) {
        throw new StoreError("locked", `event log ${path} keeps being replaced while opening it`);
      }
    } catch (e) {
      file.close();
      throw e;
    }
    file.close();
  }
}

/** The file system's refusal to open or create the log at `path`, as StoreError `bad_path`. */
function badPath(path: string, cause: unknown): unknown {
  if (!(cause instanceof Error) || !Object.values(Deno.errors).some((t) => cause instanceof t)) {
    return cause;
  }
  const why = cause instanceof Deno.errors.IsADirectory
    ? "it is a directory; give the path of a file in it"
    : cause instanceof Deno.errors.NotADirectory
    ? "a component of the path is a file, not a directory"
    : cause instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : cause.message;
  return new StoreError("bad_path", `cannot open event log ${path}: ${why}`, { cause });
}

/** The first appends of the queue whose records, together, fit in one write of the batch limit. */
function takeBatch(queue: Pending[]): Pending[] {
  let n = 0;
  let bytes = 0;
  while (n < queue.length) {
    bytes += queue[n]!.bytes;
    if (n > 0 && bytes > MAX_BATCH_BYTES) break;
    n++;
  }
  return queue.splice(0, n);
}

interface Pending {
  /** Bytes of this append in the batch buffer, which holds the queue's appends in order. */
  bytes: number;
  events: number;
  /** Starts a group commit (false for appendDeferred). */
  urgent: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

class FileEventLog implements EventLog {
  readonly path: string;
  readonly fsync: FsyncMode;
  #file: Deno.FsFile;
  #size: number;
  readonly #commits = new GroupCommit<Pending>({
    takeBatch,
    commit: (batch) => this.#commit(batch),
  });
  /**
   * The queued appends' records, back to back in #buffer[0, #fill): each is encoded straight
   * into it (no array per event), and the buffer is written as it is. The last written buffer
   * is kept as #spare for the next batch.
   */
  #buffer: Uint8Array = new Uint8Array(FIRST_BATCH_BUFFER);
  #fill = 0;
  #spare: Uint8Array | undefined;
  #closing: Promise<void> | undefined;
  #failure: StoreError | undefined;
  #unsynced = false;
  #salt: number;
  #stats: LogStats = { appends: 0, batches: 0 };

  constructor(path: string, file: Deno.FsFile, fsync: FsyncMode, size: number, salt: number) {
    this.path = path;
    this.#file = file;
    this.fsync = fsync;
    this.#size = size;
    this.#salt = salt;
  }

  get size(): number {
    return this.#size;
  }

  get stats(): LogStats {
    return { ...this.#stats };
  }

  append(event: Event): Promise<void> {
    return this.#enqueue([event], true);
  }

  appendMany(events: readonly Event[]): Promise<void> {
    return this.#enqueue(events, true);
  }

  appendDeferred(event: Event): Promise<void> {
    return this.#enqueue([event], false);
  }

  #enqueue(events: readonly Event[], urgent: boolean): Promise<void> {
    if (this.#closing) {
      return Promise.reject(new StoreError("closed", `event log ${this.path} is closed`));
    }
    if (this.#failure) return Promise.reject(this.#failure);
    if (events.length === 0) return Promise.resolve();
    const start = this.#fill;
    try {
      for (const event of events) {
        const record = encodeRecordTransient(event, this.#salt);
        this.#room(record.length).set(record, this.#fill);
        this.#fill += record.length;
      }
    } catch (e) {
      this.#fill = start; // nothing of a refused append is kept
      return Promise.reject(e);
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#commits.push({
      bytes: this.#fill - start,
      events: events.length,
      urgent,
      resolve,
      reject,
    });
    return promise;
  }

  /**
   * Writes one batch of the group commit, syncs once, resolves it. A failed write rejects it
   * and everything queued.
   */
  async #commit(batch: Pending[]): Promise<void> {
    const bytes = this.#takeBytes(batch);
    try {
      await writeAll(this.#file, bytes);
      if (this.fsync === "always") await this.#file.syncData();
      else this.#unsynced = true;
    } catch (cause) {
      this.#failure = new StoreError(
        "failed",
        `writing to event log ${this.path} failed; it accepts no more appends`,
        { cause },
      );
      for (const p of [...batch, ...this.#commits.drop()]) p.reject(this.#failure);
      this.#fill = 0;
      return;
    }
    this.#size += bytes.length;
    this.#stats.batches++;
    if (bytes.buffer.byteLength <= MAX_KEPT_BATCH_BUFFER) {
      this.#spare = new Uint8Array(bytes.buffer);
    }
    for (const p of batch) {
      this.#stats.appends += p.events;
      p.resolve();
    }
  }

  /** The batch buffer with room for `length` more bytes (grown by doubling, contents kept). */
  #room(length: number): Uint8Array {
    const need = this.#fill + length;
    if (need > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.#buffer.length));
      grown.set(this.#buffer.subarray(0, this.#fill));
      this.#buffer = grown;
    }
    return this.#buffer;
  }

  /**
   * The bytes of `batch` (the first appends of the queue), handed over for writing: the rest
   * of the buffer, if any, moves to a fresh one (the spare when it fits) for the next batch.
   */
  #takeBytes(batch: readonly Pending[]): Uint8Array {
    let length = 0;
    for (const p of batch) length += p.bytes;
    const taken = this.#buffer;
    const rest = this.#fill - length;
    const spare = this.#spare !== undefined && this.#spare.length >= rest ? this.#spare : undefined;
    this.#spare = undefined;
    this.#buffer = spare ?? new Uint8Array(Math.max(FIRST_BATCH_BUFFER, rest));
    this.#buffer.set(taken.subarray(length, this.#fill));
    this.#fill = rest;
    return taken.subarray(0, length);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#commits.close();
        if (this.#unsynced && !this.#failure) await this.#file.syncData();
      } finally {
        this.#file.close(); // releases the lock
      }
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
