// The state the request decider (decide.ts) reads, and `evolve`, the only thing that changes
// it. Two kinds of change reach it:
//   - events (store/events.ts), once they are durable in the log: the projection of §4 (users,
//     queues, cids) plus what they mean for this node's sessions;
//   - facts, which never reach the log: sessions opening and closing, tokens taken, and the
//     reservations that stand for work in flight (a name being signed up, a login being
//     verified, a message being written), so that a decision never reads a state that lags
//     behind a commit still under way.
// `evolve` updates the state in place (the projection holds millions of messages on replay);
// it is deterministic and does no I/O: time comes in with each fact.
import type { CryptoEngine, ScryptParams } from "../crypto/mod.ts";
import {
  type Event,
  evolve as evolveProjection,
  initialState as initialProjection,
  type State as Projection,
} from "../store/mod.ts";
import type { ServerLimits } from "./config.ts";
import {
  beginAttempt,
  type Bucket,
  endAttempt,
  type FailureThrottle,
  newBucket,
  newFailureThrottle,
  recordInWindow,
  sweepThrottle,
  sweepWindows,
  takeToken,
  type ThrottleRule,
  type Windows,
} from "./rate_limit.ts";

/** A connection after its handshake, named uniquely on this node. */
export type SessionId = string;

/** The request an event answers, when this node appended it for one of its sessions. */
export interface Origin {
  readonly session: SessionId;
  readonly id: number;
}

/** A session as the decider sees it: no socket, only what rules need. */
export interface Session {
  readonly id: SessionId;
  /** The peer's address as connected (for logs and audit events). */
  readonly addr: string;
  /** The key per-address limits count under (server/address.ts: IPv6 per /64). */
  readonly addrKey: string;
  /** The logged-in user, if any. */
  user: string | undefined;
  /** When a session without a login is closed (PROTOCOL §5's idle rule, tightened). */
  loginDeadline: number;
  /** LGNs of this session being verified: the deadline waits for them. */
  loginsInFlight: number;
  msgBucket: Bucket;
  gulBucket: Bucket;
  /** BYE sent: the shell is closing it, nothing more is decided for it. */
  closing: boolean;
}

/** A MSG accepted and being written: it counts against the quotas until it is durable. */
export interface PendingSend {
  readonly from: string;
  readonly to: string;
  readonly bytes: number;
  readonly cidKey: string | undefined;
}

/** A first send with a cid, not yet durable. */
export interface PendingCid {
  readonly msg: string;
  readonly ts: number;
}

/** Work in flight that later decisions must see (issue: decisions on a lagging state). */
export interface Pending {
  /** Names being signed up (hash or write under way) → the session asking. */
  readonly signups: Map<string, SessionId>;
  /** msg → a message being written. */
  readonly sends: Map<string, PendingSend>;
  /** `from\0cid` → the first send with that cid, being written by this node. */
  readonly cids: Map<string, PendingCid>;
  /**
   * `from\0cid` → retries waiting for the first send with that cid to be applied (written by
   * this node and not durable yet, or by another node and not applied here yet).
   */
  readonly cidWaiters: Map<string, Origin[]>;
  /** user → KEYs of theirs being written: they count against the hourly limit (§8.1). */
  readonly keys: Map<string, number>;
  /** `user\0msg` of DAKs being written, so a repeated DAK is not logged twice. */
  readonly daks: Set<string>;
  /** recipient → messages and bytes being written to them; sender → bytes. */
  readonly toCount: Map<string, number>;
  readonly toBytes: Map<string, number>;
  readonly fromBytes: Map<string, number>;
  /** Bytes of every message being written. */
  bytes: number;
  /** Password jobs (hash or verify) admitted and not finished. */
  jobs: number;
}

