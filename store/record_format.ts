// The on-disk format of the event log: a versioned file header, then self-delimiting,
// checksummed records, each holding one event in a compact binary payload.
//
//   header  = magic (8) || version (u16) || reserved (u16, 0) || salt (u32)
//             || crc32c(magic..salt) (u32)
//   record  = (crc32c(length || payload) XOR salt) (u32) || length (u32) || payload
//   payload = tag (u8) || ts (f64)
//             || per field of the event's schema (EVENT_SCHEMA), in order:
//                  count           → f64
//                  string          → varint(UTF-16 length)
//                  optional string → varint(0 if absent, else UTF-16 length + 1)
//             || UTF-8 of the present strings, concatenated in field order
//
// Integers are big-endian; varints are LEB128. The binary payload replaces JSON, whose parsing
// alone took over half the replay budget for a million events (docs/PERFORMANCE.md): here one
// UTF-8 decode per record yields every string, cut apart by their lengths.
// `salt` is random per file. Message text is user-controlled and may hold any bytes; without
// the salt, no one can make them pass for a record of this file. Recovery tells a torn tail
// from corruption by looking for whole records after a bad one, so a forged record inside a
// text could otherwise turn a crash mid-append into a server that refuses to start.

import { crc32c } from "./_crc32c.ts";
import { StoreCorruptError } from "./errors.ts";
import { assertEvent, type Event, EVENT_SCHEMA, type EventType } from "./events.ts";

/** "\x89HSEV\r\n\x1a": a non-ASCII first byte and line-ending bytes catch text-mode mangling. */
export const FILE_MAGIC: Uint8Array = Uint8Array.of(0x89, 0x48, 0x53, 0x45, 0x56, 0x0d, 0x0a, 0x1a);
/** The record format this code writes and reads. */
export const FORMAT_VERSION = 1;
/** Bytes of the file header. */
export const HEADER_BYTES = 20;
/** Bytes before each payload: checksum and length. */
export const RECORD_HEADER_BYTES = 8;
/** The shortest payload, tag and timestamp: a zero length, as in a zero-filled tail, is never a record. */
export const MIN_PAYLOAD_BYTES = 9;
/**
 * The longest payload: 1 MiB, far above the largest event (a 16 KiB message text), and
 * small enough that a bit flipped high in a length field is caught at once instead of
 * sending the reader past the end of the file.
 */
export const MAX_PAYLOAD_BYTES = 1 << 20;

/** The payload tag of each event type. Stable: a tag is never reused for another type. */
export const EVENT_TAGS: { readonly [T in EventType]: number } = {
  user_signed_up: 1,
  login_succeeded: 2,
  login_failed: 3,
  logged_out: 4,
  password_changed: 5,
  message_sent: 6,
  message_delivered: 7,
  cid_remembered: 8,
  log_compacted: 9,
  sealed_message_sent: 10,
  user_key_published: 11,
};

const TYPE_OF_TAG: (EventType | undefined)[] = [];
for (const [type, tag] of Object.entries(EVENT_TAGS)) TYPE_OF_TAG[tag] = type as EventType;

const encoder = new TextEncoder();
// Not `fatal`: the salted checksum already vouches for the bytes, and a fatal decoder is twice
// as slow. TextEncoder turns a lone surrogate into U+FFFD, one UTF-16 unit for one, so the
// lengths still add up; a stored string never holds one anyway (it came off the wire as UTF-8).
const decoder = new TextDecoder();

/** The fields of a file header. */
export interface Header {
  version: number;
  salt: number;
}

/** The header of a new log. `salt` is a random u32 unless given (tests fix it). */
export function encodeHeader(
  salt: number = randomSalt(),
  version: number = FORMAT_VERSION,
): Uint8Array {
  if (!Number.isInteger(salt) || salt < 0 || salt > 0xffff_ffff) {
    throw new RangeError(`salt ${salt} is not a u32`);
  }
  const header = new Uint8Array(HEADER_BYTES);
  header.set(FILE_MAGIC, 0);
  const view = new DataView(header.buffer);
  view.setUint16(8, version);
  view.setUint16(10, 0);
  view.setUint32(12, salt);
  view.setUint32(16, crc32c(header, 0, 16));
  return header;
}

function randomSalt(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** Reads a file header (HEADER_BYTES long); throws StoreCorruptError unless it is a version-1 one. */
export function decodeHeader(header: Uint8Array): Header {
  if (header.length !== HEADER_BYTES) {
    throw new RangeError(`header is ${header.length} bytes, expected ${HEADER_BYTES}`);
  }
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const magicOk = FILE_MAGIC.every((b, i) => header[i] === b);
  if (!magicOk || view.getUint32(16) !== crc32c(header, 0, 16)) {
    throw new StoreCorruptError(
      "bad_header",
      0,
      "file is not an event log: bad magic or header checksum at offset 0",
    );
  }
  const version = view.getUint16(8);
  if (version !== FORMAT_VERSION) {
    throw new StoreCorruptError(
      "unsupported_version",
      0,
      `event log format version ${version} is not supported (this build reads ${FORMAT_VERSION})`,
    );
  }
  return { version, salt: view.getUint32(12) };
}

/**
 * Whether a file shorter than a header holds what a crash while creating the log leaves
 * behind: a prefix of a header (any salt), or zeros.
 */
export function isTornHeader(bytes: Uint8Array): boolean {
  if (bytes.length >= HEADER_BYTES) return false;
  const header = encodeHeader(0);
  // Bytes 12..20 (salt and checksum) are random-looking: only the fixed part can be compared.
  return bytes.every((b, i) => i >= 12 || b === header[i]) || bytes.every((b) => b === 0);
}

/** Bytes of `n` as a LEB128 varint. */
function varintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x20_0000 ? 3 : n < 0x1000_0000 ? 4 : 5;
}

