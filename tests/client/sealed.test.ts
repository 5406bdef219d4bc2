// Sealed messages (§8) as users meet them: client/main.ts processes with their own config
// folders, against a real server process, with raw links (tools/link.ts) standing in for a
// server that misbehaves. Keys are 2048 bits here, to be quick.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fingerprintOfKid, fromBase64, toBase64 } from "../../crypto/mod.ts";
import { kidOf, seal } from "../../protocol/sealed.ts";
import type { ServerMessage } from "../../protocol/messages.ts";
import { accountDir } from "../../client/config.ts";
import { Keyring } from "../../client/keyring.ts";
import { TestClient as RawClient } from "../server/_harness.ts";
import { portableCrypto } from "../_engines.ts";
import { client, passwordOf, tempDir, type TestClient, TestServer } from "./_harness.ts";

const BITS = ["--rsa-bits", "2048"];

/** A --json client of `user` in its own folder, signed up there (its key made) and logged in. */
async function member(
  server: TestServer,
  root: string,
  user: string,
  ...args: string[]
): Promise<TestClient> {
  const c = client(server.port, join(root, user), "--json", ...BITS, ...args);
  await c.send(`/signup ${user}`, passwordOf(user), `/login ${user}`, passwordOf(user));
  await c.event("ack", { request: "SNU", user });
  await c.event("ack", { request: "LGN", user });
  return c;
}

/**
 * A fresh server with alice and bob, each signed up and logged in on a client of their own
 * (`aliceArgs` for hers); `root` holds their folders. Disposing stops all of it.
 */
async function aliceAndBob(...aliceArgs: string[]): Promise<
  { server: TestServer; root: string; alice: TestClient; bob: TestClient } & AsyncDisposable
> {
  const resources = new AsyncDisposableStack();
  try {
    const root = resources.use(await tempDir()).path;
    const server = resources.use(await TestServer.start(root));
    const alice = resources.use(await member(server, root, "alice", ...aliceArgs));
    const bob = resources.use(await member(server, root, "bob"));
    return { server, root, alice, bob, [Symbol.asyncDispose]: () => resources.disposeAsync() };
  } catch (err) {
    await resources.disposeAsync();
    throw err;
  }
}

/** A --json client of `user` in its folder, logged in (signed up before). */
async function again(
  server: TestServer,
  root: string,
  user: string,
  ...args: string[]
): Promise<TestClient> {
  const c = client(server.port, join(root, user), "--json", ...BITS, ...args);
  await c.send(`/login ${user}`, passwordOf(user));
  await c.event("ack", { request: "LGN", user });
  return c;
}

/** A raw link logged in as `user` (a test's stand-in for a misbehaving server or client). */
async function raw(
  port: number,
  user: string,
  key?: string,
  password = passwordOf(user),
): Promise<RawClient> {
  const c = await RawClient.connect(port);
  const snu = await c.request({ code: "SNU", user, password, ...(key ? { key } : {}) });
  assert.ok(snu.code === "ACK" || (snu.code === "ERR" && snu.error === "user_exists"));
  const lgn = await c.request({ code: "LGN", user, password });
  assert.equal(lgn.code, "ACK", JSON.stringify(lgn));
  return c;
}

/**
 * A relay to the server on `port`. On its `connection`th connection it closes both ends in
 * place of the server's `frame`th frame (the first is the ServerHello; 2, the answer to the
 * first request): that request was carried out, and its answer lost. The others are relayed
 * whole.
 */
