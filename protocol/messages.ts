// Application messages of PROTOCOL §4: `code (3 ASCII upper-case letters) || UTF-8 JSON object`.
// Parsing never throws: a bad client message becomes the ERR to answer it with, a bad server
// message becomes a reason to close.

import { isPaddedBase64 } from "./envelope.ts";
import {
  MAX_CID_CHARS,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_GUL_PAGE,
  MAX_MSG_ID_CHARS,
  MAX_PASSWORD_BYTES,
  MAX_REQUEST_ID,
  MAX_SEALED_CHARS,
  MAX_SERVER_KEY_B64_CHARS,
  MAX_TEXT_BYTES,
  MAX_USER_KEY_B64_CHARS,
  MAX_USERNAME_CHARS,
  MIN_PASSWORD_BYTES,
  MIN_TEXT_BYTES,
  USERNAME_PATTERN,
} from "./limits.ts";

// ─── Codes ───────────────────────────────────────────────────────────────────────────────────

/** Request codes of the §4.1 table; each request carries an `id` and gets one response. */
export const REQUEST_CODES = [
  "SNU",
  "LGN",
  "LGO",
  "CPW",
  "GSR",
  "GUL",
  "MSG",
  "KEY",
  "GPK",
  "PNG",
] as const;
export type RequestCode = typeof REQUEST_CODES[number];
/** Everything a client sends: the requests, plus `DAK`, which gets no response (§4.2). */
export type ClientCode = RequestCode | "DAK";
/** Everything a server sends: responses (`ACK`, `ERR`) and pushes (`DLV`, `BYE`). */
export type ServerCode = "ACK" | "ERR" | "DLV" | "BYE";

/** `ERR` codes of §4.1 (application level; the handshake's §2.3 codes live elsewhere). */
export const ERROR_CODES = [
  "bad_request",
  "not_authenticated",
  "internal",
  "invalid_username",
  "weak_password",
  "user_exists",
  "rate_limited",
  "invalid_credentials",
  "unknown_user",
  "too_large",
  "invalid_message",
  "invalid_key",
  "no_key",
  "stale_key",
] as const;
export type ErrorCode = typeof ERROR_CODES[number];

/** Reasons a `BYE` push may give (§4.2). */
export const BYE_REASONS = [
  "shutdown",
  "logged_in_elsewhere",
  "idle",
  "logged_out_by_server",
] as const;
export type ByeReason = typeof BYE_REASONS[number];

/**
 * The one message for every `invalid_credentials`, so that an unknown user, a wrong password and
 * a malformed login cannot be told apart (§4.3). The server must answer with this text too.
 */
export const INVALID_CREDENTIALS_MESSAGE = "invalid username or password";

/** §6 fingerprint: "SHA256:" and unpadded base64 of 32 bytes (43 chars, the last of 16). */
export const FINGERPRINT_PATTERN = /^SHA256:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$/;

// ─── Client → server (§4.1, §4.2) ────────────────────────────────────────────────────────────

export interface SignUp {
  code: "SNU";
  id: number;
  user: string;
  password: string;
  /** The user's RSA public key (§8.1): base64 of its DER SubjectPublicKeyInfo. */
  key?: string;
}
export interface LogIn {
  code: "LGN";
  id: number;
  user: string;
  password: string;
}
export interface LogOut {
  code: "LGO";
  id: number;
}
export interface ChangePassword {
  code: "CPW";
  id: number;
  old: string;
  new: string;
}
export interface GetServerKey {
  code: "GSR";
  id: number;
}
/**
 * `GUL`, optionally paged: users whose names start with `prefix`, after the name `after`, at
 * most `limit` (each capped by the server). §4.1 gives GUL no fields; these are our extension,
 * ignored by nothing that predates it: a bare GUL is the first page of everyone.
 */
export interface GetUserList {
  code: "GUL";
  id: number;
  prefix?: string;
  after?: string;
  limit?: number;
}
/** A message's content: `text` the server can read, or a `sealed` envelope it cannot (§8). */
export type Content = { text: string; sealed?: never } | { sealed: string; text?: never };

