// The shell around the decider: it carries out decisions (decide.ts) and nothing else. Facts
// are applied at once; replies go to the sessions' outlets; events are appended, then applied
// with `evolve` and announced with `react` once durable; password work runs on scrypt's worker
// threads and comes back as a command. All I/O of the request logic is here.
import { checkPassword, hashPassword, type ScryptParams, verifyPassword } from "../crypto/mod.ts";
import type { ByeReason, ClientParse, ServerMessage } from "../protocol/messages.ts";
import { AppendConflict, type Event, type EventStore, StoreError } from "../store/mod.ts";
import {
  type Command,
  type Context,
  decide,
  type Decision,
  type LogLine,
  type Outgoing,
  react,
  type Work,
  type WorkResult,
} from "./decide.ts";
import type { Logger } from "./logger.ts";
import { evolve, type Origin, type ServerState, type SessionId } from "./state.ts";
import { WorkQueue } from "./work_queue.ts";

/** What this node appended events for: the request they answer and its replies once durable. */
export interface AppendTag {
  readonly origin: Origin | undefined;
  readonly onCommit: readonly Outgoing[];
}

/** A session's connection, as the core sees it. */
export interface Outlet {
  send(message: ServerMessage): void;
  /** Sends `BYE reason` and closes the connection. */
  bye(reason: ByeReason): void;
}

export interface CoreOptions {
  readonly store: EventStore<AppendTag>;
  readonly state: ServerState;
  readonly logger: Logger;
  /** Injectable clock and id source for deterministic tests. */
  readonly now?: () => number;
  readonly newMessageId?: () => string;
}

const NO_TAG: AppendTag = { origin: undefined, onCommit: [] };

/** Refusals that say something is not in the log: what a node behind the log could get wrong. */
const ABSENCE: ReadonlySet<string> = new Set(["unknown_user", "no_key", "stale_key"]);

/** Whether `d` only refuses with an absence (it writes nothing), so a catch-up may change it. */
function mayBeBehind(d: Decision): boolean {
  return d.events.length === 0 && d.deferred.length === 0 &&
    d.replies.some((r) => r.message.code === "ERR" && ABSENCE.has(r.message.error));
}

/** Carries out the decisions of every session of this node. */
export class Core {
  readonly state: ServerState;
  readonly #o: CoreOptions;
  readonly #outlets = new Map<SessionId, Outlet>();
  /** Sessions whose answer waits for a catch-up, with their records received since. */
  readonly #held = new Map<SessionId, Command[]>();
  readonly #jobs: WorkQueue;
  readonly #now: () => number;
  readonly #newMessageId: () => string;

