// The events of the server's history: a discriminated union on `type`, every one
// stamped with `ts` by the caller, plus the field schema that validates them off the disk.

/** A user registered (`SNU`, PROTOCOL §4.1). `passwordHash` is opaque to the store. */
export interface UserSignedUp {
  type: "user_signed_up";
  ts: number;
  user: string;
  passwordHash: string;
}

/** A `LGN` succeeded from `addr`. */
export interface LoginSucceeded {
  type: "login_succeeded";
  ts: number;
  user: string;
  addr: string;
}

/** A `LGN` failed from `addr` (kept in the log for audit; the projection ignores it). */
export interface LoginFailed {
  type: "login_failed";
  ts: number;
  user: string;
  addr: string;
}

/** A session ended by `LGO`. */
export interface LoggedOut {
  type: "logged_out";
  ts: number;
  user: string;
}

/** A `CPW` succeeded. */
export interface PasswordChanged {
  type: "password_changed";
  ts: number;
  user: string;
  passwordHash: string;
}

/** A `MSG` was accepted as message `msg` (unique, at most 64 characters, PROTOCOL §4.3). */
export interface MessageSent {
  type: "message_sent";
  ts: number;
  msg: string;
  from: string;
  to: string;
  text: string;
  cid?: string;
}

/**
 * A `MSG` with a sealed envelope (PROTOCOL §8) was accepted as message `msg`: the server keeps
 * the base64 envelope as it came, and cannot read it.
 */
export interface SealedMessageSent {
  type: "sealed_message_sent";
  ts: number;
  msg: string;
  from: string;
  to: string;
  sealed: string;
  cid?: string;
}

/**
 * `user` published an RSA public key (PROTOCOL §8.1, by `SNU` or `KEY`): base64 of its DER
 * SubjectPublicKeyInfo, already checked, with its fingerprint and modulus size. The latest one
 * is the user's current key; every one stays, so messages sealed before a change still open.
 */
export interface UserKeyPublished {
  type: "user_key_published";
  ts: number;
  user: string;
  key: string;
  fingerprint: string;
  bits: number;
}

/** The recipient `user` acknowledged message `msg` with `DAK` (PROTOCOL §4.2). */
export interface MessageDelivered {
  type: "message_delivered";
  ts: number;
  msg: string;
  user: string;
}

/**
 * Written only by compaction: sender `from` used `cid` for message `msg`, first
 * acknowledged at `ts`, so a retried `MSG` gets that `ACK` again (PROTOCOL §4.3).
 */
export interface CidRemembered {
  type: "cid_remembered";
  ts: number;
  from: string;
  cid: string;
  msg: string;
}

/**
 * Written only by compaction, as the last record of a compacted log: the history before
 * held `events` events, so the projection's count carries on from there.
 */
export interface LogCompacted {
  type: "log_compacted";
  ts: number;
  events: number;
}

/** Every event the log holds. */
export type Event =
  | UserSignedUp
  | LoginSucceeded
  | LoginFailed
  | LoggedOut
  | PasswordChanged
  | MessageSent
  | SealedMessageSent
  | UserKeyPublished
  | MessageDelivered
  | CidRemembered
  | LogCompacted;

/** The `type` of an event. */
export type EventType = Event["type"];

/** How a field is checked and stored: a string, a string that may be absent, or an integer ≥ 0. */
export type FieldKind = "string" | "optional string" | "count";
/** For each event type, its fields after `type` and `ts`, with their kinds. */
export type EventSchema = {
  [T in EventType]: ReadonlyArray<
    readonly [Exclude<keyof Extract<Event, { type: T }>, "type" | "ts">, FieldKind]
  >;
};

/** The fields of each event after `type` and `ts`, in the order they are written. */
export const EVENT_SCHEMA: EventSchema = {
  user_signed_up: [["user", "string"], ["passwordHash", "string"]],
  login_succeeded: [["user", "string"], ["addr", "string"]],
  login_failed: [["user", "string"], ["addr", "string"]],
  logged_out: [["user", "string"]],
  password_changed: [["user", "string"], ["passwordHash", "string"]],
  message_sent: [
    ["msg", "string"],
    ["from", "string"],
    ["to", "string"],
    ["text", "string"],
    ["cid", "optional string"],
  ],
  message_delivered: [["msg", "string"], ["user", "string"]],
  sealed_message_sent: [
    ["msg", "string"],
    ["from", "string"],
    ["to", "string"],
    ["sealed", "string"],
    ["cid", "optional string"],
  ],
  user_key_published: [
    ["user", "string"],
    ["key", "string"],
    ["fingerprint", "string"],
    ["bits", "count"],
  ],
  cid_remembered: [["from", "string"], ["cid", "string"], ["msg", "string"]],
  log_compacted: [["events", "count"]],
};

/** Every event type, in declaration order. */
export const EVENT_TYPES: readonly EventType[] = Object.keys(EVENT_SCHEMA) as EventType[];

/** Whether `value` names an event type. */
export function isEventType(value: string): value is EventType {
  return Object.hasOwn(EVENT_SCHEMA, value);
}

/** Checks that `value` is a well-formed event, throwing a TypeError naming the first bad field. */
export function assertEvent(value: unknown): asserts value is Event {
  check(value, undefined);
}

/**
 * Checks `value` like `assertEvent` and returns a copy holding only the schema fields, in
 * schema order, so a stray property (say, a plaintext password) never reaches the disk.
 */
export function toEvent(value: unknown): Event {
  const out: Record<string, unknown> = {};
  check(value, out);
  return out as unknown as Event;
}

/** Validates `value`; when `out` is given, copies the schema fields into it. */
function check(value: unknown, out: Record<string, unknown> | undefined): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`event must be an object, got ${describe(value)}`);
  }
  const v = value as Record<string, unknown>;
  const type = v.type;
  if (typeof type !== "string" || !isEventType(type)) {
    const shown = typeof type === "string" ? JSON.stringify(type.slice(0, 40)) : describe(type);
    throw new TypeError(`unknown event type ${shown}`);
  }
  const ts = v.ts;
  if (typeof ts !== "number" || !Number.isFinite(ts)) {
    throw new TypeError(`${type}.ts must be a finite number, got ${describe(ts)}`);
  }
  if (out) {
    out.type = type;
    out.ts = ts;
  }
  for (const [name, kind] of EVENT_SCHEMA[type]) {
    const field = v[name];
    switch (kind) {
      case "string":
        if (typeof field !== "string") {
          throw new TypeError(`${type}.${name} must be a string, got ${describe(field)}`);
        }
        break;
      case "optional string":
        if (field === undefined) continue;
        if (typeof field !== "string") {
          throw new TypeError(
            `${type}.${name} must be a string if present, got ${describe(field)}`,
          );
        }
        break;
      case "count":
        if (typeof field !== "number" || !Number.isSafeInteger(field) || field < 0) {
          throw new TypeError(
            `${type}.${name} must be a non-negative integer, got ${describe(field)}`,
          );
        }
        break;
      default: {
        const never: never = kind;
        throw new TypeError(`unhandled field kind ${String(never)}`);
      }
    }
    if (out) out[name] = field;
  }
}

/** A short, safe rendering of a bad value for an error message (never the value of a string). */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return String(value);
  return typeof value;
}