/**
 * The record of one event for a log whose header has `salt`. Throws TypeError for a
 * malformed event, RangeError if its payload would exceed MAX_PAYLOAD_BYTES.
 */
export function encodeRecord(event: Event, salt: number): Uint8Array {
  return encodeRecordTransient(event, salt).slice();
}

/**
 * encodeRecord() without the copy: the record is a view of a buffer shared by every call, valid
 * until the next one. For the event log, which copies it into its batch at once.
 */
export function encodeRecordTransient(event: Event, salt: number): Uint8Array {
  assertEvent(event); // only schema fields are read below: a stray property is never written
  const e = event as unknown as Record<string, unknown>;
  const type = event.type;
  const fields = EVENT_SCHEMA[type];
  let fixed = 1 + 8;
  let text = "";
  for (let i = 0; i < fields.length; i++) {
    const [name, kind] = fields[i]!;
    const value = e[name];
    if (kind === "count") {
      fixed += 8;
    } else if (typeof value === "string") {
      fixed += varintBytes(value.length + (kind === "optional string" ? 1 : 0));
      text += value;
    } else {
      fixed += 1; // absent optional string: varint 0
    }
  }
  // UTF-8 needs at most 3 bytes per UTF-16 unit; check the bound before allocating.
  if (fixed + text.length > MAX_PAYLOAD_BYTES) {
    const utf8Length = encoder.encode(text).length;
    if (fixed + utf8Length > MAX_PAYLOAD_BYTES) {
      throw new RangeError(
        `${type} event is ${
          fixed + utf8Length
        } bytes, exceeds MAX_PAYLOAD_BYTES (${MAX_PAYLOAD_BYTES})`,
      );
    }
  }
  // Built in a reused scratch buffer sized for the worst case (3 UTF-8 bytes per unit); the
  // caller copies it out: allocating the worst case per record doubled append time.
  const worst = RECORD_HEADER_BYTES + fixed + text.length * 3;
  const record = worst <= encodeScratch.length ? encodeScratch : new Uint8Array(worst);
  const view = record === encodeScratch ? encodeScratchView : new DataView(record.buffer);
  let p = RECORD_HEADER_BYTES;
  record[p++] = EVENT_TAGS[type];
  view.setFloat64(p, e.ts as number);
  p += 8;
  for (let i = 0; i < fields.length; i++) {
    const [name, kind] = fields[i]!;
    const value = e[name];
    if (kind === "count") {
      view.setFloat64(p, value as number);
      p += 8;
      continue;
    }
    let n = typeof value === "string" ? value.length : 0;
    if (kind === "optional string" && typeof value === "string") n++;
    while (n >= 0x80) {
      record[p++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    record[p++] = n;
  }
  p += encoder.encodeInto(text, record.subarray(p)).written;
  const length = p - RECORD_HEADER_BYTES;
  if (length > MAX_PAYLOAD_BYTES) {
    throw new RangeError(
      `${type} event is ${length} bytes, exceeds MAX_PAYLOAD_BYTES (${MAX_PAYLOAD_BYTES})`,
    );
  }
  view.setUint32(4, length);
  view.setUint32(0, (crc32c(record, 4, p) ^ salt) >>> 0);
  return record.subarray(0, p);
}

/** The big-endian f64 at `bytes[p..p + 8)`. */
function readF64(bytes: Uint8Array, p: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[i] = bytes[p + i]!;
  return f64View.getFloat64(0);
}

const encodeScratch = new Uint8Array(64 * 1024);
const encodeScratchView = new DataView(encodeScratch.buffer);

/** `recordAt`: the bytes at `offset` are not a whole record yet (the buffer ends first). */
export const RECORD_INCOMPLETE = 0;
/** `recordAt`: the length field is outside MIN_PAYLOAD_BYTES..MAX_PAYLOAD_BYTES. */
export const RECORD_BAD_LENGTH = -1;
/** `recordAt`: the checksum does not match. */
export const RECORD_BAD_CHECKSUM = -2;

/**
 * Frames the record at `bytes[offset..end)` of a log with `salt`: its total length if it is
 * whole and its checksum matches, else RECORD_INCOMPLETE, RECORD_BAD_LENGTH or
 * RECORD_BAD_CHECKSUM.
 */
export function recordAt(bytes: Uint8Array, offset: number, end: number, salt: number): number {
  if (end - offset < RECORD_HEADER_BYTES) return RECORD_INCOMPLETE;
  const length = ((bytes[offset + 4]! << 24) | (bytes[offset + 5]! << 16) |
    (bytes[offset + 6]! << 8) | bytes[offset + 7]!) >>> 0;
  if (length < MIN_PAYLOAD_BYTES || length > MAX_PAYLOAD_BYTES) return RECORD_BAD_LENGTH;
  const total = RECORD_HEADER_BYTES + length;
  if (end - offset < total) return RECORD_INCOMPLETE;
  const stored = ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) |
    (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
  return ((crc32c(bytes, offset + 4, offset + total) ^ salt) >>> 0) === stored
    ? total
    : RECORD_BAD_CHECKSUM;
}

/**
 * V8 copies a slice shorter than this and makes a longer one a view that keeps the whole
 * parent string alive (an engine detail: a cost if wrong, never a fault).
 */
const SLICE_MIN_UNITS = 13;

// Scratch space reused by every decode: the store decodes on one thread, one record at a time.
const f64Bytes = new Uint8Array(8);
const f64View = new DataView(f64Bytes.buffer);
const lengths: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
const strings: string[] = ["", "", "", "", "", "", "", ""];
let count = 0;

/**
 * The event in the whole record of `total` bytes at `bytes[offset..)` (as `recordAt` framed
 * it). Throws TypeError, RangeError or a decoding error if the payload holds no valid event.
 */
export function decodeRecord(bytes: Uint8Array, offset: number, total: number): Event {
  const end = offset + total;
  let p = offset + RECORD_HEADER_BYTES;
  const type = TYPE_OF_TAG[bytes[p++]!];
  if (type === undefined) throw new TypeError(`unknown event tag ${bytes[p - 1]}`);
  const ts = readF64(bytes, p);
  p += 8;
  if (!Number.isFinite(ts)) throw new TypeError(`${type}.ts is not a finite number`);
  const fields = EVENT_SCHEMA[type];
  let textLength = 0;
  for (let i = 0; i < fields.length; i++) {
    const kind = fields[i]![1];
    if (kind === "count") {
      if (p + 8 > end) throw new RangeError(`${type} payload ends inside its fields`);
      count = readF64(bytes, p);
      p += 8;
      if (!Number.isSafeInteger(count) || count < 0) {
        throw new TypeError(`${type}.${fields[i]![0]} is not a non-negative integer`);
      }
      continue;
    }
    let n = 0;
    for (let shift = 0;; shift += 7) {
      if (p >= end || shift > 21) throw new RangeError(`${type} payload has a bad length varint`);
      const b = bytes[p++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    if (kind === "optional string") n--; // -1: absent
    lengths[i] = n;
    if (n > 0) textLength += n;
  }
  const joined = p < end ? decoder.decode(bytes.subarray(p, end)) : "";
  if (joined.length !== textLength) {
    throw new RangeError(`${type} strings are ${joined.length} units, fields say ${textLength}`);
  }
  // One byte per unit: ASCII, so units are byte offsets too, and a long string (the message
  // text) is decoded on its own rather than sliced, so a queued message holds only its text
  // and not the whole record's string behind a slice.
  const ascii = end - p === textLength;
  let q = 0;
  for (let i = 0; i < fields.length; i++) {
    const n = lengths[i]!;
    if (fields[i]![1] === "count" || n < 0) continue;
    strings[i] = ascii && n >= SLICE_MIN_UNITS
      ? decoder.decode(bytes.subarray(p + q, p + q + n))
      : joined.slice(q, q + n);
    q += n;
  }
  const s = strings;
  switch (type) {
    case "user_signed_up":
      return { type, ts, user: s[0]!, passwordHash: s[1]! };
    case "login_succeeded":
    case "login_failed":
      return { type, ts, user: s[0]!, addr: s[1]! };
    case "logged_out":
      return { type, ts, user: s[0]! };
    case "password_changed":
      return { type, ts, user: s[0]!, passwordHash: s[1]! };
    case "message_sent":
      return lengths[4]! < 0
        ? { type, ts, msg: s[0]!, from: s[1]!, to: s[2]!, text: s[3]! }
        : { type, ts, msg: s[0]!, from: s[1]!, to: s[2]!, text: s[3]!, cid: s[4]! };
    case "message_delivered":
      return { type, ts, msg: s[0]!, user: s[1]! };
    case "sealed_message_sent":
      return lengths[4]! < 0
        ? { type, ts, msg: s[0]!, from: s[1]!, to: s[2]!, sealed: s[3]! }
        : { type, ts, msg: s[0]!, from: s[1]!, to: s[2]!, sealed: s[3]!, cid: s[4]! };
    case "user_key_published":
      return { type, ts, user: s[0]!, key: s[1]!, fingerprint: s[2]!, bits: count };
    case "cid_remembered":
      return { type, ts, from: s[0]!, cid: s[1]!, msg: s[2]! };
    case "log_compacted":
      return { type, ts, events: count };
    default: {
      const never: never = type;
      throw new TypeError(`unhandled event type ${String(never)}`);
    }
  }
}
