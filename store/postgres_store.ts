// The event log in PostgreSQL, shared by several server nodes: an EventStore whose appends
// are group-committed into one table, and whose follower receives every node's events in
// one global order, the same on every node.
//
// Global order. Positions are given inside append_batch (_postgres_schema.ts) under a
// transaction-scoped advisory lock, as max(position) + 1, …: one batch at a time in the
// whole cluster. PostgreSQL makes a commit visible before it releases the transaction's
// locks, so the next batch can only take its positions once every lower one is visible (or
// gone with an aborted batch, which leaves no gap since nothing else takes positions). A
// reader's snapshot therefore always sees a prefix of the log, and `WHERE position > $last`
// never steps over an event that becomes visible later. Positions from a sequence would
// not do: nextval() is taken at insert time but committed later, so 8 can be visible before
// 7, and a reader at 8 would miss 7 for ever. The other known answer, that of emmett and
// Marten (store the transaction id, read only below pg_snapshot_xmin and in (xid, position)
// order), lets writers commit in parallel, but ties every reader to the oldest transaction
// running anywhere in the cluster (a forgotten `BEGIN` in psql stops every node's tailing),
// and checking the rules would then need unique indexes to wait on uncommitted rows. One
// writer at a time costs a commit per batch, not per event: each node group-commits while
// the lock is held elsewhere, so batches grow with the load (docs/PERFORMANCE.md measures it).
//
// Tailing. NOTIFY, sent at commit with the new head, only wakes the readers; what they
// apply is read by position, and a poll every POLL_INTERVAL_MS catches a missed wake-up. This
// node's own appends are handed to the follower from memory, with their tag, when the
// reader reaches the positions the batch returned; foreign events come without one.
//
// Driver. postgres.js (`npm:postgres`), not `npm:pg`: it pipelines queries on a connection,
// prepares statements by itself, speaks LISTEN/NOTIFY on a connection of its own, needs no
// native module, and runs unchanged on Deno's Node compatibility; `pg` would need a pool, an
// explicit prepared-statement name per query and a hand-made LISTEN connection for the same.

import postgres from "postgres";
import {
  AppendConflict,
  type ConflictRule,
  type EventStore,
  type Follower,
} from "./event_store.ts";
import { StoreCorruptError, StoreError } from "./errors.ts";
import type { Event } from "./events.ts";
import { evolve, initialState, type State } from "./projection.ts";
import { decodeRecord, encodeRecord, recordAt } from "./record_format.ts";
import { parseStoreUrl, type StoreUrl } from "./store_url.ts";
import {
  appendLockSql,
  channelOf,
  ddlLockSql,
  SCHEMA_FORMAT,
  schemaStatements,
} from "./_postgres_schema.ts";
import { GroupCommit } from "./_group_commit.ts";

/**
 * Longest an append waits for its commit and its hand-over to the follower before it is
 * refused as `unavailable`: the server answers its client instead of hanging on a database
 * that is gone. A read or a commit that takes longer is abandoned with its connection.
 */
export const QUERY_TIMEOUT_MS = 5_000;
/** Seconds to establish a connection; a database that is down is reported within them. */
export const CONNECT_TIMEOUT_S = 3;
/** PostgreSQL's own default port, where neither the URL nor PGPORT names one. */
const DEFAULT_PG_PORT = 5432;
/** How often the log is read even without a NOTIFY: the bound on a missed wake-up. */
export const POLL_INTERVAL_MS = 1_000;
/** Events read per query, at start-up and when catching up. */
export const PAGE_EVENTS = 10_000;
/** Most events in one batch; further appends wait for the next. */
export const MAX_BATCH_EVENTS = 10_000;
/** Most bytes of records in one batch (sent as hex, so twice this on the wire). */
export const MAX_BATCH_BYTES = 4 << 20;
/**
 * A session stuck inside a transaction is ended after this long, so a node that vanished
 * mid-batch cannot hold the append lock: PostgreSQL would otherwise wait for TCP to notice.
 */
const SESSION_SETTINGS = {
  synchronous_commit: "on",
  idle_in_transaction_session_timeout: 10_000,
  lock_timeout: QUERY_TIMEOUT_MS,
  statement_timeout: 60_000,
};
/** The application_name the nodes' sessions show in pg_stat_activity. */
export const APPLICATION_NAME = "hybrid-server";

type Sql = postgres.Sql;

/** What the store tells its owner about the database, for the operator's log. */
export type PostgresStatus =
  /** Appends or reads fail (nothing acknowledged is lost); the store keeps retrying. */
  | { kind: "unavailable"; error: StoreError }
  /** The database answers again after being unavailable. */
  | { kind: "available" }
  /** A row cannot be applied (not a valid event): tailing stops before it. */
  | { kind: "stalled"; error: StoreCorruptError }
  /** The follower threw on another node's events; they count as applied. */
  | { kind: "follower_failed"; error: unknown };

/** Options of `openPostgresStore`. */
export interface PostgresOpenOptions {
  /** Called as replay reads the log, with events read and the events to read. */
  onProgress?: (eventsDone: number, eventsTotal: number) => void;
  /**
   * Called with each replayed event, after it is applied to the state (which it may read,
   * not change); throwing stops the replay and the open.
   */
  onEvent?: (event: Event, position: number, state: State) => void;
  /** Told when the database stops or starts answering. */
  onStatus?: (status: PostgresStatus) => void;
  /** Default QUERY_TIMEOUT_MS (tests shorten it). */
  queryTimeoutMs?: number;
  /** Default POLL_INTERVAL_MS. */
  pollIntervalMs?: number;
  /** Default APPLICATION_NAME. */
  applicationName?: string;
  /**
   * LISTEN for new heads (default true). Tests turn it off, with a long poll interval, to make
   * a node that lags behind the log for as long as they need.
   */
  listen?: boolean;
}

