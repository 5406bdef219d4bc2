// The client as a user runs it: client/main.ts as a subprocess, commands through its stdin,
// against a real server process (server/main.ts) on port 0 in a temporary directory.
import assert from "node:assert/strict";
import { client, passwordOf, signUp, tempDir, TERMINAL_CONTROL, TestServer } from "./_harness.ts";

Deno.test("two clients sign up, log in, and exchange messages both ways", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await using alice = client(server.port, `${dir.path}/alice`, "--json");
  await using bob = client(server.port, `${dir.path}/bob`, "--json");

  // Each signs up on their own client, which makes their key pair and keeps it (§8.1).
  await alice.send("/signup alice", passwordOf("alice"));
  await bob.send("/signup bob", passwordOf("bob"));
  const aliceKey = await alice.event("ack", { request: "SNU", user: "alice" });
  const bobKey = await bob.event("ack", { request: "SNU", user: "bob" });
  await alice.send("/login alice", passwordOf("alice"));
  await alice.event("ack", { request: "LGN", user: "alice", queued: 0 });
  await bob.send("/login bob", passwordOf("bob"));
  await bob.event("ack", { request: "LGN", user: "bob" });

  await alice.send("/msg bob hello bob", "/users");
  const sent = await alice.event("ack", { request: "MSG", to: "bob", text: "hello bob" });
  assert.equal(sent.sealed, true);
  const users = await alice.event("ack", { request: "GUL" });
  assert.deepEqual(users.users, [
    { user: "alice", online: true, fingerprint: aliceKey.fingerprint },
    { user: "bob", online: true, fingerprint: bobKey.fingerprint },
  ]);
  const received = await bob.event("message", { from: "alice", to: "bob", text: "hello bob" });
  assert.equal(received.msg, sent.msg);
  assert.equal(received.ts, sent.ts);
  assert.equal(received.sealed, true);

  await bob.send("@alice   hi alice, two spaces  inside");
  await alice.event("message", { from: "bob", text: "hi alice, two spaces  inside", sealed: true });

  assert.equal(await alice.finish(), 0);
  assert.equal(await bob.finish(), 0);
});

Deno.test("a message to an offline user is delivered at their next login, once", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await signUp(server.port, `${dir.path}/setup`, "alice", "bob");

  await using alice = client(server.port, `${dir.path}/alice`, "--json");
  await alice.send("/login alice", passwordOf("alice"), "/msg bob one", "/msg bob two");
  await alice.event("ack", { request: "MSG", text: "one" });
  await alice.event("ack", { request: "MSG", text: "two" });
  assert.equal(await alice.finish(), 0);

  // A script that logs in reads its mail: the client waits for the queued messages at the end.
  await using bob = client(server.port, `${dir.path}/bob`, "--json");
  await bob.send("/login bob", passwordOf("bob"));
  assert.equal(await bob.finish(), 0);
  const events = bob.stdout.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const login = events.findIndex((e) => e.event === "ack" && e.request === "LGN");
  assert.equal(events[login]?.queued, 2);
  const texts = events.filter((e) => e.event === "message").map((e) => e.text);
  assert.deepEqual(texts, ["one", "two"]);
  assert.ok(
    events.findIndex((e) => e.event === "message") > login,
    "the login is reported before its messages",
  );

  // Both were acknowledged with DAK once shown: the next login finds nothing queued.
  await using again = client(server.port, `${dir.path}/bob`, "--json");
  await again.send("/login bob", passwordOf("bob"));
  await again.event("ack", { request: "LGN", user: "bob", queued: 0 });
  assert.equal(await again.finish(), 0);
  assert.ok(!again.stdout.lines.some((l) => l.includes('"event":"message"')));
});

