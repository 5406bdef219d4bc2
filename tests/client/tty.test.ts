// The client at a terminal (a pseudo-terminal made by `script`): passwords are not echoed and
// never reach the history file; messages appear above the prompt; Ctrl-D leaves.
import assert from "node:assert/strict";
import { HANDSHAKE_TIMEOUT_MS } from "../../protocol/limits.ts";
import {
  HAS_SCRIPT,
  passwordOf,
  signUp,
  tempDir,
  terminalClient,
  terminalClientThen,
  type TestClient,
  TestServer,
} from "./_harness.ts";

/** A test at a terminal; ignored where `script` is missing to make one. */
function ttyTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: `at a terminal ${name}`, ignore: !HAS_SCRIPT, fn });
}

/** A client at a terminal on a fresh server where `users` signed up, once its prompt is drawn. */
async function atTerminal(
  users: readonly string[],
  ...args: string[]
): Promise<{ c: TestClient; home: string } & AsyncDisposable> {
  const resources = new AsyncDisposableStack();
  try {
    const dir = resources.use(await tempDir());
    const server = resources.use(await TestServer.start(dir.path));
    if (users.length > 0) await signUp(server.port, `${dir.path}/setup`, ...users);
    const home = `${dir.path}/home`;
    const c = resources.use(terminalClient(server.port, home, ...args));
    await c.stdout.text("(not logged in)@127.0.0.1");
    return { c, home, [Symbol.asyncDispose]: () => resources.disposeAsync() };
  } catch (err) {
    await resources.disposeAsync();
    throw err;
  }
}

/** Logs in as alice, typing the password at its prompt. */
async function logInAlice(c: TestClient): Promise<void> {
  await c.type("/login alice\r");
  await c.stdout.text("password for alice: ");
  await c.type(passwordOf("alice") + "\r");
  await c.stdout.text("alice@127.0.0.1");
}

/** Ctrl-D, then the exit status. */
async function quit(c: TestClient): Promise<number> {
  await c.type("\x04");
  return await c.finish();
}

ttyTest("the password is not echoed nor saved, and Ctrl-D quits", async () => {
  await using t = await atTerminal(["alice"]);
  const { c, home } = t;
  await logInAlice(c);
  await c.type("@alice a note to self\r");
  await c.stdout.text("alice: a note to self");
  await c.stdout.text("alice@127.0.0.1");
  assert.equal(await quit(c), 0);

  assert.ok(!c.stdout.raw.includes(passwordOf("alice")), "the password was not echoed");
  assert.equal(
    await Deno.readTextFile(`${home}/history`),
    "/login alice\n@alice a note to self\n",
  );
  assert.equal((await Deno.stat(`${home}/history`)).mode! & 0o777, 0o600);
});

ttyTest("a password typed ahead of its prompt is not echoed nor saved", async () => {
  await using t = await atTerminal(["alice"]);
  const { c, home } = t;
  // One write: the password is there before the client asks for it.
  await c.type(`/login alice\r${passwordOf("alice")}\r`);
  await c.stdout.text("logged in as alice");
  // A failed /login's password typed ahead is dropped, never run as a command.
  await c.type("/login Alice\rs3cret-typed-ahead\r");
  await c.stdout.text("dropped a line typed ahead: the password of the failed command");
  await c.stdout.text("alice@127.0.0.1");
  assert.equal(await quit(c), 1, "/login Alice failed");

  assert.ok(!c.stdout.raw.includes(passwordOf("alice")), "the password was not echoed");
  assert.ok(!c.stdout.raw.includes("s3cret-typed-ahead"), "nor the dropped one");
  assert.equal(await Deno.readTextFile(`${home}/history`), "/login alice\n/login Alice\n");
});

ttyTest(
  "a password after a mistyped /login, or typed on its line, is not drawn nor saved",
  async () => {
    await using t = await atTerminal([]);
    const { c, home } = t;
    // A typo of /login, its password typed ahead: the password is dropped, never run.
    await c.type("/lgoin alice\rs3cret-after-typo\r");
    await c.stdout.text("dropped a line typed ahead: the password of the failed command");
    await c.stdout.text("(not logged in)@127.0.0.1");
    // A password typed on the line itself is shown as typed, but kept out of the history.
    await c.type("/login alice s3cret-on-the-line\r");
    await c.stdout.text("usage: /login USER");
    await c.stdout.text("(not logged in)@127.0.0.1");
    await c.type("/status\r");
    await c.stdout.text("known_hosts");
    assert.equal(await quit(c), 1);
    assert.ok(
      !c.stdout.raw.includes("s3cret-after-typo"),
      "the typed-ahead password was not drawn",
    );
    assert.equal(await Deno.readTextFile(`${home}/history`), "/lgoin alice\n/status\n");
  },
);

ttyTest("Ctrl-C at a password prompt says the command was cancelled", async () => {
  await using t = await atTerminal([]);
  const { c } = t;
  await c.type("/login alice\r");
  await c.stdout.text("password for alice: ");
  await c.type("half-typ\x03");
  await c.stdout.text("✗ login cancelled");
  await c.stdout.text("(not logged in)@127.0.0.1");
  await quit(c);
  assert.ok(!c.stdout.raw.includes("half-typ"));
});

