// Compaction: a new log holding only what rebuilds the current projection,
// swapped in atomically, the old file kept as a backup.

import { backupName, keepAs, removeIfPresent, syncDirectoryOf } from "./_file_io.ts";
import type { Event } from "./events.ts";
import { LOG_FILE_MODE, openEventLog, readEventLog } from "./event_log.ts";
import { evolve, initialState, snapshot, type State, type StateSnapshot } from "./projection.ts";

/** An event of the compacted log with what orders it (see `compactionEvents`). */
interface Placed {
  event: Event;
  /** Its time, raised where needed to keep the order its group must have. */
  key: number;
  /** Among equal keys: sign-ups, then logins, then messages, then remembered cids. */
  rank: number;
  /** Among equal keys and ranks: the recipient or sender, then the place in its group. */
  group: string;
  seq: number;
}

/**
 * The events that rebuild `state`, stamped `ts` for the final `log_compacted`, in time
 * order, so the compacted log reads oldest first like any other. Pure. They are:
 * - per user, `user_signed_up` with the current hash and the sign-up time, and the last
 *   `login_succeeded` (its address from `lastLoginAddrs`, else "");
 * - per recipient queue, each undelivered `message_sent`, without its `cid` (the cid memory
 *   has its own order, which the next item rebuilds);
 * - per sender, each remembered cid as `cid_remembered`;
 * - last, `log_compacted` carrying the event count, so the count continues across compaction.
 * Replay needs some orders kept whatever the clock did: sign-ups in sign-up order, a login
 * after its sign-up, each queue and each cid memory oldest first. Each event's sort key is
 * its `ts` raised to the key of the event it must follow, so where the clock never went back
 * the order is exactly by time. The queues and cid memories are then created in another
 * order than the state's maps hold them in: see `canonicalSnapshot`.
 */
export function compactionEvents(
  state: State,
  ts: number,
  lastLoginAddrs: ReadonlyMap<string, string> = new Map(),
): Event[] {
  const placed: Placed[] = [];
  let signupKey = -Infinity;
  let seq = 0;
  for (const [user, record] of state.users) {
    signupKey = Math.max(signupKey, record.createdTs);
    placed.push({
      event: {
        type: "user_signed_up",
        ts: record.createdTs,
        user,
        passwordHash: record.passwordHash,
      },
      key: signupKey,
      rank: 0,
      group: "",
      seq,
    });
    let keySeq = 0;
    for (const k of record.keys) {
      placed.push({
        event: {
          type: "user_key_published",
          ts: k.ts,
          user,
          key: k.key,
          fingerprint: k.fingerprint,
          bits: k.bits,
        },
        key: Math.max(signupKey, k.ts),
        rank: 1,
        group: user,
        seq: keySeq++,
      });
    }
    if (record.lastLoginTs !== undefined) {
      const addr = lastLoginAddrs.get(user) ?? "";
      placed.push({
        event: { type: "login_succeeded", ts: record.lastLoginTs, user, addr },
        key: Math.max(signupKey, record.lastLoginTs),
        rank: 1,
        group: "",
        seq,
      });
    }
    seq++;
  }
  for (const [to, queue] of state.queues) {
    let key = -Infinity;
    let i = 0;
    for (const m of queue.values()) {
      key = Math.max(key, m.ts);
      const { msg, from } = m;
      placed.push({
        event: m.sealed === undefined
          ? { type: "message_sent", ts: m.ts, msg, from, to, text: m.text }
          : { type: "sealed_message_sent", ts: m.ts, msg, from, to, sealed: m.sealed },
        key,
        rank: 2,
        group: to,
        seq: i++,
      });
    }
  }
  for (const [from, memory] of state.cids) {
    let key = -Infinity;
    let i = 0;
    for (const [cid, ack] of memory) {
      key = Math.max(key, ack.ts);
      placed.push({
        event: { type: "cid_remembered", ts: ack.ts, from, cid, msg: ack.msg },
        key,
        rank: 3,
        group: from,
        seq: i++,
      });
    }
  }
  placed.sort((a, b) =>
    a.key - b.key || a.rank - b.rank || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0) ||
    a.seq - b.seq
  );
  const events = placed.map((p) => p.event);
  events.push({ type: "log_compacted", ts, events: state.events });
  return events;
}

/**
 * `snapshot(state)` with the queues and cid memories in the order of their keys. The server
 * only looks those maps up by name; their own order is that in which each recipient's queue
 * and each sender's memory was created, which a time-ordered compaction cannot keep (a
 * queue's oldest message may be younger than another queue's). Two states are the same
 * projection for every use exactly when these are deeply equal.
 */
export function canonicalSnapshot(state: State): StateSnapshot {
  const s = snapshot(state);
  const byKey = (a: [string, unknown], b: [string, unknown]) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
  s.queues.sort(byKey);
  s.cids.sort(byKey);
  return s;
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
 * check it rebuilds the same projection (`canonicalSnapshot`), links the old file to
 * `<path>.<time>.bak` (see `backupName`), renames the new one over `path` and syncs the
 * directory: at every instant `path` is a whole log.
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
    if (
      JSON.stringify(canonicalSnapshot(rebuilt)) !== JSON.stringify(canonicalSnapshot(state))
    ) {
      throw new Error(`compaction of ${path} would change the projection; the log is unchanged`);
    }
    backupPath = await backupName(path, ts);
    await keepAs(path, backupPath, LOG_FILE_MODE, options.link); // the old file, a second name
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
