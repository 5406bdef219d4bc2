// The client's Connection against a scripted server over an in-memory pipe: the request table,
// pushes (shown once, DAK'd every time), BYE, losing the connection and coming back.
import assert from "node:assert/strict";
import { encodeMessage } from "../_wire.ts";
import {
  backoffDelay,
  Connection,
  ConnectionError,
  MAX_QUEUED_MESSAGES,
  type PinResult,
  RECONNECT_BASE_MS,
  RECONNECT_MAX_MS,
} from "../../client/connection.ts";
import type { ClientEvent, Endpoint } from "../../client/client_events.ts";
import {
  type CryptoEngine,
  generateIdentity,
  KEX_GROUPS,
  type ServerIdentity,
} from "../../crypto/mod.ts";
import { liveNativeHandles } from "../../crypto/native.ts";
import type { Transport } from "../../protocol/channel.ts";
import {
  type ClientMessage,
  parseClientMessage,
  type Request,
  type RequestCode,
  type ServerMessage,
} from "../../protocol/messages.ts";
import { clientHandshake, type SecureSession, serverHandshake } from "../../protocol/session.ts";
import { NATIVE_SKIPPED, nativeCrypto, portableCrypto } from "../_engines.ts";
import { pipe } from "../_pipe.ts";
import { testIdentityOn } from "../_vectors.ts";

/** The server's end of one connection: reads parsed client messages, sends server messages. */
class ScriptedServer {
  constructor(readonly session: SecureSession, readonly transport: Transport) {}

  async next(): Promise<ClientMessage> {
    const plaintext = await this.session.receive();
    assert.ok(plaintext !== null, "the client is still there");
    const parsed = parseClientMessage(plaintext);
    assert.ok(parsed.ok, "the client sends well-formed messages");
    return parsed.value;
  }

  /** The next message, which must be a `code` request. */
  async request<C extends RequestCode>(code: C): Promise<Extract<Request, { code: C }>> {
    const message = await this.next();
    assert.equal(message.code, code);
    return message as Extract<Request, { code: C }>;
  }

  send(message: ServerMessage): void {
    this.session.send(encodeMessage(message));
  }

  /** Sends raw plaintext, as a broken server might. */
  sendRaw(text: string): void {
    this.session.send(new TextEncoder().encode(text));
  }
}

/** What a test changes in setup(); each has a default that lets every connection through. */
interface SetupOptions {
  /** The pin check (a match by default); `automatic` as the Connection passes it. */
  pin?: (endpoint: Endpoint, automatic: boolean) => Promise<PinResult>;
  observe?: (event: ClientEvent) => void;
  ping?: { intervalMs: number; timeoutMs: number };
  /** The key of the n-th dial's server (the test identity when undefined). */
  identityOf?: (dial: number) => ServerIdentity | undefined;
  /** Dials refused (the endpoint, and how many dials were made before). */
  refuseDial?: (dial: number, endpoint: Endpoint) => boolean;
  engine?: CryptoEngine;
  servers?: readonly Endpoint[];
}

/**
 * A Connection whose every dial opens a pipe to a new ScriptedServer. `event()` waits for the next
 * event that satisfies a test (events before it are passed over); `server(n)` for the n-th dial
 * that was let through; `dialled` lists every dial's endpoint, refused or not.
 */
