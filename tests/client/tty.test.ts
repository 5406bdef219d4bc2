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
