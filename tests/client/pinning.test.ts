// Server key pinning as a user meets it (PROTOCOL §6): a known_hosts line that does not parse, a
// file others may write, accepting exactly the key the user checked, and the key of a session.
import assert from "node:assert/strict";
import { client, passwordOf, signUp, tempDir, TestServer } from "./_harness.ts";

const FORGED = "SHA256:" + "A".repeat(43);

/**
 * A fresh server, and a client folder (0700) whose known_hosts (0600) holds `text(server)`.
 * Disposing stops the server and removes both.
 */
async function withKnownHosts(
  text: (server: TestServer) => string,
): Promise<{ server: TestServer; home: string; knownHosts: string } & AsyncDisposable> {
  const resources = new AsyncDisposableStack();
  try {
    const dir = resources.use(await tempDir());
    const server = resources.use(await TestServer.start(dir.path));
    const home = `${dir.path}/home`;
    await Deno.mkdir(home, { mode: 0o700 });
    const knownHosts = `${home}/known_hosts`;
    await Deno.writeTextFile(knownHosts, text(server), { mode: 0o600 });
    return { server, home, knownHosts, [Symbol.asyncDispose]: () => resources.disposeAsync() };
  } catch (err) {
    await resources.disposeAsync();
    throw err;
  }
}

Deno.test("a known_hosts line for the server that does not parse refuses the connection, naming file and line", async () => {
  // A pin with a trailing comment: were it ignored, this key would be trusted as a first contact.
  const mine = (s: TestServer) => `# mine\n127.0.0.1:${s.port} ${FORGED} # the office server\n`;
  await using t = await withKnownHosts(mine);
  const { server, home, knownHosts } = t;
  const text = mine(server);

  await using c = client(server.port, home, "--json");
  const refused = await c.event("error", { context: "connect", code: "known_hosts" });
  assert.match(
    String(refused.message),
    new RegExp(
      `^refused: ${knownHosts} line 2 does not parse \\(expected "host:port fingerprint"\\)`,
    ),
  );
  assert.equal(await c.finish(), 1);
  assert.ok(!c.stdout.lines.some((l) => l.includes('"event":"connected"')), "never connected");
  assert.equal(await Deno.readTextFile(knownHosts), text, "the file is left as it was");
});

Deno.test("a known_hosts line that does not parse and may be the pin of another server of the list refuses too", async () => {
  // The list's servers share one key: that line may hold the key this server must show.
  await using t = await withKnownHosts((s) => `127.0.0.2:${s.port} ${FORGED} # the other node\n`);
  const { server, home } = t;
  const list = `127.0.0.1:${server.port},127.0.0.2:${server.port}`;
  await using c = client(server.port, home, "--json", "--host", list);
  const refused = await c.event("error", { context: "connect", code: "known_hosts" });
  assert.match(String(refused.message), /line 1 does not parse .* may be the pin of 127\.0\.0\.2:/);
  assert.equal(await c.finish(), 1);
  assert.ok(!c.stdout.lines.some((l) => l.includes('"event":"connected"')), "never connected");
});

Deno.test("a malformed known_hosts line for another server is reported and skipped", async () => {
  await using t = await withKnownHosts(() => `elsewhere:1 ${FORGED} # old\n`);
  const { server, home } = t;
  await using c = client(server.port, home, "--json");
  await c.event("warning", {
    message: `${home}/known_hosts line 1 ignored: expected "host:port fingerprint"`,
  });
  await c.event("connected", { pin: "first_contact" });
  assert.equal(await c.finish(), 0);
});

Deno.test("a known_hosts file that others may write is warned about", async () => {
  await using t = await withKnownHosts((s) => `127.0.0.1:${s.port} ${s.fingerprint}\n`);
  const { server, home, knownHosts } = t;
  await Deno.chmod(knownHosts, 0o666);
  await using c = client(server.port, home, "--json");
  const warning = await c.event("warning");
  assert.equal(
    warning.message,
    `${knownHosts} is writable by others (mode 0666): whoever can write it can make this ` +
      `client trust their server; run chmod 600 ${knownHosts}`,
  );
  await c.event("connected", { pin: "match" });
  assert.equal(await c.finish(), 0);
});