function setup(options: SetupOptions = {}) {
  const {
    pin = () => Promise.resolve({ pin: "match", previous: [], knownHosts: "" }),
    observe = () => {},
    ping,
    identityOf = () => undefined,
    refuseDial = () => false,
    engine = portableCrypto,
  } = options;
  const events: ClientEvent[] = [];
  const dialled: Endpoint[] = [];
  const servers: Promise<ScriptedServer>[] = [];
  const waiters: (() => void)[] = [];
  const wakeAll = () => {
    for (const wake of waiters.splice(0)) wake();
  };
  let cursor = 0;
  const connection = new Connection({
    servers: options.servers ?? [{ host: "test", port: 1 }],
    group: KEX_GROUPS[0]!,
    crypto: engine,
    events: (event) => {
      events.push(event);
      observe(event);
      wakeAll();
    },
    pin: (endpoint, _fingerprint, automatic) => pin(endpoint, automatic),
    random: () => 0,
    pingIntervalMs: ping?.intervalMs,
    pingTimeoutMs: ping?.timeoutMs,
    dial: (endpoint) => {
      dialled.push(endpoint);
      if (refuseDial(servers.length, endpoint)) return Promise.reject(new Error("refused"));
      const [client, server] = pipe();
      servers.push(
        serverHandshake(server, {
          identity: identityOf(servers.length) ?? testIdentityOn(engine),
          crypto: engine,
        }).then((r) => new ScriptedServer(r!.session, server)),
      );
      wakeAll();
      return Promise.resolve(client);
    },
  });
  const changed = () => new Promise<void>((resolve) => waiters.push(resolve));
  async function event(test: (e: ClientEvent) => boolean): Promise<ClientEvent> {
    while (true) {
      for (; cursor < events.length; cursor++) {
        if (test(events[cursor]!)) return events[cursor++]!;
      }
      await changed();
    }
  }
  async function server(n: number): Promise<ScriptedServer> {
    while (servers.length <= n) await changed();
    return await servers[n]!;
  }
  return { connection, events, server, event, dialled };
}

/** Opens the connection and logs in as alice on the first scripted server, which it returns. */
async function openLoggedIn(t: ReturnType<typeof setup>): Promise<ScriptedServer> {
  await t.connection.open();
  const server = await t.server(0);
  const login = t.connection.login("alice", "password1");
  const request = await server.request("LGN");
  server.send({ code: "ACK", id: request.id, request: "LGN", user: "alice", queued: 0 });
  await login;
  return server;
}

Deno.test("responses are matched to requests by id, whatever their order", async () => {
  const { connection, server: nth } = setup();
  await connection.open();
  const server = await nth(0);
  const login = connection.login("alice", "password1");
  const users = connection.request({ code: "GUL" });
  const first = await server.request("LGN");
  const second = await server.request("GUL");
  server.send({ code: "ACK", id: second.id, request: "GUL", users: [] });
  server.send({ code: "ACK", id: first.id, request: "LGN", user: "alice", queued: 0 });
  assert.deepEqual(await users, { code: "ACK", id: second.id, request: "GUL", users: [] });
  const ack = await login;
  assert.equal(ack.code === "ACK" && ack.request, "LGN");
  assert.equal(connection.user, "alice");
  await connection.close();
});

Deno.test("a pushed message is shown once, then acknowledged with DAK, even when it comes again", async () => {
  // Records sealed when each message is shown: its DAK must come after, as a later record.
  const sealedWhenShown: number[] = [];
  const { connection, server: nth, events } = setup({
    observe: (event) => {
      if (event.type === "message") sealedWhenShown.push(connection.records!.sent);
    },
  });
  await connection.open();
  const server = await nth(0);
  const deliver: ServerMessage = {
    code: "DLV",
    msg: "m1",
    from: "bob",
    to: "alice",
    text: "hi",
    ts: 1,
  };
  server.send(deliver);
  assert.deepEqual(await server.next(), { code: "DAK", msg: "m1" });
  assert.deepEqual(sealedWhenShown, [0], "shown before its DAK, the first record, was sealed");
  assert.equal(connection.records!.sent, 1);
  server.send(deliver);
  assert.deepEqual(await server.next(), { code: "DAK", msg: "m1" }, "a duplicate is DAK'd too");
  server.send({ ...deliver, msg: "m2", text: "again" });
  assert.deepEqual(await server.next(), { code: "DAK", msg: "m2" });
  const shown = events.filter((e) => e.type === "message");
  assert.deepEqual(shown.map((e) => e.type === "message" && e.text), ["hi", "again"]);
  assert.equal(connection.messagesReceived, 2);
  await connection.close();
});