function answerLosingRelay(
  port: number,
  { connection = 1, frame = 2 } = {},
): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const pumps: Promise<void>[] = [];
  const closeAll = (...which: Deno.Conn[]) => {
    for (const c of which) {
      if (!conns.delete(c)) continue;
      try {
        c.close();
      } catch {
        // Its readable closed it at the end of its stream.
      }
    }
  };
  const pump = async (from: Deno.Conn, to: Deno.Conn, cutAtFrame?: number) => {
    let pending = new Uint8Array(0);
    let frames = 0;
    try {
      for await (const chunk of from.readable) {
        pending = new Uint8Array([...pending, ...chunk]);
        while (pending.length >= 4) {
          const length = new DataView(pending.buffer).getUint32(0);
          if (pending.length < 4 + length) break;
          if (++frames === cutAtFrame) return;
          await to.write(pending.slice(0, 4 + length));
          pending = pending.slice(4 + length);
        }
      }
    } catch {
      // The other side went.
    } finally {
      closeAll(from, to);
    }
  };
  let accepted = 0;
  const serving = (async () => {
    for await (const inbound of listener) {
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.add(inbound).add(outbound);
      const cut = ++accepted === connection ? frame : undefined;
      pumps.push(pump(inbound, outbound), pump(outbound, inbound, cut));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving.catch(() => {});
      closeAll(...conns);
      await Promise.all(pumps);
    },
  };
}

/** The next `count` traces of sealing or opening (--json), skipping those of records. */
async function sealedTraces(c: TestClient, count: number) {
  const views: Record<string, unknown>[] = [];
  while (views.length < count) {
    const trace = await c.event("trace");
    if (trace.sealed !== undefined) views.push(trace.sealed as Record<string, unknown>);
  }
  return views;
}

function ack(m: ServerMessage) {
  assert.equal(m.code, "ACK", JSON.stringify(m));
  return m as Extract<ServerMessage, { code: "ACK" }>;
}

Deno.test("two clients exchange sealed messages online and offline; the log never holds their text", async () => {
  await using t = await aliceAndBob();
  const { server, root, alice, bob } = t;

  await alice.send("/msg bob meet me at the old mill at noon");
  // Each pins the other's key on first use (and says so) as the first message is sealed, or
  // opened.
  await alice.event("contact_key", { user: "bob", change: "first_use" });
  const sent = await alice.event("ack", { request: "MSG", to: "bob", sealed: true });
  await bob.event("contact_key", { user: "alice", change: "first_use" });
  const got = await bob.event("message", { from: "alice", sealed: true });
  assert.equal(got.text, "meet me at the old mill at noon");
  assert.equal(got.msg, sent.msg);
  await bob.send("@alice see you there");
  await alice.event("message", { from: "bob", text: "see you there", sealed: true });
  assert.equal(await bob.finish(), 0);

  // Offline: queued sealed, opened at bob's next login, in order; marked in plain text.
  await alice.send("/msg bob first, while you were away", "/msg bob second, also sealed");
  await alice.event("ack", { request: "MSG", text: "second, also sealed", sealed: true });
  await using plain = client(server.port, join(root, "bob"), "--no-color");
  await plain.send("/login bob", passwordOf("bob"));
  const first = await plain.line("first, while you were away");
  const second = await plain.line("second, also sealed");
  assert.match(first, /^\S+ \[sealed\] alice: first, while you were away$/);
  assert.match(second, /\[sealed\] alice: second/);
  assert.equal(await plain.finish(), 0);

  // Every DLV was acknowledged: nothing is queued at the next login.
  await using third = await again(server, root, "bob");
  assert.equal(third.stdout.lines.some((l) => l.includes('"queued":0')), true);
  assert.equal(await third.finish(), 0);
  assert.equal(await alice.finish(), 0);

  await server.stop();
  const log = new TextDecoder("latin1").decode(await Deno.readFile(`${root}/events.log`));
  for (const secret of ["old mill", "see you there", "while you were away", "also sealed"]) {
    assert.ok(!log.includes(secret), `the event log holds "${secret}"`);
  }
});