export type SendMessage = {
  code: "MSG";
  id: number;
  to: string;
  /** Idempotency key (§4.3); absent when the client sends none. */
  cid?: string;
} & Content;
/** `KEY`: publish the sender's own RSA key (§8.1), replacing the current one. */
export interface PublishKey {
  code: "KEY";
  id: number;
  key: string;
}
/** `GPK`: a user's current key, or the one with `fingerprint` if they ever published it (§8.1). */
export interface GetPublicKey {
  code: "GPK";
  id: number;
  user: string;
  fingerprint?: string;
}
export interface Ping {
  code: "PNG";
  id: number;
}
/** `DAK`: the client has shown or stored message `msg` (§4.2). No id, no response. */
export interface DeliveryAck {
  code: "DAK";
  msg: string;
}

export type Request =
  | SignUp
  | LogIn
  | LogOut
  | ChangePassword
  | GetServerKey
  | GetUserList
  | SendMessage
  | PublishKey
  | GetPublicKey
  | Ping;
export type ClientMessage = Request | DeliveryAck;

// ─── Server → client (§4, §4.2) ──────────────────────────────────────────────────────────────

export interface UserEntry {
  user: string;
  online: boolean;
  /** The fingerprint of the user's current key, if they published one (§8). */
  fingerprint?: string;
}

/**
 * `ACK{"id": n, ...result fields}`. The wire does not say which request an ACK answers; the
 * client knows from the id. `request` carries that knowledge in the type and is never sent.
 */
export type Ack =
  | { code: "ACK"; id: number; request: "SNU"; user: string; fingerprint?: string }
  | { code: "ACK"; id: number; request: "KEY"; fingerprint: string }
  | {
    code: "ACK";
    id: number;
    request: "GPK";
    user: string;
    key: string;
    fingerprint: string;
    current: boolean;
  }
  | { code: "ACK"; id: number; request: "LGN"; user: string; queued: number }
  | { code: "ACK"; id: number; request: "LGO" | "CPW" | "PNG" }
  | { code: "ACK"; id: number; request: "GSR"; key: string; fingerprint: string }
  | {
    code: "ACK";
    id: number;
    request: "GUL";
    users: UserEntry[];
    /** Present when more users follow: the name to send as `after` for the next page. */
    next?: string;
  }
  | { code: "ACK"; id: number; request: "MSG"; msg: string; ts: number };

/**
 * `ERR{"id", "code", "message"[, "retry_after_ms"]}`. The wire field `code` is `error` here,
 * since `code` is the union's discriminant. `id` is 0 when a bad request's id was unreadable.
 */
export interface ErrorResponse {
  code: "ERR";
  id: number;
  error: ErrorCode;
  message: string;
  /** Present with `rate_limited`: when the same request may succeed (§4). */
  retry_after_ms?: number;
}
export type Deliver = {
  code: "DLV";
  msg: string;
  from: string;
  to: string;
  ts: number;
} & Content;
export interface Bye {
  code: "BYE";
  reason: ByeReason;
}
export type Response = Ack | ErrorResponse;
export type ServerMessage = Response | Deliver | Bye;

// ─── Encoding ────────────────────────────────────────────────────────────────────────────────

// fatal: invalid UTF-8 is a bad request, not U+FFFD. ignoreBOM keeps a BOM, which JSON refuses.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// The same without `fatal`, several times cheaper for a chat-sized body (docs/PERFORMANCE.md).
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * UTF-8 to text, or undefined for invalid UTF-8. The lenient decoder runs first; only a U+FFFD
 * in its output can mean invalid input (or a U+FFFD that was sent), and then the strict one
 * decides.
 */