Deno.test("first contact pins the key in a private known_hosts; a changed key is refused loudly", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  const home = `${dir.path}/home`;

  await using first = client(server.port, home);
  await first.line("first contact: the server's key is " + server.fingerprint);
  assert.equal(await first.finish(), 0);
  const knownHosts = `${home}/known_hosts`;
  assert.equal(
    await Deno.readTextFile(knownHosts),
    `127.0.0.1:${server.port} ${server.fingerprint}\n`,
  );
  assert.equal((await Deno.stat(knownHosts)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(home)).mode! & 0o777, 0o700);

  // A second visit matches the pin silently.
  await using second = client(server.port, home, "--json");
  await second.event("connected", { pin: "match", fingerprint: server.fingerprint });
  assert.equal(await second.finish(), 0);

  // Pretend the pin was made with another key: the client must refuse and name both.
  const forged = "SHA256:" + "A".repeat(43);
  await Deno.writeTextFile(knownHosts, `127.0.0.1:${server.port} ${forged}\n`);
  await using refused = client(server.port, home, "--keep-going");
  await refused.line("HAS CHANGED");
  const pinned = await refused.line("pinned:");
  assert.ok(pinned.includes(forged), pinned);
  const presented = await refused.line("presented:");
  assert.ok(presented.includes(server.fingerprint), presented);
  await refused.line("Connection refused");
  await refused.send("/users");
  await refused.line("not connected");
  assert.equal(await refused.finish(), 1);
  assert.equal(
    await Deno.readTextFile(knownHosts),
    `127.0.0.1:${server.port} ${forged}\n`,
    "a refused key is not recorded",
  );

  // Only --accept-new-key replaces the pin.
  await using accepted = client(server.port, home, "--json", "--accept-new-key");
  const mismatch = await accepted.event("key_mismatch", { accepted: true });
  assert.deepEqual(mismatch.pinned, [forged]);
  assert.equal(mismatch.presented, server.fingerprint);
  await accepted.event("connected", { pin: "replaced", previous: [forged] });
  assert.equal(await accepted.finish(), 0);
  assert.equal(
    await Deno.readTextFile(knownHosts),
    `127.0.0.1:${server.port} ${server.fingerprint}\n`,
  );
});

Deno.test("control characters and terminal escape sequences in received text are shown escaped", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await signUp(server.port, `${dir.path}/setup`, "alice", "mallory");

  await using alice = client(server.port, `${dir.path}/alice`);
  await alice.send("/login alice", passwordOf("alice"));
  await alice.line("logged in as alice");

  const hostile =
    "red \x1b[31mALERT\x1b[0m title \x1b]0;pwned\x07 csi \u009b2J bidi \u202etxt.exe" +
    " bell \x07 back \b\b cr \r fake\nsecond line";
  await using mallory = client(server.port, `${dir.path}/mallory`, "--json");
  await mallory.send("/login mallory", passwordOf("mallory"));
  await mallory.event("ack", { request: "LGN" });
  // Raw control bytes on mallory's command line go to the server as they are (a line break
  // cannot: it ends the command).
  await mallory.send(`/msg alice ${hostile.replaceAll("\n", " ")}`);
  await mallory.event("ack", { request: "MSG", to: "alice" });

  const shown = await alice.line("mallory:");
  assert.equal(
    shown.replace(/^\S+ /, ""),
    "[not sealed] mallory: red \\x1b[31mALERT\\x1b[0m title \\x1b]0;pwned\\x07 csi \\u009b2J bidi " +
      "\\u202etxt.exe bell \\x07 back \\x08\\x08 cr \\r fake second line",
  );
  assert.equal(await alice.finish(), 0);
  assert.equal(await mallory.finish(), 0);
  const everything = alice.stdout.lines.join("\n");
  assert.doesNotMatch(everything, TERMINAL_CONTROL);
});

Deno.test("--json output keeps a hostile text exact and still safe for a terminal", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await signUp(server.port, `${dir.path}/setup`, "alice", "bob");

  await using alice = client(server.port, `${dir.path}/alice`, "--json");
  await alice.send("/login alice", passwordOf("alice"));
  await alice.event("ack", { request: "LGN" });
  await using bob = client(server.port, `${dir.path}/bob`, "--json");
  const text = "esc \x1b[2J c1 \u0085\u009b bidi \u2067 emoji 🙂";
  await bob.send("/login bob", passwordOf("bob"), `/msg alice ${text}`);
  await bob.event("ack", { request: "MSG" });

  const event = await alice.event("message", { from: "bob" });
  assert.equal(event.text, text);
  const raw = alice.stdout.lines.find((l) => l.includes('"event":"message"'))!;
  assert.doesNotMatch(raw, TERMINAL_CONTROL);
  assert.equal(await alice.finish(), 0);
  assert.equal(await bob.finish(), 0);
});