Deno.test("a changed contact key is announced loudly and blocks sealed sending until /trust", async () => {
  await using t = await aliceAndBob("--keep-going");
  const { alice, bob } = t;
  await alice.send("/msg bob one");
  const before = (await alice.event("contact_key", { user: "bob", change: "first_use" }))
    .fingerprint;
  await bob.event("message", { text: "one", sealed: true });

  await bob.send("/keygen 2048");
  const rotated = await bob.event("ack", { request: "KEY" });

  // alice's client still has bob's first key: stale_key, fetched again, and found changed.
  await alice.send("/msg bob two", "/whois bob");
  const changed = await alice.event("contact_key", { user: "bob", change: "changed" });
  assert.equal(changed.fingerprint, rotated.fingerprint);
  assert.deepEqual(changed.pinned, [before]);
  await alice.event("error", { context: "MSG", code: "key_changed" });
  const whois = await alice.event("whois", { user: "bob" });
  assert.equal(whois.status, "changed");

  await alice.send(`/trust bob ${rotated.fingerprint}`, "/msg bob three", "/whois bob");
  await alice.event("contact_key", { user: "bob", change: "verified" });
  await alice.event("ack", { request: "MSG", text: "three", sealed: true });
  assert.equal((await alice.event("whois", { user: "bob" })).verified, true);
  await bob.event("message", { text: "three", sealed: true });
  assert.ok(!bob.stdout.lines.some((l) => l.includes('"text":"two"')), "two was never sent");
  assert.equal(await alice.finish(), 1, "the refused send is a failed command");
  assert.equal(await bob.finish(), 0);
});

Deno.test("a message queued before the recipient's /keygen still opens after it, in a new process", async () => {
  await using t = await aliceAndBob();
  const { server, root, alice, bob } = t;
  await alice.send("/msg bob hello");
  await bob.event("message", { text: "hello", sealed: true });
  assert.equal(await bob.finish(), 0);

  // alice's key changes while bob is away; her message to him (sealed to his first key) is
  // held by his client until he accepts her new key.
  await alice.send("/keygen 2048");
  const aliceNew = await alice.event("ack", { request: "KEY" });
  await alice.send("/msg bob sealed to your first key");
  await alice.event("ack", { request: "MSG", sealed: true });
  await using bob2 = await again(server, root, "bob");
  await bob2.event("contact_key", { user: "alice", change: "changed" });
  await bob2.event("message_held", { from: "alice", fingerprint: aliceNew.fingerprint });
  await bob2.send("/keygen 2048");
  const bobNew = await bob2.event("ack", { request: "KEY" });
  assert.equal(await bob2.finish(), 0);

  // A new process: bob's first key is read from its file, the held message from disk.
  await using bob3 = await again(server, root, "bob");
  await bob3.send("/status", `/trust alice ${aliceNew.fingerprint}`);
  assert.equal((await bob3.event("status")).user_key, bobNew.fingerprint);
  await bob3.event("message", { from: "alice", text: "sealed to your first key", sealed: true });
  assert.equal(await bob3.finish(), 0);
  assert.equal(await alice.finish(), 0);
});

Deno.test("messages still waiting their turn at a /logout are not shown as failed; they come again at the next login", async () => {
  await using t = await aliceAndBob();
  const { server, root, alice, bob } = t;
  assert.equal(await bob.finish(), 0);
  const count = 20;
  await alice.send(...Array.from({ length: count }, (_, i) => `/msg bob burst ${i + 1}`));
  await alice.event("ack", { request: "MSG", text: `burst ${count}`, sealed: true });

  // bob logs in and out at once: most of the burst is still being opened when the keys go.
  await using first = client(server.port, join(root, "bob"), "--json", ...BITS);
  await first.send("/login bob", passwordOf("bob"), "/logout");
  assert.equal(await first.finish(), 0);
  await using second = await again(server, root, "bob");
  assert.equal(await second.finish(), 0);
  const events = [...first.stdout.lines, ...second.stdout.lines]
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(events.filter((e) => e.event === "message_failed"), []);
  const texts = new Set(events.filter((e) => e.event === "message").map((e) => e.text));
  assert.equal(texts.size, count, `every message shown once: ${[...texts].join(", ")}`);
  assert.equal(await alice.finish(), 0);
});

