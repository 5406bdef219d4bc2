// What people see: messages and errors with everything received escaped, the loud pin warning,
// and the educational trace (which shows key ids, never keys).
import assert from "node:assert/strict";
import { formatTime, jsonLine, renderEvent } from "../../client/display.ts";
import type { ClientEvent } from "../../client/client_events.ts";
import { makeStyle } from "../../client/style.ts";
import {
  formatHandshakeTrace,
  formatRecordTrace,
  handshakeView,
  recordView,
} from "../../client/trace.ts";
import { KEX_GROUPS, toHex } from "../../crypto/mod.ts";
import type { HandshakeTrace } from "../../protocol/handshake.ts";
import { clientHandshake, type RecordTrace, serverHandshake } from "../../protocol/session.ts";
import { portableCrypto } from "../_engines.ts";
import { pipe } from "../_pipe.ts";
import { TERMINAL_CONTROL } from "./_harness.ts";
import { testIdentity } from "../_vectors.ts";

const plain = { style: makeStyle(false), me: "alice", now: Date.UTC(2030, 0, 1, 12) };
const colored = { ...plain, style: makeStyle(true) };
/** Our own SGR color sequences, the only escape sequences the display may write. */
// deno-lint-ignore no-control-regex -- matching the escape character is the point
const SGR = /\x1b\[[0-9;]*m/g;

function render(event: ClientEvent, context = plain): string[] {
  return renderEvent(event, context);
}

Deno.test("a received message shows time, sender and text, newlines as indented lines", () => {
  const ts = plain.now - 5_000;
  const lines = render({
    type: "message",
    msg: "m1",
    from: "bob",
    to: "alice",
    text: "first\n\x1b[2Jsecond",
    ts,
    sealed: false,
  });
  assert.deepEqual(lines, [
    `${formatTime(ts, plain.now)} [not sealed] bob: first`,
    "         │ \\x1b[2Jsecond",
  ]);
});

Deno.test("with colors on, no escape sequence of the peer's survives, and escapes are marked", () => {
  const hostile = "\x1b]0;title\x07 \u009b31m \x1b[31m";
  const events: ClientEvent[] = [
    {
      type: "message",
      msg: "m",
      from: "bob",
      to: "alice",
      text: hostile,
      ts: plain.now,
      sealed: true,
    },
    { type: "error", context: "LGN", code: "internal", message: hostile },
    { type: "disconnected", host: "h\x1b[1m", port: 1, reason: hostile, reconnect: true },
    { type: "info", message: hostile },
    { type: "warning", message: hostile },
  ];
  for (const event of events) {
    const text = render(event, colored).join("\n");
    assert.doesNotMatch(text.replace(SGR, ""), TERMINAL_CONTROL, event.type);
    assert.ok(text.includes("\x1b[7m\\x1b\x1b[27m"), "an escape is shown in reverse video");
  }
});

Deno.test("an error names what failed, the server's message escaped, and its code", () => {
  assert.deepEqual(
    render({
      type: "error",
      context: "MSG",
      code: "rate_limited",
      message: "slow down\x07",
      retry_after_ms: 1500,
    }),
    ["✗ not sent: slow down\\x07 (rate_limited; retry in 1.5 s)"],
  );
  assert.deepEqual(
    render({ type: "error", context: "command", code: "usage", message: "usage: /users" }),
    ["✗ usage: /users"],
  );
});

Deno.test("first contact shows the key and says to check it against the server's start-up line", () => {
  const fingerprint = "SHA256:" + "A".repeat(43);
  assert.deepEqual(
    render({
      type: "connected",
      host: "127.0.0.1",
      port: 5002,
      group: "ffdhe2048",
      fingerprint,
      pin: "first_contact",
      previous: [],
      known_hosts: "/k",
    }),
    [
      "· connected to 127.0.0.1:5002 (ffdhe2048)",
      `· first contact: the server's key is ${fingerprint}`,
      "· check it against the line `server key SHA256:…` the server printed at start-up " +
      "(ask its operator); if they differ, /disconnect and delete the pin",
      "· pinned in /k; later connections must show this key",
    ],
  );
});

const PINNED = "SHA256:" + "A".repeat(43);
const PRESENTED = "SHA256:" + "B".repeat(42) + "A";

/** The text of a refused key (PRESENTED, where 127.0.0.1:5002 is pinned to PINNED), `fields` apart. */
function mismatchText(fields: Partial<Extract<ClientEvent, { type: "key_mismatch" }>>): string {
  return render({
    type: "key_mismatch",
    host: "127.0.0.1",
    port: 5002,
    source: "known_hosts",
    pinned: [PINNED],
    pinned_for: ["127.0.0.1:5002"],
    presented: PRESENTED,
    accepted: false,
    known_hosts: "/k",
    ...fields,
  }).join("\n");
}

Deno.test("a changed server key is a loud warning naming both fingerprints", () => {
  const text = mismatchText({});
  assert.match(text, /WARNING: THE KEY OF SERVER 127\.0\.0\.1:5002 HAS CHANGED/);
  assert.match(text, new RegExp(`pinned: +${PINNED}  \\(/k\\)`));
  assert.match(text, new RegExp(`presented: +${PRESENTED}`));
  assert.match(
    text,
    new RegExp(`Connection refused.*/accept-key ${PRESENTED}\n.*--accept-key`, "s"),
  );
});

Deno.test("a reconnect to a key other than the session's is a loud warning that no password went", () => {
  const text = mismatchText({ source: "session", pinned_for: [], known_hosts: null });
  assert.match(
    text,
    /THE KEY OF SERVER 127\.0\.0\.1:5002 HAS CHANGED SINCE THIS SESSION CONNECTED/,
  );
  assert.match(text, new RegExp(`this session: ${PINNED}\n   presented: +${PRESENTED}`));
  assert.match(text, /Not reconnecting, and your password was not sent/);
});

Deno.test("several servers: each try, a key pinned through another server, a round over all", () => {
  const key = "SHA256:" + "A".repeat(43);
  const where = { host: "b", port: 5002 };
  assert.deepEqual(
    render({
      type: "connecting",
      ...where,
      group: "x25519",
      server: 2,
      servers: 3,
      last_error: "cannot connect to a:5002: refused",
    }),
    ["· trying b:5002 (2/3, x25519)… — last try: cannot connect to a:5002: refused"],
  );
  assert.deepEqual(
    render({
      type: "connected",
      ...where,
      group: "x25519",
      fingerprint: key,
      pin: "sibling",
      previous: [],
      sibling: "a:5002",
      known_hosts: "/k",
    }),
    [
      `· connected to b:5002 (x25519) · server key ${key} matches the pin`,
      "· of a:5002, a server of the same list (they share one key): now pinned for b:5002 too",
    ],
  );
  assert.deepEqual(
    render({ type: "reconnecting", ...where, attempt: 2, delay_ms: 800, servers: 3 }),
    ["· reconnecting to the 3 servers, from b:5002, in 0.8 s (attempt 2)"],
  );
});

Deno.test("an IPv6 server is named in brackets, so that its port stands apart", () => {
  const where = { host: "::1", port: 5002 };
  assert.deepEqual(
    render({ type: "connecting", ...where, group: "x25519", server: 1, servers: 1 }),
    ["· connecting to [::1]:5002 (x25519)…"],
  );
  assert.deepEqual(
    render({ type: "reconnecting", ...where, attempt: 1, delay_ms: 300, servers: 2 }),
    ["· reconnecting to the 2 servers, from [::1]:5002, in 0.3 s (attempt 1)"],
  );
});

Deno.test("a server that shows another key than its list's is a loud warning naming where the pin is", () => {
  const text = mismatchText({ host: "b", pinned_for: ["a:5002"] });
  assert.match(text, /WARNING: SERVER b:5002 DOES NOT SHOW THE KEY OF ITS LIST!/);
  assert.match(text, new RegExp(`pinned: +${PINNED}  \\(for a:5002, /k\\)`));
  assert.match(text, /b:5002 has no pin of its own, so it must show theirs/);
  assert.match(text, new RegExp(`Connection refused.*/accept-key ${PRESENTED}`, "s"));
  // Its own pin differing too: the usual warning, naming every server the pins are for.
  const both = mismatchText({ host: "b", pinned_for: ["b:5002", "a:5002"] });
  assert.match(both, /THE KEY OF SERVER b:5002 HAS CHANGED!/);
  assert.match(both, new RegExp(`pinned: +${PINNED}  \\(for b:5002, a:5002, /k\\)`));
});

Deno.test("the user list marks who is online and who has no key, and says when more exist", () => {
  const users = [
    { user: "alice", online: true, fingerprint: "SHA256:" + "A".repeat(43) },
    { user: "bob", online: false },
  ];
  assert.deepEqual(
    render({ type: "ack", request: "GUL", id: 3, users, more: false }),
    ["users (1 online of 2): ● alice  ○ bob (no key)"],
  );
  assert.deepEqual(
    render({ type: "ack", request: "GUL", id: 3, users, more: true }),
    ["users (1 online of 2, and more: /users shows the first 2): ● alice  ○ bob (no key)"],
  );
});

Deno.test("a sealed message not shown says why, in words, its sender escaped: not opened or held", () => {
  const ts = plain.now - 3_600_000;
  const time = formatTime(ts, plain.now);
  assert.deepEqual(
    render({
      type: "message_failed",
      msg: "m1",
      from: "bob\x1b",
      to: "alice",
      ts,
      check: "signature",
      reason: "bad\x07",
    }),
    [
      `${time} [NOT OPENED] bob\\x1b: a sealed message failed the signature check (bad\\x07); ` +
      "it is not shown",
    ],
  );
  assert.deepEqual(
    render({ type: "message_held", msg: "m2", from: "bob", ts, fingerprint: "SHA256:x" }),
    [
      `${time} [HELD] bob: a sealed message signed with the key SHA256:x, which you have not ` +
      "accepted; kept unread until /trust bob",
    ],
  );
});

Deno.test("formatTime() shows the time today and the date on other days", () => {
  const now = Date.now();
  assert.match(formatTime(now, now), /^\d\d:\d\d:\d\d$/);
  assert.match(formatTime(now - 3 * 86_400_000, now), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
});

Deno.test("jsonLine() is one line with the event's type first", () => {
  const line = jsonLine({ type: "bye", reason: "shutdown" });
  assert.equal(line, '{"event":"bye","reason":"shutdown"}');
});

Deno.test("the trace shows every handshake step and record, with key ids but never a key", async () => {
  const handshake: HandshakeTrace[] = [];
  const records: RecordTrace[] = [];
  const [a, b] = pipe();
  const [client] = await Promise.all([
    clientHandshake(a, {
      group: KEX_GROUPS[0]!,
      crypto: portableCrypto,
      trace: (e) => handshake.push(e),
      recordTrace: (e) => records.push(e),
    }),
    serverHandshake(b, { identity: testIdentity, crypto: portableCrypto }),
  ]);
  client.session.send(new TextEncoder().encode('PNG{"id":1}'));
  await client.session.writer.drained();
  a.close();

  const style = makeStyle(false);
  const lines = handshake.flatMap((e) => formatHandshakeTrace(handshakeView(e), style, "h:1"));
  lines.push(...records.map((e) => formatRecordTrace(recordView(e), style)));
  const text = lines.join("\n");
  assert.deepEqual(
    handshake.map((e) => e.step).sort(),
    [
      "client_hello",
      "keys",
      "server_hello",
      "server_key",
      "shared_secret",
      "signature",
      "transcript_hash",
    ],
  );
  assert.match(text, /ClientHello +294 bytes · group ffdhe2048 \(0x0100\)/);
  assert.match(text, /client_share +256 bytes {2}[0-9a-f]{2}( [0-9a-f]{2}){7} …/);
  assert.ok(text.includes(testIdentity.fingerprint));
  assert.match(text, /signature +RSA-PSS\/SHA-256 · 256 bytes · verified/);
  assert.ok(text.includes(toHex(client.result.transcriptHash).slice(0, 32)));
  assert.match(text, /client → server +enc [0-9a-f]{8} {2}mac [0-9a-f]{8}/);
  assert.match(
    text,
    /→ seq 0 +PNG +11 B plaintext ⇒ IV [0-9a-f]{32} \+ 16 B ciphertext \+ 32 B MAC = 64 B/,
  );
  const keys = client.result.keys;
  for (const key of [keys.send.enc, keys.send.mac, keys.receive.enc, keys.receive.mac]) {
    assert.ok(!text.includes(toHex(key).slice(0, 16)), "no key appears, not even in part");
  }
});
