// The request logic of PROTOCOL §4 over the event store: who is online, what each request
// does, which events it appends, and what is answered or pushed once they are durable.
// Transport-free: a connection is a Peer that can be sent messages and told to leave.
import {
  dummyHash,
  hashPassword,
  PASSWORD_PARAMS,
  type ScryptParams,
  type ServerIdentity,
  toBase64,
  verifyPassword,
} from "../crypto/mod.ts";
import {
  type ByeReason,
  type ClientMessage,
  type ErrorCode,
  INVALID_CREDENTIALS_MESSAGE,
  type ServerMessage,
} from "../protocol/messages.ts";
import {
  type Event,
  evolve,
  type MessageSent,
  queuedFor,
  type QueuedMessage,
  rememberedCid,
  type State,
} from "../store/mod.ts";
import type { ServerLimits } from "./config.ts";
import type { Logger } from "./logger.ts";
import { FailureThrottle, TokenBucket, WindowCounter } from "./rate_limit.ts";
import { WorkQueue } from "./work_queue.ts";

/** One connection after its handshake, as the request logic sees it. */
export interface Peer {
  readonly id: number;
  readonly addr: string;
  /** The logged-in user, if any. */
  user: string | undefined;
  /** False once the connection is gone: late results are dropped. */
  readonly open: boolean;
  send(message: ServerMessage): void;
  /** Sends `BYE reason` and closes the connection. */
  bye(reason: ByeReason): void;
}

/** Where events go: resolves once the event is durable (written and, by default, synced). */
export interface EventSink {
  append(event: Event): Promise<void>;
  /** Like append, for events nobody waits on: written with the next commit (see EventLog). */
  appendDeferred(event: Event): Promise<void>;
}

export interface ChatOptions {
  readonly store: EventSink;
  readonly state: State;
  readonly identity: ServerIdentity;
  readonly limits: ServerLimits;
  readonly logger: Logger;
  readonly hashParams?: ScryptParams;
  /** Injectable clock and id source for deterministic tests. */
  readonly now?: () => number;
  readonly newMessageId?: () => string;
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
 * ids (each byte used once). Under bench/load.ts (--profile) message ids took 2.9% of the
 * server's busy time with toBase64 and two regex replacements per id, 0.1% this way.
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

/** Retry hint when a recipient's queue is full: they must log in and DAK first. */
const QUEUE_FULL_RETRY_MS = 60_000;

type Reply = (message: ServerMessage) => void;
/** Answers request `id` with ERR `error`; `retryMs` becomes retry_after_ms (rate_limited). */
type Fail = (id: number, error: ErrorCode, message: string, retryMs?: number) => void;

/** Handles every request of every peer; never throws for anything a client sends. */
export class Chat {
  readonly online = new Map<string, Peer>();
  readonly #o: ChatOptions;
  readonly #now: () => number;
  readonly #newId: () => string;
  readonly #hashParams: ScryptParams;
  readonly #hashes: WorkQueue;
  /** Failures per (user, address): §5's per-user throttle, scoped so the owner elsewhere is spared. */
  readonly #userFailures: FailureThrottle;
  /** Failures per user over all addresses: a bound on guessing spread over many addresses. */
  readonly #userTotalFailures: FailureThrottle;
  readonly #addrFailures: FailureThrottle;
  readonly #signups: WindowCounter;
  readonly #buckets = new WeakMap<Peer, TokenBucket>();
  /** Names being signed up right now (hash in progress), so two SNUs cannot both win. */
  readonly #pendingSignups = new Set<string>();
  /** `from\0cid` of MSGs whose event is not yet durable: a retry waits for the first. */
  readonly #pendingCids = new Map<string, Promise<{ msg: string; ts: number } | undefined>>();
  /** Queued messages whose DAK is being written, so a repeated DAK is not logged twice. */
  readonly #pendingDaks = new WeakSet<QueuedMessage>();
  readonly #dummyHash: string;

