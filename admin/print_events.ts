// `deno task events`: prints the event log for people, or as JSON lines, never showing a
// password hash in full. Reads without locking, so it works beside a running server.

import { fingerprintOfKid } from "../crypto/mod.ts";
import { decodeSealed, parseEnvelope } from "../protocol/envelope.ts";
import { escapeUnsafe } from "../server/logger.ts";
import { progressOnStderr } from "../server/progress.ts";
import { parseArgs } from "node:util";
import {
  type DamagedRegion,
  describeDamage,
  type Event,
  EVENT_TYPES,
  type EventType,
  isEventType,
  parseStoreUrl,
  plural,
  readEventLog,
  readPostgresLog,
  StoreCorruptError,
  StoreError,
  type StoreUrl,
  StoreUrlError,
} from "../store/mod.ts";

const USAGE = `Usage: deno task events [--log PATH | --store URL] [--type T] [--user U] [--tail N]
                        [--json]

Prints the events of a Hybrid-Server event log in the order they were written,
which is oldest first (a compacted log starts with what compaction kept, also oldest
first, then a log_compacted event). Password hashes are never shown in full. The log
may be in use by a running server. A damaged log is shown too: every whole record,
with a note on stderr, where the damage is, of each damaged region; the exit status
is then 1.

Options:
  --log PATH   the event log file (default ./events.log)
  --store URL  the log as the server's --store names it: file:PATH, or
               postgres://… (read up to its last event when the command starts)
  --type T     only events of type T; repeat it or separate types with commas:
               ${EVENT_TYPES.join(", ")}
  --user U     only events naming user U (as user, sender or recipient)
  --tail N     only the last N matching events
  --json       one JSON object per line instead of text
  -h, --help   show this help
`;

/** What stands in for the secret part of a password hash. */
export const REDACTED = "<redacted>";

/**
 * A password hash with its salt and hash removed: `scrypt$17$8$1$<salt>$<hash>` becomes
 * `scrypt$17$8$1$<redacted>`. The scheme and cost parameters say how it was made, which is
 * what an operator needs; a format with fewer than three `$` parts shows nothing at all.
 */
export function redactHash(hash: string): string {
  const parts = hash.split("$");
  return parts.length > 2 ? [...parts.slice(0, -2), REDACTED].join("$") : REDACTED;
}

/** The event as it may be shown: any password hash redacted. */
export function redactEvent(event: Event): Event {
  switch (event.type) {
    case "user_signed_up":
    case "password_changed":
      return { ...event, passwordHash: redactHash(event.passwordHash) };
    case "sealed_message_sent":
      // The server cannot read an envelope; it shows what it can know: size and the two keys.
      return { ...event, sealed: describeSealed(event.sealed) };
    default:
      return event;
  }
}

/** A sealed envelope as `tools` show it: its size and the two kids' fingerprints, no bytes of it. */
export function describeSealed(sealed: string): string {
  try {
    const bytes = decodeSealed(sealed);
    const e = parseEnvelope(bytes);
    return `${plural(bytes.length, "byte")} from ${fingerprintOfKid(e.senderKid)} to ${
      fingerprintOfKid(e.recipientKid)
    }`;
  } catch {
    return `${plural(sealed.length, "character")} that do not parse as an envelope`;
  }
}