/** What the decider needs to know and never changes. */
export interface ServerConfig {
  readonly limits: ServerLimits;
  /** GSR's answer: the identity key as base64 SPKI DER, and its fingerprint. */
  readonly serverKey: { readonly key: string; readonly fingerprint: string };
  /** scrypt parameters of new hashes; stored hashes below them are redone at login. */
  readonly hashParams: ScryptParams;
  /** Verified against for an unknown user, so that it costs what a wrong password does. */
  readonly dummyHash: string;
  /** The engine users' keys are read with (§8.1); reading one is pure, it only parses DER. */
  readonly crypto: CryptoEngine;
}

/** The §5 throttles, keyed by user, address key, or both. */
export interface Throttles {
  /** Failures per (user, address): §5's per-user throttle, scoped so the owner elsewhere is spared. */
  readonly userAddr: FailureThrottle;
  /** Failures per user over all addresses: a bound on guessing spread over many addresses. */
  readonly user: FailureThrottle;
  readonly addr: FailureThrottle;
  /** Sign-ups per address key. */
  readonly signups: Windows;
}

export interface ServerState {
  readonly config: ServerConfig;
  /** The projection of the event log (store/projection.ts). */
  readonly log: Projection;
  readonly sessions: Map<SessionId, Session>;
  /** user → the session logged in as that user on this node. */
  readonly online: Map<string, SessionId>;
  readonly throttles: Throttles;
  readonly pending: Pending;
  /** Every username, sorted: GUL pages through it. */
  readonly names: string[];
}

/** The state of a node whose log replayed into `log`. */
export function initialServerState(
  config: ServerConfig,
  log: Projection = initialProjection(),
): ServerState {
  return {
    config,
    log,
    sessions: new Map(),
    online: new Map(),
    throttles: {
      userAddr: newFailureThrottle(),
      user: newFailureThrottle(),
      addr: newFailureThrottle(),
      signups: new Map(),
    },
    pending: {
      signups: new Map(),
      sends: new Map(),
      cids: new Map(),
      cidWaiters: new Map(),
      keys: new Map(),
      daks: new Set(),
      toCount: new Map(),
      toBytes: new Map(),
      fromBytes: new Map(),
      bytes: 0,
      jobs: 0,
    },
    names: [...log.users.keys()].sort(),
  };
}

/** Facts: changes that never reach the log. */
export type Fact =
  | { type: "session_opened"; session: SessionId; addr: string; addrKey: string; now: number }
  | { type: "session_closed"; session: SessionId }
  /** A BYE went out; the connection is closing. */
  | { type: "session_closing"; session: SessionId }
  /** LGO: the session stays open without a user, and its login deadline starts again. */
  | { type: "session_logged_out"; session: SessionId; now: number }
  | { type: "token_taken"; session: SessionId; bucket: "msg" | "gul"; now: number }
  | { type: "signup_reserved"; session: SessionId; user: string; addrKey: string; now: number }
  | { type: "signup_released"; user: string }
  /** A password job (sign-up hash) finished. */
  | { type: "job_finished" }
  /** An LGN or CPW admitted past the throttles: a reservation on each. */
  | { type: "attempt_admitted"; session: SessionId; user: string; addrKey: string; login: boolean }
  | {
    type: "attempt_settled";
    session: SessionId;
    user: string;
    addrKey: string;
    login: boolean;
    outcome: "failed" | "succeeded";
    now: number;
  }
  | { type: "send_reserved"; msg: string; ts: number; send: PendingSend }
  | { type: "send_released"; msg: string }
  | { type: "cid_waiter_added"; cidKey: string; waiter: Origin }
  | { type: "cid_waiters_released"; cidKey: string }
  | { type: "key_reserved"; user: string }
  | { type: "key_released"; user: string }
  | { type: "dak_reserved"; user: string; msg: string }
  | { type: "dak_released"; user: string; msg: string }
  /** Forget throttle entries that aged out. */
  | { type: "throttles_swept"; now: number };

/** `from\0cid`: a sender's cid, as the pending table keys it. */
export function cidKey(from: string, cid: string): string {
  return `${from}\0${cid}`;
}

