// `deno task compact` (admin/compact_log.ts), run with the task's permissions.

import assert from "node:assert/strict";
import { join } from "node:path";
import { canonicalSnapshot, openEventLog, replay } from "../../store/mod.ts";
import { prng, randomHistory, withTempDir } from "./_helpers.ts";

const CLI = new URL("../../admin/compact_log.ts", import.meta.url).pathname;

async function compact(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", CLI, ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("compact rewrites the log, says what it did and where the backup is", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const history = randomHistory(prng(21), 3000);
    {
      const { log } = await openEventLog(path, { fsync: "off" });
      await log.appendMany(history);
      await log.close();
    }
    const { code, stdout, stderr } = await compact("--log", path);
    assert.equal(code, 0, stderr);
    const match = stdout.match(
      /^compacted .*events\.log: 3000 → \d+ events, .* the old log is kept as (.*)\n$/,
    );
    assert.ok(match, stdout);
    assert.equal((await Deno.stat(match[1]!)).isFile, true);
    const { log, state } = await openEventLog(path);
    await log.close();
    assert.deepEqual(canonicalSnapshot(state), canonicalSnapshot(replay(history)));
  });
});

Deno.test("compact gives sizes in bytes, KiB or MiB and names the backup by its UTC time", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    {
      const { log } = await openEventLog(path);
      await log.close(); // a log of only its 20-byte header
    }
    const small = await compact("--log", path);
    assert.equal(small.code, 0, small.stderr);
    const match = small.stdout.match(
      /: 0 → 1 event, 20 bytes → (\d+) bytes, in \d+ ms; the old log is kept as (.*)\n$/,
    );
    assert.ok(match, small.stdout);
    assert.equal(Number(match[1]), (await Deno.stat(path)).size);
    assert.match(match[2]!, /events\.log\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.bak$/);
    {
      const { log } = await openEventLog(path, { fsync: "off" });
      await log.appendMany(randomHistory(prng(22), 3000));
      await log.close();
    }
    const kib = await compact("--log", path);
    assert.equal(kib.code, 0, kib.stderr);
    assert.match(kib.stdout, /: 3001 → \d+ events, \d+\.\d KiB → \d+\.\d KiB, /);
  });
});

Deno.test("compact refuses a log in use, telling to stop the server", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    try {
      const { code, stderr } = await compact("--log", path);
      assert.equal(code, 1);
      assert.match(stderr, /locked by another process.*stop the server first/);
    } finally {
      await log.close();
    }
  });
});

Deno.test("compact of a missing log fails and creates nothing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { code, stderr } = await compact("--log", path);
    assert.equal(code, 1);
    assert.match(stderr, /no event log at/);
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("compact shows help with status 0 and bad usage with status 2", async () => {
  const help = await compact("-h");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task compact \[--log PATH\]/);
  const bad = await compact("--fsync", "off");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^compact: .*\nRun with --help for usage\./);
});

Deno.test("compact on a log it may not read says so in one line, exit 1, with no stack trace", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    {
      const { log } = await openEventLog(path);
      await log.close();
    }
    // As under `deno task compact` with HYBRID_DATA elsewhere: reading is allowed only there.
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", `--allow-read=${join(dir, "elsewhere")}`, "--allow-env", CLI, "--log", path],
      stdin: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(stderr);
    assert.equal(code, 1, text);
    assert.match(text, /^compact: cannot read .*events\.log: Requires read access/);
    assert.equal(text.trim().split("\n").length, 1, text);
  });
});