/** What opening did. */
export interface PostgresOpenReport {
  /** The database, without its password, and the schema. */
  description: string;
  schema: string;
  /** The schema's tables did not exist and were created. */
  created: boolean;
  /** Events replayed. */
  events: number;
  /** Position of the last event replayed (0 for an empty log). */
  position: number;
  ms: number;
}

/** Counters of an open store, for tests and benchmarks. */
export interface PostgresStats {
  /** Events appended by this node and committed. */
  appends: number;
  /** Transactions that committed them: one per batch. */
  batches: number;
  /** Events handed to the follower, this node's and others'. */
  applied: number;
  /** Head queries made to catch up (see catchUp). */
  headQueries: number;
}

/** What `openPostgresStore` returns, like `openEventLog`'s OpenedLog. */
export interface OpenedPostgresStore<Tag> {
  store: PostgresEventStore<Tag>;
  state: State;
  report: PostgresOpenReport;
}

type PostgresUrl = Extract<StoreUrl, { kind: "postgres" }>;

/**
 * Connects, creates the schema if missing (safe with several nodes starting at once),
 * replays every event into a fresh projection, and returns a store that tails the log from
 * there. A database that cannot be reached throws StoreError `unavailable`; a row that is not
 * a valid event, StoreCorruptError; a schema written by a newer version, StoreError `bad_path`.
 */
export async function openPostgresStore<Tag = unknown>(
  url: PostgresUrl | string,
  options: PostgresOpenOptions = {},
): Promise<OpenedPostgresStore<Tag>> {
  const started = performance.now();
  const where = postgresUrl(url);
  const config = { ...where, ...settingsOf(options) };
  const writer = connect(config, 1);
  const reader = connect(config, 1);
  try {
    const created = await ensureSchema(writer, config);
    const state = initialState();
    const onEvent = options.onEvent;
    const { events, position } = await readLog(reader, config, 0, {
      onEvent(event, pos) {
        evolve(state, event);
        onEvent?.(event, pos, state);
      },
      onProgress: options.onProgress,
    });
    const store = new PostgresEventStore<Tag>(config, writer, reader, position, options);
    const report: PostgresOpenReport = {
      description: where.description,
      schema: where.schema,
      created,
      events,
      position,
      ms: performance.now() - started,
    };
    return { store, state, report };
  } catch (e) {
    await Promise.all([writer.end({ timeout: 0 }), reader.end({ timeout: 0 })]);
    throw e;
  }
}

/** Options of `readPostgresLog`. */
export interface PostgresReadOptions {
  onEvent: (event: Event, position: number) => void;
  onProgress?: (eventsDone: number, eventsTotal: number) => void;
}

/**
 * Reads the log at `url` from its start to its head when called, without changing it (nodes
 * may be running): for tools. Throws like `openPostgresStore`, and StoreError bad_path when
 * the schema does not exist. Returns the events read and the last position.
 */
export async function readPostgresLog(
  url: PostgresUrl | string,
  options: PostgresReadOptions,
): Promise<{ events: number; position: number; ms: number }> {
  const started = performance.now();
  const config = { ...postgresUrl(url), ...settingsOf({}) };
  const sql = connect(config, 1);
  try {
    if (!(await schemaExists(sql, config))) {
      // Not an empty log: a mistyped ?schema= would otherwise read as one, and a migration
      // from it would copy nothing and call that verified.
      throw new StoreError(
        "bad_path",
        `no event log at ${config.description}: the database has no schema ` +
          `${config.schema} (check the URL's ?schema=)`,
      );
    }
    const read = await readLog(sql, config, 0, options);
    return { ...read, ms: performance.now() - started };
  } finally {
    await sql.end({ timeout: 0 });
  }
}

/**
 * Copies `events` into the log at `url` in ONE transaction (all or nothing), creating the
 * schema if needed, as a migration does: the rules' keys are recorded but refuse nothing
 * (the copy is of a history as it was). Refuses, changing nothing, when the log already
 * holds events. `onProgress` gets events copied and the total.
 */
export async function importIntoPostgres(
  url: PostgresUrl | string,
  events: readonly Event[],
  onProgress?: (eventsDone: number, eventsTotal: number) => void,
): Promise<{ events: number; position: number; ms: number }> {
  const started = performance.now();
  const config = { ...postgresUrl(url), ...settingsOf({}) };
  const sql = connect(config, 1);
  try {
    await ensureSchema(sql, config);
    const position = await guard(config, "copying into", () =>
      sql.begin(async (tx) => {
        await tx.unsafe(appendLockSql(config.schema));
        const [top] = await tx`SELECT coalesce(max(position), 0) AS head
          FROM ${tx(config.schema)}.events`;
        if (Number(top!.head) !== 0) {
          throw new StoreError(
            "conflict",
            `${config.description} already holds events (up to position ${top!.head}); ` +
              "a copy goes only into an empty log",
          );
        }
        // The rules' keys go in once at the end, not through append_batch: it counts a
        // sender's cids by updating the sender's row once per cid, and within one
        // transaction every update walks the row's earlier versions, so a long history
        // (300,000 cids of one sender) took minutes instead of seconds.
        const rules = new RuleRows();
        let head = 0;
        for (let from = 0; from < events.length; from += MAX_BATCH_EVENTS) {
          const chunk = events.slice(from, from + MAX_BATCH_EVENTS);
          const batch = chunk.map((event) => rules.take(prepare([event])));
          const id = crypto.randomUUID();
          const [row] = await appendBatch(tx as unknown as Sql, config.schema, id, batch, false);
          head = Number(row!.head) + chunk.length;
          onProgress?.(from + chunk.length, events.length);
        }
        await rules.insert(tx as unknown as Sql, config.schema);
        return head;
      }));
    return { events: events.length, position, ms: performance.now() - started };
  } finally {
    await sql.end({ timeout: 0 });
  }
}

