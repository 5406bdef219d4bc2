// The projection the server runs on: users, per-recipient queues of undelivered
// messages and each sender's recent cids, rebuilt as `events.reduce(evolve, initialState())`.

import { CidMemory, type RememberedCid } from "./cid_memory.ts";
import type { Event } from "./events.ts";
import { MessageQueue, type QueuedMessage } from "./message_queue.ts";

/** A user key as published (§8.1): base64 SPKI DER, fingerprint, modulus bits, when. */
export interface PublishedKey {
  key: string;
  fingerprint: string;
  bits: number;
  ts: number;
}

/** A registered user. `lastLoginTs` is absent until the first successful login. */
export interface User {
  passwordHash: string;
  createdTs: number;
  lastLoginTs?: number;
  /** Every key the user published, oldest first; the last is the current one (§8.1). */
  keys: PublishedKey[];
}

/**
 * The projection. Only `evolve` may change it. Compare two states with `snapshot`: the
 * queues and cid memories keep internal layouts (ring offsets, lazy indexes) that differ
 * between equal states, and a deep equality over the raw objects sees none of them.
 */
export interface State {
  /** user → record, in sign-up order. */
  users: Map<string, User>;
  /** recipient → undelivered messages, oldest first; a recipient with none has no entry. */
  queues: Map<string, MessageQueue>;
  /** sender → its last CID_MEMORY cids and their first ACKs; a sender without cids has no entry. */
  cids: Map<string, CidMemory>;
  /** UTF-8 bytes of every undelivered text: what `max_queued_bytes_total` bounds. */
  queuedBytes: number;
  /** sender → UTF-8 bytes of its undelivered texts; a sender with none has no entry. */
  outstanding: Map<string, number>;
  /** Events in the history this state summarises (compaction preserves it). */
  events: number;
}

/** The state before any event. */
export function initialState(): State {
  return {
    users: new Map(),
    queues: new Map(),
    cids: new Map(),
    queuedBytes: 0,
    outstanding: new Map(),
    events: 0,
  };
}

/**
 * Applies one event and returns `state`. For replay speed it updates `state` in place
 * rather than copying it; it is still deterministic and does no I/O, so the projection of
 * a log is always `events.reduce(evolve, initialState())`. Events that do not apply (a
 * second sign-up of a name, a login of an unknown user, a delivery of a message not
 * queued for that user) change only the event count: deciding is the server's job.
 */
export function evolve(state: State, event: Event): State {
  switch (event.type) {
    case "user_signed_up":
      if (!state.users.has(event.user)) {
        state.users.set(event.user, {
          passwordHash: event.passwordHash,
          createdTs: event.ts,
          keys: [],
        });
      }
      break;
    case "login_succeeded": {
      const user = state.users.get(event.user);
      if (user) user.lastLoginTs = event.ts;
      break;
    }
    case "login_failed":
    case "logged_out":
      // Audit only: throttling lives in the server's memory, sessions are not persistent.
      break;
    case "password_changed": {
      const user = state.users.get(event.user);
      if (user) user.passwordHash = event.passwordHash;
      break;
    }
    case "message_sent": {
      const { msg, from, to, text, ts } = event;
      enqueue(state, { msg, from, to, text, ts, bytes: utf8Bytes(text) });
      if (event.cid !== undefined) remember(state, from, event.cid, msg, ts);
      break;
    }
    case "sealed_message_sent": {
      const { msg, from, to, sealed, ts } = event;
      // An envelope is base64: one byte per character.
      enqueue(state, { msg, from, to, sealed, ts, bytes: sealed.length });
      if (event.cid !== undefined) remember(state, from, event.cid, msg, ts);
      break;
    }
    case "user_key_published": {
      const user = state.users.get(event.user);
      if (user) {
        const { key, fingerprint, bits, ts } = event;
        user.keys.push({ key, fingerprint, bits, ts });
      }
      break;
    }
    case "message_delivered": {
      const queue = state.queues.get(event.user);
      const removed = queue?.remove(event.msg);
      if (removed === undefined) break;
      if (queue!.size === 0) state.queues.delete(event.user);
      state.queuedBytes -= removed.bytes;
      const left = state.outstanding.get(removed.from)! - removed.bytes;
      if (left > 0) state.outstanding.set(removed.from, left);
      else state.outstanding.delete(removed.from);
      break;
    }
    case "cid_remembered":
      remember(state, event.from, event.cid, event.msg, event.ts);
      break;
    case "log_compacted":
      // The compacted log's own records are not history: the count resumes from the original.
      state.events = event.events;
      return state;
    default: {
      const never: never = event;
      throw new TypeError(`unhandled event ${JSON.stringify(never)}`);
    }
  }
  state.events++;
  return state;
}

function enqueue(state: State, message: QueuedMessage): void {
  let queue = state.queues.get(message.to);
  if (!queue) state.queues.set(message.to, queue = new MessageQueue());
  queue.push(message);
  state.queuedBytes += message.bytes;
  state.outstanding.set(message.from, (state.outstanding.get(message.from) ?? 0) + message.bytes);
}

/**
 * UTF-8 bytes of `s`, without encoding it (texts in events are already known to be UTF-8).
 * The units below 0x80 are counted in a tight first loop: most chat text is ASCII.
 */
export function utf8Bytes(s: string): number {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) < 0x80) i++;
  let bytes = i;
  for (; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 4; // a surrogate pair: one 4-byte sequence
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function remember(state: State, from: string, cid: string, msg: string, ts: number): void {
  let memory = state.cids.get(from);
  if (!memory) state.cids.set(from, memory = new CidMemory());
  memory.remember(cid, msg, ts);
}

/** The projection of `events`, applied in order to `state` (a fresh state by default). */
export function replay(events: Iterable<Event>, state: State = initialState()): State {
  for (const event of events) evolve(state, event);
  return state;
}

/** The messages waiting for `user`, oldest first. */
export function queuedFor(state: State, user: string): QueuedMessage[] {
  const queue = state.queues.get(user);
  return queue ? [...queue.values()] : [];
}

/** The first ACK `from` got for `cid`, if it is among the sender's remembered cids. */
export function rememberedCid(state: State, from: string, cid: string): RememberedCid | undefined {
  return state.cids.get(from)?.get(cid);
}

/** A plain, ordered copy of a state: every collection as an array, in its order. */
export interface StateSnapshot {
  users: [string, User][];
  queues: [string, QueuedMessage[]][];
  cids: [string, [string, RememberedCid][]][];
  queuedBytes: number;
  outstanding: [string, number][];
  events: number;
}

/**
 * Copies `state` into plain arrays that keep every collection's order, so two states are
 * the same projection exactly when their snapshots are deeply equal.
 */
export function snapshot(state: State): StateSnapshot {
  return {
    users: [...state.users].map((
      [name, user],
    ) => [name, { ...user, keys: user.keys.map((k) => ({ ...k })) }]),
    queues: [...state.queues].map(([to, queue]) => [to, [...queue].map((m) => ({ ...m }))]),
    cids: [...state.cids].map(([from, memory]) => [from, [...memory]]),
    queuedBytes: state.queuedBytes,
    outstanding: [...state.outstanding].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
    events: state.events,
  };
}