/** The three §5 login rules, from the limits. */
export function loginRules(limits: ServerLimits): {
  userAddr: ThrottleRule;
  user: ThrottleRule;
  addr: ThrottleRule;
} {
  const rule = (free: number): ThrottleRule => ({
    free,
    windowMs: limits.login_window_ms,
    baseMs: limits.login_backoff_base_ms,
    maxMs: limits.login_backoff_max_ms,
  });
  return {
    userAddr: rule(limits.login_failures_per_user),
    user: rule(limits.login_failures_per_user_total),
    addr: rule(limits.login_failures_per_address),
  };
}

/** `user\0addr`: the per-(user, address) throttle's key. */
export function userAddrKey(user: string, addrKey: string): string {
  return `${user}\0${addrKey}`;
}

function add(map: Map<string, number>, key: string, n: number): void {
  const value = (map.get(key) ?? 0) + n;
  if (value > 0) map.set(key, value);
  else map.delete(key);
}

/** Ends `session`'s login (LGO, re-login, takeover, close), without a message. */
function detach(state: ServerState, session: Session): void {
  if (session.user !== undefined && state.online.get(session.user) === session.id) {
    state.online.delete(session.user);
  }
  session.user = undefined;
}

function insertName(names: string[], user: string): void {
  let lo = 0, hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid]! < user) lo = mid + 1;
    else hi = mid;
  }
  if (names[lo] !== user) names.splice(lo, 0, user);
}

/**
 * Applies an event (once durable; `origin` when this node wrote it for one of its sessions)
 * or a fact, and returns `state`.
 */
