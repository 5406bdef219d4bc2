// The request logic of PROTOCOL §4 and the request limits of §5, as a pure decider:
//   decide(state, command, context) → Decision    what to record, answer, write and compute
//   react(state, event, origin)     → Reaction    what a durable event tells this node's sessions
// Neither does I/O nor changes the state: the shell (server/core.ts) applies a decision's facts
// with `evolve` (state.ts), sends its replies, appends its events and runs its password work,
// then feeds the work's results back in as commands. Time and message ids come in `context`.
import { checkUserKey, fingerprintOfKid } from "../crypto/mod.ts";
import { decodeSealed, EnvelopeError, parseEnvelope } from "../protocol/envelope.ts";
import { MAX_GUL_PAGE } from "../protocol/limits.ts";
import {
  type ByeReason,
  type ClientMessage,
  type ClientParse,
  type ErrorCode,
  INVALID_CREDENTIALS_MESSAGE,
  needsLogin,
  type SendMessage,
  type ServerMessage,
  type UserEntry,
} from "../protocol/messages.ts";
import {
  type ConflictRule,
  type Event,
  type MessageSent,
  type PublishedKey,
  queuedFor,
  type QueuedMessage,
  rememberedCid,
  type SealedMessageSent,
  utf8Bytes,
} from "../store/mod.ts";
import { bucketWait, throttleWait, windowWait } from "./rate_limit.ts";
import {
  cidKey,
  type Fact,
  loginRules,
  type Origin,
  type ServerState,
  type Session,
  type SessionId,
  userAddrKey,
} from "./state.ts";

/** Retry hint when a recipient's queue or a byte quota is full: they must log in and DAK first. */
export const QUEUE_FULL_RETRY_MS = 60_000;
/** §8.1: at most this many KEYs per user in KEY_WINDOW_MS. */
export const KEYS_PER_WINDOW = 5;
export const KEY_WINDOW_MS = 3_600_000;
/** Time one password job takes, roughly: the unit of the retry hint when the hash queue is full. */
const HASH_JOB_MS = 300;

/** Password work for the shell: scrypt on worker threads. Passwords live here only, never in state. */
export type Work =
  /** SNU: hash a new password (the user's key, if any, checked already, waits with it). */
  | { kind: "hash"; origin: Origin; user: string; password: string; key?: PublishedKeyInput }
  /** LGN: check `password` against `stored` (the dummy hash for an unknown user); rehash if asked. */
  | {
    kind: "verify";
    origin: Origin;
    /** The session's address and limit key, kept in case it closes before the verdict. */
    addr: string;
    addrKey: string;
    user: string;
    password: string;
    stored: string;
    known: boolean;
  }
  /** CPW: check `old` against `stored`, then hash `next`. */
  | {
    kind: "change";
    origin: Origin;
    addr: string;
    addrKey: string;
    user: string;
    old: string;
    next: string;
    stored: string | undefined;
  };

/** A user key that passed §8.1's checks, as it will be written. */
export type PublishedKeyInput = Omit<PublishedKey, "ts">;

/** What a finished job found: a hash, a verdict, or the error that stopped it. */
export type WorkResult =
  | { kind: "hash"; hash: string }
  | { kind: "verify"; ok: boolean; rehashed: string | undefined }
  | { kind: "change"; ok: boolean; hash: string | undefined }
  | { kind: "error"; error: string };

/** Everything the decider is asked. */
export type Command =
  | { type: "open"; session: SessionId; addr: string; addrKey: string }
  | { type: "close"; session: SessionId }
  /** A record from a session, parsed (or refused) by protocol/messages.ts. */
  | { type: "receive"; session: SessionId; parsed: ClientParse }
  | { type: "work_done"; work: Work; result: WorkResult }
  /**
   * Events of a decision could not be made durable: a rule of the store refused them
   * (`conflict`, when the log is shared with other nodes), or the store failed.
   */
  | {
    type: "commit_failed";
    events: readonly Event[];
    origin: Origin | undefined;
    error: string;
    conflict?: ConflictRule;
    /** The store could not be reached (PostgreSQL down): the events may yet be stored. */
    unavailable?: boolean;
  }
  /** Periodic: login deadlines. */
  | { type: "tick" }
  /** Periodic, less often: throttle entries that aged out. */
  | { type: "sweep" };

/** Time and ids, given rather than taken, so decisions are reproducible. */
export interface Context {
  readonly now: number;
  readonly newMessageId: () => string;
}