/** The last position of the log at `url` (0 when empty or when the schema does not exist). */
export async function postgresLogHead(url: PostgresUrl | string): Promise<number> {
  const config = { ...postgresUrl(url), ...settingsOf({}) };
  const sql = connect(config, 1);
  try {
    if (!(await schemaExists(sql, config))) return 0;
    const [row] = await guard(
      config,
      "reading",
      () => sql`SELECT coalesce(max(position), 0) AS head FROM ${sql(config.schema)}.events`,
    );
    return Number(row!.head);
  } finally {
    await sql.end({ timeout: 0 });
  }
}

interface Config {
  connection: string;
  schema: string;
  description: string;
  hosts: PostgresUrl["hosts"];
  timeoutMs: number;
  pollMs: number;
  applicationName: string;
  listen: boolean;
}

function postgresUrl(url: PostgresUrl | string): PostgresUrl {
  const parsed = typeof url === "string" ? parseStoreUrl(url) : url;
  if (parsed.kind !== "postgres") {
    throw new TypeError(`${parsed.description} is not a PostgreSQL URL`);
  }
  return parsed;
}

function settingsOf(options: PostgresOpenOptions) {
  return {
    timeoutMs: options.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
    pollMs: options.pollIntervalMs ?? POLL_INTERVAL_MS,
    applicationName: options.applicationName ?? APPLICATION_NAME,
    listen: options.listen ?? true,
  };
}

function connect(
  config: Config,
  max: number,
  extra: { onnotify?: (channel: string, payload: string) => void; onclose?: () => void } = {},
): Sql {
  const options = {
    max,
    connect_timeout: CONNECT_TIMEOUT_S,
    // Our connections live as long as the store: no idle or lifetime recycling, which would
    // drop a LISTEN and cost a reconnect for nothing.
    idle_timeout: 0,
    max_lifetime: null,
    // Array types are fetched once per connection: append_batch answers with int[] and text[].
    fetch_types: extra.onnotify === undefined,
    onnotice: () => {},
    connection: { ...SESSION_SETTINGS, application_name: config.applicationName },
    ...ipv6Hosts(config.hosts),
    // onnotify is an option of the driver that its type declarations leave out.
    ...extra,
  };
  return postgres(config.connection, options as postgres.Options<Record<string, never>>);
}

/** Creates the schema if missing, under the DDL lock; returns whether it was created. */
/**
 * The driver reads a URL's host up to its first ':', so `postgres://[::1]:5432/db` would reach a
 * host named "[": an IPv6 literal goes to it as the host and port options instead (the driver's
 * default port, PGPORT or 5432, where the URL names none). Other URLs are left to the driver.
 */
function ipv6Hosts(hosts: Config["hosts"]): { host?: string[]; port?: number[] } {
  if (!hosts.some((h) => h.host.includes(":"))) return {};
  const fallback = Number(Deno.env.get("PGPORT") ?? "") || DEFAULT_PG_PORT;
  return { host: hosts.map((h) => h.host), port: hosts.map((h) => h.port ?? fallback) };
}

async function ensureSchema(sql: Sql, config: Config): Promise<boolean> {
  return await guard(config, "creating the schema in", () =>
    sql.begin(async (tx) => {
      await tx.unsafe(ddlLockSql());
      const [found] = await tx`SELECT to_regclass(${`${config.schema}.events`}) AS events`;
      const created = found!.events === null;
      if (!created) {
        const [meta] = await tx.unsafe(
          `SELECT value FROM ${config.schema}.meta WHERE key = 'format'`,
        );
        const format = Number(meta?.value);
        if (!(format <= SCHEMA_FORMAT)) {
          throw new StoreError(
            "bad_path",
            `${config.description} holds a log of layout ${meta?.value ?? "(none)"}; ` +
              `this build reads layout ${SCHEMA_FORMAT}: run the version that wrote it`,
          );
        }
      }
      for (const statement of schemaStatements(config.schema)) await tx.unsafe(statement);
      return created;
    }), true);
}

async function schemaExists(sql: Sql, config: Config): Promise<boolean> {
  const [found] = await guard(
    config,
    "reading",
    () => sql`SELECT to_regclass(${`${config.schema}.events`}) AS events`,
    true,
  );
  return found!.events !== null;
}

/** A row of the events table. */
interface Row {
  position: string;
  type: string;
  record: Uint8Array;
  batch: string;
}

/** One page of rows after `after`, in position order. */
function readPage(sql: Sql, schema: string, after: number, limit: number) {
  return sql<Row[]>`SELECT position, type, record, batch FROM ${sql(schema)}.events
    WHERE position > ${after} ORDER BY position LIMIT ${limit}`;
}

