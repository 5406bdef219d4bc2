import assert from "node:assert/strict";
import { join } from "node:path";
import {
  compactionEvents,
  compactLog,
  type Event,
  openEventLog,
  readEventLog,
  replay,
  snapshot,
  StoreCorruptError,
  StoreError,
} from "../../store/mod.ts";
import { message, prng, randomHistory, withTempDir } from "./_helpers.ts";

async function writeLog(path: string, events: readonly Event[]): Promise<void> {
  const { log } = await openEventLog(path, { fsync: "off" });
  await log.appendMany(events);
  await log.close();
}

async function eventsIn(path: string): Promise<Event[]> {
  const events: Event[] = [];
  await readEventLog(path, { onEvent: (e) => events.push(e) });
  return events;
}

for (const seed of [1, 2, 3, 4]) {
  Deno.test(`compactionEvents() rebuild an identical projection (history seed ${seed})`, () => {
    const history = randomHistory(prng(seed), 20_000);
    const state = replay(history);
    assert.ok(
      [...state.cids.values()].some((m) => m.size === 1024),
      "some sender wrapped its cid ring",
    );
    const compacted = compactionEvents(state, 42);
    assert.ok(compacted.length < history.length, `${compacted.length} of ${history.length}`);
    assert.deepEqual(snapshot(replay(compacted)), snapshot(state));
  });
}

Deno.test("compactionEvents() of a compacted state is the same again (a fixed point)", () => {
  const state = replay(randomHistory(prng(5), 5000));
  const once = compactionEvents(state, 1);
  assert.deepEqual(compactionEvents(replay(once), 1), once);
});

Deno.test("compactionEvents() keep the latest hash, the last login and its address", () => {
  const state = replay([
    { type: "user_signed_up", ts: 1, user: "alice", passwordHash: "old" },
    { type: "login_succeeded", ts: 2, user: "alice", addr: "a1" },
    { type: "password_changed", ts: 3, user: "alice", passwordHash: "new" },
    { type: "login_succeeded", ts: 4, user: "alice", addr: "a2" },
    { type: "user_signed_up", ts: 5, user: "bob", passwordHash: "b" },
  ]);
  assert.deepEqual(compactionEvents(state, 9, new Map([["alice", "a2"]])), [
    { type: "user_signed_up", ts: 1, user: "alice", passwordHash: "new" },
    { type: "login_succeeded", ts: 4, user: "alice", addr: "a2" },
    { type: "user_signed_up", ts: 5, user: "bob", passwordHash: "b" },
    { type: "log_compacted", ts: 9, events: 5 },
  ]);
});

Deno.test("compactLog() swaps in a smaller log with the same projection and keeps a backup", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const history = randomHistory(prng(11), 8000);
    await writeLog(path, history);
    const before = await Deno.readFile(path);
    const report = await compactLog(path, { now: () => 1_800_000_000_000 });
    assert.equal(report.eventsBefore, history.length);
    assert.equal(report.backupPath, `${path}.bak-1800000000000`);
    assert.deepEqual(await Deno.readFile(report.backupPath), before);
    const after = await Deno.stat(path);
    assert.equal(after.size, report.bytesAfter);
    assert.ok(
      report.bytesAfter < report.bytesBefore,
      `${report.bytesAfter} of ${report.bytesBefore}`,
    );
    assert.equal(after.mode! & 0o777, 0o600);
    const { log, state, report: opened } = await openEventLog(path);
    await log.close();
    assert.equal(opened.events, report.eventsAfter);
    assert.deepEqual(snapshot(state), snapshot(replay(history)));
    assert.equal(state.events, history.length);
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["events.log", "events.log.bak-1800000000000"]);
  });
});

Deno.test("compactLog() copies the old log to its backup where hard links fail", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const history = randomHistory(prng(12), 2000);
    await writeLog(path, history);
    const before = await Deno.readFile(path);
    let tried = 0;
    const report = await compactLog(path, {
      now: () => 1_800_000_000_000,
      link: () => {
        tried++;
        return Promise.reject(new Deno.errors.NotSupported("no hard links here"));
      },
    });
    assert.equal(tried, 1);
    // A copy, not a second name: its own inode, the old bytes, owner-only mode.
    assert.deepEqual(await Deno.readFile(report.backupPath), before);
    const backup = await Deno.stat(report.backupPath);
    assert.equal(backup.nlink, 1);
    assert.equal(backup.mode! & 0o777, 0o600);
    const { log, state } = await openEventLog(path);
    await log.close();
    assert.deepEqual(snapshot(state), snapshot(replay(history)));
  });
});

Deno.test("a compacted log takes appends and compacts again to the same projection", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const history = randomHistory(prng(12), 4000);
    await writeLog(path, history.slice(0, 3000));
    await compactLog(path, { now: () => 1 });
    {
      const { log } = await openEventLog(path);
      await log.appendMany(history.slice(3000));
      await log.close();
    }
    const second = await compactLog(path, { now: () => 2 });
    const { log, state } = await openEventLog(path);
    await log.close();
    assert.deepEqual(snapshot(state), snapshot(replay(history)));
    assert.equal(second.backupPath, `${path}.bak-2`);
    // The last record of a compacted log says how many events it stands for.
    assert.deepEqual((await eventsIn(path)).at(-1), { type: "log_compacted", ts: 2, events: 4000 });
  });
});

Deno.test("compactLog() keeps the address of each user's last login", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, [
      { type: "user_signed_up", ts: 1, user: "alice", passwordHash: "h" },
      { type: "login_succeeded", ts: 2, user: "alice", addr: "198.51.100.1:1" },
      { type: "login_succeeded", ts: 3, user: "alice", addr: "198.51.100.2:2" },
      { type: "login_failed", ts: 4, user: "alice", addr: "203.0.113.9:9" },
    ]);
    await compactLog(path, { now: () => 5 });
    const logins = (await eventsIn(path)).filter((e) => e.type === "login_succeeded");
    assert.deepEqual(logins, [{
      type: "login_succeeded",
      ts: 3,
      user: "alice",
      addr: "198.51.100.2:2",
    }]);
  });
});

Deno.test("compactLog() refuses a log that is open elsewhere and changes nothing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, [message(1)]);
    const { log } = await openEventLog(path);
    try {
      await assert.rejects(
        compactLog(path),
        (e: unknown) => e instanceof StoreError && e.code === "locked",
      );
    } finally {
      await log.close();
    }
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["events.log"]);
  });
});

Deno.test("compactLog() refuses a corrupt log and leaves it as it was", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, Array.from({ length: 10 }, (_, n) => message(n)));
    const bytes = await Deno.readFile(path);
    bytes[100]! ^= 0x10;
    await Deno.writeFile(path, bytes);
    await assert.rejects(compactLog(path), StoreCorruptError);
    assert.deepEqual(await Deno.readFile(path), bytes);
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["events.log"]);
  });
});

Deno.test("compactLog() replaces a temporary file left by a compaction that died", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, [message(1), message(2)]);
    await Deno.writeTextFile(`${path}.compact-tmp`, "half-written garbage");
    await compactLog(path, { now: () => 7 });
    const { log, state } = await openEventLog(path);
    await log.close();
    assert.deepEqual(snapshot(state), snapshot(replay([message(1), message(2)])));
    await assert.rejects(Deno.stat(`${path}.compact-tmp`), Deno.errors.NotFound);
  });
});