ttyTest("@ and Tab complete a username right after the login", async () => {
  await using t = await atTerminal(["alice", "bob"]);
  const { c } = t;
  await logInAlice(c);
  await c.type("@b\t");
  await c.stdout.text("@bob ");
  await c.type("hi\r");
  await c.stdout.text("you → bob: hi");
  assert.equal(await quit(c), 0);
});

ttyTest("a long multi-line paste is inserted at once and sent as one message", async () => {
  await using t = await atTerminal(["alice", "bob"]);
  const { c } = t;
  assert.ok(c.stdout.raw.includes("\x1b[?2004h"), "bracketed paste mode is on");
  await c.type(`/login alice\r${passwordOf("alice")}\r`);
  await c.stdout.text("alice@127.0.0.1");

  // What a terminal sends for a paste: the text between the bracketed-paste markers, its
  // line breaks as CR.
  await c.type("@bob ");
  await c.stdout.text("@bob ");
  const before = c.stdout.raw.length;
  await c.type(`\x1b[200~${"x".repeat(6000)}\rsecond line END\x1b[201~`);
  await c.stdout.text("second line END");
  const written = c.stdout.raw.length - before;
  // One redraw of the row for the whole paste, not one (or a whole line's worth) per character.
  assert.ok(written < 500, `${written} bytes written for a paste of 6016 characters`);
  await c.type("\r");
  await c.stdout.text(`you → bob: ${"x".repeat(6000)}`);
  await c.stdout.text("│ second line END");

  // Larger than any message: refused as a whole, the line left as it was.
  await c.type(`\x1b[200~${"y".repeat(17_000)}\x1b[201~`);
  await c.stdout.text("(pasted text not inserted: 17000 bytes, above the 16384 a message holds)");
  // Several pasted lines are never several commands, nor shown: one may be a password.
  await c.type("\x15"); // Ctrl-U: an empty line
  await c.type(`\x1b[200~/users\r/login alice\rhunter2-pasted\r\x1b[201~`);
  await c.stdout.text(
    "(pasted text not inserted: several lines can only be one message's text: type @USER " +
      "and a space, then paste)",
  );
  await c.type("\r");
  await c.stdout.text("alice@127.0.0.1");
  assert.equal(await quit(c), 0);
  assert.ok(!c.stdout.raw.includes("users ("), "/users did not run");
  assert.ok(!c.stdout.raw.includes("hunter2-pasted"), "the pasted lines were not shown");
});

ttyTest("/signup shows a spinner while the key pair is made, then the key", async () => {
  await using t = await atTerminal([], "--rsa-bits", "2048");
  const { c } = t;
  await c.type("/signup carol\r");
  await c.stdout.text("new password for carol: ");
  await c.type(passwordOf("carol") + "\r");
  await c.stdout.text("again, to be sure: ");
  await c.type(passwordOf("carol") + "\r");
  // The spinner runs in the prompt's row, its first frame drawn at once.
  await c.stdout.text("making your RSA-2048 key pair |");
  await c.stdout.text("making your RSA-2048 key pair: done in ");
  await c.stdout.text("signed up as carol");
  await c.stdout.text("is published with the account");
  assert.equal(await quit(c), 0);
});

ttyTest(
  "a client killed by a signal gives the terminal back: echo, lines, no bracketed paste",
  async () => {
    await using dir = await tempDir();
    await using server = await TestServer.start(dir.path);
    for (const [signal, status] of [["SIGTERM", 143], ["SIGINT", 130], ["SIGHUP", 129]] as const) {
      await using c = terminalClientThen(server.port, `${dir.path}/home`, "stty -a");
      await c.stdout.text("(not logged in)@127.0.0.1");
      const pid = Number(/client-pid=(\d+)/.exec(c.stdout.raw)?.[1]);
      assert.ok(pid > 0, "the client's pid is printed");
      Deno.kill(pid, signal);
      await c.stdout.text(`exit-status=${status}`);
      await c.stdout.text("speed"); // stty -a's first line
      assert.equal(await c.finish(), 0, "stty ran");
      const after = c.stdout.raw.slice(c.stdout.raw.lastIndexOf("exit-status="));
      assert.match(after, /(^|\s)icanon(\s|$)/, `${signal}: line discipline back`);
      assert.match(after, /(^|\s)echo(\s|$)/, `${signal}: echo back`);
      assert.ok(c.stdout.raw.includes("\x1b[?2004l"), `${signal}: bracketed paste off`);
    }
  },
);

ttyTest(
  "Ctrl-C twice while the connection hangs quits at once, not at the handshake's timeout",
  async () => {
    // A server that accepts and never answers.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })().catch(() => {});
    try {
      await using dir = await tempDir();
      await using c = terminalClient(listener.addr.port, `${dir.path}/home`);
      await c.stdout.text("connecting to");
      const started = performance.now();
      await c.type("\x03");
      await c.stdout.text("(a command is running: Ctrl-C again to quit now)");
      await c.type("\x03");
      assert.equal(await c.finish(), 130);
      assert.ok(performance.now() - started < HANDSHAKE_TIMEOUT_MS, "before the timeout");
      assert.ok(c.stdout.raw.includes("\x1b[?2004l"), "the terminal is given back");
    } finally {
      listener.close();
      for (const conn of held) conn.close();
      await accepting;
    }
  },
);