/** The event of a row; StoreCorruptError (offset = position) if it holds none. */
function decodeRow(row: Row, description: string): Event {
  const position = Number(row.position);
  const bytes = row.record;
  let event: Event | undefined;
  let cause: unknown;
  try {
    if (recordAt(bytes, 0, bytes.length, 0) === bytes.length) {
      event = decodeRecord(bytes, 0, bytes.length);
    }
  } catch (e) {
    cause = e;
  }
  if (event === undefined || event.type !== row.type) {
    throw new StoreCorruptError(
      "bad_event",
      position,
      `event ${position} of ${description} is not a valid ${row.type} record` +
        (event ? ` (it holds a ${event.type})` : ""),
      cause === undefined ? undefined : { cause },
    );
  }
  return event;
}

/** Reads every event after `after` up to the head at the time of the call. */
async function readLog(
  sql: Sql,
  config: Config,
  after: number,
  options: PostgresReadOptions,
): Promise<{ events: number; position: number }> {
  const [top] = await guard(
    config,
    "reading",
    () => sql`SELECT coalesce(max(position), 0) AS head FROM ${sql(config.schema)}.events`,
    true,
  );
  const head = Number(top!.head);
  const total = Math.max(0, head - after);
  let position = after;
  let events = 0;
  while (position < head) {
    const rows = await guard(
      config,
      "reading",
      () => readPage(sql, config.schema, position, Math.min(PAGE_EVENTS, head - position)),
    );
    if (rows.length === 0) break;
    for (const row of rows) {
      position = Number(row.position);
      options.onEvent(decodeRow(row, config.description), position);
      events++;
    }
    options.onProgress?.(Math.min(position - after, total), total);
  }
  if (total > 0 && position < head) options.onProgress?.(total, total);
  return { events, position };
}

/**
 * Runs `query`, turning what the driver throws for a database that cannot be reached into
 * StoreError `unavailable` naming the database (never its password). `bounded`: the query
 * opens a connection, and fails as unavailable without an answer within the query timeout:
 * the driver retries for ever a first connection that is accepted and then closed (a proxy
 * or balancer in front of a database that is down), so its connect timeout never fires.
 * The caller ends the client, which stops the retries.
 */