export function evolve(state: ServerState, change: Event | Fact, origin?: Origin): ServerState {
  const { pending, sessions, config } = state;
  const limits = config.limits;
  switch (change.type) {
    // ─── Events ───
    case "user_signed_up":
      evolveProjection(state.log, change);
      pending.signups.delete(change.user);
      insertName(state.names, change.user);
      break;
    case "login_succeeded": {
      evolveProjection(state.log, change);
      // One session per user (§4.3): the older one is detached here and told so by react().
      const olderId = state.online.get(change.user);
      const older = olderId === undefined ? undefined : sessions.get(olderId);
      const session = origin === undefined ? undefined : sessions.get(origin.session);
      if (older && older !== session) detach(state, older);
      if (session && !session.closing) {
        detach(state, session);
        session.user = change.user;
        state.online.set(change.user, session.id);
      }
      break;
    }
    case "message_sent":
    case "sealed_message_sent": {
      evolveProjection(state.log, change);
      const send = pending.sends.get(change.msg);
      if (send) releaseSend(state, change.msg, send);
      if (change.cid !== undefined) pending.cidWaiters.delete(cidKey(change.from, change.cid));
      break;
    }
    case "user_key_published":
      evolveProjection(state.log, change);
      if (origin !== undefined) add(pending.keys, change.user, -1);
      break;
    case "message_delivered":
      evolveProjection(state.log, change);
      pending.daks.delete(`${change.user}\0${change.msg}`);
      break;
    case "login_failed":
    case "logged_out":
    case "password_changed":
    case "cid_remembered":
    case "log_compacted":
      evolveProjection(state.log, change);
      break;

    // ─── Facts ───
    case "session_opened":
      sessions.set(change.session, {
        id: change.session,
        addr: change.addr,
        addrKey: change.addrKey,
        user: undefined,
        loginDeadline: change.now + limits.login_timeout_ms,
        loginsInFlight: 0,
        msgBucket: newBucket(limits.msg_burst, change.now),
        gulBucket: newBucket(limits.gul_burst, change.now),
        closing: false,
      });
      break;
    case "session_closed": {
      const session = sessions.get(change.session);
      if (session) {
        detach(state, session);
        sessions.delete(change.session);
      }
      break;
    }
    case "session_closing": {
      const session = sessions.get(change.session);
      if (session) session.closing = true;
      break;
    }
    case "session_logged_out": {
      const session = sessions.get(change.session);
      if (session) {
        detach(state, session);
        session.loginDeadline = change.now + limits.login_timeout_ms;
      }
      break;
    }
    case "token_taken": {
      const session = sessions.get(change.session);
      if (!session) break;
      if (change.bucket === "msg") {
        takeToken(session.msgBucket, limits.msg_burst, limits.msg_per_second, change.now);
      } else {
        takeToken(session.gulBucket, limits.gul_burst, limits.gul_per_second, change.now);
      }
      break;
    }
    case "signup_reserved":
      pending.signups.set(change.user, change.session);
      recordInWindow(
        state.throttles.signups,
        change.addrKey,
        limits.signup_window_ms,
        limits.signups_per_address,
        change.now,
      );
      pending.jobs++;
      break;
    case "signup_released":
      pending.signups.delete(change.user);
      break;
    case "job_finished":
      pending.jobs--;
      break;
    case "attempt_admitted": {
      const t = state.throttles;
      beginAttempt(t.userAddr, userAddrKey(change.user, change.addrKey));
      beginAttempt(t.user, change.user);
      beginAttempt(t.addr, change.addrKey);
      pending.jobs++;
      const session = sessions.get(change.session);
      if (session && change.login) session.loginsInFlight++;
      break;
    }
    case "attempt_settled": {
      const t = state.throttles;
      const rules = loginRules(limits);
      const { outcome, now } = change;
      // A successful login forgets that address's failures for the user (§5); a successful
      // CPW and the other scopes only give their reservation back.
      endAttempt(
        t.userAddr,
        userAddrKey(change.user, change.addrKey),
        rules.userAddr,
        outcome === "succeeded" && change.login ? "cleared" : outcome,
        now,
      );
      endAttempt(t.user, change.user, rules.user, outcome, now);
      endAttempt(t.addr, change.addrKey, rules.addr, outcome, now);
      pending.jobs--;
      const session = sessions.get(change.session);
      if (session && change.login) session.loginsInFlight--;
      break;
    }
    case "send_reserved": {
      const { send } = change;
      pending.sends.set(change.msg, send);
      add(pending.toCount, send.to, 1);
      add(pending.toBytes, send.to, send.bytes);
      add(pending.fromBytes, send.from, send.bytes);
      pending.bytes += send.bytes;
      if (send.cidKey !== undefined) {
        pending.cids.set(send.cidKey, { msg: change.msg, ts: change.ts });
      }
      break;
    }
    case "send_released": {
      const send = pending.sends.get(change.msg);
      if (send) releaseSend(state, change.msg, send);
      break;
    }
    case "cid_waiter_added": {
      const waiters = pending.cidWaiters.get(change.cidKey);
      if (waiters) waiters.push(change.waiter);
      else pending.cidWaiters.set(change.cidKey, [change.waiter]);
      break;
    }
    case "cid_waiters_released":
      pending.cidWaiters.delete(change.cidKey);
      break;
    case "key_reserved":
      add(pending.keys, change.user, 1);
      break;
    case "key_released":
      add(pending.keys, change.user, -1);
      break;
    case "dak_reserved":
      pending.daks.add(`${change.user}\0${change.msg}`);
      break;
    case "dak_released":
      pending.daks.delete(`${change.user}\0${change.msg}`);
      break;
    case "throttles_swept": {
      const t = state.throttles;
      const rules = loginRules(limits);
      sweepThrottle(t.userAddr, rules.userAddr, change.now);
      sweepThrottle(t.user, rules.user, change.now);
      sweepThrottle(t.addr, rules.addr, change.now);
      sweepWindows(t.signups, limits.signup_window_ms, change.now);
      break;
    }
    default: {
      const never: never = change;
      throw new TypeError(`unhandled change ${JSON.stringify(never)}`);
    }
  }
  return state;
}

function releaseSend(state: ServerState, msg: string, send: PendingSend): void {
  const { pending } = state;
  pending.sends.delete(msg);
  add(pending.toCount, send.to, -1);
  add(pending.toBytes, send.to, -send.bytes);
  add(pending.fromBytes, send.from, -send.bytes);
  pending.bytes -= send.bytes;
  if (send.cidKey !== undefined && pending.cids.get(send.cidKey)?.msg === msg) {
    pending.cids.delete(send.cidKey);
  }
}
