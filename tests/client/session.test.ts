// A session across connections: /connect to the same server logs in again as an automatic
// reconnect does; switching servers says that the login stays behind.
import assert from "node:assert/strict";
import { MAX_QUEUED_MESSAGES } from "../../client/connection.ts";
import { client, passwordOf, signUp, tempDir, TestServer } from "./_harness.ts";

Deno.test("/connect to the same server logs in again, as an automatic reconnect does", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await signUp(server.port, `${dir.path}/setup`, "alice", "bob");
  await using c = client(server.port, `${dir.path}/home`, "--json");
  await c.send("/login alice", passwordOf("alice"));
  await c.event("ack", { request: "LGN", user: "alice", relogin: false });

  await c.send("/connect", "/status", "/msg bob after the reconnect");
  await c.event("disconnected", { reconnect: true });
  await c.event("connected", { pin: "match" });
  await c.event("ack", { request: "LGN", user: "alice", relogin: true });
  await c.event("status", { state: "open", user: "alice" });
  await c.event("ack", { request: "MSG", to: "bob" });

  // /disconnect ends the session, and says so: a /connect after it is not logged in.
  await c.send("/disconnect", "/connect", "/status");
  await c.event("disconnected", { reason: "closed by you", reconnect: false });
  await c.event("info", {
    message: "logged out: the session as alice ended with the connection; /connect, then /login",
  });
  await c.event("connected", { pin: "match" });
  await c.event("status", { state: "open", user: null });
  assert.equal(await c.finish(), 0);
  assert.equal(c.stdout.lines.filter((l) => l.includes('"relogin":true')).length, 1);
});

Deno.test("/connect to another server says the login stays behind", async () => {
  await using dir = await tempDir();
  await using one = await TestServer.start(dir.path);
  await Deno.mkdir(`${dir.path}/two`);
  await using two = await TestServer.start(`${dir.path}/two`);
  await signUp(one.port, `${dir.path}/setup`, "alice");
  await using c = client(one.port, `${dir.path}/home`, "--json");
  await c.send("/login alice", passwordOf("alice"));
  await c.event("ack", { request: "LGN", user: "alice" });

  await c.send(`/connect 127.0.0.1:${two.port}`, "/status");
  await c.event("info", {
    message: `logged out: the login as alice was for 127.0.0.1:${one.port}; ` +
      `/login on 127.0.0.1:${two.port}`,
  });
  await c.event("connected", { port: two.port, pin: "first_contact" });
  await c.event("status", { state: "open", user: null, port: two.port });
  assert.equal(await c.finish(), 0);
  assert.ok(!c.stdout.lines.some((l) => l.includes('"relogin":true')), "no password to server two");
});

Deno.test("messages typed while reconnecting are queued, said so, and sent in order after the re-login", async () => {
  await using dir = await tempDir();
  await using first = await TestServer.start(dir.path);
  const port = first.port;
  await signUp(port, `${dir.path}/setup`, "alice", "bob");
  await using alice = client(port, `${dir.path}/alice`, "--json");
  await alice.send("/login alice", passwordOf("alice"));
  await alice.event("ack", { request: "LGN", user: "alice" });

  await first.stop();
  await alice.event("reconnecting", { attempt: 1 });
  await alice.send("/msg bob one", "@bob two");
  await alice.event("info", {
    message: "queued for bob: 1 message waits to be sent once the connection is back and " +
      "you are logged in again",
  });
  await alice.event("info", {
    message: "queued for bob: 2 messages wait to be sent once the connection is back and " +
      "you are logged in again",
  });
  // Leaving waits for them, and says so: a /quit must not seem to hang.
  await alice.send("/quit");
  await alice.event("info", { message: "waiting for 2 queued messages to be sent (at most 60 s)" });

  await using second = await TestServer.start(dir.path, port);
  await alice.event("ack", { request: "LGN", relogin: true });
  await alice.event("ack", { request: "MSG", to: "bob", text: "one" });
  await alice.event("ack", { request: "MSG", to: "bob", text: "two" });
  assert.equal(await alice.finish(), 0);

  await using bob = client(port, `${dir.path}/bob`, "--json");
  await bob.send("/login bob", passwordOf("bob"));
  await bob.event("message", { from: "alice", text: "one" });
  await bob.event("message", { from: "alice", text: "two" });
  assert.equal(await bob.finish(), 0);
  await second.stop();
});

Deno.test("a message beyond the queue's room while reconnecting is refused, said once as not sent", async () => {
  await using dir = await tempDir();
  await using first = await TestServer.start(dir.path);
  const port = first.port;
  await signUp(port, `${dir.path}/setup`, "alice", "bob");
  await using alice = client(port, `${dir.path}/alice`);
  await alice.send("/login alice", passwordOf("alice"));
  await alice.line("✓ logged in as alice");

  await first.stop();
  await alice.line("· reconnecting to");
  const queued = Array.from({ length: MAX_QUEUED_MESSAGES }, (_, i) => `@bob m${i}`);
  await alice.send(...queued, "@bob one too many");
  const refused = await alice.line("✗ not sent");
  assert.equal(
    refused,
    `✗ not sent: ${MAX_QUEUED_MESSAGES} messages already wait for the connection to come back ` +
      "(queue_full)",
  );

  // The server comes back: the queued ones are answered (sent, or refused for their rate), so
  // the script ends.
  await using second = await TestServer.start(dir.path, port);
  assert.equal(await alice.finish(), 1, "the refused message is the script's failure");
  assert.ok(!alice.stdout.lines.some((l) => l.includes("not sent: not sent")));
  await second.stop();
});
