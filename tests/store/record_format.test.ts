import assert from "node:assert/strict";
import {
  decodeHeader,
  decodeRecord,
  encodeHeader,
  encodeRecord,
  type Event,
  EVENT_TAGS,
  EVENT_TYPES,
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  recordAt,
  StoreCorruptError,
} from "../../store/mod.ts";
import {
  isTornHeader,
  RECORD_BAD_CHECKSUM,
  RECORD_BAD_LENGTH,
  RECORD_INCOMPLETE,
} from "../../store/record_format.ts";
import { everyEventType } from "./_helpers.ts";

const SALT = 0x5a17_5a17;

function roundTrip(event: Event, salt = SALT): Event {
  const record = encodeRecord(event, salt);
  assert.deepEqual(recordAt(record, 0, record.length, salt), record.length);
  return decodeRecord(record, 0, record.length);
}

Deno.test("encodeRecord() then decodeRecord() gives back every event type", () => {
  const events = everyEventType();
  assert.deepEqual(new Set(events.map((e) => e.type)), new Set(EVENT_TYPES));
  for (const event of events) assert.deepEqual(roundTrip(event), event);
});

Deno.test("a record round-trips empty, astral, control and 16 KiB strings", () => {
  const texts = [
    "",
    "\u0000",
    "a\u2028b",
    "🙂".repeat(4000),
    "é".repeat(16384),
    "x".repeat(70_000),
  ];
  for (const text of texts) {
    const event: Event = {
      type: "message_sent",
      ts: 5,
      msg: "m",
      from: "a",
      to: "b",
      text,
      cid: "",
    };
    assert.deepEqual(roundTrip(event), event);
  }
});

Deno.test("a record keeps timestamps as numbers, fractional and negative ones included", () => {
  for (const ts of [0, -1, 1.5, 2 ** 53 - 1, Date.UTC(2100, 0)]) {
    assert.deepEqual(roundTrip({ type: "logged_out", ts, user: "u" }).ts, ts);
  }
});

Deno.test("encodeRecord() writes only the schema's fields", () => {
  const sneaky = { type: "user_signed_up", ts: 1, user: "u", passwordHash: "h", password: "plain" };
  const record = encodeRecord(sneaky as Event, SALT);
  assert.deepEqual(decodeRecord(record, 0, record.length), {
    type: "user_signed_up",
    ts: 1,
    user: "u",
    passwordHash: "h",
  });
  assert.deepEqual(new TextDecoder().decode(record).includes("plain"), false);
});

Deno.test("encodeRecord() refuses malformed events with a TypeError naming the field", () => {
  const bad: unknown[] = [
    null,
    { type: "nope", ts: 1 },
    { type: "logged_out", ts: "1", user: "u" },
    { type: "logged_out", ts: Number.NaN, user: "u" },
    { type: "logged_out", ts: 1 },
    { type: "message_sent", ts: 1, msg: "m", from: "a", to: "b", text: "t", cid: 5 },
    { type: "log_compacted", ts: 1, events: -1 },
    { type: "log_compacted", ts: 1, events: 1.5 },
  ];
  for (const value of bad) assert.throws(() => encodeRecord(value as Event, SALT), TypeError);
  assert.throws(
    () => encodeRecord({ type: "logged_out", ts: 1 } as unknown as Event, SALT),
    /logged_out\.user must be a string/,
  );
});

Deno.test("encodeRecord() refuses an event larger than MAX_PAYLOAD_BYTES", () => {
  const text = "x".repeat(MAX_PAYLOAD_BYTES);
  assert.throws(
    () => encodeRecord({ type: "message_sent", ts: 1, msg: "m", from: "a", to: "b", text }, SALT),
    RangeError,
  );
  const wide = "€".repeat(MAX_PAYLOAD_BYTES / 3); // fits in UTF-16 units, not in UTF-8 bytes
  assert.throws(
    () =>
      encodeRecord({ type: "message_sent", ts: 1, msg: "m", from: "a", to: "b", text: wide }, SALT),
    /exceeds MAX_PAYLOAD_BYTES/,
  );
});

