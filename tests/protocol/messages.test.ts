// §4 application messages: round trips, every validation rule at its boundary, and fuzzing.

import assert from "node:assert/strict";
import { encodeMessage } from "../_wire.ts";
import {
  type ClientMessage,
  type ClientParse,
  ERROR_CODES,
  type ErrorCode,
  INVALID_CREDENTIALS_MESSAGE,
  isUsername,
  needsLogin,
  parseClientMessage,
  parseServerMessage,
  REQUEST_CODES,
  type RequestCode,
  type ServerMessage,
  type ServerParse,
} from "../../protocol/messages.ts";
import { MAX_REQUEST_ID } from "../../protocol/limits.ts";
import { Prng } from "../../tools/prng.ts";

const utf8 = new TextEncoder();
const bytes = (s: string): Uint8Array => utf8.encode(s);
/** `code || JSON.stringify(body)`, the way a foreign client would build a message. */
const raw = (code: string, body: unknown): Uint8Array => bytes(code + JSON.stringify(body));

function accepted(r: ClientParse): ClientMessage {
  if (!r.ok) assert.fail(`refused: ${r.error.error}: ${r.error.message}`);
  return r.value;
}

function refusedWith(r: ClientParse, error: ErrorCode, id: number): void {
  if (r.ok) assert.fail(`accepted ${JSON.stringify(r.value)}, expected ${error}`);
  assert.equal(r.error.error, error, r.error.message);
  assert.equal(r.error.id, id);
  assert.equal(r.error.code, "ERR");
}

/** A table of outstanding requests, as the client keeps one. */
function pendingOf(entries: Record<number, RequestCode>): (id: number) => RequestCode | undefined {
  return (id) => entries[id];
}

function serverAccepted(r: ServerParse): ServerMessage {
  if (!r.ok) assert.fail(`malformed: ${r.reason}`);
  return r.value;
}

function serverRefused(r: ServerParse): void {
  if (r.ok) assert.fail(`accepted ${JSON.stringify(r.value)}`);
  assert.equal(typeof r.reason, "string");
}

const ALICE_LOGIN = `LGN{"id":1,"user":"alice","password":"correct horse"}`;

// ─── Round trips ─────────────────────────────────────────────────────────────────────────────

const CLIENT_MESSAGES: ClientMessage[] = [
  { code: "SNU", id: 1, user: "alice", password: "correct horse" },
  { code: "LGN", id: 2, user: "bob.b-2_x", password: "pässwörd🔑" },
  { code: "LGO", id: 3 },
  { code: "CPW", id: 4, old: "old password", new: "new password" },
  { code: "GSR", id: 5 },
  { code: "GUL", id: 6 },
  { code: "MSG", id: 7, to: "bob", text: 'hi 👋\n"quoted"' },
  { code: "MSG", id: MAX_REQUEST_ID, to: "bob", text: "again", cid: "c-1" },
  { code: "PNG", id: 9 },
  { code: "DAK", msg: "m-000001" },
];

Deno.test("every client message round-trips through encodeMessage() and parseClientMessage()", () => {
  for (const m of CLIENT_MESSAGES) {
    assert.deepEqual(accepted(parseClientMessage(encodeMessage(m))), m);
  }
});

Deno.test("encodeMessage() writes the spec's LGN example byte for byte", () => {
  const m = { code: "LGN", id: 1, user: "alice", password: "correct horse" } as const;
  assert.deepEqual(encodeMessage(m), bytes(ALICE_LOGIN));
  assert.deepEqual(accepted(parseClientMessage(bytes(ALICE_LOGIN))), m);
});

Deno.test("encodeMessage() writes only the protocol's fields, id first", () => {
  const m = { code: "PNG", id: 4, extra: "not sent" } as ClientMessage;
  assert.deepEqual(encodeMessage(m), bytes(`PNG{"id":4}`));
  const ack = { code: "ACK", id: 9, request: "MSG", msg: "m1", ts: 5 } as const;
  assert.deepEqual(encodeMessage(ack), bytes(`ACK{"id":9,"msg":"m1","ts":5}`));
  assert.deepEqual(
    encodeMessage({ code: "ERR", id: 0, error: "bad_request", message: "no" }),
    bytes(`ERR{"id":0,"code":"bad_request","message":"no"}`),
  );
});