function decodeUtf8(bytes: Uint8Array): string | undefined {
  const text = lenientDecoder.decode(bytes);
  if (!text.includes("\uFFFD")) return text;
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * A message of either direction as text, `code || JSON` (its UTF-8 is the record plaintext).
 * Only the fields of §4 are written, in a fixed order; the input is trusted (the types give its
 * shape, the parsers check the values).
 */
export function messageText(m: ClientMessage | ServerMessage): string {
  return m.code + JSON.stringify(wireBody(m));
}

function wireBody(m: ClientMessage | ServerMessage): Record<string, unknown> {
  switch (m.code) {
    case "SNU":
      return m.key === undefined
        ? { id: m.id, user: m.user, password: m.password }
        : { id: m.id, user: m.user, password: m.password, key: m.key };
    case "LGN":
      return { id: m.id, user: m.user, password: m.password };
    case "KEY":
      return { id: m.id, key: m.key };
    case "GPK":
      return m.fingerprint === undefined
        ? { id: m.id, user: m.user }
        : { id: m.id, user: m.user, fingerprint: m.fingerprint };
    case "LGO":
    case "GSR":
    case "PNG":
      return { id: m.id };
    case "GUL":
      return {
        id: m.id,
        ...(m.prefix === undefined ? {} : { prefix: m.prefix }),
        ...(m.after === undefined ? {} : { after: m.after }),
        ...(m.limit === undefined ? {} : { limit: m.limit }),
      };
    case "CPW":
      return { id: m.id, old: m.old, new: m.new };
    case "MSG":
      return {
        id: m.id,
        to: m.to,
        ...(m.sealed === undefined ? { text: m.text } : { sealed: m.sealed }),
        ...(m.cid === undefined ? {} : { cid: m.cid }),
      };
    case "DAK":
      return { msg: m.msg };
    case "ACK":
      return ackBody(m);
    case "ERR":
      return m.retry_after_ms === undefined
        ? { id: m.id, code: m.error, message: m.message }
        : { id: m.id, code: m.error, message: m.message, retry_after_ms: m.retry_after_ms };
    case "DLV":
      return m.sealed === undefined
        ? { msg: m.msg, from: m.from, to: m.to, text: m.text, ts: m.ts }
        : { msg: m.msg, from: m.from, to: m.to, sealed: m.sealed, ts: m.ts };
    case "BYE":
      return { reason: m.reason };
    default:
      return unreachable(m);
  }
}

function ackBody(m: Ack): Record<string, unknown> {
  switch (m.request) {
    case "SNU":
      return m.fingerprint === undefined
        ? { id: m.id, user: m.user }
        : { id: m.id, user: m.user, fingerprint: m.fingerprint };
    case "KEY":
      return { id: m.id, fingerprint: m.fingerprint };
    case "GPK":
      return {
        id: m.id,
        user: m.user,
        key: m.key,
        fingerprint: m.fingerprint,
        current: m.current,
      };
    case "LGN":
      return { id: m.id, user: m.user, queued: m.queued };
    case "LGO":
    case "CPW":
    case "PNG":
      return { id: m.id };
    case "GSR":
      return { id: m.id, key: m.key, fingerprint: m.fingerprint };
    case "GUL":
      return {
        id: m.id,
        users: m.users.map((u) =>
          u.fingerprint === undefined
            ? { user: u.user, online: u.online }
            : { user: u.user, online: u.online, fingerprint: u.fingerprint }
        ),
        ...(m.next === undefined ? {} : { next: m.next }),
      };
    case "MSG":
      return { id: m.id, msg: m.msg, ts: m.ts };
    default:
      return unreachable(m);
  }
}

function unreachable(value: never): never {
  throw new TypeError(`unhandled message ${JSON.stringify(value)}`);
}

// ─── Parsing client messages (server side) ───────────────────────────────────────────────────

/**
 * A parsed client message, or the `ERR` to answer it with. `request` is the code when it was a
 * known client code, so the server can put `not_authenticated` first for requests that need a
 * login (see {@link needsLogin}) and decide what to do about a bad `DAK`, which has no id.
 */
export type ClientParse =
  | { ok: true; value: ClientMessage }
  | { ok: false; request: ClientCode | undefined; error: ErrorResponse };

/**
 * Parses and validates a client message (record plaintext); never throws.
 *
 * Error mapping, first failing check wins:
 * - no 3-letter upper-case code, invalid UTF-8, not a JSON object, unknown or lower-case code,
 *   id not an integer in 1..2^31-1, a field of the wrong type, a bad `cid` or `DAK` msg:
 *   `bad_request`, with the id when it is readable, else 0 (§4). `DAK` refusals carry id 0.
 * - then the semantic checks, in the order of §4.1's ERR column:
 *   - `SNU`: user off the pattern → `invalid_username`; password outside 8..1024 UTF-8 bytes →
 *     `weak_password`.
 *   - `LGN`: user off the pattern or password outside 8..1024 bytes → `invalid_credentials`: such
 *     an account or password cannot exist, and §4.3 wants every failed login to look alike.
 *   - `CPW`: `old` outside 8..1024 bytes → `invalid_credentials` (it cannot be right); `new`
 *     outside → `weak_password`.
 *   - `MSG`: `to` off the pattern → `unknown_user` (no such user can exist); `text` longer than
 *     16384 UTF-8 bytes → `too_large`; `text` missing, not a string or empty → `invalid_message`.
 * A string holding a lone surrogate is not UTF-8: it counts as a password or text of bad length.
 * Unknown extra fields are ignored and not copied.
 */
export function parseClientMessage(plaintext: Uint8Array): ClientParse {
  const code = readCode(plaintext);
  const request = code !== undefined && isClientCode(code) ? code : undefined;
  const body = readBody(plaintext);
  if (typeof body === "string") return refuse(request, 0, "bad_request", body);
  if (code === undefined) {
    return refuse(undefined, readableId(body), "bad_request", describeCode(plaintext));
  }
  if (request === undefined) {
    return refuse(undefined, readableId(body), "bad_request", `unknown code ${code}`);
  }
  if (request === "DAK") {
    const msg = field(body, "msg");
    if (!isMsgId(msg)) {
      return refuse(
        request,
        0,
        "bad_request",
        `"msg" must be a string of 1..${MAX_MSG_ID_CHARS} chars, got ${describe(msg)}`,
      );
    }
    return { ok: true, value: { code: request, msg } };
  }
  const id = field(body, "id");
  if (!isRequestId(id)) {
    return refuse(
      request,
      0,
      "bad_request",
      `"id" must be an integer in 1..${MAX_REQUEST_ID}, got ${describe(id)}`,
    );
  }
  const fail = (error: ErrorCode, message: string): ClientParse =>
    refuse(request, id, error, message);
  switch (request) {
    case "LGO":
    case "GSR":
    case "PNG":
      return { ok: true, value: { code: request, id } };
    case "GUL": {
      const prefix = field(body, "prefix");
      const after = field(body, "after");
      const limit = field(body, "limit");
      const value: GetUserList = { code: request, id };
      if (prefix !== undefined) {
        if (!isNamePrefix(prefix)) {
          return fail(
            "bad_request",
            `"prefix" must be the start of a username, got ${describe(prefix)}`,
          );
        }
        value.prefix = prefix;
      }
      if (after !== undefined) {
        if (!isUsername(after)) return fail("bad_request", `"after" must be a username`);
        value.after = after;
      }
      if (limit !== undefined) {
        if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_GUL_PAGE) {
          return fail(
            "bad_request",
            `"limit" must be an integer in 1..${MAX_GUL_PAGE}, got ${describe(limit)}`,
          );
        }
        value.limit = limit as number;
      }
      return { ok: true, value };
    }
    case "SNU":
    case "LGN": {
      const user = field(body, "user");
      const password = field(body, "password");
      if (typeof user !== "string") return fail("bad_request", mustBeString("user", user));
      if (typeof password !== "string") {
        return fail("bad_request", mustBeString("password", password));
      }
      if (request === "LGN") {
        if (!isUsername(user) || passwordProblem(password) !== undefined) {
          return fail("invalid_credentials", INVALID_CREDENTIALS_MESSAGE);
        }
        return { ok: true, value: { code: request, id, user, password } };
      }
      if (!isUsername(user)) {
        return fail("invalid_username", `username must match ${USERNAME_PATTERN.source}`);
      }
      const weak = passwordProblem(password);
      if (weak !== undefined) return fail("weak_password", weak);
      const key = field(body, "key");
      if (key === undefined) return { ok: true, value: { code: request, id, user, password } };
      const bad = keyProblem(key);
      if (bad !== undefined) {
        return fail(typeof key === "string" ? "invalid_key" : "bad_request", bad);
      }
      return { ok: true, value: { code: request, id, user, password, key: key as string } };
    }
    case "KEY": {
      const key = field(body, "key");
      const bad = keyProblem(key);
      if (bad !== undefined) {
        return fail(typeof key === "string" ? "invalid_key" : "bad_request", bad);
      }
      return { ok: true, value: { code: request, id, key: key as string } };
    }
    case "GPK": {
      const user = field(body, "user");
      const fingerprint = field(body, "fingerprint");
      if (typeof user !== "string") return fail("bad_request", mustBeString("user", user));
      if (fingerprint !== undefined && typeof fingerprint !== "string") {
        return fail("bad_request", mustBeString("fingerprint", fingerprint));
      }
      if (!isUsername(user)) return fail("unknown_user", "no such user");
      if (fingerprint !== undefined && !FINGERPRINT_PATTERN.test(fingerprint)) {
        return fail("no_key", "no key has that fingerprint");
      }
      const value: GetPublicKey = { code: request, id, user };
      if (fingerprint !== undefined) value.fingerprint = fingerprint;
      return { ok: true, value };
    }
    case "CPW": {
      const old = field(body, "old");
      const next = field(body, "new");
      if (typeof old !== "string") return fail("bad_request", mustBeString("old", old));
      if (typeof next !== "string") return fail("bad_request", mustBeString("new", next));
      if (passwordProblem(old) !== undefined) {
        return fail("invalid_credentials", INVALID_CREDENTIALS_MESSAGE);
      }
      const weak = passwordProblem(next);
      if (weak !== undefined) return fail("weak_password", weak);
      return { ok: true, value: { code: request, id, old, new: next } };
    }
    case "MSG": {
      const to = field(body, "to");
      const text = field(body, "text");
      const cid = field(body, "cid");
      if (typeof to !== "string") return fail("bad_request", mustBeString("to", to));
      if (cid !== undefined && !isCid(cid)) {
        return fail(
          "bad_request",
          `"cid" must be a string of 1..${MAX_CID_CHARS} chars, got ${describe(cid)}`,
        );
      }
      if (!isUsername(to)) return fail("unknown_user", "no such user");
      const sealed = field(body, "sealed");
      if ((text === undefined) === (sealed === undefined)) {
        return fail("invalid_message", `exactly one of "text" and "sealed" is needed`);
      }
      if (sealed !== undefined) {
        // §8.4's first check; the rest needs the keys, which the server holds.
        if (typeof sealed !== "string" || !isSealed(sealed)) {
          return fail(
            "invalid_message",
            `"sealed" must be padded base64 of at most ${MAX_SEALED_CHARS} characters`,
          );
        }
        const value: SendMessage = { code: request, id, to, sealed };
        if (cid !== undefined) value.cid = cid;
        return { ok: true, value };
      }
      if (typeof text !== "string") {
        return fail("invalid_message", `"text" must be a string, got ${describe(text)}`);
      }
      const size = utf8Length(text, MAX_TEXT_BYTES);
      if (size > MAX_TEXT_BYTES) {
        return fail("too_large", `text exceeds MAX_TEXT_BYTES (${MAX_TEXT_BYTES})`);
      }
      if (size < MIN_TEXT_BYTES) {
        return fail("invalid_message", size < 0 ? "text is not valid UTF-8" : "text is empty");
      }
      const value: SendMessage = { code: request, id, to, text };
      if (cid !== undefined) value.cid = cid;
      return { ok: true, value };
    }
    default:
      return unreachable(request);
  }
}

