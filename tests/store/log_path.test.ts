// Where a log may live: missing directories are created for it, and a path that cannot hold
// a log (a directory, a path through a file) is refused with StoreError `bad_path`, naming it.

import assert from "node:assert/strict";
import { join } from "node:path";
import { LOG_DIR_MODE, openEventLog, readEventLog, StoreError } from "../../store/mod.ts";
import { message, withTempDir } from "./_helpers.ts";

Deno.test("openEventLog() creates the missing directories above a new log, mode 0700", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "chat", "data", "events.log");
    const { log, report } = await openEventLog(path);
    await log.append(message(1));
    await log.close();
    assert.equal(report.created, true);
    assert.deepEqual(report.createdDirectories, [join(dir, "chat"), join(dir, "chat", "data")]);
    for (const created of report.createdDirectories!) {
      assert.equal((await Deno.stat(created)).mode! & 0o777, LOG_DIR_MODE);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    // Reopening finds the log where it was put and creates nothing more.
    const again = await openEventLog(path);
    await again.log.close();
    assert.equal(again.report.events, 1);
    assert.equal(again.report.createdDirectories, undefined);
  });
});

Deno.test("openEventLog() of a directory is refused with StoreError bad_path naming it", async () => {
  await withTempDir(async (dir) => {
    for (const repair of [false, true]) {
      await assert.rejects(
        openEventLog(dir, { repair }),
        (e: unknown) =>
          e instanceof StoreError && e.code === "bad_path" &&
          e.message ===
            `cannot open event log ${dir}: it is a directory; give the path of a file in it`,
      );
    }
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("openEventLog() under a file is refused with StoreError bad_path naming the path", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "plain.txt");
    await Deno.writeTextFile(file, "not a directory");
    const path = join(file, "sub", "events.log");
    await assert.rejects(
      openEventLog(path),
      (e: unknown) =>
        e instanceof StoreError && e.code === "bad_path" && e.message.includes(path) &&
        /not a directory/.test(e.message),
    );
    assert.equal(await Deno.readTextFile(file), "not a directory");
  });
});

Deno.test("readEventLog() of a directory is refused with StoreError bad_path naming it", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      readEventLog(dir, { onEvent() {} }),
      (e: unknown) =>
        e instanceof StoreError && e.code === "bad_path" &&
        e.message === `${dir} is a directory, not an event log`,
    );
  });
});