const SERVER_MESSAGES: [ServerMessage, RequestCode | undefined][] = [
  [{ code: "ACK", id: 1, request: "SNU", user: "alice" }, "SNU"],
  [{ code: "ACK", id: 2, request: "LGN", user: "alice", queued: 3 }, "LGN"],
  [{ code: "ACK", id: 3, request: "LGO" }, "LGO"],
  [{ code: "ACK", id: 4, request: "CPW" }, "CPW"],
  [{
    code: "ACK",
    id: 5,
    request: "GSR",
    key: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
    fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
  }, "GSR"],
  [{
    code: "ACK",
    id: 6,
    request: "GUL",
    users: [{ user: "alice", online: true }, { user: "bob", online: false }],
  }, "GUL"],
  [{ code: "ACK", id: 6, request: "GUL", users: [] }, "GUL"],
  [{ code: "ACK", id: 7, request: "MSG", msg: "m-1", ts: 1_700_000_000_000 }, "MSG"],
  [{ code: "ACK", id: MAX_REQUEST_ID, request: "PNG" }, "PNG"],
  [{ code: "ERR", id: 8, error: "unknown_user", message: "no such user" }, "MSG"],
  [{ code: "ERR", id: 0, error: "bad_request", message: "body is not valid JSON" }, undefined],
  [{ code: "ERR", id: 9, error: "rate_limited", message: "slow down", retry_after_ms: 0 }, "MSG"],
  [{ code: "DLV", msg: "m-1", from: "alice", to: "bob", text: "hi ✓", ts: 0 }, undefined],
  [{ code: "BYE", reason: "shutdown" }, undefined],
  [{ code: "BYE", reason: "logged_in_elsewhere" }, undefined],
  [{ code: "BYE", reason: "idle" }, undefined],
  [{ code: "BYE", reason: "logged_out_by_server" }, undefined],
];

Deno.test("every server message round-trips through encodeMessage() and parseServerMessage()", () => {
  for (const [m, request] of SERVER_MESSAGES) {
    const pending = (id: number) => ("id" in m && id === m.id ? request : undefined);
    assert.deepEqual(serverAccepted(parseServerMessage(encodeMessage(m), pending)), m);
  }
});

Deno.test("every error code round-trips in an ERR", () => {
  for (const error of ERROR_CODES) {
    const m: ServerMessage = error === "rate_limited"
      ? { code: "ERR", id: 1, error, message: "x", retry_after_ms: 1500 }
      : { code: "ERR", id: 1, error, message: "x" };
    assert.deepEqual(serverAccepted(parseServerMessage(encodeMessage(m), () => "SNU")), m);
  }
});

// ─── Envelope: code, UTF-8, JSON ─────────────────────────────────────────────────────────────

Deno.test("parseClientMessage() answers an unknown code with bad_request and the readable id", () => {
  refusedWith(parseClientMessage(raw("XYZ", { id: 5 })), "bad_request", 5);
  refusedWith(parseClientMessage(raw("ACK", { id: 6 })), "bad_request", 6);
  const r = parseClientMessage(raw("XYZ", { id: 5 }));
  assert.equal(!r.ok && r.request, undefined);
});

Deno.test("parseClientMessage() refuses a lower-case or non-letter code, keeping a readable id", () => {
  refusedWith(
    parseClientMessage(raw("lgn", { id: 7, user: "alice", password: "x".repeat(8) })),
    "bad_request",
    7,
  );
  refusedWith(parseClientMessage(raw("Png", { id: 8 })), "bad_request", 8);
  refusedWith(parseClientMessage(raw("PN1", { id: 9 })), "bad_request", 9);
  refusedWith(parseClientMessage(raw("P\u00c9G", { id: 9 })), "bad_request", 0);
});