Deno.test("after a server restart the client reconnects, logs in again and carries on", async () => {
  await using dir = await tempDir();
  const first = await TestServer.start(dir.path);
  const port = first.port;
  await signUp(port, `${dir.path}/setup`, "alice", "bob");

  await using alice = client(port, `${dir.path}/alice`, "--json");
  await alice.send("/login alice", passwordOf("alice"));
  await alice.event("ack", { request: "LGN", user: "alice", relogin: false });

  await first.stop();
  await alice.event("bye", { reason: "shutdown" });
  await alice.event("disconnected", { reconnect: true });
  await alice.event("reconnecting", { attempt: 1 });

  await using second = await TestServer.start(dir.path, port);
  await alice.event("connected", { pin: "match" });
  await alice.event("ack", { request: "LGN", user: "alice", relogin: true });

  await alice.send("/msg bob still here");
  await alice.event("ack", { request: "MSG", to: "bob" });
  assert.equal(await alice.finish(), 0);
  await second.stop();
});

Deno.test("a piped script exits non-zero when a command fails, with a one-line hint", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await using c = client(server.port, `${dir.path}/home`, "--keep-going");
  await c.send("/login nobody", "wrong-password", "/msg", "/lgoin x", "its-password", "hello?");
  await c.line("login failed: invalid username or password (invalid_credentials)");
  await c.line("✗ usage: /msg USER TEXT");
  await c.line("unknown command /lgoin (did you mean /login?)");
  // The line after a mistyped /login is its password all the same: skipped, not run.
  await c.line("skipped line 5: the password of the failed command on line 4");
  await c.line("not a command: send with @USER TEXT");
  assert.ok(!c.stdout.raw.includes("its-password"));
  assert.equal(await c.finish(), 1);
});

Deno.test("a script can run every command: key, status, trace, passwd, logout, disconnect, connect", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await signUp(server.port, `${dir.path}/setup`, "alice");
  await using c = client(
    server.port,
    `${dir.path}/home`,
    "--json",
    "--user",
    "alice",
    "--keep-going",
  );

  await c.send("/login", passwordOf("alice"), "/key", "/status");
  await c.event("ack", { request: "LGN", user: "alice" });
  const key = await c.event("ack", { request: "GSR" });
  assert.equal(key.fingerprint, server.fingerprint);
  assert.equal(key.handshake_fingerprint, server.fingerprint);
  assert.equal(key.matches_pin, true);
  const status = await c.event("status", { state: "open", user: "alice", trace: false });
  assert.equal(status.fingerprint, server.fingerprint);
  assert.equal(status.known_hosts, `${dir.path}/home/known_hosts`);

  await c.send("/trace on", "/users", "/trace off");
  await c.event("info", { message: "trace on" });
  const sent = await c.event("trace");
  assert.deepEqual(
    { ...sent.record as Record<string, unknown>, iv: "" },
    {
      direction: "send",
      // LGN, then the GPK of one's own key after it (§8.1), then GSR.
      seq: 3,
      code: "GUL",
      plaintext_bytes: 11,
      iv: "",
      ciphertext_bytes: 16,
      mac_bytes: 32,
      record_bytes: 64,
    },
  );
  await c.event("trace", {});
  await c.event("ack", { request: "GUL" });

  await c.send("/passwd", passwordOf("alice"), "a-new-password", "/logout");
  await c.event("ack", { request: "CPW" });
  await c.event("ack", { request: "LGO" });
  await c.send("/login alice", "a-new-password");
  await c.event("ack", { request: "LGN", user: "alice" });

  await c.send("/disconnect", "/users", "/connect", "/help");
  await c.event("disconnected", { reason: "closed by you", reconnect: false });
  await c.event("error", { context: "GUL", code: "not_connected" });
  await c.event("connected", { pin: "match" });
  const help = await c.event("help");
  assert.ok((help.commands as unknown[]).length >= 13);
  assert.equal(await c.finish(), 1, "the /users while disconnected failed");
});