/** Whether a client message needs a logged-in session (§4.1; `DAK` acknowledges the user's queue). */
export function needsLogin(code: ClientCode): boolean {
  return code === "LGO" || code === "CPW" || code === "GUL" || code === "MSG" || code === "DAK" ||
    code === "KEY" || code === "GPK";
}

/** Why a `key` field cannot be a user key (§8.1) before its DER is read, or undefined. */
function keyProblem(key: unknown): string | undefined {
  if (typeof key !== "string") return mustBeString("key", key);
  if (key.length === 0 || key.length > MAX_USER_KEY_B64_CHARS || !isPaddedBase64(key)) {
    return `"key" must be padded base64 of at most ${MAX_USER_KEY_B64_CHARS} characters`;
  }
  return undefined;
}

function refuse(
  request: ClientCode | undefined,
  id: number,
  error: ErrorCode,
  message: string,
): ClientParse {
  return { ok: false, request, error: { code: "ERR", id, error, message } };
}

function readableId(body: Record<string, unknown>): number {
  const id = field(body, "id");
  return isRequestId(id) ? id : 0;
}

function describeCode(plaintext: Uint8Array): string {
  const head = plaintext.subarray(0, 3);
  const printable = head.length === 3 && head.every((b) => b >= 0x21 && b <= 0x7e);
  return printable
    ? `code ${String.fromCharCode(...head)} is not 3 upper-case ASCII letters`
    : "message does not start with a 3-letter code";
}