Deno.test("recordAt() refuses a record checked against another file's salt", () => {
  const record = encodeRecord({ type: "logged_out", ts: 1, user: "u" }, SALT);
  assert.deepEqual(recordAt(record, 0, record.length, SALT ^ 1), RECORD_BAD_CHECKSUM);
});

Deno.test("recordAt() catches every single flipped bit of a record", () => {
  const record = encodeRecord({
    type: "message_sent",
    ts: 1,
    msg: "m1",
    from: "a",
    to: "b",
    text: "hello",
  }, SALT);
  for (let bit = 0; bit < record.length * 8; bit++) {
    const copy = record.slice();
    copy[bit >> 3]! ^= 1 << (bit & 7);
    const status = recordAt(copy, 0, copy.length, SALT);
    // A flip in the length field may also make the record look longer than the bytes at hand.
    assert.deepEqual(
      [RECORD_BAD_CHECKSUM, RECORD_BAD_LENGTH, RECORD_INCOMPLETE].includes(status),
      true,
      `bit ${bit}: status ${status}`,
    );
  }
});

Deno.test("recordAt() says incomplete for every prefix of a record", () => {
  const record = encodeRecord({ type: "logged_out", ts: 1, user: "somebody" }, SALT);
  for (let end = 0; end < record.length; end++) {
    assert.deepEqual(recordAt(record, 0, end, SALT), RECORD_INCOMPLETE);
  }
});

Deno.test("recordAt() refuses zeros as a record: a zero length is never valid", () => {
  assert.deepEqual(recordAt(new Uint8Array(64), 0, 64, SALT), RECORD_BAD_LENGTH);
  assert.deepEqual(recordAt(new Uint8Array(64), 0, 64, 0), RECORD_BAD_LENGTH);
});

Deno.test("decodeRecord() refuses a checksum-valid payload with an unknown tag or bad lengths", () => {
  const record = encodeRecord({ type: "logged_out", ts: 1, user: "u" }, SALT);
  const unknownTag = record.slice();
  unknownTag[RECORD_HEADER_BYTES] = 200;
  assert.throws(() => decodeRecord(unknownTag, 0, unknownTag.length), /unknown event tag 200/);
  const longer = record.slice();
  longer[RECORD_HEADER_BYTES + 9] = 5; // says "user" is 5 units; 1 follows
  assert.throws(() => decodeRecord(longer, 0, longer.length), RangeError);
});

Deno.test("event tags are distinct and cover every type", () => {
  const tags = EVENT_TYPES.map((t) => EVENT_TAGS[t]);
  assert.deepEqual(new Set(tags).size, EVENT_TYPES.length);
});

Deno.test("encodeHeader() then decodeHeader() gives back the salt", () => {
  const header = encodeHeader(SALT);
  assert.deepEqual(header.length, HEADER_BYTES);
  assert.deepEqual(decodeHeader(header), { version: 1, salt: SALT });
  assert.notDeepEqual(decodeHeader(encodeHeader()).salt, decodeHeader(encodeHeader()).salt);
});

Deno.test("decodeHeader() refuses a wrong magic, a flipped bit and another version", () => {
  const wrongMagic = encodeHeader(SALT);
  wrongMagic[1] = 0x41;
  assert.throws(
    () => decodeHeader(wrongMagic),
    (e: unknown) => e instanceof StoreCorruptError && e.code === "bad_header",
  );
  const flipped = encodeHeader(SALT);
  flipped[13]! ^= 4;
  assert.throws(
    () => decodeHeader(flipped),
    (e: unknown) => e instanceof StoreCorruptError && e.code === "bad_header",
  );
  assert.throws(
    () => decodeHeader(encodeHeader(SALT, 2)),
    (e: unknown) =>
      e instanceof StoreCorruptError && e.code === "unsupported_version" &&
      /version 2/.test(e.message),
  );
});

Deno.test("isTornHeader() accepts header prefixes and zeros, and nothing else", () => {
  const header = encodeHeader(SALT);
  for (let n = 0; n < HEADER_BYTES; n++) {
    assert.deepEqual(isTornHeader(header.subarray(0, n)), true);
  }
  assert.deepEqual(isTornHeader(new Uint8Array(7)), true);
  assert.deepEqual(isTornHeader(new TextEncoder().encode("hello")), false);
  assert.deepEqual(isTornHeader(header), false);
});