Deno.test("a malformed server message closes the connection, which then reconnects and logs in again", async () => {
  const t = setup();
  const { connection, server: nth, event } = t;
  const server = await openLoggedIn(t);

  server.sendRaw('ACK{"id":999}');
  const lost = await event((e) => e.type === "disconnected");
  assert.ok(lost.type === "disconnected" && lost.reconnect);
  assert.match(
    lost.type === "disconnected" ? lost.reason : "",
    /malformed message \(ACK for id 999/,
  );
  await event((e) => e.type === "reconnecting");

  const again = await nth(1);
  const relogin = await again.request("LGN");
  assert.deepEqual(
    [relogin.user, relogin.password],
    ["alice", "password1"],
    "the same credentials, kept in memory",
  );
  again.send({ code: "ACK", id: relogin.id, request: "LGN", user: "alice", queued: 0 });
  await event((e) => e.type === "ack" && e.request === "LGN" && e.relogin);
  assert.equal(connection.state, "open");
  await connection.close();
});

Deno.test("after BYE logged_in_elsewhere the client reconnects but does not log in again", async () => {
  const t = setup();
  const { connection, server: nth, event } = t;
  const server = await openLoggedIn(t);

  server.send({ code: "BYE", reason: "logged_in_elsewhere" });
  await event((e) => e.type === "bye");
  server.transport.close();
  const lost = await event((e) => e.type === "disconnected");
  assert.match(lost.type === "disconnected" ? lost.reason : "", /logged_in_elsewhere/);
  assert.equal(connection.user, undefined, "the credentials are forgotten");
  await event((e) => e.type === "connected");
  const again = await nth(1);
  // The first thing on the new connection is the client's own request, not a login.
  const users = connection.request({ code: "GUL" });
  assert.equal((await again.next()).code, "GUL");
  again.transport.close();
  await assert.rejects(users, (err: ConnectionError) => err.code === "connection_lost");
  await connection.close();
});

Deno.test("an open connection sends PNG keep-alives and reports nothing when they are answered", async () => {
  const { connection, server: nth, events } = setup({ ping: { intervalMs: 10, timeoutMs: 1000 } });
  await connection.open();
  const server = await nth(0);
  for (let i = 0; i < 2; i++) {
    const ping = await server.request("PNG");
    server.send({ code: "ACK", id: ping.id, request: "PNG" });
  }
  await connection.close();
  assert.deepEqual(events.map((e) => e.type), ["connecting", "connected", "disconnected"]);
});

Deno.test("an unanswered keep-alive means the connection is dead: it is dropped and redialled", async () => {
  const { connection, server: nth, event } = setup({ ping: { intervalMs: 10, timeoutMs: 50 } });
  await connection.open();
  const server = await nth(0);
  await server.request("PNG");
  const lost = await event((e) => e.type === "disconnected");
  assert.ok(lost.type === "disconnected" && lost.reconnect);
  assert.equal(lost.reason, "no answer to a keep-alive within 0.05 s");
  await event((e) => e.type === "connected");
  await connection.close();
});

Deno.test("a refused pin fails open() with key_mismatch and sends no record", async () => {
  const { connection, server: nth } = setup({
    pin: () => Promise.reject(new ConnectionError("key_mismatch", "refused")),
  });
  await assert.rejects(connection.open(), (err: ConnectionError) => err.code === "key_mismatch");
  const server = await nth(0);
  assert.equal(await server.session.receive(), null, "the client closed without a record");
  assert.equal(connection.state, "idle");
});

Deno.test("a reconnect to a server with another key than the session's is refused loudly, and the password is not sent", async () => {
  const other = await generateIdentity(portableCrypto);
  // The pin check says "first contact", as known_hosts does once the pin is gone from it.
  const t = setup({
    pin: () => Promise.resolve({ pin: "first_contact", previous: [], knownHosts: "" }),
    identityOf: (dial) => dial === 0 ? undefined : other,
  });
  const { connection, server: nth, event } = t;
  const first = await openLoggedIn(t);
  first.transport.close();

  const impostor = await nth(1);
  const received = await impostor.session.receive();
  assert.equal(received, null, "not one record, so no password, was sent to the new key");
  const warning = await event((e) => e.type === "key_mismatch");
  assert.deepEqual(warning, {
    type: "key_mismatch",
    host: "test",
    port: 1,
    source: "session",
    pinned: [testIdentityOn(portableCrypto).fingerprint],
    pinned_for: [],
    presented: other.fingerprint,
    accepted: false,
    known_hosts: null,
  });
  const given = await event((e) => e.type === "disconnected");
  assert.ok(given.type === "disconnected" && !given.reconnect, "no further attempts");
  assert.equal(connection.state, "idle");
  assert.equal(connection.user, undefined, "the credentials are forgotten");
});

Deno.test("reconnect() logs in again on the session's key, and not on a key accepted in its place", async () => {
  const other = await generateIdentity(portableCrypto);
  const t = setup({ identityOf: (dial) => dial === 2 ? other : undefined });
  const { connection, server: nth, event } = t;
  await openLoggedIn(t);

  const again = connection.reconnect();
  const second = await nth(1);
  const relogin = await second.request("LGN");
  assert.deepEqual([relogin.user, relogin.password], ["alice", "password1"]);
  second.send({ code: "ACK", id: relogin.id, request: "LGN", user: "alice", queued: 0 });
  await again;
  await event((e) => e.type === "ack" && e.request === "LGN" && e.relogin);

  // The pin check lets another key through, as when the user accepted it: a new session.
  await connection.reconnect();
  const third = await nth(2);
  const note = await event((e) => e.type === "info");
  assert.match(note.type === "info" ? note.message : "", /^not logged in again as alice/);
  assert.equal(connection.user, undefined);
  const users = connection.request({ code: "GUL" });
  assert.equal((await third.next()).code, "GUL", "the first record is not a login");
  third.transport.close();
  await assert.rejects(users);
  await connection.close();
});

Deno.test("while reconnecting, messages wait for the re-login, at most MAX_QUEUED_MESSAGES of them", async () => {
  const t = setup({ refuseDial: (dial) => dial > 0 });
  const { connection, event } = t;
  const server = await openLoggedIn(t);
  server.transport.close();
  await event((e) => e.type === "reconnecting");
  assert.ok(connection.queues);
  const waiting = Array.from(
    { length: MAX_QUEUED_MESSAGES },
    (_, i) => connection.sendMessage("bob", { text: `m${i}` }),
  );
  assert.equal(connection.queuedMessages, MAX_QUEUED_MESSAGES);
  await assert.rejects(
    connection.sendMessage("bob", { text: "one too many" }),
    (e) => e instanceof ConnectionError && e.code === "queue_full",
  );
  await connection.close();
  for (const message of waiting) {
    await assert.rejects(message, /^ConnectionError: the connection did not come back/);
  }
  assert.equal(connection.queuedMessages, 0);
});

Deno.test("a request without a connection fails at once with not_connected", async () => {
  const { connection } = setup();
  await assert.rejects(
    connection.request({ code: "GUL" }),
    (err: ConnectionError) => err.code === "not_connected",
  );
});

Deno.test("backoffDelay() doubles per attempt up to the cap, jittered within its upper half", () => {
  assert.equal(backoffDelay(1, () => 0), RECONNECT_BASE_MS / 2);
  assert.equal(backoffDelay(1, () => 0.999999), RECONNECT_BASE_MS);
  assert.equal(backoffDelay(3, () => 0), RECONNECT_BASE_MS * 2);
  assert.equal(backoffDelay(40, () => 0), RECONNECT_MAX_MS / 2);
  assert.equal(backoffDelay(40, () => 0.999999), RECONNECT_MAX_MS);
});

Deno.test("a MSG whose connection drops before its ACK is sent again with the same cid after re-login", async () => {
  const t = setup();
  const { connection, server: nth, event } = t;
  const first = await openLoggedIn(t);

  const sending = connection.sendMessage("bob", { text: "hello bob" });
  const msg = await first.request("MSG");
  assert.ok(msg.cid !== undefined && msg.cid.length > 0, "every MSG carries a cid");
  first.transport.close(); // gone before the ACK

  const second = await nth(1);
  const relogin = await second.request("LGN");
  second.send({ code: "ACK", id: relogin.id, request: "LGN", user: "alice", queued: 0 });
  // If sendMessage gave up instead of resending, fail rather than wait for a MSG forever.
  const again = await Promise.race([
    second.request("MSG"),
    sending.then((r) => {
      throw new Error(`sendMessage settled without resending: ${JSON.stringify(r)}`);
    }),
  ]);
  assert.deepEqual([again.to, again.text, again.cid], ["bob", "hello bob", msg.cid]);
  second.send({ code: "ACK", id: again.id, request: "MSG", msg: "m-1", ts: 1 });
  const response = await sending;
  assert.ok(response.code === "ACK" && response.request === "MSG" && response.msg === "m-1");
  await event((e) => e.type === "ack" && e.request === "LGN" && e.relogin);
  await connection.close();
});

Deno.test("a MSG lost with the connection fails when no re-login can follow (never logged in)", async () => {
  const { connection, server: nth } = setup();
  await connection.open();
  const first = await nth(0);
  const sending = connection.sendMessage("bob", { text: "hello bob" });
  await first.request("MSG");
  first.transport.close();
  await assert.rejects(
    sending,
    (e) => e instanceof ConnectionError && e.code === "connection_lost",
  );
  await connection.close();
});

Deno.test({
  name: "a closed connection frees its native cipher contexts",
  ignore: NATIVE_SKIPPED,
  fn: async () => {
    const engine = nativeCrypto();
    // A first handshake leaves the identity's signing key and the parsed server key in
    // OpenSSL for the process's life; counting starts after it.
    const [a, b] = pipe();
    const [warmClient, warmServer] = await Promise.all([
      clientHandshake(a, { group: KEX_GROUPS[0]!, crypto: engine }),
      serverHandshake(b, { identity: testIdentityOn(engine), crypto: engine }),
    ]);
    warmClient.session.dispose();
    warmServer!.session.dispose();
    a.close();
    const before = liveNativeHandles();
    const t = setup({ engine });
    const server = await openLoggedIn(t);
    // LGN sealed and opened, its ACK sealed and opened: two contexts on each side.
    assert.equal(liveNativeHandles(), before + 4);
    await t.connection.close();
    server.session.dispose();
    assert.equal(liveNativeHandles(), before);
  },
});

const A: Endpoint = { host: "a", port: 1 };
const B: Endpoint = { host: "b", port: 2 };
const C: Endpoint = { host: "c", port: 3 };

Deno.test("with several servers, one that cannot be reached is passed for the next, each try named", async () => {
  const t = setup({ servers: [A, B, C], refuseDial: (_, endpoint) => endpoint === A });
  await t.connection.open();
  assert.deepEqual(t.dialled, [A, B], "the third is not dialled once the second answers");
  const tries = t.events.filter((e) => e.type === "connecting");
  assert.deepEqual(
    tries.map((e) => e.type === "connecting" && [e.host, e.server, e.servers, e.last_error]),
    [["a", 1, 3, undefined], ["b", 2, 3, "cannot connect to a:1: refused"]],
  );
  const connected = await t.event((e) => e.type === "connected");
  assert.equal(connected.type === "connected" && connected.host, "b");
  assert.equal(t.connection.endpoint, B);
  await t.connection.close();
});

Deno.test("a lost server is tried last: the reconnect round starts at the next one and logs in again there", async () => {
  const t = setup({ servers: [A, B] });
  const { connection, server: nth, event } = t;
  const first = await openLoggedIn(t);
  first.transport.close();

  const round = await event((e) => e.type === "reconnecting");
  assert.ok(round.type === "reconnecting");
  assert.deepEqual([round.host, round.attempt, round.servers], ["b", 1, 2]);
  const second = await nth(1);
  assert.deepEqual(t.dialled, [A, B]);
  const relogin = await second.request("LGN");
  assert.deepEqual([relogin.user, relogin.password], ["alice", "password1"]);
  second.send({ code: "ACK", id: relogin.id, request: "LGN", user: "alice", queued: 0 });
  await event((e) => e.type === "ack" && e.request === "LGN" && e.relogin);
  assert.equal(connection.endpoint, B);

  // The session carries on there; losing that one goes back to the first.
  const users = connection.request({ code: "GUL" });
  const gul = await second.request("GUL");
  second.send({ code: "ACK", id: gul.id, request: "GUL", users: [] });
  assert.equal((await users).code, "ACK");
  second.transport.close();
  const next = await event((e) => e.type === "reconnecting");
  assert.equal(next.type === "reconnecting" && next.host, "a");
  await connection.close();
});

Deno.test("when every server fails, the next round waits twice as long, naming each failure", async () => {
  const t = setup({ servers: [A, B], refuseDial: (dial) => dial > 0 });
  const { connection, event } = t;
  const first = await openLoggedIn(t);
  first.transport.close();
  const one = await event((e) => e.type === "reconnecting");
  const two = await event((e) => e.type === "reconnecting");
  assert.ok(one.type === "reconnecting" && two.type === "reconnecting");
  assert.deepEqual([one.attempt, one.delay_ms, one.last_error], [
    1,
    RECONNECT_BASE_MS / 2,
    undefined,
  ]);
  assert.deepEqual([two.attempt, two.delay_ms], [2, RECONNECT_BASE_MS]);
  assert.equal(
    two.last_error,
    "none of the 2 servers could be used: cannot connect to b:2: refused; " +
      "cannot connect to a:1: refused",
  );
  assert.deepEqual(t.dialled, [A, B, A]);
  await connection.close();
});

Deno.test("a refused key ends the round at once: the next server is not tried", async () => {
  const t = setup({
    servers: [A, B, C],
    refuseDial: (_, endpoint) => endpoint === A,
    pin: (endpoint) =>
      endpoint === B
        ? Promise.reject(new ConnectionError("key_mismatch", "refused"))
        : Promise.resolve({ pin: "match", previous: [], knownHosts: "" }),
  });
  await assert.rejects(t.connection.open(), (e: ConnectionError) => e.code === "key_mismatch");
  assert.deepEqual(t.dialled, [A, B], "C, which would be let through, is never dialled");
  assert.equal(t.connection.state, "idle");
});

Deno.test("a reconnect to a server of the list with another key than the session's refuses, and stops there", async () => {
  const other = await generateIdentity(portableCrypto);
  const t = setup({
    servers: [A, B, C],
    pin: () => Promise.resolve({ pin: "first_contact", previous: [], knownHosts: "" }),
    identityOf: (dial) => dial === 1 ? other : undefined,
  });
  const first = await openLoggedIn(t);
  first.transport.close();
  const impostor = await t.server(1);
  assert.equal(await impostor.session.receive(), null, "no record, so no password, went to it");
  const warning = await t.event((e) => e.type === "key_mismatch");
  assert.ok(warning.type === "key_mismatch");
  assert.deepEqual([warning.host, warning.source, warning.presented], [
    "b",
    "session",
    other.fingerprint,
  ]);
  const given = await t.event((e) => e.type === "disconnected");
  assert.ok(given.type === "disconnected" && !given.reconnect);
  assert.deepEqual(t.dialled, [A, B], "C, which has the session's key, is not tried either");
  assert.equal(t.connection.user, undefined);
});

Deno.test("request ids go on from one connection to the next, as the wire has always shown them", async () => {
  const t = setup();
  const { connection, server: nth } = t;
  const first = await openLoggedIn(t);
  const gul = connection.request({ code: "GUL" });
  const asked = await first.request("GUL");
  assert.equal(asked.id, 2, "the login was 1");
  first.send({ code: "ACK", id: asked.id, request: "GUL", users: [] });
  await gul;
  first.transport.close();
  const second = await nth(1);
  const relogin = await second.request("LGN");
  assert.equal(relogin.id, 3);
  second.send({ code: "ACK", id: relogin.id, request: "LGN", user: "alice", queued: 0 });
  await t.event((e) => e.type === "ack" && e.request === "LGN" && e.relogin);
  await connection.close();
});
