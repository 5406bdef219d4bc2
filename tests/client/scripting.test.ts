// Piped input (a script): a password line always belongs to its command, even one that failed
// before asking for it, and the first failure stops the script unless --keep-going.
import assert from "node:assert/strict";
import { client, passwordOf, signUp, tempDir, TestServer } from "./_harness.ts";

/**
 * Pipes `lines` into a --json client (with `flags`) on a fresh server where alice and mallory
 * have accounts; its exit status, its events, and its output.
 */
async function runScript(flags: readonly string[], lines: readonly string[]) {
  await using dir = await tempDir();
  await using server = await TestServer.start(dir.path);
  await signUp(server.port, `${dir.path}/setup`, "alice", "mallory");
  await using c = client(server.port, `${dir.path}/home`, "--json", ...flags);
  await c.send(...lines);
  const status = await c.finish();
  const events: Record<string, unknown>[] = c.stdout.lines.filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  return { status, events, output: c.stdout.lines };
}

/** The requests the server acknowledged, in order. */
function acked(events: readonly Record<string, unknown>[]): unknown[] {
  return events.filter((e) => e.event === "ack").map((e) => e.request);
}

Deno.test("a script stops at its first failed command: a password meant for it is never sent", async () => {
  const { status, events } = await runScript([], [
    "/login mallory",
    passwordOf("mallory"),
    "/login Mallory",
    "@alice s3cret-password-line",
    "/users",
  ]);
  assert.equal(status, 1);
  assert.deepEqual(acked(events), ["LGN"], "nothing after the failure ran");
  assert.deepEqual(events.at(-1), {
    event: "info",
    message: "stopped: line 3 failed; the rest of the input is not run (--keep-going runs it)",
  });
});

Deno.test("with --keep-going, the lines a failed /login, /signup or /passwd meant as passwords are skipped, not run", async () => {
  const { status, events, output } = await runScript(["--keep-going"], [
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
  ]);
  assert.equal(status, 1);
  assert.deepEqual(acked(events), ["LGN", "GUL"], "no password line was sent as a message");
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
  assert.ok(!output.some((l) => l.includes("password-line")), "never shown either");
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
