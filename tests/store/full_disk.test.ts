// A write that fails (here: past a file-size limit, as on a full disk): the append that met it
// is refused with StoreError "failed", so is every later one, and every acknowledged append is
// in the log when it is opened again.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Event, openEventLog } from "../../store/mod.ts";
import { message, withTempDir } from "./_helpers.ts";

const CHILD = new URL("./_full_disk_child.ts", import.meta.url).pathname;
/** `ulimit -f` in 1 KiB blocks: room for about 200 appends of ~350 bytes. */
const FILE_LIMIT_KIB = 64;

Deno.test("a failed write refuses that append and every later one, and loses nothing acknowledged", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    // SIGXFSZ ignored, so a write past the limit fails with EFBIG instead of killing the child.
    const script = `trap '' XFSZ; ulimit -f ${FILE_LIMIT_KIB}; exec "$0" run -A "$1" "$2"`;
    const output = await new Deno.Command("bash", {
      args: ["-c", script, Deno.execPath(), CHILD, path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.equal(result.failure, "failed");
    assert.equal(result.after, "failed");
    assert.equal(result.sameError, true, "a later append is refused without a new write");
    assert.ok(result.acknowledged > 50, `${result.acknowledged} appends before the limit`);

    // Reopened without the limit: a torn last record is cut, and every acknowledged append is
    // there, in order.
    const events: Event[] = [];
    const { log, report } = await openEventLog(path, { onEvent: (e) => events.push(e) });
    await log.close();
    assert.ok(report.events >= result.acknowledged);
    for (let n = 0; n < result.acknowledged; n++) {
      assert.deepEqual(events[n], message(n, "alice", "bob", "x".repeat(300)), `append ${n}`);
    }
  });
});
