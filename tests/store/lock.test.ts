// A second process on the same log is refused, and the lock dies with its holder.

import assert from "node:assert/strict";
import { join } from "node:path";
import { openEventLog } from "../../store/mod.ts";
import { withTempDir } from "./_helpers.ts";

const CHILD = new URL("./_crash_child.ts", import.meta.url).pathname;

async function tryOpenInChild(path: string): Promise<{ code: number; stdout: string }> {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHILD, "try-open", path],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return { code, stdout: new TextDecoder().decode(stdout).trim() };
}

Deno.test("a second process opening a log in use is refused with a clear message", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    try {
      const refused = await tryOpenInChild(path);
      assert.equal(refused.code, 3);
      assert.match(
        refused.stdout,
        /^StoreError locked: event log .*events\.log is locked by another process/,
      );
    } finally {
      await log.close();
    }
    const allowed = await tryOpenInChild(path);
    assert.deepEqual(allowed, { code: 0, stdout: "opened" });
  });
});

Deno.test("a log whose holder was killed opens again: the lock does not outlive a crash", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", CHILD, "append", path, "1", "always"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    // Wait until the child holds the log (it has appended), then kill it.
    const reader = child.stdout.getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    child.kill("SIGKILL");
    while (!(await reader.read()).done) { /* drain */ }
    assert.equal((await child.status).signal, "SIGKILL");
    const { log, report } = await openEventLog(path);
    await log.close();
    assert.ok(report.events >= 1);
  });
});
