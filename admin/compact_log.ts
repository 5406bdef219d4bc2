// `deno task compact`: rewrites the event log keeping only what rebuilds the current state,
// atomically, the old log kept as a backup.

import { progressOnStderr } from "../server/progress.ts";
import { parseArgs } from "node:util";
import {
  compactLog,
  formatBytes,
  parseStoreUrl,
  plural,
  StoreCorruptError,
  StoreError,
} from "../store/mod.ts";

const USAGE = `Usage: deno task compact [--log PATH] [--store file:PATH]

Rewrites a Hybrid-Server event log keeping only what rebuilds the current state:
users (latest password hash, last login), undelivered messages and each sender's
recent cids, in time order. The new log replaces the old one atomically; the old
one is kept beside it as PATH.<time>.bak, e.g. events.log.2026-12-03T10-15-00.123Z.bak
(UTC). The server must be stopped: it holds the log's lock.

A log in PostgreSQL (--store postgres://…) is not compacted in place: every node
follows it by position, so it cannot be rewritten under them. To compact one, stop
every node, copy it to a file with \`deno task migrate\`, compact the file, and copy
it back into an empty schema (see docs/SCALING.md).

Options:
  --log PATH    the event log (default ./events.log)
  --store URL   the same as the server's --store; only file:PATH is compacted
  -h, --help    show this help
`;

/** Why a PostgreSQL log is refused, and what to do instead. */
export const POSTGRES_REFUSAL =
  "a log in PostgreSQL is not compacted in place: every node follows it by position, so " +
  "rewriting it would make them disagree. Stop every node, then: deno task migrate --from " +
  "postgres://… --to file:copy.log; deno task compact --log copy.log; deno task migrate " +
  "--from file:copy.log --to 'postgres://…?schema=NEW' (an empty schema), and start the " +
  "nodes on the new schema.";

/** Runs the CLI; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let log: string;
  try {
    const { values } = parseArgs({
      args,
      options: {
        log: { type: "string" },
        store: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE.trimEnd());
      return 0;
    }
    if (values.log !== undefined && values.store !== undefined) {
      throw new Error("give --log or --store, not both");
    }
    const store = parseStoreUrl(values.store ?? `file:${values.log ?? "./events.log"}`);
    if (store.kind === "postgres") {
      console.error(`compact: ${POSTGRES_REFUSAL}`);
      return 1;
    }
    log = store.path;
  } catch (e) {
    console.error(`compact: ${(e as Error).message}\nRun with --help for usage.`);
    return 2;
  }
  try {
    // Opening a missing log would create an empty one: say so instead.
    await Deno.stat(log);
  } catch (e) {
    console.error(
      e instanceof Deno.errors.NotFound
        ? `compact: no event log at ${log} (use --log PATH)`
        : `compact: cannot read ${log}: ${e instanceof Error ? e.message : e}`,
    );
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