Deno.test("an automatic reconnect to a server with another key refuses, though known_hosts lost the pin", async () => {
  await using dir = await tempDir();
  await using first = await TestServer.start(dir.path);
  const port = first.port;
  await signUp(port, `${dir.path}/setup`, "alice");
  const home = `${dir.path}/home`;
  await using alice = client(port, home, "--json");
  await alice.send("/login alice", passwordOf("alice"));
  await alice.event("ack", { request: "LGN", user: "alice" });

  // The pin is gone (the file was cleaned up, say), and another server takes over the port.
  await Deno.remove(`${home}/known_hosts`);
  await first.stop();
  await Deno.mkdir(`${dir.path}/other`);
  await using other = await TestServer.start(`${dir.path}/other`, port);
  assert.notEqual(other.fingerprint, first.fingerprint);

  const next = await alice.stdout.next(
    (l) => /"event":"(key_mismatch|connected)"/.test(l),
    "the reconnect's outcome",
  );
  assert.deepEqual(JSON.parse(next), {
    event: "key_mismatch",
    host: "127.0.0.1",
    port,
    source: "session",
    pinned: [first.fingerprint],
    pinned_for: [],
    presented: other.fingerprint,
    accepted: false,
    known_hosts: null,
  });
  await alice.event("disconnected", { reconnect: false });
  await alice.finish();
  assert.ok(!alice.stdout.lines.some((l) => l.includes('"relogin":true')), "no login again");
  assert.ok(
    !(await Deno.readTextFile(`${home}/known_hosts`).catch(() => "")).includes(other.fingerprint),
    "the other key is not pinned",
  );
});

Deno.test("--accept-key and /accept-key accept exactly the key the user checked, no other", async () => {
  await using t = await withKnownHosts((s) => `127.0.0.1:${s.port} ${FORGED}\n`);
  const { server, home, knownHosts } = t;
  const forged = await Deno.readTextFile(knownHosts);
  const otherKey = "SHA256:" + "B".repeat(42) + "A";

  // A fingerprint other than the presented one accepts nothing.
  await using wrong = client(
    server.port,
    home,
    "--json",
    "--keep-going",
    "--accept-key",
    otherKey,
  );
  await wrong.event("key_mismatch", { accepted: false, presented: server.fingerprint });
  await wrong.event("error", { context: "connect", code: "key_mismatch" });
  // Nor inside the client.
  await wrong.send(`/accept-key ${otherKey}`);
  await wrong.event("key_mismatch", { accepted: false });
  assert.equal(await wrong.finish(), 1);
  assert.equal(await Deno.readTextFile(knownHosts), forged);

  // The checked fingerprint, inside the client, re-pins and connects.
  await using checked = client(server.port, home, "--json", "--keep-going");
  await checked.event("key_mismatch", { accepted: false });
  await checked.send(`/accept-key ${server.fingerprint}`);
  await checked.event("key_mismatch", { accepted: true, presented: server.fingerprint });
  await checked.event("connected", { pin: "replaced", previous: [FORGED] });
  await checked.finish();
  assert.equal(
    await Deno.readTextFile(knownHosts),
    `127.0.0.1:${server.port} ${server.fingerprint}\n`,
  );

  // And as a flag.
  await Deno.writeTextFile(knownHosts, forged);
  await using flag = client(server.port, home, "--json", "--accept-key", server.fingerprint);
  await flag.event("connected", { pin: "replaced", previous: [FORGED] });
  assert.equal(await flag.finish(), 0);
});

Deno.test("/connect HOST keeps the current port", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await using c = client(server.port, `${dir.path}/home`, "--json");
  await c.event("connected", { port: server.port });
  await c.send("/disconnect", "/connect 127.0.0.1");
  await c.event("disconnected", { reconnect: false });
  const next = await c.stdout.next((l) => /"event":"(connected|error)"/.test(l), "the connect");
  assert.equal(JSON.parse(next).event, "connected", next);
  assert.equal(JSON.parse(next).port, server.port);
  assert.equal(await c.finish(), 0);
});