/** A message for one of this node's sessions (a BYE closes it once written). */
export interface Outgoing {
  readonly to: SessionId;
  readonly message: ServerMessage;
}

/** A line for the operator's log; fields never hold a password or a message text. */
export interface LogLine {
  readonly level: "info" | "warn" | "error";
  readonly msg: string;
  readonly fields: Readonly<Record<string, string | number | undefined>>;
}

/** The outcome of one command. */
export interface Decision {
  /** Applied to the state at once, before anything else. */
  readonly facts: Fact[];
  /** Sent at once. */
  readonly replies: Outgoing[];
  /** Appended together and in order; `onCommit` is sent once they are durable. */
  readonly events: Event[];
  /** The request that `events` answer, if any. */
  readonly origin?: Origin;
  readonly onCommit: Outgoing[];
  /** Appended with the next group commit; nobody waits for them (§4.3 allows a repeat). */
  readonly deferred: Event[];
  readonly work: Work[];
  readonly logs: LogLine[];
}

/** What a durable event tells this node's sessions, and the operator. */
export interface Reaction {
  readonly replies: Outgoing[];
  readonly logs: LogLine[];
}

function decision(parts: Partial<Decision> = {}): Decision {
  return {
    facts: parts.facts ?? [],
    replies: parts.replies ?? [],
    events: parts.events ?? [],
    ...(parts.origin === undefined ? {} : { origin: parts.origin }),
    onCommit: parts.onCommit ?? [],
    deferred: parts.deferred ?? [],
    work: parts.work ?? [],
    logs: parts.logs ?? [],
  };
}

const NOTHING = decision();

/** ERR for request `id` of `to`; `retryMs` becomes retry_after_ms (rate_limited). */
function err(
  to: SessionId,
  id: number,
  error: ErrorCode,
  message: string,
  retryMs?: number,
): Outgoing {
  return {
    to,
    message: {
      code: "ERR",
      id,
      error,
      message,
      ...(retryMs === undefined ? {} : { retry_after_ms: Math.max(1, Math.ceil(retryMs)) }),
    },
  };
}

function refuse(
  to: SessionId,
  id: number,
  error: ErrorCode,
  message: string,
  retryMs?: number,
): Decision {
  return decision({ replies: [err(to, id, error, message, retryMs)] });
}

function bye(to: SessionId, reason: ByeReason): Outgoing {
  return { to, message: { code: "BYE", reason } };
}

/** Decides what `command` does to `state`; never throws for anything a client sent. */
export function decide(state: ServerState, command: Command, ctx: Context): Decision {
  switch (command.type) {
    case "open":
      return decision({
        facts: [{
          type: "session_opened",
          session: command.session,
          addr: command.addr,
          addrKey: command.addrKey,
          now: ctx.now,
        }],
      });
    case "close":
      return decision({ facts: [{ type: "session_closed", session: command.session }] });
    case "receive": {
      const session = state.sessions.get(command.session);
      if (!session || session.closing) return NOTHING;
      const { parsed } = command;
      return parsed.ok ? request(state, session, parsed.value, ctx) : malformed(session, parsed);
    }
    case "work_done":
      return workDone(state, command.work, command.result, ctx);
    case "commit_failed":
      return commitFailed(state, command);
    case "tick":
      return tick(state, ctx);
    case "sweep":
      return decision({ facts: [{ type: "throttles_swept", now: ctx.now }] });
    default: {
      const never: never = command;
      throw new TypeError(`unhandled command ${JSON.stringify(never)}`);
    }
  }
}

/**
 * A record that did not parse. A well-formed request that needs a login hears that first; a
 * malformed one stays bad_request (§4), as does anything whose id could not be read. A bad
 * DAK gets no response: DAK has none.
 */
function malformed(session: Session, parsed: Extract<ClientParse, { ok: false }>): Decision {
  if (parsed.request === "DAK") return NOTHING;
  const gate = parsed.error.error !== "bad_request" && parsed.request !== undefined &&
    needsLogin(parsed.request) && session.user === undefined;
  const message = gate
    ? { ...parsed.error, error: "not_authenticated" as const, message: "log in first" }
    : parsed.error;
  return decision({ replies: [{ to: session.id, message }] });
}