function mustBeString(name: string, value: unknown): string {
  return `"${name}" must be a string, got ${describe(value)}`;
}

/** Why a password is unacceptable (§4.3: 8 to 1024 bytes of UTF-8), or undefined. */
function passwordProblem(password: string): string | undefined {
  const size = utf8Length(password, MAX_PASSWORD_BYTES);
  if (size < 0) return "password is not valid UTF-8";
  if (size < MIN_PASSWORD_BYTES) {
    return `password is ${size} byte${
      size === 1 ? "" : "s"
    }, below the minimum (${MIN_PASSWORD_BYTES})`;
  }
  if (size > MAX_PASSWORD_BYTES) {
    return `password exceeds MAX_PASSWORD_BYTES (${MAX_PASSWORD_BYTES})`;
  }
  return undefined;
}

// ─── Parsing server messages (client side) ───────────────────────────────────────────────────

/** A parsed server message, or why it is malformed (a hostile or broken server: close). */
export type ServerParse = { ok: true; value: ServerMessage } | { ok: false; reason: string };

/**
 * Parses and validates a server message (record plaintext); never throws. `pending` tells which
 * request an id belongs to (the client's table of outstanding requests): an ACK or ERR for an id
 * it does not know is malformed (a client that gives up on a request should keep its id there). Every field is checked against §4; `message` may be absent from an ERR
 * (§4 shows `bad_request` without one) and reads as "". An `ERR rate_limited` must carry
 * `retry_after_ms`; on other codes that field is ignored. Id 0 is only valid on `bad_request`.
 */
