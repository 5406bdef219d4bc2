// `deno task migrate`: copies an event log between stores (a file into PostgreSQL, or back),
// every event in order, into an empty target, then reads the target back to verify it.

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import {
  encodeRecord,
  type Event,
  HEADER_BYTES,
  importIntoPostgres,
  openEventLog,
  parseStoreUrl,
  plural,
  postgresLogHead,
  readEventLog,
  readPostgresLog,
  StoreCorruptError,
  StoreError,
  type StoreUrl,
  StoreUrlError,
} from "../store/mod.ts";
import { progressOnStderr } from "../server/progress.ts";

const USAGE = `Usage: deno task migrate --from URL --to URL

Copies a Hybrid-Server event log, every event in its order, from one store to
another, e.g. a log file into PostgreSQL:
  deno task migrate --from file:events.log --to postgres://chat@db.example/chat
and back:
  deno task migrate --from postgres://chat@db.example/chat --to file:events.log

URLs are those of the server's --store: file:PATH, or postgres://…[?schema=NAME].
Stop every server using either log first: events appended during the copy may be
missed. The target must be empty (a missing or empty file, a schema without events):
the copy never merges two histories and never overwrites one. A copy into PostgreSQL
is one transaction, so it leaves either the whole log or nothing. At the end the
target is read back and its events compared with the source's (count and SHA-256).

Options:
  --from URL   the log to copy (it is only read)
  --to URL     where to copy it (must be empty)
  -h, --help   show this help
`;

/** Events read into memory per chunk when writing a file. */
const FILE_CHUNK = 10_000;

class UsageError extends Error {}

/** A digest of events in order, over the record encoding the logs use. */
function digester() {
  const hash = createHash("sha256");
  let count = 0;
  return {
    add(event: Event) {
      hash.update(encodeRecord(event, 0));
      count++;
    },
    done: () => ({ count, sha256: hash.digest("hex") }),
  };
}

/** Reads every event of `store`; refuses a damaged file (repair it first). */
async function readAll(store: StoreUrl, onEvent: (event: Event) => void): Promise<void> {
  if (store.kind === "postgres") {
    await readPostgresLog(store, {
      onEvent,
      onProgress: progressOnStderr(store.description, "events", "reading"),
    });
    return;
  }
  const report = await readEventLog(store.path, {
    onEvent,
    onProgress: progressOnStderr(store.path, "bytes", "reading"),
  });
  if (report.damaged.length > 0) {
    throw new StoreError(
      "failed",
      `${store.path} is damaged in ${plural(report.damaged.length, "region")}; repair it ` +
        "first (start the server on it with --repair), so that the copy is the whole log",
    );
  }
  if (report.tornTail) {
    console.error(
      `migrate: note: the torn final record of ${store.path} (${
        plural(report.tornTail.bytes, "byte")
      }) is not copied, as the server would cut it`,
    );
  }
}

/** Throws unless `store` holds no event. */
async function requireEmpty(store: StoreUrl): Promise<void> {
  if (store.kind === "postgres") {
    const head = await postgresLogHead(store);
    if (head > 0) {
      throw new StoreError(
        "conflict",
        `${store.description} already holds events (up to position ${head}); copy into an ` +
          "empty schema (?schema=NEW), or drop this one first with every node stopped",
      );
    }
    return;
  }
  try {
    const info = await Deno.stat(store.path);
    if (info.isFile && info.size <= HEADER_BYTES) return;
    throw new StoreError(
      "conflict",
      `${store.path} already exists and is not empty; move it away or choose another path`,
    );
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

async function writeAll(store: StoreUrl, events: readonly Event[]): Promise<void> {
  if (store.kind === "postgres") {
    await importIntoPostgres(
      store,
      events,
      progressOnStderr(store.description, "events", "copying into"),
    );
    return;
  }
  const existed = await Deno.stat(store.path).then(() => true, () => false);
  const { log } = await openEventLog(store.path);
  try {
    for (let i = 0; i < events.length; i += FILE_CHUNK) {
      await log.appendMany(events.slice(i, i + FILE_CHUNK));
    }
    await log.close();
  } catch (e) {
    await log.close().catch(() => {});
    if (!existed) await Deno.remove(store.path).catch(() => {});
    throw e;
  }
}

/** Runs the CLI; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let from: StoreUrl;
  let to: StoreUrl;
  try {
    const { values } = parseArgs({
      args,
      options: {
        from: { type: "string" },
        to: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE.trimEnd());
      return 0;
    }
    if (values.from === undefined || values.to === undefined) {
      throw new UsageError("both --from URL and --to URL are needed");
    }
    from = parseStoreUrl(values.from);
    to = parseStoreUrl(values.to);
    if (from.description === to.description) {
      throw new UsageError(`--from and --to are the same log (${from.description})`);
    }
  } catch (e) {
    if (!(e instanceof UsageError || e instanceof StoreUrlError || e instanceof TypeError)) {
      throw e;
    }
    console.error(`migrate: ${(e as Error).message}\nRun with --help for usage.`);
    return 2;
  }
  try {
    const started = performance.now();
    await requireEmpty(to);
    const events: Event[] = [];
    const source = digester();
    await readAll(from, (event) => {
      events.push(event);
      source.add(event);
    });
    await writeAll(to, events);
    events.length = 0;
    const target = digester();
    await readAll(to, (event) => target.add(event));
    const want = source.done();
    const got = target.done();
    if (got.count !== want.count || got.sha256 !== want.sha256) {
      console.error(
        `migrate: VERIFICATION FAILED: ${from.description} has ${plural(want.count, "event")} ` +
          `(sha256 ${want.sha256}), ${to.description} has ${plural(got.count, "event")} ` +
          `(sha256 ${got.sha256})`,
      );
      return 1;
    }
    console.log(
      `copied ${plural(want.count, "event")} from ${from.description} to ${to.description} ` +
        `in ${Math.round(performance.now() - started)} ms; verified: same count, ` +
        `same events in the same order (sha256 ${want.sha256.slice(0, 16)}…)`,
    );
    return 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && from.kind === "file") {
      console.error(`migrate: no event log at ${from.path}`);
    } else if (e instanceof StoreError || e instanceof StoreCorruptError) {
      console.error(`migrate: ${e.message}`);
    } else {
      console.error(`migrate: failed: ${e instanceof Error ? e.message : e}`);
    }
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