function request(
  state: ServerState,
  session: Session,
  message: ClientMessage,
  ctx: Context,
): Decision {
  // Login gating (§4.1's "needs login" column) for every request, here and nowhere else.
  if (needsLogin(message.code) && session.user === undefined) {
    return message.code === "DAK"
      ? NOTHING
      : refuse(session.id, message.id, "not_authenticated", "log in first");
  }
  const to = session.id;
  switch (message.code) {
    case "PNG":
      return decision({
        replies: [{ to, message: { code: "ACK", id: message.id, request: "PNG" } }],
      });
    case "GSR": {
      const { key, fingerprint } = state.config.serverKey;
      return decision({
        replies: [{
          to,
          message: { code: "ACK", id: message.id, request: "GSR", key, fingerprint },
        }],
      });
    }
    case "GUL":
      return userList(state, session, message.id, message, ctx);
    case "SNU":
      return signUp(state, session, message.id, message.user, message.password, message.key, ctx);
    case "KEY":
      return publishKey(state, session, message.id, message.key, ctx);
    case "GPK":
      return getPublicKey(state, session, message.id, message.user, message.fingerprint);
    case "LGN":
      return logIn(state, session, message.id, message.user, message.password, ctx);
    case "LGO": {
      const user = session.user!;
      return decision({
        facts: [{ type: "session_logged_out", session: to, now: ctx.now }],
        events: [{ type: "logged_out", ts: ctx.now, user }],
        origin: { session: to, id: message.id },
        onCommit: [{ to, message: { code: "ACK", id: message.id, request: "LGO" } }],
        logs: [{ level: "info", msg: "logged out", fields: { conn: to, user } }],
      });
    }
    case "CPW":
      return changePassword(state, session, message.id, message.old, message.new, ctx);
    case "MSG":
      return send(state, session, message, ctx);
    case "DAK":
      return deliveryAck(state, session.user!, message.msg, ctx);
    default: {
      const never: never = message;
      throw new TypeError(`unhandled request ${JSON.stringify(never)}`);
    }
  }
}

/** GUL (§4.1): a page of the sorted user list, bounded, with `next` when more remain. */
function userList(
  state: ServerState,
  session: Session,
  id: number,
  query: { prefix?: string; after?: string; limit?: number },
  ctx: Context,
): Decision {
  const limits = state.config.limits;
  const wait = bucketWait(session.gulBucket, limits.gul_burst, limits.gul_per_second, ctx.now);
  if (wait > 0) {
    return refuse(session.id, id, "rate_limited", "asking for the user list too often", wait);
  }
  const names = state.names;
  const prefix = query.prefix ?? "";
  const from = query.after !== undefined && query.after >= prefix ? query.after : undefined;
  // The first name after `after` (or at `prefix`), by binary search over the sorted names.
  let lo = 0, hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const name = names[mid]!;
    if (from === undefined ? name < prefix : name <= from) lo = mid + 1;
    else hi = mid;
  }
  const limit = Math.min(query.limit ?? limits.gul_page, limits.gul_page, MAX_GUL_PAGE);
  const users: UserEntry[] = [];
  let i = lo;
  for (; i < names.length && users.length < limit; i++) {
    const user = names[i]!;
    if (!user.startsWith(prefix)) break;
    const current = state.log.users.get(user)?.keys.at(-1);
    users.push(
      current === undefined
        ? { user, online: state.online.has(user) }
        : { user, online: state.online.has(user), fingerprint: current.fingerprint },
    );
  }
  const more = i < names.length && names[i]!.startsWith(prefix) && users.length > 0;
  return decision({
    facts: [{ type: "token_taken", session: session.id, bucket: "gul", now: ctx.now }],
    replies: [{
      to: session.id,
      message: {
        code: "ACK",
        id,
        request: "GUL",
        users,
        ...(more ? { next: users.at(-1)!.user } : {}),
      },
    }],
  });
}

/** The refusal of request `id` when the password job queue is full, with a retry hint. */
function jobsFull(state: ServerState, to: SessionId, id: number): Decision | undefined {
  const { hash_concurrency, hash_queue } = state.config.limits;
  const jobs = state.pending.jobs;
  if (jobs < hash_concurrency + hash_queue) return undefined;
  const retry = HASH_JOB_MS * Math.ceil((jobs - hash_concurrency + 1) / hash_concurrency);
  return refuse(to, id, "rate_limited", "server busy hashing passwords", retry);
}

