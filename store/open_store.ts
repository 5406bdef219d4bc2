// One way to open the server's history whatever holds it (`--store URL`): the file log or
// PostgreSQL, each replayed into a fresh projection and returned as an EventStore.

import { type EventLog, type FsyncMode, openEventLog, type OpenReport } from "./event_log.ts";
import { type EventStore, FileEventStore } from "./event_store.ts";
import type { Event } from "./events.ts";
import {
  openPostgresStore,
  type PostgresEventStore,
  type PostgresOpenReport,
  type PostgresStatus,
} from "./postgres_store.ts";
import type { State } from "./projection.ts";
import { parseStoreUrl, type StoreUrl } from "./store_url.ts";

/** Options of `openStore`; each says which kind of store it applies to. */
export interface OpenStoreOptions {
  /** File: sync each append (default `always`). PostgreSQL always commits synchronously. */
  fsync?: FsyncMode;
  /** File: drop damaged regions, keeping a backup (see openEventLog). */
  repair?: boolean;
  /**
   * Both: makes the replay's progress callback, told what is replayed and what the numbers
   * count (bytes of a file, events of a database), e.g. `progressOnStderr`.
   */
  progress?: (label: string, unit: "bytes" | "events") => (done: number, total: number) => void;
  /**
   * Both: called with each replayed event after it is applied (`where` is the file offset
   * or the database position); throwing stops the open.
   */
  onEvent?: (event: Event, where: number, state: State) => void;
  /** PostgreSQL: told when the database stops and starts answering, for the log. */
  onStatus?: (status: PostgresStatus) => void;
  /** PostgreSQL: how it follows the log (tests make a node that lags). */
  follow?: { pollIntervalMs?: number; listen?: boolean };
}

/** What opening did, by kind. */
export type StoreOpenReport =
  | ({ kind: "file" } & OpenReport)
  | ({ kind: "postgres" } & PostgresOpenReport);

/** An open store, the projection of its history, and what opening did. */
export interface OpenedStore<Tag> {
  store: EventStore<Tag>;
  state: State;
  report: StoreOpenReport;
  /** Events this node appended since opening (for the shutdown line). */
  appends(): number;
}

/**
 * Opens the store `url` names (a StoreUrl or its text) and replays it. Throws like
 * openEventLog for a file (StoreError `locked`/`bad_path`, StoreCorruptError) and like
 * openPostgresStore for PostgreSQL (StoreError `unavailable`, StoreCorruptError).
 */
export async function openStore<Tag = unknown>(
  url: StoreUrl | string,
  options: OpenStoreOptions = {},
): Promise<OpenedStore<Tag>> {
  const where = typeof url === "string" ? parseStoreUrl(url) : url;
  switch (where.kind) {
    case "file": {
      const { log, state, report } = await openEventLog(where.path, {
        fsync: options.fsync,
        repair: options.repair,
        onEvent: options.onEvent,
        onProgress: options.progress?.(where.path, "bytes"),
      });
      return {
        store: new FileEventStore<Tag>(log),
        state,
        report: { kind: "file", ...report },
        appends: () => (log as EventLog).stats.appends,
      };
    }
    case "postgres": {
      if (options.repair) {
        throw new TypeError("repair applies to a log file; PostgreSQL keeps its own integrity");
      }
      if (options.fsync === "off") {
        throw new TypeError("fsync off applies to a log file; PostgreSQL always commits durably");
      }
      const opened = await openPostgresStore<Tag>(where, {
        onEvent: options.onEvent,
        onStatus: options.onStatus,
        onProgress: options.progress?.(where.description, "events"),
        ...options.follow,
      });
      const store: PostgresEventStore<Tag> = opened.store;
      return {
        store,
        state: opened.state,
        report: { kind: "postgres", ...opened.report },
        appends: () => store.stats.appends,
      };
    }
    default: {
      const never: never = where;
      throw new TypeError(`unhandled store ${JSON.stringify(never)}`);
    }
  }
}