Deno.test("parseClientMessage() answers id 0 when the id is unreadable", () => {
  for (const id of [0, -1, MAX_REQUEST_ID + 1, 1.5, "1", null, true, [1], { n: 1 }, undefined]) {
    refusedWith(parseClientMessage(raw("PNG", { id })), "bad_request", 0);
  }
});

Deno.test("parseClientMessage() accepts the id range's ends, 1 and 2^31 - 1", () => {
  assert.deepEqual(accepted(parseClientMessage(raw("PNG", { id: 1 }))), { code: "PNG", id: 1 });
  assert.deepEqual(accepted(parseClientMessage(bytes(`PNG{"id":2147483647}`))), {
    code: "PNG",
    id: MAX_REQUEST_ID,
  });
  assert.deepEqual(accepted(parseClientMessage(bytes(`PNG{"id":1e0}`))), { code: "PNG", id: 1 });
});

Deno.test("parseClientMessage() takes a U+FFFD that was sent, and refuses the bytes that decode to one", () => {
  const sent = parseClientMessage(
    new TextEncoder().encode('MSG{"id":1,"to":"bob","text":"\uFFFD replacement"}'),
  );
  assert.ok(sent.ok && sent.value.code === "MSG" && sent.value.text === "\uFFFD replacement");
  const invalid = new Uint8Array([
    ...new TextEncoder().encode('MSG{"id":1,"to":"bob","text":"'),
    0xc3,
    0x28,
    ...new TextEncoder().encode('"}'),
  ]);
  const refused = parseClientMessage(invalid);
  assert.ok(!refused.ok && refused.error.error === "bad_request");
});

Deno.test("parseClientMessage() refuses bodies that are not a UTF-8 JSON object", () => {
  const bodies: (string | Uint8Array)[] = [
    "",
    "PN",
    "PNG",
    "PNG[1]",
    "PNG null",
    "PNG 5",
    `PNG"id"`,
    `PNG{"id":1`,
    `PNG{"id":1}}`,
    `PNG{'id':1}`,
    `PNG\ufeff{"id":1}`, // a BOM is not JSON whitespace
    new Uint8Array([0x50, 0x4e, 0x47, 0x7b, 0xff, 0x7d]), // invalid UTF-8
    new Uint8Array([0x50, 0x4e, 0x47, 0x7b, 0xc0, 0xaf, 0x7d]), // overlong encoding
    new Uint8Array([0x50, 0x4e, 0x47, 0x7b, 0xed, 0xa0, 0x80, 0x7d]), // encoded surrogate
  ];
  for (const body of bodies) {
    refusedWith(
      parseClientMessage(typeof body === "string" ? bytes(body) : body),
      "bad_request",
      0,
    );
  }
});