function signUp(
  state: ServerState,
  session: Session,
  id: number,
  user: string,
  password: string,
  key: string | undefined,
  ctx: Context,
): Decision {
  const limits = state.config.limits;
  const to = session.id;
  const wait = windowWait(
    state.throttles.signups,
    session.addrKey,
    limits.signups_per_address,
    limits.signup_window_ms,
    ctx.now,
  );
  if (wait > 0) return refuse(to, id, "rate_limited", "too many sign-ups from this address", wait);
  if (state.log.users.has(user) || state.pending.signups.has(user)) {
    return refuse(to, id, "user_exists", `user ${user} already exists`);
  }
  const checked = key === undefined ? undefined : userKey(state, key);
  if (typeof checked === "string") return refuse(to, id, "invalid_key", checked);
  const busy = jobsFull(state, to, id);
  if (busy !== undefined) return busy;
  return decision({
    facts: [{ type: "signup_reserved", session: to, user, addrKey: session.addrKey, now: ctx.now }],
    work: [{
      kind: "hash",
      origin: { session: to, id },
      user,
      password,
      ...(checked === undefined ? {} : { key: checked }),
    }],
  });
}

/** A published key after §8.1's checks, or why it is refused. */
function userKey(state: ServerState, key: string): PublishedKeyInput | string {
  const checked = checkUserKey(state.config.crypto, key);
  if (typeof checked === "string") return `not a user key: ${checked}`;
  return { key, fingerprint: checked.fingerprint, bits: checked.bits };
}

/** KEY (§8.1): replaces the user's key, at most KEYS_PER_WINDOW times an hour. */
function publishKey(
  state: ServerState,
  session: Session,
  id: number,
  key: string,
  ctx: Context,
): Decision {
  const to = session.id;
  const user = session.user!;
  const checked = userKey(state, key);
  if (typeof checked === "string") return refuse(to, id, "invalid_key", checked);
  // Counted from the log, so the limit holds across restarts and nodes.
  const recent = (state.log.users.get(user)?.keys ?? []).filter((k) =>
    k.ts > ctx.now - KEY_WINDOW_MS
  );
  const inFlight = state.pending.keys.get(user) ?? 0;
  if (recent.length + inFlight >= KEYS_PER_WINDOW) {
    const oldest = recent[0]?.ts ?? ctx.now;
    return refuse(
      to,
      id,
      "rate_limited",
      `at most ${KEYS_PER_WINDOW} keys an hour`,
      Math.max(1, oldest + KEY_WINDOW_MS - ctx.now),
    );
  }
  return decision({
    facts: [{ type: "key_reserved", user }],
    events: [{ type: "user_key_published", ts: ctx.now, user, ...checked }],
    origin: { session: to, id },
    onCommit: [{
      to,
      message: { code: "ACK", id, request: "KEY", fingerprint: checked.fingerprint },
    }],
    logs: [{
      level: "info",
      msg: "key published",
      fields: { conn: to, user, fingerprint: checked.fingerprint, bits: checked.bits },
    }],
  });
}

/** GPK (§8.1): the current key of `user`, or the one with `fingerprint` if they published it. */
function getPublicKey(
  state: ServerState,
  session: Session,
  id: number,
  user: string,
  fingerprint: string | undefined,
): Decision {
  const to = session.id;
  const keys = state.log.users.get(user)?.keys;
  if (keys === undefined) return refuse(to, id, "unknown_user", `no user ${user}`);
  const found = fingerprint === undefined
    ? keys.at(-1)
    : keys.findLast((k) => k.fingerprint === fingerprint);
  if (found === undefined) {
    return refuse(
      to,
      id,
      "no_key",
      fingerprint === undefined
        ? `${user} has published no key`
        : `${user} never published that key`,
    );
  }
  return decision({
    replies: [{
      to,
      message: {
        code: "ACK",
        id,
        request: "GPK",
        user,
        key: found.key,
        fingerprint: found.fingerprint,
        current: found === keys.at(-1),
      },
    }],
  });
}

/** Throttle wait for an attempt on `user` from `session`'s address (§5), 0 if it may go ahead. */
function attemptWait(state: ServerState, user: string, session: Session, now: number): number {
  const t = state.throttles;
  const rules = loginRules(state.config.limits);
  return Math.max(
    throttleWait(t.userAddr, userAddrKey(user, session.addrKey), rules.userAddr, now),
    throttleWait(t.user, user, rules.user, now),
    throttleWait(t.addr, session.addrKey, rules.addr, now),
  );
}

