// `deno task compact`: rewrites the event log keeping only what rebuilds the current state,
// atomically, the old log kept as a backup (issue #3 §6).

import { progressOnStderr } from "./progress.ts";
import { parseArgs } from "node:util";
import { compactLog, formatBytes, plural, StoreCorruptError, StoreError } from "../store/mod.ts";

const USAGE = `Usage: deno task compact [--log PATH]

Rewrites a Hybrid-Server event log keeping only what rebuilds the current state:
users (latest password hash, last login), undelivered messages and each sender's
recent cids, in time order. The new log replaces the old one atomically; the old
one is kept beside it as PATH.<time>.bak, e.g. events.log.2026-12-03T10-15-00.123Z.bak
(UTC). The server must be stopped: it holds the log's lock.

Options:
  --log PATH   the event log (default ./events.log)
  -h, --help   show this help
`;

/** Runs the CLI; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let log: string;
  try {
    const { values } = parseArgs({
      args,
      options: {
        log: { type: "string", default: "./events.log" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE.trimEnd());
      return 0;
    }
    log = values.log;
  } catch (e) {
    console.error(`compact: ${(e as Error).message}\nRun with --help for usage.`);
    return 2;
  }
  try {
    // Opening a missing log would create an empty one: say so instead.
    await Deno.stat(log);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.error(`compact: no event log at ${log} (use --log PATH)`);
    return 1;
  }
  try {
    const report = await compactLog(log, {
      onProgress: progressOnStderr(log),
    });
    if (report.tornTail) {
      const { offset, bytes, reason } = report.tornTail;
      console.error(
        `compact: cut a torn final record: ${
          plural(bytes, "byte")
        } from offset ${offset} (${reason})`,
      );
    }
    console.log(
      `compacted ${log}: ${report.eventsBefore} → ${plural(report.eventsAfter, "event")}, ` +
        `${formatBytes(report.bytesBefore)} → ${formatBytes(report.bytesAfter)}, ` +
        `in ${Math.round(report.ms)} ms; the old log is kept as ${report.backupPath}`,
    );
    return 0;
  } catch (e) {
    if (e instanceof StoreError && e.code === "locked") {
      console.error(`compact: ${e.message}; stop the server first`);
    } else if (e instanceof StoreCorruptError) {
      console.error(`compact: ${e.message}`);
      if (e.code === "corrupt_record" || e.code === "bad_event") {
        console.error("compact: repair the log first (start the server with --repair)");
      }
    } else if (e instanceof StoreError) {
      console.error(`compact: ${e.message}`);
    } else {
      console.error(`compact: failed on ${log}: ${e instanceof Error ? e.message : e}`);
    }
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
