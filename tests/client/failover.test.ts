// Several servers of one service (`--host a,b`) as a user meets them: a node that is down is
// passed over, a node killed under a session is replaced by another and the login made again,
// and a server showing another key than the list's is refused loudly, never passed over.
import assert from "node:assert/strict";
import { pgTest } from "../_postgres.ts";
import { client, passwordOf, signUp, tempDir, TestServer } from "./_harness.ts";

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** The --host list of `ports`, on 127.0.0.1. */
function hosts(...ports: number[]): string {
  return ports.map((p) => `127.0.0.1:${p}`).join(",");
}

Deno.test("with several servers, one that is down is passed for the next, each try shown, the trace naming the host", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  const down = closedPort();
  const home = `${dir.path}/home`;
  await using c = client(server.port, home, "--host", hosts(down, server.port), "--trace");
  await c.line(`· trying 127.0.0.1:${down} (1/2, x25519mlkem768)…`);
  const second = await c.line(`· trying 127.0.0.1:${server.port} (2/2, x25519mlkem768)…`);
  assert.match(second, new RegExp(`— last try: cannot connect to 127\\.0\\.0\\.1:${down}: `));
  await c.line(`┌─ handshake with 127.0.0.1:${server.port} HSP/1 §2`);
  await c.line(`· connected to 127.0.0.1:${server.port} (x25519mlkem768)`);
  await c.send("/trace off", "/status");
  await c.line(`servers     127.0.0.1:${down}, 127.0.0.1:${server.port}`);
  assert.equal(await c.finish(), 0);
  assert.equal(
    await Deno.readTextFile(`${home}/known_hosts`),
    `127.0.0.1:${server.port} ${server.fingerprint}\n`,
    "only the server reached is pinned",
  );
});