Deno.test("a note to self still being delivered at /quit is not shown as failed; it comes again at the next login", async () => {
  await using t = await aliceAndBob();
  const { server, root, alice, bob } = t;
  assert.equal(await bob.finish(), 0);
  assert.equal(await alice.finish(), 0);
  // The script ends right after the send: its DLV comes back as the client closes.
  await using first = client(server.port, join(root, "alice"), "--json", ...BITS);
  await first.send("/login alice", passwordOf("alice"), "@alice note to self", "/help", "/quit");
  assert.equal(await first.finish(), 0);
  await using second = await again(server, root, "alice");
  assert.equal(await second.finish(), 0);
  const events = [...first.stdout.lines, ...second.stdout.lines]
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(events.filter((e) => e.event === "message_failed"), []);
  const shown = events.filter((e) => e.event === "message" && e.text === "note to self");
  assert.equal(shown.length, 1, JSON.stringify(shown));
  assert.equal(shown[0]!.sealed, true);
});

Deno.test("a key made at /signup is kept when the answer is lost: the account may hold it", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await using relay = answerLosingRelay(server.port);
  const home = join(dir.path, "carol");
  await using first = client(relay.port, home, "--json", ...BITS);
  await first.send("/signup carol", passwordOf("carol"));
  await first.event("error", { context: "SNU", code: "connection_lost" });
  assert.equal(await first.finish(), 1);

  // The server made the account, with the key: the next login finds it on this client.
  await using second = client(relay.port, home, "--json", ...BITS);
  await second.send("/login carol", passwordOf("carol"), "/status");
  await second.event("ack", { request: "LGN", user: "carol" });
  const status = await second.event("status");
  assert.notEqual(status.user_key, null);
  assert.equal(await second.finish(), 0);
  assert.ok(!second.stdout.lines.some((l) => l.includes("not on this client")));
});

Deno.test("a /passwd whose answer is lost leaves the keys open to the password the account has", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  // The second connection: LGN, the GPK of the login's key check, then CPW, whose answer goes.
  await using relay = answerLosingRelay(server.port, { connection: 2, frame: 4 });
  const home = join(dir.path, "carol");
  await using signup = client(relay.port, home, "--json", ...BITS);
  await signup.send("/signup carol", passwordOf("carol"));
  await signup.event("ack", { request: "SNU", user: "carol" });
  assert.equal(await signup.finish(), 0);
  await using change = client(relay.port, home, "--json", ...BITS);
  await change.send(
    "/login carol",
    passwordOf("carol"),
    "/passwd",
    passwordOf("carol"),
    "new-pw-1",
  );
  await change.event("error", { context: "CPW", code: "connection_lost" });
  assert.equal(await change.finish(), 1);

  // The server made the change: the new password opens the account, and its keys.
  await using after = client(relay.port, home, "--json", ...BITS);
  await after.send("/login carol", "new-pw-1", "/status");
  await after.event("ack", { request: "LGN", user: "carol" });
  assert.notEqual((await after.event("status")).user_key, null);
  assert.equal(await after.finish(), 0);
  assert.ok(!after.stdout.lines.some((l) => l.includes("does not open")));
});

