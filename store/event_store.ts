// The one interface the server writes its history through, whatever holds it: the embedded
// file log (event_log.ts) on one node, or PostgreSQL shared by several (postgres_store.ts).
// A store has one follower, which receives every committed event exactly once and in the
// global order of the log: its own appends (with the tag they were appended with) and, when
// the log is shared, everyone else's (without one). The server changes its state only there,
// so every node applies every event through the same `evolve`, in the same order.
import { StoreError } from "./errors.ts";
import type { EventLog } from "./event_log.ts";
import type { Event } from "./events.ts";

/** Receives committed events in log order; `tag` is the appender's, for this node's own appends. */
export type Follower<Tag> = (events: readonly Event[], tag: Tag | undefined) => void;

/** A rule the store enforces across every node, and that an append broke. */
export type ConflictRule =
  /** A `user_signed_up` for a name already signed up (§4.3: one account per name). */
  | "user_exists"
  /** A `message_sent` with a `cid` its sender already used (§4.3: the first ACK stands). */
  | "cid_used";

/** An append refused by a rule of the store; nothing of that append was stored. */
export class AppendConflict extends StoreError {
  override name = "AppendConflict";
  constructor(readonly rule: ConflictRule, message: string) {
    super("conflict", message);
  }
}

export interface EventStore<Tag = unknown> {
  /** Where the log lives, for the operator (a path, or a database without its password). */
  readonly description: string;
  /**
   * Sets the follower. Events committed from then on are handed to it; call it once, before
   * the first append.
   */
  follow(follower: Follower<Tag>): void;
  /**
   * Appends `events` together and in order. Resolves once they are durable and the follower
   * has been handed them (with `tag`). Rejects with AppendConflict when a rule refuses them,
   * with StoreError when the store cannot take them now (nothing is stored either way).
   */
  append(events: readonly Event[], tag: Tag): Promise<void>;
  /**
   * Appends an event that nobody waits on (a delivery receipt, a failed login): it may wait
   * for the next append's commit instead of forcing one. Resolves like `append`.
   */
  appendDeferred(event: Event, tag: Tag): Promise<void>;
  /**
   * Resolves once the follower has every event committed anywhere before the call (StoreError
   * `unavailable` if that cannot be known in time). A log with one writer is always caught up.
   */
  catchUp(): Promise<void>;
  /** Finishes pending appends and lets go of the log. */
  close(): Promise<void>;
}

/**
 * The file log as an EventStore: one writer, so the log's order is the order of appends, and
 * an append's events go to the follower as soon as they are synced (appends resolve in order).
 * Names are unique and cids used once because this node's decider sees every append first.
 */
export class FileEventStore<Tag = unknown> implements EventStore<Tag> {
  readonly description: string;
  #follower: Follower<Tag> | undefined;

  constructor(readonly log: EventLog) {
    this.description = `file:${log.path}`;
  }

  follow(follower: Follower<Tag>): void {
    this.#follower = follower;
  }

  async append(events: readonly Event[], tag: Tag): Promise<void> {
    await (events.length === 1 ? this.log.append(events[0]!) : this.log.appendMany(events));
    this.#follower?.(events, tag);
  }

  async appendDeferred(event: Event, tag: Tag): Promise<void> {
    await this.log.appendDeferred(event);
    this.#follower?.([event], tag);
  }

  /** This node is the only writer: whatever was committed, its follower already has. */
  catchUp(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