function logIn(
  state: ServerState,
  session: Session,
  id: number,
  user: string,
  password: string,
  ctx: Context,
): Decision {
  const to = session.id;
  const wait = attemptWait(state, user, session, ctx.now);
  if (wait > 0) {
    return refuse(to, id, "rate_limited", "too many failed logins; try again later", wait);
  }
  const busy = jobsFull(state, to, id);
  if (busy !== undefined) return busy;
  const stored = state.log.users.get(user)?.passwordHash;
  return decision({
    facts: [{ type: "attempt_admitted", session: to, user, addrKey: session.addrKey, login: true }],
    work: [{
      kind: "verify",
      origin: { session: to, id },
      addr: session.addr,
      addrKey: session.addrKey,
      user,
      password,
      // An unknown user is checked against a dummy hash: it costs the same (§4.3).
      stored: stored ?? state.config.dummyHash,
      known: stored !== undefined,
    }],
  });
}

function changePassword(
  state: ServerState,
  session: Session,
  id: number,
  old: string,
  next: string,
  ctx: Context,
): Decision {
  const to = session.id;
  const user = session.user!;
  const wait = attemptWait(state, user, session, ctx.now);
  if (wait > 0) {
    return refuse(to, id, "rate_limited", "too many failed attempts; try again later", wait);
  }
  const busy = jobsFull(state, to, id);
  if (busy !== undefined) return busy;
  return decision({
    facts: [{
      type: "attempt_admitted",
      session: to,
      user,
      addrKey: session.addrKey,
      login: false,
    }],
    work: [{
      kind: "change",
      origin: { session: to, id },
      addr: session.addr,
      addrKey: session.addrKey,
      user,
      old,
      next,
      stored: state.log.users.get(user)?.passwordHash,
    }],
  });
}

function send(
  state: ServerState,
  session: Session,
  message: SendMessage,
  ctx: Context,
): Decision {
  const { id, to: recipient, cid } = message;
  const limits = state.config.limits;
  const { log, pending } = state;
  const to = session.id;
  const from = session.user!;
  const key = cid === undefined ? undefined : cidKey(from, cid);
  if (cid !== undefined) {
    // §4.3: a retried cid gets the first ACK again, once that first send is durable.
    const first = rememberedCid(log, from, cid);
    if (first) {
      return decision({
        replies: [{
          to,
          message: { code: "ACK", id, request: "MSG", msg: first.msg, ts: first.ts },
        }],
      });
    }
    if (pending.cids.has(key!) || pending.cidWaiters.has(key!)) {
      return decision({
        facts: [{ type: "cid_waiter_added", cidKey: key!, waiter: { session: to, id } }],
      });
    }
  }
  const wait = bucketWait(session.msgBucket, limits.msg_burst, limits.msg_per_second, ctx.now);
  if (wait > 0) return refuse(to, id, "rate_limited", "sending too fast", wait);
  if (!log.users.has(recipient)) return refuse(to, id, "unknown_user", `no user ${recipient}`);
  if (message.sealed !== undefined) {
    const refusal = sealedProblem(state, from, recipient, message.sealed);
    if (refusal) return refuse(to, id, refusal.error, refusal.message);
  }
  // An envelope is base64, one byte per character; a text counts its UTF-8 bytes.
  const bytes = message.sealed === undefined ? utf8Bytes(message.text) : message.sealed.length;
  const queued = log.queues.get(recipient);
  const full = (what: string) =>
    refuse(to, id, "rate_limited", `${what}; try again later`, QUEUE_FULL_RETRY_MS);
  if (
    (queued?.size ?? 0) + (pending.toCount.get(recipient) ?? 0) >= limits.max_queued_per_recipient
  ) {
    return full(`${recipient} has too many undelivered messages`);
  }
  if (
    (queued?.bytes ?? 0) + (pending.toBytes.get(recipient) ?? 0) + bytes >
      limits.max_queued_bytes_per_recipient
  ) {
    return full(`${recipient} has too many undelivered bytes`);
  }
  if (
    (log.outstanding.get(from) ?? 0) + (pending.fromBytes.get(from) ?? 0) + bytes >
      limits.max_queued_bytes_per_sender
  ) {
    return full("your undelivered messages take too much room");
  }
  if (log.queuedBytes + pending.bytes + bytes > limits.max_queued_bytes_total) {
    return full("the server holds too many undelivered messages");
  }
  const ts = ctx.now;
  const msg = ctx.newMessageId();
  // Built with its final shape: `delete` of an absent cid would put the object in V8's
  // dictionary mode, slowing every later read of it (encoding, evolve, DLV).
  const event: MessageSent | SealedMessageSent = message.sealed === undefined
    ? (cid === undefined
      ? { type: "message_sent", ts, msg, from, to: recipient, text: message.text }
      : { type: "message_sent", ts, msg, from, to: recipient, text: message.text, cid })
    : (cid === undefined
      ? { type: "sealed_message_sent", ts, msg, from, to: recipient, sealed: message.sealed }
      : { type: "sealed_message_sent", ts, msg, from, to: recipient, sealed: message.sealed, cid });
  return decision({
    facts: [
      { type: "token_taken", session: to, bucket: "msg", now: ctx.now },
      { type: "send_reserved", msg, ts, send: { from, to: recipient, bytes, cidKey: key } },
    ],
    events: [event],
    origin: { session: to, id },
    onCommit: [{ to, message: { code: "ACK", id, request: "MSG", msg, ts } }],
  });
}