Deno.test("a server of the list showing another key than the one pinned for the list is refused loudly; the next is not tried", async () => {
  await using dir = await tempDir();
  for (const node of ["a", "b", "c"]) await Deno.mkdir(`${dir.path}/${node}`);
  await using a = await TestServer.start(`${dir.path}/a`);
  await using b = await TestServer.start(`${dir.path}/b`); // a key of its own
  // The same key as a's: a node of a's service.
  await using c = await TestServer.start(
    `${dir.path}/c`,
    0,
    "--key",
    `${dir.path}/a/server_key.pem`,
  );
  assert.notEqual(b.fingerprint, a.fingerprint);
  assert.equal(c.fingerprint, a.fingerprint);
  const home = `${dir.path}/home`;
  await using first = client(a.port, home, "--json");
  await first.event("connected", { pin: "first_contact" });
  assert.equal(await first.finish(), 0);
  await a.stop();
  const knownHosts = await Deno.readTextFile(`${home}/known_hosts`);

  // a is down, b was never pinned: b must show a's key, and the refusal ends the round.
  await using list = client(a.port, home, "--json", "--host", hosts(a.port, b.port, c.port));
  await list.event("connecting", { port: a.port, server: 1, servers: 3 });
  await list.event("connecting", { port: b.port, server: 2, servers: 3 });
  const warning = await list.event("key_mismatch");
  assert.deepEqual(warning, {
    event: "key_mismatch",
    host: "127.0.0.1",
    port: b.port,
    source: "known_hosts",
    pinned: [a.fingerprint],
    pinned_for: [`127.0.0.1:${a.port}`],
    presented: b.fingerprint,
    accepted: false,
    known_hosts: `${home}/known_hosts`,
  });
  const refused = await list.event("error", { context: "connect", code: "key_mismatch" });
  assert.match(String(refused.message), /of 127\.0\.0\.1:\d+ \(the servers of one list share/);
  assert.equal(await list.finish(), 1);
  assert.ok(!list.stdout.lines.some((l) => l.includes('"event":"connected"')), "never connected");
  assert.ok(!list.stdout.lines.some((l) => l.includes(`"port":${c.port}`)), "c was not tried");
  assert.equal(await Deno.readTextFile(`${home}/known_hosts`), knownHosts, "nothing pinned");

  // Without b, c shows the list's key: accepted, and pinned for c too.
  await using good = client(a.port, home, "--json", "--host", hosts(a.port, c.port));
  await good.event("connected", { port: c.port, pin: "sibling", sibling: `127.0.0.1:${a.port}` });
  assert.equal(await good.finish(), 0);
  assert.equal(
    await Deno.readTextFile(`${home}/known_hosts`),
    `${knownHosts}127.0.0.1:${c.port} ${a.fingerprint}\n`,
  );

  // The user checked b's key (the service's new one, say): accepted, it replaces the pin it
  // differed from, a's, so that the list holds one key again.
  await using accept = client(
    a.port,
    home,
    "--json",
    "--keep-going",
    "--host",
    hosts(a.port, b.port),
  );
  await accept.event("key_mismatch", { port: b.port, accepted: false });
  await accept.send(`/accept-key ${b.fingerprint}`);
  await accept.event("key_mismatch", { port: b.port, accepted: true });
  await accept.event("connected", { port: b.port, pin: "replaced", previous: [a.fingerprint] });
  await accept.finish();
  assert.equal(
    await Deno.readTextFile(`${home}/known_hosts`),
    `127.0.0.1:${c.port} ${a.fingerprint}\n127.0.0.1:${b.port} ${b.fingerprint}\n` +
      `127.0.0.1:${a.port} ${b.fingerprint}\n`,
  );
});

Deno.test("after a node is killed, a server of the list with another key is refused and no password goes to it", async () => {
  await using dir = await tempDir();
  for (const node of ["a", "b", "c"]) await Deno.mkdir(`${dir.path}/${node}`);
  await using a = await TestServer.start(`${dir.path}/a`);
  await using b = await TestServer.start(`${dir.path}/b`);
  await using c = await TestServer.start(
    `${dir.path}/c`,
    0,
    "--key",
    `${dir.path}/a/server_key.pem`,
  );
  await signUp(a.port, `${dir.path}/setup`, "alice");
  await using alice = client(
    a.port,
    `${dir.path}/home`,
    "--json",
    "--host",
    hosts(a.port, b.port, c.port),
  );
  await alice.send("/login alice", passwordOf("alice"));
  await alice.event("ack", { request: "LGN", user: "alice" });

  await a.stop("SIGKILL");
  await alice.event("disconnected", { port: a.port, reconnect: true });
  await alice.event("reconnecting", { port: b.port, attempt: 1, servers: 3 });
  await alice.event("key_mismatch", { port: b.port, source: "session", presented: b.fingerprint });
  await alice.event("disconnected", { port: b.port, reconnect: false });
  await alice.finish();
  assert.ok(!alice.stdout.lines.some((l) => l.includes(`"port":${c.port}`)), "c was not tried");
  assert.ok(!alice.stdout.lines.some((l) => l.includes('"relogin":true')), "no login again");
});

pgTest(
  "a node killed under a session: the client logs in again on the other node and carries on; what was queued through the first is delivered through the second",
  async (db) => {
    await using dir = await tempDir();
    const key = `${dir.path}/server_key.pem`;
    const node = () => TestServer.run(["--port", "0", "--store", db.url, "--key", key]);
    await using a = await node();
    await using b = await node(); // after a, which made the key: one key for the service
    assert.equal(b.fingerprint, a.fingerprint);
    const list = hosts(a.port, b.port);

    await using setup = client(a.port, `${dir.path}/bob`, "--json", "--host", list);
    await setup.send("/signup bob", passwordOf("bob"));
    await setup.event("ack", { request: "SNU", user: "bob" });
    assert.equal(await setup.finish(), 0);

    await using alice = client(a.port, `${dir.path}/alice`, "--json", "--host", list);
    await alice.send("/signup alice", passwordOf("alice"), "/login alice", passwordOf("alice"));
    await alice.event("connected", { port: a.port });
    await alice.event("ack", { request: "LGN", user: "alice", relogin: false });
    await alice.send("/msg bob sent through a");
    await alice.event("ack", { request: "MSG", text: "sent through a", sealed: true });

    await a.stop("SIGKILL");
    await alice.event("disconnected", { port: a.port, reconnect: true });
    await alice.event("reconnecting", { port: b.port, servers: 2 });
    await alice.event("connected", { port: b.port, pin: "sibling" });
    await alice.event("ack", { request: "LGN", user: "alice", relogin: true });
    await alice.send("/msg bob sent through b");
    await alice.event("ack", { request: "MSG", text: "sent through b", sealed: true });
    assert.equal(await alice.finish(), 0);

    // a is still down: bob's client passes it for b, where both messages wait, and opens them
    // with the keys it made at sign-up through a (the account's folder is the list's).
    await using bob = client(a.port, `${dir.path}/bob`, "--json", "--host", list);
    await bob.send("/login bob", passwordOf("bob"));
    await bob.event("connecting", { port: a.port, server: 1, servers: 2 });
    await bob.event("connected", { port: b.port, pin: "sibling" });
    await bob.event("ack", { request: "LGN", user: "bob", queued: 2 });
    await bob.event("message", { from: "alice", text: "sent through a", sealed: true });
    await bob.event("message", { from: "alice", text: "sent through b", sealed: true });
    assert.equal(await bob.finish(), 0);
    assert.ok(!bob.stdout.lines.some((l) => l.includes('"request":"KEY"')), "no new key made");
  },
);