async function guard<T>(
  config: Config,
  doing: string,
  query: () => Promise<T>,
  bounded = false,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const answer = query();
    if (!bounded) return await answer;
    answer.catch(() => {}); // a late failure after the timeout
    return await Promise.race([
      answer,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${config.timeoutMs} ms`)),
          config.timeoutMs,
        );
      }),
    ]);
  } catch (e) {
    if (e instanceof StoreError || e instanceof StoreCorruptError) throw e;
    throw unavailable(config, doing, e);
  } finally {
    clearTimeout(timer);
  }
}

function unavailable(config: Config, doing: string, e: unknown): StoreError {
  return new StoreError(
    "unavailable",
    `PostgreSQL failed ${doing} ${config.description}: ${reasonOf(e, config.connection)}`,
  );
}

/**
 * What went wrong, for people: the server's message and SQLSTATE, or the driver's error
 * code. The driver's error object is not chained as a cause: it carries the query's
 * parameters (message texts), which do not belong in an operator's log.
 */
function reasonOf(e: unknown, connection: string): string {
  let text: string;
  if (e instanceof postgres.PostgresError) text = `${e.message} (SQLSTATE ${e.code})`;
  else if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    text = typeof code === "string" && !e.message.includes(code)
      ? `${code}: ${e.message}`
      : e.message;
  } else text = String(e);
  const password = passwordOf(connection);
  return password === "" ? text : text.replaceAll(password, "***");
}

function passwordOf(connection: string): string {
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^@]*)@/.exec(connection);
  const colon = m?.[1]?.indexOf(":") ?? -1;
  if (!m || colon < 0) return "";
  try {
    return decodeURIComponent(m[1]!.slice(colon + 1));
  } catch {
    return m[1]!.slice(colon + 1);
  }
}

/** A key of a cluster-wide rule, as append_batch takes it (hex of UTF-8). */
interface RuleKey {
  kind: "user" | "cid";
  a: string;
  b: string;
}

/** An append encoded for append_batch. */
interface Prepared {
  events: readonly Event[];
  records: string[];
  types: string[];
  keys: RuleKey[];
  bytes: number;
}

const utf8 = new TextEncoder();
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!];
  return out;
}

/** Encodes an append; throws TypeError or RangeError for an event the log cannot hold. */
function prepare(events: readonly Event[]): Prepared {
  const records: string[] = [];
  const types: string[] = [];
  const keys: RuleKey[] = [];
  let bytes = 0;
  for (const event of events) {
    const record = encodeRecord(event, 0);
    bytes += record.length;
    records.push(hex(record));
    types.push(event.type);
    if (event.type === "user_signed_up") {
      keys.push({ kind: "user", a: hex(utf8.encode(event.user)), b: "" });
    } else if (
      (event.type === "message_sent" && event.cid !== undefined) || event.type === "cid_remembered"
    ) {
      keys.push({ kind: "cid", a: hex(utf8.encode(event.from)), b: hex(utf8.encode(event.cid!)) });
    }
  }
  return { events, records, types, keys, bytes };
}

/**
 * The rows of the rule tables that a history's appends through append_batch would leave:
 * each name signed up, each sender's count of cid uses, and each cid's latest use.
 */
class RuleRows {
  readonly #names = new Set<string>();
  readonly #uses = new Map<string, number>();
  readonly #cids = new Map<string, { sender: string; cid: string; use: number }>();

  /** Records `p`'s keys and returns it without them. */
  take(p: Prepared): Prepared {
    for (const key of p.keys) {
      if (key.kind === "user") {
        this.#names.add(key.a);
        continue;
      }
      const use = (this.#uses.get(key.a) ?? 0) + 1;
      this.#uses.set(key.a, use);
      this.#cids.set(keyId(key), { sender: key.a, cid: key.b, use });
    }
    return { ...p, keys: [] };
  }

  /** Inserts the rows, in statements of at most MAX_BATCH_EVENTS rows. */
  async insert(sql: Sql, schema: string): Promise<void> {
    const names = [...this.#names];
    const senders = [...this.#uses];
    const cids = [...this.#cids.values()];
    for (let i = 0; i < names.length; i += MAX_BATCH_EVENTS) {
      const part = names.slice(i, i + MAX_BATCH_EVENTS);
      await sql`INSERT INTO ${sql(schema)}.user_names (name)
        SELECT decode(n, 'hex') FROM unnest(${part}::text[]) AS n`;
    }
    for (let i = 0; i < senders.length; i += MAX_BATCH_EVENTS) {
      const part = senders.slice(i, i + MAX_BATCH_EVENTS);
      await sql`INSERT INTO ${sql(schema)}.cid_senders (sender, uses)
        SELECT decode(s, 'hex'), u
        FROM unnest(${part.map(([s]) => s)}::text[], ${
        part.map(([, u]) => u)
      }::bigint[]) AS t(s, u)`;
    }
    for (let i = 0; i < cids.length; i += MAX_BATCH_EVENTS) {
      const part = cids.slice(i, i + MAX_BATCH_EVENTS);
      await sql`INSERT INTO ${sql(schema)}.cids (sender, cid, use)
        SELECT decode(s, 'hex'), decode(c, 'hex'), u
        FROM unnest(${part.map((r) => r.sender)}::text[], ${part.map((r) => r.cid)}::text[],
          ${part.map((r) => r.use)}::bigint[]) AS t(s, c, u)`;
    }
  }
}

function keyId(key: RuleKey): string {
  return `${key.kind}:${key.a}:${key.b}`;
}

/**
 * Calls append_batch with the appends of `batch` (in order) under the id `id`; its one row:
 * the head before it, the refused appends and their rules.
 */
function appendBatch(
  sql: Sql,
  schema: string,
  id: string,
  batch: readonly Prepared[],
  enforce: boolean,
) {
  const records: string[] = [];
  const types: string[] = [];
  const owners: number[] = [];
  const keyOwners: number[] = [];
  const kinds: string[] = [];
  const keyA: string[] = [];
  const keyB: string[] = [];
  batch.forEach((p, owner) => {
    for (let i = 0; i < p.records.length; i++) {
      records.push(p.records[i]!);
      types.push(p.types[i]!);
      owners.push(owner);
    }
    for (const key of p.keys) {
      keyOwners.push(owner);
      kinds.push(key.kind);
      keyA.push(key.a);
      keyB.push(key.b);
    }
  });
  return sql<{ head: string; refused_owners: number[]; refused_rules: ConflictRule[] }[]>`
    SELECT head, refused_owners, refused_rules FROM ${sql(schema)}.append_batch(
      ${id}::uuid, ${records}::text[], ${types}::text[], ${owners}::int[],
      ${keyOwners}::int[], ${kinds}::text[], ${keyA}::text[], ${keyB}::text[], ${enforce})`;
}

interface Pending<Tag> extends Prepared {
  tag: Tag;
  /** Starts a group commit (false for appendDeferred). */
  urgent: boolean;
  /** Position of its first event, once committed. */
  first: number;
  /** Committed, but the caller was told it failed: handed to the follower without its tag. */
  orphan: boolean;
  settled: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The first appends of the queue, within the batch limits, stopping before one that shares
 * a rule key with an append already taken: whether it is refused depends on whether that
 * one commits, which append_batch learns only in order, so it goes in the next batch.
 */
function takeBatch<Tag>(queue: Pending<Tag>[]): Pending<Tag>[] {
  let n = 0;
  let events = 0;
  let bytes = 0;
  const keys = new Set<string>();
  while (n < queue.length) {
    const p = queue[n]!;
    events += p.events.length;
    bytes += p.bytes;
    if (n > 0 && (events > MAX_BATCH_EVENTS || bytes > MAX_BATCH_BYTES)) break;
    if (p.keys.some((key) => keys.has(keyId(key)))) break;
    for (const key of p.keys) keys.add(keyId(key));
    n++;
  }
  return queue.splice(0, n);
}

/** A committed batch whose appends are not all settled, and its hand-over deadline. */
interface Sent<Tag> {
  appends: Pending<Tag>[];
  /** The AppendConflict of each refused append, told once the follower is past `at`. */
  refusals: Map<Pending<Tag>, { at: number; error: AppendConflict }>;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The log in PostgreSQL as an EventStore. Open it with `openPostgresStore`. An append
 * resolves once committed and handed to the follower. Refused by a rule, it rejects with
 * AppendConflict, and only once the follower has been handed every event committed before
 * it, the one it conflicts with included (so the state can answer, e.g. with the first ACK
 * of a cid). When the database does not answer within the timeout it rejects with StoreError
 * `unavailable`: if the connection was lost during the commit, its events may still have
 * been stored, and they then reach the follower later without their tag, like another
 * node's.
 */
export class PostgresEventStore<Tag = unknown> implements EventStore<Tag> {
  readonly description: string;
  readonly #config: Config;
  readonly #onStatus: ((status: PostgresStatus) => void) | undefined;
  #writer: Sql;
  #reader: Sql;
  #listener: Sql | undefined;
  #listening = false;
  #follower: Follower<Tag> | undefined;

  readonly #commits = new GroupCommit<Pending<Tag>>({
    takeBatch,
    commit: (batch) => this.#commit(batch),
  });

  /** Position of the last event handed to the follower. */
  #applied: number;
  /** Highest position known to be committed (from our batches and NOTIFYs). */
  #knownHead: number;
  /** This node's committed appends not yet handed over, by their first position. */
  #own = new Map<number, Pending<Tag>>();
  #sent = new Set<Sent<Tag>>();
  /** Ids of this node's batches sent and not yet answered: their rows may already be read. */
  #inFlight = new Set<string>();
  /** A read is wanted even if nothing is known to be new (start, poll, a full page). */
  #readDue = true;
  /** Something happened since the tailing pass looked. */
  #again = false;
  /** The last read failed: wait for the next poll instead of retrying at once. */
  #readFailed = false;
  /** The last read met rows of a batch whose commit has not answered: wait for the answer. */
  #awaitingCommit = false;
  #tailing: Promise<void> | undefined;
  #pollTimer: ReturnType<typeof setInterval> | undefined;
  #available = true;
  #stalled: StoreCorruptError | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  #drained: (() => void) | undefined;
  #stats: PostgresStats = { appends: 0, batches: 0, applied: 0, headQueries: 0 };
  /** The catch-up whose head query runs now, and the next, which every caller since shares. */
  #catchUpRunning: Promise<void> | undefined;
  #catchUpNext: Promise<void> | undefined;
  /** Who waits in `catchUp` for the follower to reach a position. */
  #waitingFor: { position: number; resolve: () => void }[] = [];

  /** Use `openPostgresStore`. */
  constructor(
    config: Config,
    writer: Sql,
    reader: Sql,
    position: number,
    options: PostgresOpenOptions,
  ) {
    this.#config = config;
    this.description = config.description;
    this.#writer = writer;
    this.#reader = reader;
    this.#applied = position;
    this.#knownHead = position;
    this.#onStatus = options.onStatus;
    this.#pollTimer = setInterval(() => this.#poll(), config.pollMs);
    this.#listen();
  }

  get stats(): PostgresStats {
    return { ...this.#stats };
  }

  /** Position of the last event handed to the follower. */
  get position(): number {
    return this.#applied;
  }

  follow(follower: Follower<Tag>): void {
    this.#follower = follower;
    this.#kick();
  }

  /**
   * Resolves once the follower has every event committed before this call: the head is read
   * afresh and waited for. A node says that something does not exist only after this, so a
   * name signed up through another node a moment ago is not told "unknown" here.
   */
  catchUp(): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new StoreError("closed", `${this.description} is closed`));
    }
    // One head query at a time per node, however many sessions ask: a client sending requests
    // whose answer is an absence (GPK of an unknown user, say) must not turn each into a query
    // of its own. Every call shares the next query to start, which starts after it was made
    // (the head it reads is then at least as new as the call needs), once the running one ends.
    this.#catchUpNext ??= (this.#catchUpRunning ?? Promise.resolve()).catch(() => {}).then(() => {
      this.#catchUpNext = undefined;
      const run: Promise<void> = this.#catchUpOnce().finally(() => {
        if (this.#catchUpRunning === run) this.#catchUpRunning = undefined;
      });
      this.#catchUpRunning = run;
      return run;
    });
    return this.#catchUpNext;
  }

  async #catchUpOnce(): Promise<void> {
    if (this.#closed) throw new StoreError("closed", `${this.description} is closed`);
    this.#stats.headQueries++;
    let head: number;
    try {
      const [row] = await this.#timed(
        this.#reader.unsafe(
          `SELECT coalesce(max(position), 0)::bigint AS head FROM ${this.#config.schema}.events`,
        ),
        () => this.#reader = this.#replace(this.#reader),
      );
      head = Number(row!.head);
    } catch (e) {
      throw unavailable(this.#config, "reading the head", e);
    }
    if (head <= this.#applied) return;
    this.#knownHead = Math.max(this.#knownHead, head);
    this.#readDue = true;
    const reached = new Promise<void>((resolve) =>
      this.#waitingFor.push({ position: head, resolve })
    );
    this.#kick();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        reached,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(unavailable(this.#config, "catching up", "the log was not read in time")),
            this.#config.timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  append(events: readonly Event[], tag: Tag): Promise<void> {
    return this.#enqueue(events, tag, true);
  }

  appendDeferred(event: Event, tag: Tag): Promise<void> {
    return this.#enqueue([event], tag, false);
  }

  #enqueue(events: readonly Event[], tag: Tag, urgent: boolean): Promise<void> {
    if (this.#closing) {
      return Promise.reject(new StoreError("closed", `${this.description} is closed`));
    }
    if (events.length === 0) return Promise.resolve();
    let prepared: Prepared;
    try {
      prepared = prepare(events);
    } catch (e) {
      return Promise.reject(e);
    }
    const seen = new Set<string>();
    for (const key of prepared.keys) {
      if (seen.has(keyId(key))) {
        const rule: ConflictRule = key.kind === "user" ? "user_exists" : "cid_used";
        return Promise.reject(new AppendConflict(rule, `one append uses a ${key.kind} twice`));
      }
      seen.add(keyId(key));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#commits.push({
      ...prepared,
      tag,
      urgent,
      first: 0,
      orphan: false,
      settled: false,
      resolve,
      reject,
    });
    return promise;
  }

  /** Commits one batch; its appends settle later, as the follower is handed them. */
  async #commit(batch: Pending<Tag>[]): Promise<void> {
    const started = performance.now();
    const id = crypto.randomUUID();
    this.#inFlight.add(id);
    let row;
    try {
      [row] = await this.#timed(
        appendBatch(this.#writer, this.#config.schema, id, batch, true),
        () => this.#writer = this.#replace(this.#writer),
      );
    } catch (e) {
      // If it committed all the same, its rows are applied like another node's.
      this.#inFlight.delete(id);
      this.#awaitingCommit = false;
      this.#kick();
      const error = new StoreError(
        "unavailable",
        `${unavailable(this.#config, "appending to", e).message}; nothing was acknowledged ` +
          "(if the connection broke during the commit, the events may be stored and are then " +
          "applied like another node's)",
      );
      for (const p of batch) this.#settle(p, error);
      // The next batch would most likely fail the same way: fail fast; a later append retries.
      for (const p of this.#commits.drop()) this.#settle(p, error);
      this.#unavailable(error);
      return;
    }
    this.#inFlight.delete(id);
    this.#awaitingCommit = false;
    this.#isAvailable();
    this.#stats.batches++;
    const refused = new Map<number, ConflictRule>();
    row!.refused_owners.forEach((owner, i) => refused.set(owner, row!.refused_rules[i]!));
    let position = Number(row!.head);
    const sent: Sent<Tag> = {
      appends: batch,
      refusals: new Map(),
      timer: setTimeout(
        () => this.#expire(sent),
        Math.max(0, this.#config.timeoutMs - (performance.now() - started)),
      ),
    };
    batch.forEach((p, owner) => {
      const rule = refused.get(owner);
      if (rule !== undefined) {
        const what = rule === "user_exists" ? "that name is signed up" : "that cid was used";
        const error = new AppendConflict(rule, `${what} already (${this.description})`);
        sent.refusals.set(p, { at: position, error });
        return;
      }
      p.first = position + 1;
      this.#own.set(p.first, p);
      position += p.events.length;
      this.#stats.appends += p.events.length;
    });
    this.#sent.add(sent);
    this.#knownHead = Math.max(this.#knownHead, position);
    this.#settleSent(); // refusals of events the follower already has
    this.#kick();
  }

  /**
   * The hand-over deadline of a batch has passed: the follower could not be brought to its
   * positions (the database stopped answering reads). Its appends are stored; they are
   * refused now so the server can answer, and reach the follower later without their tag.
   */
  #expire(sent: Sent<Tag>): void {
    this.#sent.delete(sent);
    for (const p of sent.appends) {
      if (p.settled) continue;
      const refusal = sent.refusals.get(p);
      if (refusal) {
        this.#settle(p, refusal.error);
        continue;
      }
      p.orphan = true;
      this.#settle(
        p,
        new StoreError(
          "unavailable",
          `${this.description}: the append was stored, but this node could not read the log ` +
            `back within ${this.#config.timeoutMs} ms; it is applied when the database answers`,
        ),
      );
    }
  }

  #settle(p: Pending<Tag>, error?: unknown): void {
    if (p.settled) return;
    p.settled = true;
    if (error === undefined) p.resolve();
    else p.reject(error);
    if (this.#drained && this.#unsettled() === 0) this.#drained();
  }

  #unsettled(): number {
    let n = this.#commits.queue.length;
    for (const sent of this.#sent) for (const p of sent.appends) if (!p.settled) n++;
    return n;
  }

  /** Starts a tailing pass, or tells the running one to look again before it stops. */
  #kick(): void {
    if (this.#follower === undefined || this.#closed) return;
    this.#again = true;
    this.#tailing ??= this.#tail().finally(() => {
      this.#tailing = undefined;
      if (this.#again && !this.#readFailed && !this.#awaitingCommit) this.#kick();
    });
  }

  /** Hands the follower everything new: own appends from memory, the rest read by position. */
  async #tail(): Promise<void> {
    while (this.#again && this.#follower !== undefined && !this.#closed) {
      this.#again = false;
      for (;;) {
        const own = this.#own.get(this.#applied + 1);
        if (own) {
          this.#handOver(own.events, own, own.first + own.events.length - 1);
          continue;
        }
        if (!this.#readDue && this.#applied >= this.#knownHead) break;
        this.#readDue = false;
        let rows;
        try {
          rows = await this.#timed(
            readPage(this.#reader, this.#config.schema, this.#applied, PAGE_EVENTS),
            () => this.#reader = this.#replace(this.#reader),
          );
        } catch (e) {
          this.#readFailed = true;
          this.#unavailable(unavailable(this.#config, "reading", e));
          return; // the next poll tries again
        }
        this.#readFailed = false;
        this.#isAvailable();
        if (rows.length === PAGE_EVENTS) this.#readDue = true;
        try {
          this.#applyRows(rows);
          if (this.#awaitingCommit) return; // the commit's answer kicks again
        } catch (e) {
          if (!(e instanceof StoreCorruptError)) throw e;
          if (this.#stalled?.offset !== e.offset) this.#onStatus?.({ kind: "stalled", error: e });
          this.#stalled = e;
          this.#readFailed = true;
          return;
        }
      }
    }
  }

  /** Hands over `rows` in order: this node's appends from memory, others' decoded. */
  #applyRows(rows: readonly Row[]): void {
    let foreign: Event[] = [];
    let last = this.#applied;
    const flush = () => {
      if (foreign.length === 0) return;
      const events = foreign;
      foreign = [];
      this.#handOver(events, undefined, last);
    };
    for (const row of rows) {
      const position = Number(row.position);
      if (position <= last) continue; // an own append's, handed over from memory
      const own = this.#own.get(position);
      if (own) {
        flush();
        last = own.first + own.events.length - 1;
        this.#handOver(own.events, own, last);
        continue;
      }
      if (this.#inFlight.has(row.batch)) {
        // Ours, read before our commit's answer: it goes over, with its tag, once that comes.
        this.#awaitingCommit = true;
        this.#readDue = true;
        break;
      }
      try {
        foreign.push(decodeRow(row, this.description));
      } catch (e) {
        flush();
        throw e;
      }
      last = position;
    }
    flush();
    this.#knownHead = Math.max(this.#knownHead, last);
  }

  /**
   * Gives `events`, the log's next ones up to position `last`, to the follower, with the tag
   * of `own` unless its caller was already told it failed, then settles what waited for them.
   */
  #handOver(events: readonly Event[], own: Pending<Tag> | undefined, last: number): void {
    if (own) this.#own.delete(own.first);
    this.#applied = last;
    this.#stats.applied += events.length;
    try {
      this.#follower!(events, own && !own.orphan ? own.tag : undefined);
    } catch (e) {
      if (own && !own.settled) this.#settle(own, e);
      else this.#onStatus?.({ kind: "follower_failed", error: e });
    }
    if (own) this.#settle(own);
    this.#settleSent();
    if (this.#waitingFor.length > 0) {
      const reached = this.#waitingFor.filter((w) => w.position <= last);
      this.#waitingFor = this.#waitingFor.filter((w) => w.position > last);
      for (const w of reached) w.resolve();
    }
  }

  /** Tells each refusal whose conflicting events the follower now has; forgets settled batches. */
  #settleSent(): void {
    for (const sent of this.#sent) {
      let left = false;
      for (const p of sent.appends) {
        if (p.settled) continue;
        const refusal = sent.refusals.get(p);
        if (refusal && refusal.at <= this.#applied) this.#settle(p, refusal.error);
        else left = true;
      }
      if (!left) {
        clearTimeout(sent.timer);
        this.#sent.delete(sent);
      }
    }
  }

  #poll(): void {
    this.#readFailed = false;
    this.#readDue = true;
    this.#kick();
    if (!this.#listening) this.#listen();
  }

  /** LISTENs on a connection of its own; a lost connection is noticed and LISTENed again. */
  #listen(): void {
    if (this.#closed || this.#listening || !this.#config.listen) return;
    this.#listening = true;
    const listener = this.#listener ??= connect(this.#config, 1, {
      onnotify: (_channel, payload) => {
        const head = Number(payload);
        if (Number.isSafeInteger(head) && head > this.#knownHead) this.#knownHead = head;
        this.#kick();
      },
      onclose: () => this.#listening = false,
    });
    this.#timed(listener.unsafe(`LISTEN ${channelOf(this.#config.schema)}`), () => {
      listener.end({ timeout: 0 }).catch(() => {});
      if (this.#listener === listener) this.#listener = undefined;
    }).then(
      () => {
        // Whatever was committed while we were not listening is read now.
        this.#readDue = true;
        this.#kick();
      },
      () => this.#listening = false,
    );
  }

  /**
   * Races `query` against the query timeout; on timeout calls `abandon` (which lets go of
   * the connection the query hangs on) and throws.
   */
  async #timed<T>(query: Promise<T>, abandon: () => void): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abandon();
        reject(new Error(`no answer within ${this.#config.timeoutMs} ms`));
      }, this.#config.timeoutMs);
    });
    query.catch(() => {}); // a late failure of an abandoned query
    try {
      return await Promise.race([query, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends `old`'s connections at once and returns a fresh client like it. */
  #replace(old: Sql): Sql {
    old.end({ timeout: 0 }).catch(() => {});
    return connect(this.#config, 1);
  }

  #unavailable(error: StoreError): void {
    if (!this.#available) return;
    this.#available = false;
    this.#onStatus?.({ kind: "unavailable", error });
  }

  #isAvailable(): void {
    if (this.#available) return;
    this.#available = true;
    this.#onStatus?.({ kind: "available" });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#commits.close();
      if (this.#unsettled() > 0) {
        const { promise, resolve } = Promise.withResolvers<void>();
        this.#drained = resolve;
        await promise; // each batch settles by its deadline at the latest
      }
      this.#closed = true;
      clearInterval(this.#pollTimer);
      for (const sent of this.#sent) clearTimeout(sent.timer);
      await this.#tailing;
      await Promise.all([
        this.#writer.end({ timeout: 0 }),
        this.#reader.end({ timeout: 0 }),
        this.#listener?.end({ timeout: 0 }),
      ]);
    })();
    return this.#closing;
  }
}