  constructor(options: ChatOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#newId = options.newMessageId ?? randomMessageId;
    this.#hashParams = options.hashParams ?? PASSWORD_PARAMS;
    this.#dummyHash = dummyHash(this.#hashParams);
    const l = options.limits;
    this.#hashes = new WorkQueue(l.hash_concurrency, l.hash_queue);
    this.#userFailures = new FailureThrottle(
      l.login_failures_per_user,
      l.login_window_ms,
      l.login_backoff_base_ms,
      l.login_backoff_max_ms,
    );
    this.#userTotalFailures = new FailureThrottle(
      l.login_failures_per_user_total,
      l.login_window_ms,
      l.login_backoff_base_ms,
      l.login_backoff_max_ms,
    );
    this.#addrFailures = new FailureThrottle(
      l.login_failures_per_address,
      l.login_window_ms,
      l.login_backoff_base_ms,
      l.login_backoff_max_ms,
    );
    this.#signups = new WindowCounter(l.signups_per_address, l.signup_window_ms);
  }

  get state(): State {
    return this.#o.state;
  }

  /** Password hashes running and waiting, for tests and metrics. */
  get hashLoad(): { active: number; queued: number } {
    return { active: this.#hashes.active, queued: this.#hashes.queued };
  }

  /** Appends an event and applies it to the projection once durable, in log order. */
  async #commit(event: Event): Promise<void> {
    await this.#o.store.append(event);
    evolve(this.#o.state, event);
  }

  /**
   * #commit for an event no reply waits on (a delivery receipt, a failed login): it rides the
   * next group commit instead of forcing a sync of its own. Until it is durable the state does
   * not show it, so at worst a message is delivered again (§4: at least once).
   */
  async #commitDeferred(event: Event): Promise<void> {
    await this.#o.store.appendDeferred(event);
    evolve(this.#o.state, event);
  }

  /** Handles one message from `peer`. Responses go through `peer.send`, possibly later. */
  handle(peer: Peer, message: ClientMessage): void {
    const reply: Reply = (m) => {
      if (peer.open) peer.send(m);
    };
    const fail: Fail = (id, error, text, retry) =>
      reply({
        code: "ERR",
        id,
        error,
        message: text,
        ...(retry === undefined ? {} : { retry_after_ms: Math.max(1, Math.ceil(retry)) }),
      });
    const internal = (id: number) => (err: unknown) => {
      this.#o.logger.error("request failed", { conn: peer.id, id, error: String(err) });
      fail(id, "internal", "internal error");
    };
    switch (message.code) {
      case "PNG":
        return reply({ code: "ACK", id: message.id, request: "PNG" });
      case "GSR": {
        const { spkiDer, fingerprint } = this.#o.identity;
        return reply({
          code: "ACK",
          id: message.id,
          request: "GSR",
          key: toBase64(spkiDer),
          fingerprint,
        });
      }
      case "GUL": {
        const users = [...this.state.users.keys()].sort().map((user) => ({
          user,
          online: this.online.has(user),
        }));
        return reply({ code: "ACK", id: message.id, request: "GUL", users });
      }
      case "SNU":
        return void this.#signUp(peer, message.id, message.user, message.password, reply, fail)
          .catch(internal(message.id));
      case "LGN":
        return void this.#logIn(peer, message.id, message.user, message.password, reply, fail)
          .catch(internal(message.id));
      case "LGO":
        return void this.#logOut(peer, message.id, reply).catch(internal(message.id));
      case "CPW":
        return void this.#changePassword(peer, message.id, message.old, message.new, reply, fail)
          .catch(internal(message.id));
      case "MSG":
        return void this.#send(peer, message.id, message.to, message.text, message.cid, reply, fail)
          .catch(internal(message.id));
      case "DAK":
        return this.#deliveryAck(peer, message.msg);
      default: {
        const never: never = message;
        throw new TypeError(`unhandled request ${JSON.stringify(never)}`);
      }
    }
  }

  /** Runs a password job in the bounded queue; undefined when the queue is full. */
  #hashJob<T>(job: () => Promise<T>): Promise<T> | undefined {
    return this.#hashes.run(job);
  }

  /** A fair retry hint when the hash queue is full: about one queue's worth of hashing. */
  #hashRetryMs(): number {
    return 300 * Math.ceil((this.#hashes.queued + 1) / this.#hashes.concurrency);
  }

  async #signUp(
    peer: Peer,
    id: number,
    user: string,
    password: string,
    reply: Reply,
    fail: Fail,
  ): Promise<void> {
    const now = this.#now();
    const wait = this.#signups.wait(peer.addr, now);
    if (wait > 0) return fail(id, "rate_limited", "too many sign-ups from this address", wait);
    if (this.state.users.has(user) || this.#pendingSignups.has(user)) {
      return fail(id, "user_exists", `user ${user} already exists`);
    }
    const hashing = this.#hashJob(() => hashPassword(password, this.#hashParams));
    if (!hashing) {
      return fail(id, "rate_limited", "server busy hashing passwords", this.#hashRetryMs());
    }
    this.#signups.record(peer.addr, now);
    this.#pendingSignups.add(user);
    try {
      const passwordHash = await hashing;
      await this.#commit({ type: "user_signed_up", ts: this.#now(), user, passwordHash });
    } finally {
      this.#pendingSignups.delete(user);
    }
    this.#o.logger.info("signed up", { conn: peer.id, addr: peer.addr, user });
    reply({ code: "ACK", id, request: "SNU", user });
  }

  /** Throttle wait for a login attempt on `user` from `addr` (§5), 0 if it may go ahead. */
  #loginWait(user: string, addr: string, now: number): number {
    return Math.max(
      this.#userFailures.wait(`${user}\0${addr}`, now),
      this.#userTotalFailures.wait(user, now),
      this.#addrFailures.wait(addr, now),
    );
  }

  /** Verifies a password against `user`'s hash; an unknown user costs the same (§4.3). */
  #verify(user: string, password: string): Promise<boolean> | undefined {
    return this.#hashJob(async () => {
      const stored = this.state.users.get(user)?.passwordHash;
      const ok = await verifyPassword(password, stored ?? this.#dummyHash);
      return ok && stored !== undefined && this.state.users.get(user)?.passwordHash === stored;
    });
  }

  #loginFailed(peer: Peer, user: string): void {
    const now = this.#now();
    this.#userFailures.recordFailure(`${user}\0${peer.addr}`, now);
    this.#userTotalFailures.recordFailure(user, now);
    this.#addrFailures.recordFailure(peer.addr, now);
    this.#o.logger.warn("login failed", { conn: peer.id, addr: peer.addr, user });
    this.#commitDeferred({ type: "login_failed", ts: now, user, addr: peer.addr }).catch((err) =>
      this.#o.logger.error("append failed", { event: "login_failed", error: String(err) })
    );
  }

  async #logIn(
    peer: Peer,
    id: number,
    user: string,
    password: string,
    reply: Reply,
    fail: Fail,
  ): Promise<void> {
    const wait = this.#loginWait(user, peer.addr, this.#now());
    if (wait > 0) return fail(id, "rate_limited", "too many failed logins; try again later", wait);
    const verifying = this.#verify(user, password);
    if (!verifying) {
      return fail(id, "rate_limited", "server busy hashing passwords", this.#hashRetryMs());
    }
    if (!(await verifying)) {
      this.#loginFailed(peer, user);
      return fail(id, "invalid_credentials", INVALID_CREDENTIALS_MESSAGE);
    }
    this.#userFailures.clear(`${user}\0${peer.addr}`);
    await this.#commit({ type: "login_succeeded", ts: this.#now(), user, addr: peer.addr });
    if (!peer.open) return;
    this.#detach(peer);
    const older = this.online.get(user);
    if (older && older !== peer) {
      this.online.delete(user);
      older.user = undefined;
      older.bye("logged_in_elsewhere");
    }
    peer.user = user;
    this.online.set(user, peer);
    const queued = queuedFor(this.state, user);
    this.#o.logger.info("logged in", {
      conn: peer.id,
      addr: peer.addr,
      user,
      queued: queued.length,
    });
    reply({ code: "ACK", id, request: "LGN", user, queued: queued.length });
    for (const m of queued) {
      reply({ code: "DLV", msg: m.msg, from: m.from, to: m.to, text: m.text, ts: m.ts });
    }
  }

  /** Ends `peer`'s login, if any, without a message (LGO, re-login, disconnect). */
  #detach(peer: Peer): void {
    if (peer.user !== undefined && this.online.get(peer.user) === peer) {
      this.online.delete(peer.user);
    }
    peer.user = undefined;
  }

  async #logOut(peer: Peer, id: number, reply: Reply): Promise<void> {
    const user = peer.user!;
    this.#detach(peer);
    await this.#commit({ type: "logged_out", ts: this.#now(), user });
    this.#o.logger.info("logged out", { conn: peer.id, user });
    reply({ code: "ACK", id, request: "LGO" });
  }

  async #changePassword(
    peer: Peer,
    id: number,
    old: string,
    next: string,
    reply: Reply,
    fail: Fail,
  ): Promise<void> {
    const user = peer.user!;
    const wait = this.#loginWait(user, peer.addr, this.#now());
    if (wait > 0) {
      return fail(id, "rate_limited", "too many failed attempts; try again later", wait);
    }
    const job = this.#hashJob(async () => {
      const stored = this.state.users.get(user)?.passwordHash;
      if (stored === undefined || !(await verifyPassword(old, stored))) return undefined;
      return { stored, passwordHash: await hashPassword(next, this.#hashParams) };
    });
    if (!job) return fail(id, "rate_limited", "server busy hashing passwords", this.#hashRetryMs());
    const result = await job;
    if (!result || this.state.users.get(user)?.passwordHash !== result.stored) {
      this.#loginFailed(peer, user);
      return fail(id, "invalid_credentials", INVALID_CREDENTIALS_MESSAGE);
    }
    await this.#commit({
      type: "password_changed",
      ts: this.#now(),
      user,
      passwordHash: result.passwordHash,
    });
    this.#o.logger.info("password changed", { conn: peer.id, user });
    reply({ code: "ACK", id, request: "CPW" });
  }

  #bucket(peer: Peer): TokenBucket {
    let bucket = this.#buckets.get(peer);
    if (!bucket) {
      bucket = new TokenBucket(
        this.#o.limits.msg_burst,
        this.#o.limits.msg_per_second,
        this.#now(),
      );
      this.#buckets.set(peer, bucket);
    }
    return bucket;
  }

  async #send(
    peer: Peer,
    id: number,
    to: string,
    text: string,
    cid: string | undefined,
    reply: Reply,
    fail: Fail,
  ): Promise<void> {
    const from = peer.user!;
    // Everything up to the append is synchronous, so appends keep the order MSGs arrived in.
    if (cid !== undefined) {
      const first = rememberedCid(this.state, from, cid);
      if (first) return reply({ code: "ACK", id, request: "MSG", msg: first.msg, ts: first.ts });
      const pending = this.#pendingCids.get(`${from}\0${cid}`);
      if (pending) {
        const ack = await pending;
        if (ack) reply({ code: "ACK", id, request: "MSG", msg: ack.msg, ts: ack.ts });
        else fail(id, "internal", "the first send with this cid failed; retry");
        return;
      }
    }
    const wait = this.#bucket(peer).take(this.#now());
    if (wait > 0) return fail(id, "rate_limited", "sending too fast", wait);
    if (!this.state.users.has(to)) return fail(id, "unknown_user", `no user ${to}`);
    if ((this.state.queues.get(to)?.size ?? 0) >= this.#o.limits.max_queued_per_recipient) {
      return fail(
        id,
        "rate_limited",
        `${to} has too many undelivered messages`,
        QUEUE_FULL_RETRY_MS,
      );
    }
    // Built with its final shape: `delete` of an absent cid would put the object in V8's
    // dictionary mode, slowing every later read of it (encoding, evolve, DLV).
    const ts = this.#now();
    const msg = this.#newId();
    const event: MessageSent = cid === undefined
      ? { type: "message_sent", ts, msg, from, to, text }
      : { type: "message_sent", ts, msg, from, to, text, cid };
    const committing = this.#commit(event);
    const key = cid === undefined ? "" : `${from}\0${cid}`;
    if (cid !== undefined) {
      this.#pendingCids.set(
        key,
        committing.then(() => ({ msg: event.msg, ts: event.ts }), () => undefined),
      );
    }
    try {
      await committing;
    } finally {
      if (cid !== undefined) this.#pendingCids.delete(key);
    }
    reply({ code: "ACK", id, request: "MSG", msg: event.msg, ts: event.ts });
    const recipient = this.online.get(to);
    if (recipient?.open) {
      recipient.send({ code: "DLV", msg: event.msg, from, to, text, ts: event.ts });
    }
  }

  #deliveryAck(peer: Peer, msg: string): void {
    const user = peer.user!;
    const queued = this.state.queues.get(user)?.get(msg);
    if (queued === undefined || this.#pendingDaks.has(queued)) return;
    this.#pendingDaks.add(queued);
    this.#commitDeferred({ type: "message_delivered", ts: this.#now(), msg, user })
      .catch((err) =>
        this.#o.logger.error("append failed", { event: "message_delivered", error: String(err) })
      )
      .finally(() => this.#pendingDaks.delete(queued));
  }

  /** Forgets a closed connection. */
  disconnected(peer: Peer): void {
    this.#detach(peer);
  }

  /** Sends `BYE reason` to every logged-in session (shutdown). */
  byeAll(reason: ByeReason): void {
    for (const peer of [...this.online.values()]) peer.bye(reason);
    this.online.clear();
  }

  /** Drops aged-out throttle entries; called periodically. */
  sweep(): void {
    const now = this.#now();
    this.#userFailures.sweep(now);
    this.#userTotalFailures.sweep(now);
    this.#addrFailures.sweep(now);
    this.#signups.sweep(now);
  }
}