/**
 * §8.4, after the base64 check the parser made: the layout parses exactly; the kids name the
 * recipient's and the sender's current keys (`stale_key` otherwise: fetch them again with GPK);
 * `wrapped` and `sig` are as long as those keys' moduli. Undefined when the envelope may go.
 */
function sealedProblem(
  state: ServerState,
  from: string,
  to: string,
  sealed: string,
): { error: ErrorCode; message: string } | undefined {
  let envelope;
  try {
    envelope = parseEnvelope(decodeSealed(sealed));
  } catch (err) {
    if (!(err instanceof EnvelopeError)) throw err;
    return { error: "invalid_message", message: `sealed envelope: ${err.message}` };
  }
  const recipientKey = state.log.users.get(to)?.keys.at(-1);
  const senderKey = state.log.users.get(from)?.keys.at(-1);
  if (recipientKey?.fingerprint !== fingerprintOfKid(envelope.recipientKid)) {
    return { error: "stale_key", message: `not sealed to ${to}'s current key; fetch it with GPK` };
  }
  if (senderKey?.fingerprint !== fingerprintOfKid(envelope.senderKid)) {
    return { error: "stale_key", message: "not from your current key; publish or fetch it again" };
  }
  if (
    envelope.wrapped.length !== recipientKey.bits / 8 || envelope.sig.length !== senderKey.bits / 8
  ) {
    return { error: "invalid_message", message: "wrapped key or signature of the wrong length" };
  }
  return undefined;
}

function deliveryAck(state: ServerState, user: string, msg: string, ctx: Context): Decision {
  const queued = state.log.queues.get(user)?.get(msg);
  if (queued === undefined || state.pending.daks.has(`${user}\0${msg}`)) return NOTHING;
  return decision({
    facts: [{ type: "dak_reserved", user, msg }],
    deferred: [{ type: "message_delivered", ts: ctx.now, msg, user }],
  });
}

/** The results of password work. */
function workDone(state: ServerState, work: Work, result: WorkResult, ctx: Context): Decision {
  const { session, id } = work.origin;
  if (result.kind === "error") {
    const failed: Fact[] = work.kind === "hash"
      ? [{ type: "job_finished" }, { type: "signup_released", user: work.user }]
      // A fault of ours is no guess: the reservation is given back.
      : [attemptSettled(work, "succeeded", ctx)];
    return decision({
      facts: failed,
      replies: [err(session, id, "internal", "internal error")],
      logs: [{
        level: "error",
        msg: "password job failed",
        fields: { conn: session, error: result.error },
      }],
    });
  }
  switch (work.kind) {
    case "hash": {
      if (result.kind !== "hash") break;
      const events: Event[] = [
        { type: "user_signed_up", ts: ctx.now, user: work.user, passwordHash: result.hash },
      ];
      // A key given with the sign-up (§8.1) is published with it, in the same append.
      if (work.key) {
        events.push({ type: "user_key_published", ts: ctx.now, user: work.user, ...work.key });
      }
      return decision({
        facts: [{ type: "job_finished" }],
        events,
        origin: work.origin,
        onCommit: [{
          to: session,
          message: {
            code: "ACK",
            id,
            request: "SNU",
            user: work.user,
            ...(work.key ? { fingerprint: work.key.fingerprint } : {}),
          },
        }],
        logs: [{
          level: "info",
          msg: "signed up",
          fields: { conn: session, addr: state.sessions.get(session)?.addr, user: work.user },
        }],
      });
    }
    case "verify": {
      if (result.kind !== "verify") break;
      // The hash checked must still be the user's: a CPW may have landed meanwhile.
      const ok = result.ok && work.known &&
        state.log.users.get(work.user)?.passwordHash === work.stored;
      const settled = attemptSettled(work, ok ? "succeeded" : "failed", ctx);
      if (!ok) return loginFailed(settled, session, id, work.user, work.addr, ctx);
      // A session that closed while its login was checked is logged in nowhere.
      if (!state.sessions.has(session)) return decision({ facts: [settled] });
      const events: Event[] = [
        { type: "login_succeeded", ts: ctx.now, user: work.user, addr: work.addr },
      ];
      if (result.rehashed !== undefined) {
        events.push({
          type: "password_changed",
          ts: ctx.now,
          user: work.user,
          passwordHash: result.rehashed,
        });
      }
      return decision({ facts: [settled], events, origin: work.origin });
    }
    case "change": {
      if (result.kind !== "change") break;
      const ok = result.ok && result.hash !== undefined && work.stored !== undefined &&
        state.log.users.get(work.user)?.passwordHash === work.stored;
      const settled = attemptSettled(work, ok ? "succeeded" : "failed", ctx);
      if (!ok) return loginFailed(settled, session, id, work.user, work.addr, ctx);
      return decision({
        facts: [settled],
        events: [{
          type: "password_changed",
          ts: ctx.now,
          user: work.user,
          passwordHash: result.hash!,
        }],
        origin: work.origin,
        onCommit: [{ to: session, message: { code: "ACK", id, request: "CPW" } }],
        logs: [{
          level: "info",
          msg: "password changed",
          fields: { conn: session, user: work.user },
        }],
      });
    }
    default: {
      const never: never = work;
      throw new TypeError(`unhandled work ${JSON.stringify(never)}`);
    }
  }
  throw new TypeError(`a ${result.kind} result for ${work.kind} work`);
}

