import assert from "node:assert/strict";
import { join } from "node:path";
import {
  canonicalSnapshot,
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
    const compacted = compactionEvents(state, 1_800_000_000_000);
    assert.ok(compacted.length < history.length, `${compacted.length} of ${history.length}`);
    assert.deepEqual(canonicalSnapshot(replay(compacted)), canonicalSnapshot(state));
    assertTimeOrder(compacted);
  });
}

/** Asserts that `events` are oldest first, each `ts` at least the one before. */
function assertTimeOrder(events: readonly Event[]): void {
  for (let i = 1; i < events.length; i++) {
    assert.ok(
      events[i]!.ts >= events[i - 1]!.ts,
      `event ${i} (${events[i]!.type} at ${events[i]!.ts}) after ${events[i - 1]!.type} at ${
        events[i - 1]!.ts
      }`,
    );
  }
}

Deno.test("compactionEvents() are in time order across users, queues and cid memories", () => {
  const compacted = compactionEvents(
    replay([
      { type: "user_signed_up", ts: 1, user: "alice", passwordHash: "a" },
      { type: "user_signed_up", ts: 2, user: "bob", passwordHash: "b" },
      { ...message(1, "alice", "bob"), ts: 3 },
      { ...message(2, "bob", "alice"), ts: 4 },
      { ...message(3, "alice", "bob"), ts: 5 },
      { type: "login_succeeded", ts: 6, user: "alice", addr: "a1" },
      { type: "message_delivered", ts: 7, msg: "m1", user: "bob" },
    ]),
    9,
  );
  assert.deepEqual(compacted.map((e) => [e.type, e.ts]), [
    ["user_signed_up", 1],
    ["user_signed_up", 2],
    ["cid_remembered", 3],
    ["message_sent", 4],
    ["cid_remembered", 4],
    ["message_sent", 5],
    ["cid_remembered", 5],
    ["login_succeeded", 6],
    ["log_compacted", 9],
  ]);
});

Deno.test("compactionEvents() keep each group's order when the clock went back", () => {
  // Stamps from a clock stepped back: replay still needs sign-ups in order, a login after
  // its sign-up, and each queue oldest first.
  const history: Event[] = [
    { type: "user_signed_up", ts: 50, user: "carol", passwordHash: "c" },
    { type: "user_signed_up", ts: 10, user: "dave", passwordHash: "d" },
    { type: "login_succeeded", ts: 5, user: "dave", addr: "x" },
    { ...message(1, "carol", "dave"), ts: 40 },
    { ...message(2, "carol", "dave"), ts: 30 },
  ];
  const state = replay(history);
  const compacted = compactionEvents(state, 60);
  assert.deepEqual(snapshot(replay(compacted)), snapshot(state));
});

Deno.test("compactionEvents() of a compacted state is the same again (a fixed point)", () => {
  const state = replay(randomHistory(prng(5), 5000));
  const once = compactionEvents(state, 1_800_000_000_000);
  assert.deepEqual(compactionEvents(replay(once), 1_800_000_000_000), once);
  assertTimeOrder(once);
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

Deno.test("compactionEvents() keep every key a user published, oldest first, and sealed messages as sent", () => {
  const key = (ts: number) => ({
    type: "user_key_published" as const,
    ts,
    user: "alice",
    key: `K${ts}`,
    fingerprint: `SHA256:${ts}`,
    bits: 3072,
  });
  const state = replay([
    { type: "user_signed_up", ts: 1, user: "alice", passwordHash: "h" },
    { type: "user_signed_up", ts: 2, user: "bob", passwordHash: "h" },
    key(3),
    key(4),
    {
      type: "sealed_message_sent",
      ts: 5,
      msg: "s1",
      from: "bob",
      to: "alice",
      sealed: "SFNF",
      cid: "c",
    },
  ]);
  const compacted = compactionEvents(state, 10);
  assert.deepEqual(
    compacted.filter((e) => e.type === "user_key_published").map((e) => e.ts),
    [3, 4],
  );
  assert.deepEqual(compacted.filter((e) => e.type === "sealed_message_sent"), [
    { type: "sealed_message_sent", ts: 5, msg: "s1", from: "bob", to: "alice", sealed: "SFNF" },
  ]);
  assert.deepEqual(canonicalSnapshot(replay(compacted)), canonicalSnapshot(state));
});

Deno.test("compactLog() swaps in a smaller log with the same projection and keeps a backup", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const history = randomHistory(prng(11), 8000);
    await writeLog(path, history);
    const before = await Deno.readFile(path);
    const report = await compactLog(path, { now: () => 1_800_000_000_000 });
    assert.equal(report.eventsBefore, history.length);
    assert.equal(report.backupPath, `${path}.2027-01-15T08-00-00.000Z.bak`);
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
    assert.deepEqual(canonicalSnapshot(state), canonicalSnapshot(replay(history)));
    assert.equal(state.events, history.length);
    assertTimeOrder(await eventsIn(path));
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["events.log", "events.log.2027-01-15T08-00-00.000Z.bak"]);
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
    assert.deepEqual(canonicalSnapshot(state), canonicalSnapshot(replay(history)));
  });
});

Deno.test("compactLog() names backups by readable UTC time, in order, never reusing a name", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, [message(1)]);
    const first = await compactLog(path, { now: () => Date.UTC(2026, 11, 3, 10, 15, 0, 7) });
    const second = await compactLog(path, { now: () => Date.UTC(2026, 11, 3, 10, 15, 0, 7) });
    const third = await compactLog(path, { now: () => Date.UTC(2026, 11, 3, 10, 15, 1) });
    assert.deepEqual([first, second, third].map((r) => r.backupPath.slice(dir.length + 1)), [
      "events.log.2026-12-03T10-15-00.007Z.bak",
      "events.log.2026-12-03T10-15-00.008Z.bak",
      "events.log.2026-12-03T10-15-01.000Z.bak",
    ]);
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
    assert.deepEqual(canonicalSnapshot(state), canonicalSnapshot(replay(history)));
    assert.equal(second.backupPath, `${path}.1970-01-01T00-00-00.002Z.bak`);
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
    assert.deepEqual(canonicalSnapshot(state), canonicalSnapshot(replay([message(1), message(2)])));
    await assert.rejects(Deno.stat(`${path}.compact-tmp`), Deno.errors.NotFound);
  });
});
