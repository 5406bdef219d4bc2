// The client at a terminal (a pseudo-terminal made by `script`): passwords are not echoed and
// never reach the history file; messages appear above the prompt; Ctrl-D leaves.
import assert from "node:assert/strict";
import { HAS_SCRIPT, passwordOf, signUp, tempDir, terminalClient, TestServer } from "./_harness.ts";

Deno.test({
  name: "at a terminal the password is not echoed nor saved, and Ctrl-D quits",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using dir = await tempDir();
    await using server = await TestServer.start(dir.path);
    await signUp(server.port, `${dir.path}/setup`, "alice");
    const home = `${dir.path}/home`;
    await using c = terminalClient(server.port, home);

    await c.stdout.text("(not logged in)@127.0.0.1");
    await c.type("/login alice\r");
    await c.stdout.text("password for alice: ");
    await c.type(passwordOf("alice") + "\r");
    await c.stdout.text("logged in as alice");
    await c.type("@alice a note to self\r");
    await c.stdout.text("alice: a note to self");
    await c.stdout.text("alice@127.0.0.1");
    await c.type("\x04");
    assert.equal(await c.finish(), 0);

    assert.ok(!c.stdout.raw.includes(passwordOf("alice")), "the password was not echoed");
    assert.equal(
      await Deno.readTextFile(`${home}/history`),
      "/login alice\n@alice a note to self\n",
    );
    assert.equal((await Deno.stat(`${home}/history`)).mode! & 0o777, 0o600);
  },
});

Deno.test({
  name: "at a terminal a password typed ahead of its prompt is not echoed nor saved",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using dir = await tempDir();
    await using server = await TestServer.start(dir.path);
    await signUp(server.port, `${dir.path}/setup`, "alice");
    const home = `${dir.path}/home`;
    await using c = terminalClient(server.port, home);

    await c.stdout.text("(not logged in)@127.0.0.1");
    // One write: the password is there before the client asks for it.
    await c.type(`/login alice\r${passwordOf("alice")}\r`);
    await c.stdout.text("logged in as alice");
    // A failed /login's password typed ahead is dropped, never run as a command.
    await c.type("/login Alice\rs3cret-typed-ahead\r");
    await c.stdout.text("dropped a line typed ahead: the password of the failed command");
    await c.stdout.text("alice@127.0.0.1");
    await c.type("\x04");
    assert.equal(await c.finish(), 1, "/login Alice failed");

    assert.ok(!c.stdout.raw.includes(passwordOf("alice")), "the password was not echoed");
    assert.ok(!c.stdout.raw.includes("s3cret-typed-ahead"), "nor the dropped one");
    assert.equal(await Deno.readTextFile(`${home}/history`), "/login alice\n/login Alice\n");
  },
});

Deno.test({
  name: "at a terminal Ctrl-C at a password prompt says the command was cancelled",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using dir = await tempDir();
    await using server = await TestServer.start(dir.path);
    await using c = terminalClient(server.port, `${dir.path}/home`);
    await c.stdout.text("(not logged in)@127.0.0.1");
    await c.type("/login alice\r");
    await c.stdout.text("password for alice: ");
    await c.type("half-typ\x03");
    await c.stdout.text("✗ login cancelled");
    await c.stdout.text("(not logged in)@127.0.0.1");
    await c.type("\x04");
    await c.finish();
    assert.ok(!c.stdout.raw.includes("half-typ"));
  },
});

Deno.test({
  name: "at a terminal @ and Tab complete a username right after the login",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using dir = await tempDir();
    await using server = await TestServer.start(dir.path);
    await signUp(server.port, `${dir.path}/setup`, "alice", "bob");
    await using c = terminalClient(server.port, `${dir.path}/home`);
    await c.stdout.text("(not logged in)@127.0.0.1");
    await c.type("/login alice\r");
    await c.stdout.text("password for alice: ");
    await c.type(passwordOf("alice") + "\r");
    await c.stdout.text("alice@127.0.0.1");
    await c.type("@b\t");
    await c.stdout.text("@bob ");
    await c.type("hi\r");
    await c.stdout.text("you → bob: hi");
    await c.type("\x04");
    assert.equal(await c.finish(), 0);
  },
});

Deno.test({
  name: "at a terminal a long multi-line paste is inserted at once and sent as one message",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using dir = await tempDir();
    await using server = await TestServer.start(dir.path);
    await signUp(server.port, `${dir.path}/setup`, "alice", "bob");
    await using c = terminalClient(server.port, `${dir.path}/home`);
    await c.stdout.text("\x1b[?2004h"); // bracketed paste mode is on
    await c.stdout.text("(not logged in)@127.0.0.1");
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
    await c.type("\x04");
    assert.equal(await c.finish(), 0);
    assert.ok(!c.stdout.raw.includes("users ("), "/users did not run");
    assert.ok(!c.stdout.raw.includes("hunter2-pasted"), "the pasted lines were not shown");
  },
});

Deno.test({
  name: "at a terminal /signup shows a spinner while the key pair is made, then the key",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using dir = await tempDir();
    await using server = await TestServer.start(dir.path);
    await using c = terminalClient(server.port, `${dir.path}/home`, "--rsa-bits", "2048");
    await c.stdout.text("(not logged in)@127.0.0.1");
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
    await c.type("\x04");
    assert.equal(await c.finish(), 0);
  },
});