export function parseServerMessage(
  plaintext: Uint8Array,
  pending: (id: number) => RequestCode | undefined,
): ServerParse {
  const code = readCode(plaintext);
  if (code === undefined) return malformed("no 3-letter upper-case code");
  const body = readBody(plaintext);
  if (typeof body === "string") return malformed(body);
  switch (code) {
    case "ACK":
      return parseAck(body, pending);
    case "ERR":
      return parseError(body, pending);
    case "DLV": {
      const msg = field(body, "msg");
      const from = field(body, "from");
      const to = field(body, "to");
      const text = field(body, "text");
      const ts = field(body, "ts");
      if (!isMsgId(msg)) return malformed(`DLV "msg" is ${describe(msg)}`);
      if (!isUsername(from)) return malformed(`DLV "from" is not a username`);
      if (!isUsername(to)) return malformed(`DLV "to" is not a username`);
      const sealed = field(body, "sealed");
      if (!isCount(ts)) return malformed(`DLV "ts" is ${describe(ts)}`);
      if ((text === undefined) === (sealed === undefined)) {
        return malformed(`DLV carries not exactly one of "text" and "sealed"`);
      }
      if (sealed !== undefined) {
        if (!isSealed(sealed)) {
          return malformed(`DLV "sealed" is not base64 of at most ${MAX_SEALED_CHARS} chars`);
        }
        return { ok: true, value: { code, msg, from, to, sealed, ts } };
      }
      if (!isText(text)) return malformed(`DLV "text" is not 1..${MAX_TEXT_BYTES} bytes of UTF-8`);
      return { ok: true, value: { code, msg, from, to, text, ts } };
    }
    case "BYE": {
      const reason = field(body, "reason");
      if (!BYE_REASONS.some((r) => r === reason)) {
        return malformed(`BYE reason is ${describe(reason)}`);
      }
      return { ok: true, value: { code, reason: reason as ByeReason } };
    }
    default:
      return malformed(`unknown code ${code}`);
  }
}

