// Compaction (issue #3 §6): a new log holding only what rebuilds the current projection,
// swapped in atomically, the old file kept as a backup.

import { durableCopy, freshSibling, syncDirectoryOf } from "./_file_io.ts";
import type { Event } from "./events.ts";
import { LOG_FILE_MODE, openEventLog, readEventLog } from "./event_log.ts";
import { evolve, initialState, snapshot, type State } from "./projection.ts";

/**
 * The events that rebuild `state` exactly, map order included, stamped `ts` for the final
 * `log_compacted`. Pure. In order:
 * - per user in sign-up order, `user_signed_up` with the current hash and the sign-up time,
 *   then the last `login_succeeded` (its address from `lastLoginAddrs`, else "");
 * - per recipient queue in order, each undelivered `message_sent`, oldest first, without
 *   its `cid` (the cid memory has its own order, which the next step rebuilds);
 * - per sender, each remembered cid as `cid_remembered`, oldest first;
 * - `log_compacted` carrying the event count, so the count continues across compaction.
 */
export function compactionEvents(
  state: State,
  ts: number,
  lastLoginAddrs: ReadonlyMap<string, string> = new Map(),
): Event[] {
  const events: Event[] = [];
  for (const [user, record] of state.users) {
    events.push({
      type: "user_signed_up",
      ts: record.createdTs,
      user,
      passwordHash: record.passwordHash,
    });
    if (record.lastLoginTs !== undefined) {
      const addr = lastLoginAddrs.get(user) ?? "";
      events.push({ type: "login_succeeded", ts: record.lastLoginTs, user, addr });
    }
  }
  for (const queue of state.queues.values()) {
    for (const m of queue.values()) {
      events.push({
        type: "message_sent",
        ts: m.ts,
        msg: m.msg,
        from: m.from,
        to: m.to,
        text: m.text,
      });
    }
  }
  for (const [from, memory] of state.cids) {
    for (const [cid, ack] of memory) {
      events.push({ type: "cid_remembered", ts: ack.ts, from, cid, msg: ack.msg });
    }
  }
  events.push({ type: "log_compacted", ts, events: state.events });
  return events;
}

/** Options of `compactLog`. */
export interface CompactOptions {
  /** Clock for the `log_compacted` stamp and the backup name; default `Date.now`. */
  now?: () => number;
  /** Replay progress of the old log, as for `openEventLog`. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /**
   * How the old file gets its backup name; default `Deno.link`. Tests pass one that fails, as
   * on a file system without hard links, to reach the copying fallback.
   */
  link?: (from: string, to: string) => Promise<void>;
}

/** What `compactLog` did. */
export interface CompactReport {
  path: string;
  /** The old log, kept under a new name. */
  backupPath: string;
  eventsBefore: number;
  eventsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  /** A torn tail cut from the old log while opening it. */
  tornTail?: { offset: number; bytes: number; reason: string };
  ms: number;
}

/** Events written per append while writing the compacted file. */
const WRITE_BATCH_EVENTS = 10_000;

/**
 * Compacts the log at `path`. It holds the log's lock throughout (a running server makes
 * it fail with StoreError `locked`), writes `<path>.compact-tmp`, syncs it, replays it to
 * check it rebuilds the same projection, links the old file to `<path>.bak-<now>`, renames
 * the new one over `path` and syncs the directory: at every instant `path` is a whole log.
 */
export async function compactLog(
  path: string,
  options: CompactOptions = {},
): Promise<CompactReport> {
  const started = performance.now();
  const now = options.now ?? Date.now;
  const lastLoginAddrs = new Map<string, string>();
  const opened = await openEventLog(path, {
    onProgress: options.onProgress,
    onEvent(event) {
      if (event.type === "login_succeeded") lastLoginAddrs.set(event.user, event.addr);
    },
  });
  const { log, state } = opened;
  const tmpPath = `${path}.compact-tmp`;
  let backupPath: string | undefined;
  let swapped = false;
  try {
    const ts = now();
    const events = compactionEvents(state, ts, lastLoginAddrs);
    // We hold the log's lock, so a leftover temporary file is from a compaction that died.
    await removeIfPresent(tmpPath);
    const bytesAfter = await writeLog(tmpPath, events);
    const rebuilt = initialState();
    await readEventLog(tmpPath, { onEvent: (event) => evolve(rebuilt, event) });
    if (JSON.stringify(snapshot(rebuilt)) !== JSON.stringify(snapshot(state))) {
      throw new Error(`compaction of ${path} would change the projection; the log is unchanged`);
    }
    backupPath = await freshSibling(path, "bak", ts);
    try {
      await (options.link ?? Deno.link)(path, backupPath); // the old file, under a second name
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) throw e;
      await durableCopy(path, backupPath, LOG_FILE_MODE); // a file system without hard links
    }
    await Deno.rename(tmpPath, path);
    swapped = true;
    await syncDirectoryOf(path);
    const report: CompactReport = {
      path,
      backupPath,
      eventsBefore: opened.report.events,
      eventsAfter: events.length,
      bytesBefore: opened.report.bytes,
      bytesAfter,
      ms: 0,
    };
    if (opened.report.tornTail) report.tornTail = opened.report.tornTail;
    report.ms = performance.now() - started;
    return report;
  } catch (e) {
    if (!swapped) {
      // The old log is still in place and whole: leave nothing else behind.
      await removeIfPresent(tmpPath).catch(() => {});
      if (backupPath !== undefined) await removeIfPresent(backupPath).catch(() => {});
    }
    throw e;
  } finally {
    await log.close();
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Writes `events` to a new log at `path` and syncs it; returns its size. */
async function writeLog(path: string, events: readonly Event[]): Promise<number> {
  const { log } = await openEventLog(path, { fsync: "off" });
  try {
    for (let i = 0; i < events.length; i += WRITE_BATCH_EVENTS) {
      await log.appendMany(events.slice(i, i + WRITE_BATCH_EVENTS));
    }
  } finally {
    await log.close(); // syncs: `fsync: "off"` defers the one sync to here
  }
  return log.size;
}