Deno.test("a server that swaps from, or re-routes an envelope to an account with the same key, makes the recipient name signature", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  const alice = await member(server, dir.path, "alice");
  assert.equal(await alice.finish(), 0);
  const bob = await member(server, dir.path, "bob");
  assert.equal(await bob.finish(), 0);

  // An envelope alice's key really made for bob (her key file, opened with her password).
  const where = (user: string) => accountDir(join(dir.path, user), "127.0.0.1", server.port, user);
  const aliceKeys = await Keyring.open(where("alice"), passwordOf("alice"), portableCrypto);
  const aliceKey = aliceKeys.keyring.newest()!.key;
  const mallory = await raw(server.port, "mallory", toBase64(aliceKey.publicKey.spkiDer));
  const gpk = ack(await mallory.request({ code: "GPK", user: "bob" }));
  assert.ok(gpk.request === "GPK");
  const bobKey = portableCrypto.parsePublicKey(fromBase64(gpk.key));
  const { sealed } = seal(portableCrypto, { from: "alice", to: "bob", text: "really alice's" }, {
    sender: aliceKey,
    recipient: bobKey,
  });

  // The server re-attributes it: from mallory, who published alice's key as his.
  ack(await mallory.request({ code: "MSG", to: "bob", sealed }));
  await mallory.close();
  // And re-routes it: to bobby, who published bob's key, from alice's account.
  const bobby = await raw(server.port, "bobby", gpk.key, passwordOf("bob"));
  await bobby.close();
  const bobbyDir = accountDir(join(dir.path, "bob"), "127.0.0.1", server.port, "bobby");
  await Deno.mkdir(bobbyDir, { recursive: true, mode: 0o700 });
  const bobFile = [...Deno.readDirSync(where("bob"))].find((e) => e.name.startsWith("key-"))!;
  await Deno.copyFile(join(where("bob"), bobFile.name), join(bobbyDir, bobFile.name));
  const asAlice = await RawClient.connect(server.port);
  ack(await asAlice.request({ code: "LGN", user: "alice", password: passwordOf("alice") }));
  ack(await asAlice.request({ code: "MSG", to: "bobby", sealed }));
  await asAlice.close();

  await using bob2 = await again(server, dir.path, "bob");
  const swapped = await bob2.event("message_failed", { from: "mallory", check: "signature" });
  assert.equal(swapped.to, "bob");
  assert.ok(!bob2.stdout.lines.some((l) => l.includes("really alice's")), "never shown as text");
  assert.equal(await bob2.finish(), 0);
  // bobby's client: bob's key under another account name (his password, copied key file).
  await using asBobby = client(server.port, join(dir.path, "bob"), "--json", ...BITS);
  await asBobby.send("/login bobby", passwordOf("bob"));
  const rerouted = await asBobby.event("message_failed", { from: "alice", check: "signature" });
  assert.equal(rerouted.to, "bobby");
  assert.equal(await asBobby.finish(), 0);
  // Both were acknowledged (DAK whatever the outcome, §8.5): nothing is queued any more.
  await using bob3 = await again(server, dir.path, "bob");
  assert.ok(bob3.stdout.lines.some((l) => l.includes('"queued":0')));
  assert.equal(await bob3.finish(), 0);
  aliceKeys.keyring.dispose();
  assert.equal(fingerprintOfKid(kidOf(bobKey)), gpk.fingerprint);
});

Deno.test("--require-sealed refuses what cannot be sealed; --json and --trace say sealed or not, step by step", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  const dave = await raw(server.port, "dave"); // an account without a key
  await dave.close();
  await using alice = await member(server, dir.path, "alice", "--require-sealed", "--keep-going");
  await using bob = await member(server, dir.path, "bob");
  await alice.send("/msg dave hello dave", "/trace on", "/msg bob traced");
  await alice.event("error", { context: "MSG", code: "not_sealed" });
  const sealing = await sealedTraces(alice, 6);
  assert.deepEqual(sealing.map((v) => [v.direction, v.peer, v.step]), [
    ["seal", "bob", "message_key"],
    ["seal", "bob", "wrap"],
    ["seal", "bob", "encrypt"],
    ["seal", "bob", "mac"],
    ["seal", "bob", "sign"],
    ["seal", "bob", "sealed"],
  ]);
  assert.ok(!JSON.stringify(sealing).includes("traced"), "the trace never shows the text");
  await alice.event("ack", { request: "MSG", to: "bob", sealed: true });
  assert.equal(await alice.finish(), 1, "the refused message failed");

  await bob.send("/msg dave not sealed, and said so", "/trace on", "@alice hi");
  await bob.event("info", { message: "not sealed: dave has published no key" });
  await bob.event("ack", { request: "MSG", to: "dave", sealed: false });
  assert.equal(await bob.finish(), 0);
  await using alice2 = await again(server, dir.path, "alice", "--trace");
  const opening = await sealedTraces(alice2, 8);
  assert.deepEqual(opening.map((v) => [v.direction, v.peer, v.check, v.ok]), [
    ["open", "bob", "layout", true],
    ["open", "bob", "recipient_key", true],
    ["open", "bob", "sender_key", true],
    ["open", "bob", "signature", true],
    ["open", "bob", "unwrap", true],
    ["open", "bob", "tag", true],
    ["open", "bob", "inner", true],
    ["open", "bob", "replay", true],
  ]);
  await alice2.event("message", { from: "bob", text: "hi", sealed: true });
  assert.equal(await alice2.finish(), 0);
});