function parseAck(
  body: Record<string, unknown>,
  pending: (id: number) => RequestCode | undefined,
): ServerParse {
  const id = field(body, "id");
  if (!isRequestId(id)) return malformed(`ACK "id" is ${describe(id)}`);
  const request = pending(id);
  if (request === undefined) return malformed(`ACK for id ${id}, which no request is waiting on`);
  switch (request) {
    case "LGO":
    case "CPW":
    case "PNG":
      return { ok: true, value: { code: "ACK", id, request } };
    case "SNU": {
      const user = field(body, "user");
      const fingerprint = field(body, "fingerprint");
      if (!isUsername(user)) return malformed(`ACK of SNU: "user" is not a username`);
      if (fingerprint !== undefined && !isFingerprint(fingerprint)) {
        return malformed(`ACK of SNU: "fingerprint" is not SHA256:<43 base64 chars>`);
      }
      return {
        ok: true,
        value: {
          code: "ACK",
          id,
          request,
          user,
          ...(fingerprint === undefined ? {} : { fingerprint }),
        },
      };
    }
    case "KEY": {
      const fingerprint = field(body, "fingerprint");
      if (!isFingerprint(fingerprint)) {
        return malformed(`ACK of KEY: "fingerprint" is not SHA256:<43 base64 chars>`);
      }
      return { ok: true, value: { code: "ACK", id, request, fingerprint } };
    }
    case "GPK": {
      const user = field(body, "user");
      const key = field(body, "key");
      const fingerprint = field(body, "fingerprint");
      const current = field(body, "current");
      if (!isUsername(user)) return malformed(`ACK of GPK: "user" is not a username`);
      if (typeof key !== "string" || keyProblem(key) !== undefined) {
        return malformed(
          `ACK of GPK: "key" is not base64 of at most ${MAX_USER_KEY_B64_CHARS} chars`,
        );
      }
      if (!isFingerprint(fingerprint)) {
        return malformed(`ACK of GPK: "fingerprint" is not SHA256:<43 base64 chars>`);
      }
      if (typeof current !== "boolean") return malformed(`ACK of GPK: "current" is not a boolean`);
      return { ok: true, value: { code: "ACK", id, request, user, key, fingerprint, current } };
    }
    case "LGN": {
      const user = field(body, "user");
      const queued = field(body, "queued");
      if (!isUsername(user)) return malformed(`ACK of LGN: "user" is not a username`);
      if (!isCount(queued)) return malformed(`ACK of LGN: "queued" is ${describe(queued)}`);
      return { ok: true, value: { code: "ACK", id, request, user, queued } };
    }
    case "GSR": {
      const key = field(body, "key");
      const fingerprint = field(body, "fingerprint");
      if (!isBase64(key)) {
        return malformed(
          `ACK of GSR: "key" is not base64 of at most ${MAX_SERVER_KEY_B64_CHARS} chars`,
        );
      }
      if (!isFingerprint(fingerprint)) {
        return malformed(`ACK of GSR: "fingerprint" is not SHA256:<43 base64 chars>`);
      }
      return { ok: true, value: { code: "ACK", id, request, key, fingerprint } };
    }
    case "GUL": {
      const list = field(body, "users");
      if (!Array.isArray(list)) return malformed(`ACK of GUL: "users" is ${describe(list)}`);
      const users: UserEntry[] = [];
      for (const entry of list) {
        if (!isObject(entry)) return malformed(`ACK of GUL: an entry is ${describe(entry)}`);
        const user = field(entry, "user");
        const online = field(entry, "online");
        const fingerprint = field(entry, "fingerprint");
        if (
          !isUsername(user) || typeof online !== "boolean" ||
          (fingerprint !== undefined && !isFingerprint(fingerprint))
        ) {
          return malformed(`ACK of GUL: an entry is not {"user", "online", "fingerprint"?}`);
        }
        users.push(fingerprint === undefined ? { user, online } : { user, online, fingerprint });
      }
      const next = field(body, "next");
      if (next !== undefined && !isUsername(next)) {
        return malformed(`ACK of GUL: "next" is not a username`);
      }
      return {
        ok: true,
        value: { code: "ACK", id, request, users, ...(next === undefined ? {} : { next }) },
      };
    }
    case "MSG": {
      const msg = field(body, "msg");
      const ts = field(body, "ts");
      if (!isMsgId(msg)) return malformed(`ACK of MSG: "msg" is ${describe(msg)}`);
      if (!isCount(ts)) return malformed(`ACK of MSG: "ts" is ${describe(ts)}`);
      return { ok: true, value: { code: "ACK", id, request, msg, ts } };
    }
    default:
      return unreachable(request);
  }
}

function parseError(
  body: Record<string, unknown>,
  pending: (id: number) => RequestCode | undefined,
): ServerParse {
  const id = field(body, "id");
  const error = field(body, "code");
  const given = field(body, "message");
  const message = given === undefined ? "" : given;
  if (!ERROR_CODES.some((c) => c === error)) return malformed(`ERR "code" is ${describe(error)}`);
  const known = error as ErrorCode;
  if (!(isRequestId(id) || (id === 0 && known === "bad_request"))) {
    return malformed(`ERR ${known} "id" is ${describe(id)}`);
  }
  if (id !== 0 && pending(id) === undefined) {
    return malformed(`ERR for id ${id}, which no request is waiting on`);
  }
  if (typeof message !== "string" || message.length > MAX_ERROR_MESSAGE_CHARS) {
    return malformed(`ERR "message" is not a string of at most ${MAX_ERROR_MESSAGE_CHARS} chars`);
  }
  const value: ErrorResponse = { code: "ERR", id, error: known, message };
  if (known === "rate_limited") {
    const retry = field(body, "retry_after_ms");
    if (!isCount(retry)) {
      return malformed(`ERR rate_limited "retry_after_ms" is ${describe(retry)}`);
    }
    value.retry_after_ms = retry;
  }
  return { ok: true, value };
}