/** A field value for the text format: bare if plain printable ASCII, else quoted and escaped. */
function show(value: string | number): string {
  if (typeof value === "number") return String(value);
  if (/^[\x21-\x7e]+$/.test(value) && !/["\\]/.test(value)) return value;
  return `"${escapeUnsafe(value.replace(/["\\]/g, "\\$&"))}"`;
}

function isoTime(ts: number): string {
  const date = new Date(ts);
  return Number.isNaN(date.getTime()) ? String(ts) : date.toISOString();
}

/** One line of the text format: time, type, then `name=value` fields. Redacts hashes. */
export function formatEvent(event: Event): string {
  const { type, ts, ...fields } = redactEvent(event) as Event & Record<string, string | number>;
  const shown = Object.entries(fields).map(([name, value]) =>
    `${name}=${show(value as string | number)}`
  );
  return `${isoTime(ts)}  ${type}  ${shown.join(" ")}`.trimEnd();
}

/** One line of the JSON format. Redacts hashes and escapes unsafe characters. */
export function formatEventJson(event: Event): string {
  return escapeUnsafe(JSON.stringify(redactEvent(event)));
}

/** Whether `event` names `user` as its user, sender or recipient. */
export function namesUser(event: Event, user: string): boolean {
  switch (event.type) {
    case "user_signed_up":
    case "login_succeeded":
    case "login_failed":
    case "logged_out":
    case "password_changed":
    case "message_delivered":
      return event.user === user;
    case "user_key_published":
      return event.user === user;
    case "message_sent":
    case "sealed_message_sent":
      return event.from === user || event.to === user;
    case "cid_remembered":
      return event.from === user;
    case "log_compacted":
      return false;
    default: {
      const never: never = event;
      throw new TypeError(`unhandled event ${JSON.stringify(never)}`);
    }
  }
}

class UsageError extends Error {}

interface Options {
  store: StoreUrl;
  types: Set<EventType> | undefined;
  user: string | undefined;
  tail: number | undefined;
  json: boolean;
  help: boolean;
}

function parseOptions(args: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        log: { type: "string" },
        store: { type: "string" },
        type: { type: "string", multiple: true },
        user: { type: "string" },
        tail: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let types: Set<EventType> | undefined;
  if (values.type) {
    types = new Set();
    for (const t of values.type.flatMap((v) => v.split(","))) {
      if (!isEventType(t)) {
        throw new UsageError(
          `unknown event type ${JSON.stringify(t)}; known: ${EVENT_TYPES.join(", ")}`,
        );
      }
      types.add(t);
    }
  }
  let tail: number | undefined;
  if (values.tail !== undefined) {
    tail = Number(values.tail);
    if (!/^\d+$/.test(values.tail) || !Number.isSafeInteger(tail) || tail < 1) {
      throw new UsageError(`--tail must be a positive integer, got ${JSON.stringify(values.tail)}`);
    }
  }
  if (values.log !== undefined && values.store !== undefined) {
    throw new UsageError("give --log or --store, not both");
  }
  let store: StoreUrl;
  try {
    store = parseStoreUrl(values.store ?? `file:${values.log ?? "./events.log"}`);
  } catch (e) {
    if (e instanceof StoreUrlError) throw new UsageError(`--store: ${e.message}`);
    throw e;
  }
  return { store, types, user: values.user, tail, json: values.json, help: values.help };
}

/** Buffers output lines and writes them in blocks; throws BrokenPipe when the reader left. */
class Output {
  #lines: string[] = [];
  #bytes = 0;
  #encoder = new TextEncoder();

  line(text: string): void {
    this.#lines.push(text);
    this.#bytes += text.length + 1;
    if (this.#bytes >= 64 * 1024) this.flush();
  }

  flush(): void {
    if (this.#lines.length === 0) return;
    const bytes = this.#encoder.encode(this.#lines.join("\n") + "\n");
    this.#lines = [];
    this.#bytes = 0;
    for (let done = 0; done < bytes.length;) done += Deno.stdout.writeSync(bytes.subarray(done));
  }
}

/** Runs the CLI; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`events: ${e.message}\nRun with --help for usage.`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE.trimEnd());
    return 0;
  }
  const { types, user, tail, json } = options;
  const format = json ? formatEventJson : formatEvent;
  const out = new Output();
  const last: Event[] = [];
  const matches = (event: Event) =>
    (types === undefined || types.has(event.type)) &&
    (user === undefined || namesUser(event, user));
  const onEvent = tail === undefined
    ? (event: Event) => {
      if (matches(event)) out.line(format(event));
    }
    : (event: Event) => {
      if (!matches(event)) return;
      last.push(event);
      if (last.length > 2 * tail) last.splice(0, last.length - tail);
    };
  // Progress would tangle with events streaming to the same terminal; there, they are the progress.
  const showProgress = tail !== undefined || !Deno.stdout.isTerminal();
  // A note on damage comes where it is met, after the events before it (with --tail, before
  // the events it prints at the end).
  const onDamage = (region: DamagedRegion) => {
    out.flush();
    console.error(`events: damaged: ${describeDamage(region)}`);
  };
  const store = options.store;
  try {
    if (store.kind === "postgres") {
      await readPostgresLog(store, {
        onEvent,
        onProgress: showProgress
          ? progressOnStderr(store.description, "events", "reading")
          : undefined,
      });
      if (tail !== undefined) { for (const event of last.slice(-tail)) out.line(format(event)); }
      out.flush();
      return 0;
    }
    const log = store.path;
    const report = await readEventLog(log, {
      onEvent,
      onDamage,
      onProgress: showProgress ? progressOnStderr(log, "bytes", "reading") : undefined,
    });
    if (tail !== undefined) { for (const event of last.slice(-tail)) out.line(format(event)); }
    out.flush();
    if (report.tornTail) {
      const { offset, bytes, reason } = report.tornTail;
      console.error(
        `events: note: from offset ${offset} to the end (${
          plural(bytes, "byte")
        }) is not a whole record (${reason}); a crash cut a write short, or a server is writing now`,
      );
    }
    if (report.damaged.length > 0) {
      const bytes = report.damaged.reduce((sum, region) => sum + region.bytes, 0);
      console.error(
        `events: ${log} is damaged: ${plural(bytes, "byte")} in ${
          plural(report.damaged.length, "region")
        } could not be read; every whole record around them was shown (${
          plural(report.events, "event")
        } in all). Starting the server with --repair keeps a backup and drops only those bytes.`,
      );
      return 1;
    }
    return 0;
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) return 0; // the reader (say, `head`) has had enough
    try {
      out.flush();
    } catch {
      // the events before the failure could not be written either; report the failure
    }
    if (e instanceof Deno.errors.NotFound) {
      console.error(`events: no event log at ${store.description} (use --log PATH)`);
    } else if (e instanceof StoreCorruptError || e instanceof StoreError) {
      console.error(`events: ${e.message}`);
    } else {
      console.error(
        `events: cannot read ${store.description}: ${e instanceof Error ? e.message : e}`,
      );
    }
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