  constructor(options: CoreOptions) {
    this.#o = options;
    this.state = options.state;
    this.#now = options.now ?? Date.now;
    this.#newMessageId = options.newMessageId ?? randomMessageId;
    // Every committed event reaches the state here, this node's and (on a shared log) others'.
    options.store.follow((events, tag) => this.#apply(events, tag));
    const limits = options.state.config.limits;
    // The decider admits at most hash_concurrency + hash_queue jobs; this only runs them.
    this.#jobs = new WorkQueue(limits.hash_concurrency, limits.hash_queue);
  }

  /** Password jobs running and waiting, for tests and metrics. */
  get hashLoad(): { active: number; queued: number } {
    return { active: this.#jobs.active, queued: this.#jobs.queued };
  }

  /** A session whose handshake completed: `outlet` receives what is decided for it. */
  open(session: SessionId, addr: string, addrKey: string, outlet: Outlet): void {
    this.#outlets.set(session, outlet);
    this.#do({ type: "open", session, addr, addrKey });
  }

  /** A record from `session`, parsed. */
  receive(session: SessionId, parsed: ClientParse): void {
    const command: Command = { type: "receive", session, parsed };
    const held = this.#held.get(session);
    if (held) held.push(command);
    else this.#receive(command);
  }

  /**
   * A record decided; an answer that something does not exist (a user, a key) is given only once
   * this node has caught up with the log, since on a shared log another node may have written
   * it a moment ago. Meanwhile the session's later records wait, so its requests keep their order.
   */
  #receive(command: Extract<Command, { type: "receive" }>): void {
    const first = decide(this.state, command, this.#context());
    if (!mayBeBehind(first)) {
      this.#carryOut(first);
      return;
    }
    const session = command.session;
    this.#held.set(session, []);
    this.#o.store.catchUp().then(
      () => this.#carryOut(decide(this.state, command, this.#context())),
      () => this.#carryOut(first), // the log cannot be read: answer from what this node knows
    ).finally(() => {
      const later = this.#held.get(session) ?? [];
      this.#held.delete(session);
      for (const [i, next] of later.entries()) {
        if (next.type !== "receive") continue;
        this.#receive(next);
        const heldAgain = this.#held.get(session);
        if (heldAgain) {
          heldAgain.push(...later.slice(i + 1));
          break;
        }
      }
    });
  }

  /** A session's connection ended. */
  close(session: SessionId): void {
    if (!this.#outlets.delete(session)) return;
    this.#held.delete(session);
    this.#do({ type: "close", session });
  }

  /** Login deadlines; called every few hundred ms. */
  tick(): void {
    this.#do({ type: "tick" });
  }

  /** Forgets throttle entries that aged out; called every few seconds. */
  sweep(): void {
    this.#do({ type: "sweep" });
  }

  #context(): Context {
    return { now: this.#now(), newMessageId: this.#newMessageId };
  }

  #do(command: Command): void {
    this.#carryOut(decide(this.state, command, this.#context()));
  }

  #carryOut(d: Decision): void {
    for (const fact of d.facts) evolve(this.state, fact);
    this.#log(d.logs);
    this.#deliver(d.replies);
    const { store } = this.#o;
    if (d.events.length > 0) {
      const tag: AppendTag = { origin: d.origin, onCommit: d.onCommit };
      store.append(d.events, tag).catch((err) => this.#failed(d.events, d.origin, err));
    }
    for (const event of d.deferred) {
      store.appendDeferred(event, NO_TAG).catch((err) => this.#failed([event], undefined, err));
    }
    for (const work of d.work) this.#run(work);
  }

  /**
   * Committed events, in log order: what they tell the sessions, then the state, then the
   * requester's answer (when this node appended them for one).
   */
  #apply(events: readonly Event[], tag: AppendTag | undefined): void {
    const told: Outgoing[] = [];
    for (const event of events) {
      const reaction = react(this.state, event, tag?.origin);
      evolve(this.state, event, tag?.origin);
      told.push(...reaction.replies);
      this.#log(reaction.logs);
    }
    if (tag) this.#deliver(tag.onCommit);
    this.#deliver(told);
  }

  #failed(events: readonly Event[], origin: Origin | undefined, err: unknown): void {
    this.#do({
      type: "commit_failed",
      events,
      origin,
      error: String(err),
      ...(err instanceof AppendConflict ? { conflict: err.rule } : {}),
      ...(err instanceof StoreError && err.code === "unavailable" ? { unavailable: true } : {}),
    });
  }

  #deliver(out: readonly Outgoing[]): void {
    for (const { to, message } of out) {
      const outlet = this.#outlets.get(to);
      if (!outlet) continue; // the session has gone: late answers are dropped
      if (message.code === "BYE") {
        // A BYE ends the session: nothing more is decided for it.
        evolve(this.state, { type: "session_closing", session: to });
        outlet.bye(message.reason);
      } else {
        outlet.send(message);
      }
    }
  }

  #log(lines: readonly LogLine[]): void {
    for (const { level, msg, fields } of lines) this.#o.logger[level](msg, fields);
  }

  #run(work: Work): void {
    const params = this.state.config.hashParams;
    this.#jobs.run(() => perform(work, params))!.then(
      (result) => this.#do({ type: "work_done", work, result }),
      (err) => this.#do({ type: "work_done", work, result: { kind: "error", error: String(err) } }),
    );
  }
}

/** Runs one password job (scrypt on node:crypto's worker threads). */
async function perform(work: Work, params: ScryptParams): Promise<WorkResult> {
  switch (work.kind) {
    case "hash":
      return { kind: "hash", hash: await hashPassword(work.password, params) };
    case "verify": {
      // A correct password stored under weaker parameters than today's, or before passwords were
      // hashed in NFC, is hashed again, so old hashes do not stay weak for ever.
      const { valid, rehash } = await checkPassword(work.password, work.stored, params);
      const rehashed = valid && rehash ? await hashPassword(work.password, params) : undefined;
      return { kind: "verify", ok: valid, rehashed };
    }
    case "change": {
      const ok = work.stored !== undefined && await verifyPassword(work.old, work.stored);
      return { kind: "change", ok, hash: ok ? await hashPassword(work.next, params) : undefined };
    }
    default: {
      const never: never = work;
      throw new TypeError(`unhandled work ${JSON.stringify(never)}`);
    }
  }
}

/** The base64url alphabet (RFC 4648 §5). */
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** Bytes of randomness in a message id: 96 bits, 16 base64url characters. */
const MESSAGE_ID_BYTES = 12;
/** Ids drawn from the CSPRNG at once: one getRandomValues call per 256 messages. */
const MESSAGE_ID_POOL = 256;
const idPool = new Uint8Array(MESSAGE_ID_BYTES * MESSAGE_ID_POOL);
let idPoolNext = MESSAGE_ID_POOL;

/**
 * 12 random bytes in base64url: 16 characters, unique per server with overwhelming odds (§4.3).
 * Encoded by table, 3 bytes to 4 characters, from a pool of CSPRNG bytes refilled every 256
 * ids (each byte used once): toBase64 and two regex replacements per id cost far more.
 */
export function randomMessageId(): string {
  if (idPoolNext === MESSAGE_ID_POOL) {
    crypto.getRandomValues(idPool);
    idPoolNext = 0;
  }
  let at = MESSAGE_ID_BYTES * idPoolNext++;
  let id = "";
  for (let i = 0; i < MESSAGE_ID_BYTES / 3; i++, at += 3) {
    const n = (idPool[at]! << 16) | (idPool[at + 1]! << 8) | idPool[at + 2]!;
    id += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]! + BASE64URL[(n >>> 6) & 63]! +
      BASE64URL[n & 63]!;
  }
  return id;
}