function malformed(reason: string): ServerParse {
  return { ok: false, reason };
}

// ─── Shared checks ───────────────────────────────────────────────────────────────────────────

/** Whether `value` is a username of §4.3. */
export function isUsername(value: unknown): value is string {
  // The length test first spares the regex a megabyte-long string.
  return typeof value === "string" && value.length <= MAX_USERNAME_CHARS &&
    USERNAME_PATTERN.test(value);
}

/** Whether `value` can start a username: what a GUL `prefix` may be (empty included). */
function isNamePrefix(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_USERNAME_CHARS &&
    /^[a-z0-9][a-z0-9_.-]*$|^$/.test(value);
}

/** The 3-letter code, when the first 3 bytes are ASCII upper-case letters. */
function readCode(plaintext: Uint8Array): string | undefined {
  if (plaintext.length < 3) return undefined;
  const a = plaintext[0] as number;
  const b = plaintext[1] as number;
  const c = plaintext[2] as number;
  if (!isUpper(a) || !isUpper(b) || !isUpper(c)) return undefined;
  return String.fromCharCode(a, b, c);
}

function isUpper(byte: number): boolean {
  return byte >= 0x41 && byte <= 0x5a;
}

function isClientCode(code: string): code is ClientCode {
  return code === "DAK" || REQUEST_CODES.some((c) => c === code);
}

/** The JSON object after the code (decoded once), or what is wrong with it. */
function readBody(plaintext: Uint8Array): Record<string, unknown> | string {
  if (plaintext.length < 3) return "message is shorter than its 3-letter code";
  const text = decodeUtf8(plaintext.subarray(3));
  if (text === undefined) return "body is not valid UTF-8";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Also catches a RangeError from absurd nesting: the input is bounded by the frame anyway.
    return "body is not valid JSON";
  }
  return isObject(value) ? value : `body is ${describe(value)}, not a JSON object`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An own field only: nothing comes from Object.prototype, whatever the keys. */
function field(body: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(body, key) ? body[key] : undefined;
}

function isRequestId(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_REQUEST_ID;
}

/** Non-negative integer that survives JSON exactly (timestamps, counts, milliseconds). */
function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isMsgId(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= MAX_MSG_ID_CHARS &&
    utf8Length(value, MAX_MSG_ID_CHARS * 4) >= 0;
}

function isCid(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= MAX_CID_CHARS &&
    utf8Length(value, MAX_CID_CHARS * 4) >= 0;
}

function isText(value: unknown): value is string {
  if (typeof value !== "string") return false;
  const size = utf8Length(value, MAX_TEXT_BYTES);
  return size >= MIN_TEXT_BYTES && size <= MAX_TEXT_BYTES;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isFingerprint(value: unknown): value is string {
  return typeof value === "string" && FINGERPRINT_PATTERN.test(value);
}

function isSealed(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_SEALED_CHARS &&
    isPaddedBase64(value);
}

function isBase64(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 &&
    value.length <= MAX_SERVER_KEY_B64_CHARS && value.length % 4 === 0 && BASE64.test(value);
}

/**
 * UTF-8 byte length of `s` without encoding it; `cap + 1` as soon as it passes `cap`, and -1 for a
 * lone surrogate (JSON's \ud800 escapes can make one; it has no UTF-8 form).
 */
function utf8Length(s: string, cap: number): number {
  // Every UTF-16 unit needs at least one UTF-8 byte.
  if (s.length > cap) return cap + 1;
  let size = 0;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit < 0x80) size += 1;
    else if (unit < 0x800) size += 2;
    else if (unit < 0xd800 || unit > 0xdfff) size += 3;
    else if (unit <= 0xdbff) {
      const low = s.charCodeAt(i + 1);
      if (!(low >= 0xdc00 && low <= 0xdfff)) return -1;
      size += 4;
      i++;
    } else return -1;
    if (size > cap) return cap + 1;
  }
  return size;
}

/** A short, safe description of a peer-supplied value, never echoing it at length. */
function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "number":
      return String(value);
    case "string":
      return `a string of ${value.length} chars`;
    case "boolean":
      return String(value);
    default:
      return `an ${typeof value}`;
  }
}