/** The end of a login's or a CPW's password check, which the throttles count (§5). */
function attemptSettled(
  work: Extract<Work, { kind: "verify" | "change" }>,
  outcome: "succeeded" | "failed",
  ctx: Context,
): Fact {
  return {
    type: "attempt_settled",
    session: work.origin.session,
    user: work.user,
    addrKey: work.addrKey,
    login: work.kind === "verify",
    outcome,
    now: ctx.now,
  };
}

/** A wrong password (LGN or CPW): one more failure, an audit event, and §4.3's one answer. */
function loginFailed(
  settled: Fact,
  session: SessionId,
  id: number,
  user: string,
  addr: string,
  ctx: Context,
): Decision {
  return decision({
    facts: [settled],
    replies: [err(session, id, "invalid_credentials", INVALID_CREDENTIALS_MESSAGE)],
    deferred: [{ type: "login_failed", ts: ctx.now, user, addr }],
    logs: [{ level: "warn", msg: "login failed", fields: { conn: session, addr, user } }],
  });
}

/** Events that could not be made durable: their reservations go, their requesters hear why. */
function commitFailed(
  state: ServerState,
  command: Extract<Command, { type: "commit_failed" }>,
): Decision {
  const facts: Fact[] = [];
  const replies: Outgoing[] = [];
  const origin = command.origin;
  let answered = false;
  for (const event of command.events) {
    switch (event.type) {
      case "user_signed_up":
        facts.push({ type: "signup_released", user: event.user });
        if (command.conflict === "user_exists" && origin) {
          // Another node signed this name up first (§4.3: one account per name).
          replies.push(
            err(origin.session, origin.id, "user_exists", `user ${event.user} already exists`),
          );
          answered = true;
        }
        break;
      case "user_key_published":
        if (origin && state.pending.keys.has(event.user)) {
          facts.push({ type: "key_released", user: event.user });
        }
        break;
      case "message_sent":
      case "sealed_message_sent": {
        facts.push({ type: "send_released", msg: event.msg });
        if (event.cid === undefined) break;
        const key = cidKey(event.from, event.cid);
        if (command.conflict === "cid_used" && origin) {
          // Another node holds the first send with this cid: its ACK is the answer (§4.3),
          // here at once if it was applied already, else when it is.
          const first = rememberedCid(state.log, event.from, event.cid);
          if (first) {
            replies.push({
              to: origin.session,
              message: { code: "ACK", id: origin.id, request: "MSG", msg: first.msg, ts: first.ts },
            });
          } else {
            facts.push({ type: "cid_waiter_added", cidKey: key, waiter: origin });
          }
          answered = true;
          break;
        }
        // Retries that waited for this first send learn it failed: they may send again.
        for (const w of state.pending.cidWaiters.get(key) ?? []) {
          replies.push(
            err(w.session, w.id, "internal", "the first send with this cid failed; retry"),
          );
        }
        facts.push({ type: "cid_waiters_released", cidKey: key });
        break;
      }
      case "message_delivered":
        facts.push({ type: "dak_released", user: event.user, msg: event.msg });
        break;
      default:
        break;
    }
  }
  if (origin && !answered) {
    replies.push(
      err(
        origin.session,
        origin.id,
        "internal",
        command.unavailable ? STORE_UNAVAILABLE : STORE_FAILED,
      ),
    );
  }
  return decision({
    facts,
    replies,
    logs: answered ? [] : [{
      level: "error",
      msg: "append failed",
      fields: { event: command.events[0]?.type, error: command.error },
    }],
  });
}

