// Piped input (a script): a password line always belongs to its command, even one that failed
// before asking for it, and the first failure stops the script unless --keep-going.
import assert from "node:assert/strict";
import { client, passwordOf, signUp, tempDir, TestServer } from "./_harness.ts";

/** The parsed --json events of a finished client. */
function eventsOf(lines: readonly string[]): Record<string, unknown>[] {
  return lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

Deno.test("a script stops at its first failed command: a password meant for it is never sent", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await signUp(server.port, `${dir.path}/setup`, "alice", "mallory");
  await using c = client(server.port, `${dir.path}/home`, "--json");
  await c.send(
    "/login mallory",
    passwordOf("mallory"),
    "/login Mallory",
    "@alice s3cret-password-line",
    "/users",
  );
  assert.equal(await c.finish(), 1);
  const events = eventsOf(c.stdout.lines);
  assert.deepEqual(
    events.filter((e) => e.event === "ack").map((e) => e.request),
    ["LGN"],
    "nothing after the failure ran",
  );
  assert.deepEqual(events.at(-1), {
    event: "info",
    message: "stopped: line 3 failed; the rest of the input is not run (--keep-going runs it)",
  });
});

Deno.test("with --keep-going, the lines a failed /login, /signup or /passwd meant as passwords are skipped, not run", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await signUp(server.port, `${dir.path}/setup`, "alice", "mallory");
  await using c = client(server.port, `${dir.path}/home`, "--json", "--keep-going");
  await c.send(
    "/login mallory",
    passwordOf("mallory"),
    "/login Mallory",
    "@alice s3cret-password-line",
    "/passwd extra-argument",
    "@alice old-password-line",
    "@alice new-password-line",
    "/users",
    "/disconnect",
    "/signup bob",
    "@alice bobs-password-line",
    "/login mallory",
    "@alice mallorys-password-line",
  );
  assert.equal(await c.finish(), 1);
  const events = eventsOf(c.stdout.lines);
  assert.deepEqual(
    events.filter((e) => e.event === "ack").map((e) => e.request),
    ["LGN", "GUL"],
    "no password line was sent as a message",
  );
  assert.deepEqual(
    events.filter((e) => e.event === "error").map((e) => `${e.context} ${e.code}`),
    ["command usage", "command usage", "SNU not_connected", "LGN not_connected"],
  );
  assert.deepEqual(
    events.filter((e) => e.event === "info" && String(e.message).startsWith("skipped")).map((
      e,
    ) => e.message),
    [
      "skipped line 4: the password of the failed command on line 3",
      "skipped line 6: the password of the failed command on line 5",
      "skipped line 7: the password of the failed command on line 5",
      "skipped line 11: the password of the failed command on line 10",
      "skipped line 13: the password of the failed command on line 12",
    ],
  );
  assert.ok(!c.stdout.lines.some((l) => l.includes("password-line")), "never shown either");
});

Deno.test("a too short new password is refused before it is sent, its size said in words", async () => {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await using c = client(server.port, `${dir.path}/home`, "--json");
  await c.send("/signup bob", "x");
  await c.event("error", {
    context: "SNU",
    code: "weak_password",
    message: "password is 1 byte, below the minimum of 8 bytes",
  });
  assert.equal(await c.finish(), 1);
});