Deno.test("an account without a key gets one at its next login, and /passwd encrypts the key file again", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  const carol = await raw(server.port, "carol"); // signed up by a client that made no key
  await carol.close();
  await using c = client(server.port, join(dir.path, "carol"), "--json", ...BITS);
  await c.send("/login carol", passwordOf("carol"), "/whois carol");
  await c.event("info", {
    message: "your account has no key yet: making one, so that messages to and from you can " +
      "be sealed end to end",
  });
  const key = await c.event("ack", { request: "KEY", bits: 2048 });
  const whois = await c.event("whois", { user: "carol", you: true });
  assert.equal(whois.fingerprint, key.fingerprint);
  assert.equal(whois.path, key.path);
  await c.send("/passwd", passwordOf("carol"), "carol's new password");
  await c.event("ack", { request: "CPW" });
  await c.event("info", { message: "your key files are encrypted with the new password" });
  assert.equal(await c.finish(), 0);

  const folder = accountDir(join(dir.path, "carol"), "127.0.0.1", server.port, "carol");
  const old = await Keyring.open(folder, passwordOf("carol"), portableCrypto);
  assert.equal(old.keyring.size, 0, "the old password opens nothing");
  const opened = await Keyring.open(folder, "carol's new password", portableCrypto);
  assert.equal(opened.keyring.newest()?.fingerprint, key.fingerprint);
  opened.keyring.dispose();
});

Deno.test("/users pages through every user, and says when it stopped short", async () => {
  await using dir = await tempDir();
  const names = ["ann", "ben", "cat", "dan", "eve"];
  {
    await using server = await TestServer.start(`${dir.path}/a`, 0, "--limit", "gul_page=2");
    for (const user of names) await (await raw(server.port, user)).close();
    await using c = client(server.port, join(dir.path, "ann"), "--json");
    await c.send("/login ann", passwordOf("ann"), "/users");
    const list = await c.event("ack", { request: "GUL" });
    assert.deepEqual((list.users as { user: string }[]).map((u) => u.user), names);
    assert.equal(list.more, false);
    assert.equal(await c.finish(), 0);
  }
  // One user a page: MAX_USER_PAGES (10) pages are shown, and more are said to exist.
  const many = Array.from({ length: 11 }, (_, i) => `user${String(i).padStart(2, "0")}`);
  await using server = await TestServer.start(`${dir.path}/b`, 0, "--limit", "gul_page=1");
  for (const user of many) await (await raw(server.port, user)).close();
  await using c = client(server.port, join(dir.path, "user00"), "--json");
  await c.send("/login user00", passwordOf("user00"), "/users");
  const list = await c.event("ack", { request: "GUL" });
  assert.deepEqual((list.users as { user: string }[]).map((u) => u.user), many.slice(0, 10));
  assert.equal(list.more, true);
  assert.equal(await c.finish(), 0);
});

Deno.test("a failed /login leaves the session before it, and its keys, as they were", async () => {
  await using t = await aliceAndBob("--keep-going");
  const { alice, bob } = t;
  await alice.send("/login alice", "not alice's password");
  await alice.event("error", { context: "LGN", code: "invalid_credentials" });
  await bob.send("@alice still sealed?");
  await alice.event("message", { from: "bob", text: "still sealed?", sealed: true });
  await alice.send("@bob yes");
  await bob.event("message", { from: "alice", text: "yes", sealed: true });
  assert.equal(await alice.finish(), 1, "the failed login");
  assert.equal(await bob.finish(), 0);
});