/** What a requester is told when its events could not be stored (the cause goes to the log). */
const STORE_FAILED = "the server could not store this; nothing was done, try again";
/**
 * When the store was unreachable the append may have landed all the same: a retry is safe for
 * a MSG with a cid (its first ACK comes back) and for a SNU (user_exists if it landed).
 */
const STORE_UNAVAILABLE =
  "the server's event store is unavailable; try again shortly (a MSG retried with the same cid is never stored twice)";

/** Login deadline (§5, tightened): a session that has not logged in in time is closed. */
function tick(state: ServerState, ctx: Context): Decision {
  const facts: Fact[] = [];
  const replies: Outgoing[] = [];
  const logs: LogLine[] = [];
  for (const session of state.sessions.values()) {
    if (
      session.user === undefined && !session.closing && session.loginsInFlight === 0 &&
      ctx.now > session.loginDeadline
    ) {
      facts.push({ type: "session_closing", session: session.id });
      replies.push(bye(session.id, "idle"));
      logs.push({ level: "info", msg: "no login in time", fields: { conn: session.id } });
    }
  }
  return facts.length === 0 ? NOTHING : decision({ facts, replies, logs });
}

/**
 * What a durable event tells this node's sessions; asked before the event is applied (so the
 * session a login replaces can still be found). `origin` is the request this node wrote it for.
 */
export function react(state: ServerState, event: Event, origin: Origin | undefined): Reaction {
  switch (event.type) {
    case "message_sent":
    case "sealed_message_sent": {
      const replies: Outgoing[] = [];
      if (event.cid !== undefined) {
        for (const w of state.pending.cidWaiters.get(cidKey(event.from, event.cid)) ?? []) {
          replies.push({
            to: w.session,
            message: { code: "ACK", id: w.id, request: "MSG", msg: event.msg, ts: event.ts },
          });
        }
      }
      const recipient = liveSession(state, state.online.get(event.to));
      if (recipient) {
        const { msg, from, to, ts } = event;
        replies.push({
          to: recipient.id,
          message: event.type === "message_sent"
            ? { code: "DLV", msg, from, to, text: event.text, ts }
            : { code: "DLV", msg, from, to, sealed: event.sealed, ts },
        });
      }
      return { replies, logs: [] };
    }
    case "login_succeeded": {
      const replies: Outgoing[] = [];
      const logs: LogLine[] = [];
      const session = origin === undefined ? undefined : liveSession(state, origin.session);
      // A login this node made for a session that has gone since displaces nobody.
      if (origin !== undefined && session === undefined) return { replies, logs };
      const older = liveSession(state, state.online.get(event.user));
      if (older && older !== session) replies.push(bye(older.id, "logged_in_elsewhere"));
      if (session) {
        const queued = queuedFor(state.log, event.user);
        logs.push({
          level: "info",
          msg: "logged in",
          fields: { conn: session.id, addr: session.addr, user: event.user, queued: queued.length },
        });
        replies.push({
          to: session.id,
          message: {
            code: "ACK",
            id: origin!.id,
            request: "LGN",
            user: event.user,
            queued: queued.length,
          },
        });
        // §4.3: every queued message, oldest first, right after the ACK.
        for (const m of queued) replies.push({ to: session.id, message: deliver(m) });
      }
      return { replies, logs };
    }
    default:
      return { replies: [], logs: [] };
  }
}

/** The DLV of a queued message: its text or its envelope, as sent. */
function deliver(m: QueuedMessage): ServerMessage {
  const { msg, from, to, ts } = m;
  return m.sealed === undefined
    ? { code: "DLV", msg, from, to, text: m.text, ts }
    : { code: "DLV", msg, from, to, sealed: m.sealed, ts };
}

function liveSession(state: ServerState, id: SessionId | undefined): Session | undefined {
  const session = id === undefined ? undefined : state.sessions.get(id);
  return session && !session.closing ? session : undefined;
}