Deno.test("parseClientMessage() ignores unknown fields and does not copy them", () => {
  const r = parseClientMessage(bytes(`PNG{"id":3,"extra":[1,2],"__proto__":{"polluted":true}}`));
  assert.deepEqual(accepted(r), { code: "PNG", id: 3 });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("parseClientMessage() reads only own fields, never Object.prototype's", () => {
  refusedWith(parseClientMessage(raw("DAK", { constructor: "x" })), "bad_request", 0);
  refusedWith(parseClientMessage(bytes(`PNG{"__proto__":{"id":4}}`)), "bad_request", 0);
  // Even if some dependency polluted the prototype, a field the peer did not send stays missing.
  Object.defineProperty(Object.prototype, "id", { value: 4, configurable: true });
  try {
    refusedWith(parseClientMessage(bytes(`PNG{}`)), "bad_request", 0);
  } finally {
    delete (Object.prototype as Record<string, unknown>).id;
  }
  assert.equal(({} as Record<string, unknown>).id, undefined);
});

Deno.test("a refusal names the known code so the server can answer not_authenticated first", () => {
  const r = parseClientMessage(raw("MSG", { id: 3, to: "bob", text: "" }));
  assert.ok(!r.ok && r.request === "MSG");
  assert.equal(needsLogin("MSG"), true);
  assert.equal(needsLogin("LGO"), true);
  assert.equal(needsLogin("CPW"), true);
  assert.equal(needsLogin("GUL"), true);
  assert.equal(needsLogin("DAK"), true);
  for (const open of ["SNU", "LGN", "GSR", "PNG"] as const) assert.equal(needsLogin(open), false);
});

// ─── SNU, LGN, CPW ───────────────────────────────────────────────────────────────────────────

const GOOD_PASSWORD = "correct horse";

Deno.test("SNU accepts usernames of 1 and 32 characters and refuses 33 as invalid_username", () => {
  const signUp = (user: unknown) =>
    parseClientMessage(raw("SNU", { id: 2, user, password: GOOD_PASSWORD }));
  for (const user of ["a", "0", "a".repeat(32), "a0_.-", "9lives"]) accepted(signUp(user));
  for (const user of ["a".repeat(33), "", "Alice", "_a", ".a", "-a", "a b", "a/b", "é", "a\n"]) {
    refusedWith(signUp(user), "invalid_username", 2);
  }
});

Deno.test("SNU refuses a non-string user or password as bad_request", () => {
  refusedWith(
    parseClientMessage(raw("SNU", { id: 2, user: 5, password: GOOD_PASSWORD })),
    "bad_request",
    2,
  );
  refusedWith(parseClientMessage(raw("SNU", { id: 2, password: GOOD_PASSWORD })), "bad_request", 2);
  refusedWith(
    parseClientMessage(raw("SNU", { id: 2, user: "alice", password: null })),
    "bad_request",
    2,
  );
});

Deno.test("SNU counts password bytes of UTF-8: 8 and 1024 accepted, 7 and 1025 weak_password", () => {
  const signUp = (password: string) =>
    parseClientMessage(raw("SNU", { id: 3, user: "alice", password }));
  for (
    const password of [
      "12345678",
      "éééé",
      "€€a€", /* 3+3+1+3 */
      "x".repeat(1024),
      "€".repeat(341) + "a",
    ]
  ) {
    accepted(signUp(password));
  }
  for (
    const password of [
      "",
      "1234567",
      "ééé" + "a",
      "x".repeat(1025),
      "€".repeat(342),
      "🔑".repeat(257),
    ]
  ) {
    refusedWith(signUp(password), "weak_password", 3);
  }
});

Deno.test("SNU refuses a password holding a lone surrogate as weak_password", () => {
  refusedWith(
    parseClientMessage(bytes(`SNU{"id":3,"user":"alice","password":"abcdefgh\\ud800"}`)),
    "weak_password",
    3,
  );
});

Deno.test("SNU checks the username before the password", () => {
  refusedWith(
    parseClientMessage(raw("SNU", { id: 3, user: "Bad", password: "x" })),
    "invalid_username",
    3,
  );
});

Deno.test("LGN answers a malformed user or password with invalid_credentials, like a wrong one", () => {
  const login = (user: string, password: string) =>
    parseClientMessage(raw("LGN", { id: 4, user, password }));
  accepted(login("a".repeat(32), "x".repeat(8)));
  accepted(login("a", "x".repeat(1024)));
  for (
    const [user, password] of [["a".repeat(33), GOOD_PASSWORD], ["Alice", GOOD_PASSWORD], [
      "alice",
      "x".repeat(7),
    ], ["alice", "x".repeat(1025)]]
  ) {
    const r = login(user as string, password as string);
    refusedWith(r, "invalid_credentials", 4);
    assert.equal(!r.ok && r.error.message, INVALID_CREDENTIALS_MESSAGE);
  }
});

Deno.test("LGN refuses non-string fields as bad_request", () => {
  refusedWith(
    parseClientMessage(raw("LGN", { id: 4, user: ["alice"], password: GOOD_PASSWORD })),
    "bad_request",
    4,
  );
  refusedWith(
    parseClientMessage(raw("LGN", { id: 4, user: "alice", password: 12345678 })),
    "bad_request",
    4,
  );
});

Deno.test("CPW: a malformed old password is invalid_credentials, a bad new one weak_password", () => {
  const change = (old: unknown, next: unknown) =>
    parseClientMessage(raw("CPW", { id: 5, old, new: next }));
  accepted(change("x".repeat(8), "y".repeat(1024)));
  accepted(change("x".repeat(1024), "y".repeat(8)));
  refusedWith(change("x".repeat(7), "y".repeat(8)), "invalid_credentials", 5);
  refusedWith(change("x".repeat(1025), "y".repeat(8)), "invalid_credentials", 5);
  refusedWith(change("x".repeat(8), "y".repeat(7)), "weak_password", 5);
  refusedWith(change("x".repeat(8), "y".repeat(1025)), "weak_password", 5);
  refusedWith(change("x".repeat(7), "y".repeat(7)), "invalid_credentials", 5);
  refusedWith(change(undefined, "y".repeat(8)), "bad_request", 5);
  refusedWith(change("x".repeat(8), 8), "bad_request", 5);
});

// ─── MSG, DAK ────────────────────────────────────────────────────────────────────────────────

const send = (body: Record<string, unknown>) => parseClientMessage(raw("MSG", { id: 6, ...body }));

Deno.test("MSG accepts text of 1 and 16384 bytes and refuses 16385 as too_large", () => {
  for (const text of ["a", "x".repeat(16384), "€".repeat(5461) + "a", "🔑".repeat(4096)]) {
    accepted(send({ to: "bob", text }));
  }
  for (
    const text of [
      "x".repeat(16385),
      "€".repeat(5462),
      "🔑".repeat(4096) + "a",
      "x".repeat(1 << 20),
    ]
  ) {
    refusedWith(send({ to: "bob", text }), "too_large", 6);
  }
});

Deno.test("MSG refuses empty, missing, non-string or non-UTF-8 text as invalid_message", () => {
  for (const text of ["", undefined, null, 5, ["hi"], { t: "hi" }]) {
    refusedWith(send({ to: "bob", text }), "invalid_message", 6);
  }
  refusedWith(
    parseClientMessage(bytes(`MSG{"id":6,"to":"bob","text":"hi \\udc00"}`)),
    "invalid_message",
    6,
  );
  accepted(parseClientMessage(bytes(`MSG{"id":6,"to":"bob","text":"\\ud83d\\udd11"}`)));
});

Deno.test("MSG answers a recipient off the username pattern with unknown_user", () => {
  for (const to of ["Bob", "", "b".repeat(33), "bob!"]) {
    refusedWith(send({ to, text: "hi" }), "unknown_user", 6);
  }
  accepted(send({ to: "b".repeat(32), text: "hi" }));
  refusedWith(send({ to: 7, text: "hi" }), "bad_request", 6);
  refusedWith(send({ text: "hi" }), "bad_request", 6);
});

Deno.test("MSG checks the recipient before the text, following §4.1's ERR column", () => {
  refusedWith(send({ to: "Bob", text: "" }), "unknown_user", 6);
});

Deno.test("MSG accepts a cid of 1 and 64 chars and refuses 0, 65 and non-strings", () => {
  assert.deepEqual(accepted(send({ to: "bob", text: "hi", cid: "c" })), {
    code: "MSG",
    id: 6,
    to: "bob",
    text: "hi",
    cid: "c",
  });
  accepted(send({ to: "bob", text: "hi", cid: "c".repeat(64) }));
  for (const cid of ["", "c".repeat(65), 5, null, ["c"]]) {
    refusedWith(send({ to: "bob", text: "hi", cid }), "bad_request", 6);
  }
  const noCid = accepted(send({ to: "bob", text: "hi" }));
  assert.equal("cid" in noCid, false);
});

Deno.test("DAK accepts a msg of 1 and 64 chars and refuses others with id 0", () => {
  assert.deepEqual(accepted(parseClientMessage(raw("DAK", { msg: "m" }))), {
    code: "DAK",
    msg: "m",
  });
  accepted(parseClientMessage(raw("DAK", { msg: "m".repeat(64), id: 3 })));
  for (const msg of ["", "m".repeat(65), 1, undefined]) {
    const r = parseClientMessage(raw("DAK", { id: 3, msg }));
    refusedWith(r, "bad_request", 0);
    assert.equal(!r.ok && r.request, "DAK");
  }
});

Deno.test("requests without fields ignore everything but the id", () => {
  for (const code of ["LGO", "GSR", "GUL", "PNG"] as const) {
    assert.deepEqual(accepted(parseClientMessage(raw(code, { id: 12, user: 5 }))), {
      code,
      id: 12,
    });
  }
});

Deno.test("refusal messages never echo a peer's value at length", () => {
  const huge = "p".repeat(100_000);
  for (
    const body of [{ id: 1, user: "alice", password: huge }, { id: huge }, {
      id: 1,
      to: huge,
      text: "x",
    }]
  ) {
    for (const code of ["SNU", "LGN", "MSG", "XYZ"]) {
      const r = parseClientMessage(raw(code, body));
      assert.ok(!r.ok && r.error.message.length < 200, r.ok ? "" : r.error.message);
    }
  }
});

// ─── Server messages, client side ────────────────────────────────────────────────────────────

Deno.test("parseServerMessage() refuses an ACK or ERR for an id nothing waits on", () => {
  const pending = pendingOf({ 1: "PNG" });
  serverAccepted(parseServerMessage(raw("ACK", { id: 1 }), pending));
  serverRefused(parseServerMessage(raw("ACK", { id: 2 }), pending));
  serverRefused(parseServerMessage(raw("ERR", { id: 2, code: "internal", message: "x" }), pending));
  for (const id of [0, -1, MAX_REQUEST_ID + 1, 1.5, "1", null]) {
    serverRefused(parseServerMessage(raw("ACK", { id }), () => "PNG"));
  }
});

Deno.test("parseServerMessage() checks each ACK's result fields for its request", () => {
  const ack = (request: RequestCode, body: Record<string, unknown>) =>
    parseServerMessage(raw("ACK", { id: 1, ...body }), () => request);
  serverRefused(ack("SNU", { user: "Alice" }));
  serverRefused(ack("SNU", {}));
  serverRefused(ack("LGN", { user: "alice" }));
  serverRefused(ack("LGN", { user: "alice", queued: -1 }));
  serverRefused(ack("LGN", { user: "alice", queued: 1.5 }));
  serverRefused(ack("LGN", { user: "alice", queued: 2 ** 53 }));
  serverAccepted(ack("LGN", { user: "alice", queued: 2 ** 53 - 1 }));
  serverRefused(ack("MSG", { msg: "", ts: 1 }));
  serverRefused(ack("MSG", { msg: "m".repeat(65), ts: 1 }));
  serverAccepted(ack("MSG", { msg: "m".repeat(64), ts: 1 }));
  serverRefused(ack("MSG", { msg: "m", ts: "1" }));
  serverRefused(ack("GUL", { users: {} }));
  serverRefused(ack("GUL", { users: [{ user: "alice" }] }));
  serverRefused(ack("GUL", { users: [{ user: "Alice", online: true }] }));
  serverRefused(ack("GUL", { users: [null] }));
  serverRefused(ack("GUL", { users: [{ user: "alice", online: 1 }] }));
  const fields = serverAccepted(ack("GUL", { users: [{ user: "alice", online: true, x: 1 }] }));
  assert.deepEqual(fields, {
    code: "ACK",
    id: 1,
    request: "GUL",
    users: [{ user: "alice", online: true }],
  });
});

Deno.test("parseServerMessage() checks the GSR key is bounded base64 and the fingerprint §6's form", () => {
  const fingerprint = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
  const gsr = (key: unknown, fp: unknown) =>
    parseServerMessage(raw("ACK", { id: 1, key, fingerprint: fp }), () => "GSR");
  serverAccepted(gsr("AAAA", fingerprint));
  serverAccepted(gsr("A".repeat(87380), fingerprint));
  serverRefused(gsr("A".repeat(87384), fingerprint));
  for (const key of ["", "AAA", "AA=A", "AAAA====", "AA-_", 5]) {
    serverRefused(gsr(key, fingerprint));
  }
  for (
    const fp of [
      "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
      "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV", // low bits set in the last char
      "SHA1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
      "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
      undefined,
    ]
  ) serverRefused(gsr("AAAA", fp));
});

Deno.test("parseServerMessage() checks ERR: known code, id 0 only for bad_request, bounded message", () => {
  const err = (body: Record<string, unknown>) => parseServerMessage(raw("ERR", body), () => "MSG");
  serverAccepted(err({ id: 0, code: "bad_request" }));
  assert.deepEqual(serverAccepted(err({ id: 3, code: "bad_request" })), {
    code: "ERR",
    id: 3,
    error: "bad_request",
    message: "",
  });
  serverRefused(err({ id: 0, code: "internal", message: "x" }));
  serverRefused(err({ id: 3, code: "no_such_code", message: "x" }));
  serverRefused(err({ id: 3, code: "BAD_REQUEST", message: "x" }));
  serverRefused(err({ id: 3, message: "x" }));
  serverAccepted(err({ id: 3, code: "internal", message: "m".repeat(1024) }));
  serverRefused(err({ id: 3, code: "internal", message: "m".repeat(1025) }));
  serverRefused(err({ id: 3, code: "internal", message: 5 }));
  serverRefused(err({ id: 3, code: "internal", message: null }));
});

Deno.test("parseServerMessage() requires retry_after_ms on rate_limited and ignores it elsewhere", () => {
  const err = (body: Record<string, unknown>) =>
    parseServerMessage(raw("ERR", { id: 3, message: "m", ...body }), () => "MSG");
  serverRefused(err({ code: "rate_limited" }));
  serverRefused(err({ code: "rate_limited", retry_after_ms: -1 }));
  serverRefused(err({ code: "rate_limited", retry_after_ms: 1.5 }));
  serverRefused(err({ code: "rate_limited", retry_after_ms: "100" }));
  assert.deepEqual(serverAccepted(err({ code: "rate_limited", retry_after_ms: 100 })), {
    code: "ERR",
    id: 3,
    error: "rate_limited",
    message: "m",
    retry_after_ms: 100,
  });
  const other = serverAccepted(err({ code: "too_large", retry_after_ms: 100 }));
  assert.equal("retry_after_ms" in other, false);
});

Deno.test("parseServerMessage() checks every DLV field", () => {
  const good = { msg: "m-1", from: "alice", to: "bob", text: "hi", ts: 1 };
  const dlv = (over: Record<string, unknown>) =>
    parseServerMessage(raw("DLV", { ...good, ...over }), () => undefined);
  serverAccepted(dlv({}));
  serverAccepted(dlv({ text: "x".repeat(16384), msg: "m".repeat(64) }));
  for (
    const over of [
      { text: "x".repeat(16385) },
      { text: "" },
      { text: 5 },
      { msg: "" },
      { msg: "m".repeat(65) },
      { from: "Alice" },
      { to: undefined },
      { ts: -1 },
      { ts: "1" },
    ]
  ) serverRefused(dlv(over));
  serverRefused(
    parseServerMessage(
      bytes(`DLV{"msg":"m","from":"a","to":"b","text":"\\ud800","ts":1}`),
      () => undefined,
    ),
  );
});

Deno.test("parseServerMessage() accepts the four BYE reasons only", () => {
  for (const reason of ["bye", "SHUTDOWN", "", 1, undefined]) {
    serverRefused(parseServerMessage(raw("BYE", { reason }), () => undefined));
  }
});

Deno.test("parseServerMessage() refuses client codes, unknown codes and broken envelopes", () => {
  for (
    const m of [
      ALICE_LOGIN,
      `PNG{"id":1}`,
      `XYZ{}`,
      `ack{"id":1}`,
      "",
      "AC",
      "ACK",
      "ACK[]",
      `ACK{"id":1`,
    ]
  ) {
    serverRefused(parseServerMessage(bytes(m), () => "PNG"));
  }
  serverRefused(
    parseServerMessage(new Uint8Array([0x42, 0x59, 0x45, 0x7b, 0x80, 0x7d]), () => undefined),
  );
});

Deno.test("isUsername() follows the §4.3 pattern and refuses non-strings", () => {
  assert.equal(isUsername("a.b-c_d"), true);
  assert.equal(isUsername("a".repeat(33)), false);
  assert.equal(isUsername(5), false);
});

// ─── Fuzzing ─────────────────────────────────────────────────────────────────────────────────

function mutate(prng: Prng, input: Uint8Array): Uint8Array {
  const out = [...input];
  for (let n = prng.range(1, 4); n > 0; n--) {
    const at = prng.int(out.length + 1);
    switch (prng.int(5)) {
      case 0:
        out[at] = prng.int(256);
        break;
      case 1:
        out.splice(at, 1);
        break;
      case 2:
        out.splice(
          at,
          0,
          prng.pick([0x22, 0x5c, 0x7b, 0x7d, 0x3a, 0x2c, 0x30, 0x2d, 0x65, 0x80, 0xff]),
        );
        break;
      case 3:
        out.length = at;
        break;
      default:
        out[at] = (out[at] ?? 0) ^ (1 << prng.int(8));
    }
  }
  return new Uint8Array(out);
}

function checkClientParse(r: ClientParse): void {
  if (r.ok) return;
  assert.equal(r.error.code, "ERR");
  assert.ok(ERROR_CODES.includes(r.error.error));
  assert.ok(Number.isInteger(r.error.id) && r.error.id >= 0 && r.error.id <= MAX_REQUEST_ID);
  assert.equal(typeof r.error.message, "string");
  // A refusal must itself encode and read back as a valid ERR on the client side.
  const back = parseServerMessage(encodeMessage(r.error), () => "PNG");
  assert.ok(back.ok, back.ok ? "" : back.reason);
}

const SEEDS_OF_VALID = [
  ...CLIENT_MESSAGES.map((m) => encodeMessage(m)),
  ...SERVER_MESSAGES.map(([m]) => encodeMessage(m)),
];

Deno.test("parseClientMessage() never throws on random bytes or mutated valid messages", () => {
  const prng = new Prng(0x5eed);
  for (let i = 0; i < 20_000; i++) {
    const input = i % 4 === 0 ? prng.bytes(prng.int(64)) : mutate(prng, prng.pick(SEEDS_OF_VALID));
    checkClientParse(parseClientMessage(input));
  }
});

Deno.test("parseServerMessage() never throws on random bytes or mutated valid messages", () => {
  const prng = new Prng(0xfeed);
  // Ids 1..8 wait on the request codes in turn, so mutated ACKs meet every result shape.
  const pending = (id: number) => (id <= 8 ? REQUEST_CODES[id - 1] : undefined);
  for (let i = 0; i < 20_000; i++) {
    const input = i % 4 === 0 ? prng.bytes(prng.int(64)) : mutate(prng, prng.pick(SEEDS_OF_VALID));
    const r = parseServerMessage(input, pending);
    assert.equal(typeof r.ok, "boolean");
  }
});

Deno.test("parsers survive deep nesting, huge numbers and megabyte strings", () => {
  const inputs = [
    bytes("MSG" + "[".repeat(500_000)),
    bytes(`MSG{"id":1,"to":"bob","text":${"[".repeat(200_000)}${"]".repeat(200_000)}}`),
    bytes(`PNG{"id":1e400}`),
    bytes(`PNG{"id":-0}`),
    bytes(`MSG{"id":1,"to":"bob","text":"${"x".repeat(1 << 20)}"}`),
  ];
  for (const input of inputs) {
    checkClientParse(parseClientMessage(input));
    assert.equal(typeof parseServerMessage(input, () => "MSG").ok, "boolean");
  }
});
