// PostgresEventStore against a real PostgreSQL (tests/_postgres.ts): round trips, group
// commit, the follower's order and tags, and the cluster-wide rules inside mixed batches.

import assert from "node:assert/strict";
import { CID_MEMORY } from "../../protocol/limits.ts";
import {
  AppendConflict,
  CidMemory,
  DEFERRED_COMMIT_MS,
  type Event,
  importIntoPostgres,
  readPostgresLog,
  replay,
  snapshot,
  StoreError,
} from "../../store/mod.ts";
import { openPostgresStore, type PostgresEventStore } from "../../store/postgres_store.ts";
import { pgTest, waitFor } from "../_postgres.ts";
import { everyEventType, fakeHash, message } from "./_helpers.ts";

/** What a follower was handed, one entry per event, with the tag it came with. */
type Seen<Tag> = { event: Event; tag: Tag | undefined }[];

function recording<Tag>(store: PostgresEventStore<Tag>): Seen<Tag> {
  const seen: Seen<Tag> = [];
  store.follow((events, tag) => {
    for (const event of events) seen.push({ event, tag });
  });
  return seen;
}

function signUp(user: string, ts = 1): Event {
  return { type: "user_signed_up", ts, user, passwordHash: fakeHash(user) };
}

function withCid(n: number, cid: string, from = "alice"): Event {
  return { ...message(n, from), cid } as Event;
}

pgTest("events appended to PostgreSQL replay into the same projection", async (db) => {
  const first = await openPostgresStore<string>(db.url);
  assert.equal(first.report.created, true);
  assert.equal(first.report.events, 0);
  const seen = recording(first.store);
  const events = everyEventType(); // a text holding U+0000, which text and jsonb refuse
  await first.store.append(events.slice(0, 4), "a");
  for (const event of events.slice(4)) await first.store.append([event], "b");
  await first.store.close();
  assert.deepEqual(seen.map((s) => s.event), events);

  const replayed: Event[] = [];
  const positions: number[] = [];
  const second = await openPostgresStore(db.url, {
    onEvent(event, position) {
      replayed.push(event);
      positions.push(position);
    },
  });
  await second.store.close();
  assert.equal(second.report.created, false);
  assert.equal(second.report.events, events.length);
  assert.equal(second.report.position, events.length);
  assert.deepEqual(replayed, events);
  assert.deepEqual(positions, events.map((_, i) => i + 1));
  assert.deepEqual(snapshot(second.state), snapshot(replay(events)));
  assert.doesNotMatch(second.report.description, new RegExp(db.cluster?.password ?? "\0"));
});

pgTest("group commit: appends made while a commit runs share the next transaction", async (db) => {
  const { store } = await openPostgresStore<number>(db.url);
  recording(store);
  const first = store.append([message(0)], 0);
  // The first batch is in flight once the current task ends; these 200 queue behind it.
  await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
  const rest = Array.from({ length: 200 }, (_, i) => store.append([message(i + 1)], i + 1));
  await Promise.all([first, ...rest]);
  assert.equal(store.stats.appends, 201);
  assert.equal(store.stats.batches, 2);
  // The database's own view: the rows were inserted by exactly two transactions.
  const [row] = await db.sql.unsafe(
    `SELECT count(*)::int AS events, count(DISTINCT xmin::text)::int AS transactions
     FROM ${db.schema}.events`,
  );
  assert.deepEqual({ ...row }, { events: 201, transactions: 2 });
  await store.close();
});

pgTest("a deferred append waits for the next commit, or DEFERRED_COMMIT_MS alone", async (db) => {
  const { store } = await openPostgresStore<string>(db.url);
  const seen = recording(store);
  const started = performance.now();
  await store.appendDeferred(message(1), "alone");
  assert.ok(performance.now() - started >= DEFERRED_COMMIT_MS - 1);
  const deferred = store.appendDeferred(message(2), "deferred");
  const urgent = store.append([message(3)], "urgent");
  await Promise.all([deferred, urgent]);
  assert.equal(store.stats.batches, 2, "the deferred append rode with the urgent one");
  assert.deepEqual(seen.map((s) => s.tag), ["alone", "deferred", "urgent"]);
  await store.close();
});

pgTest("append resolves after the follower got its events, with their tag", async (db) => {
  const { store } = await openPostgresStore<string>(db.url);
  const seen = recording(store);
  const order: string[] = [];
  store.follow((events, tag) => {
    for (const event of events) seen.push({ event, tag });
    order.push(`follower ${tag}`);
  });
  await Promise.all(
    ["x", "y", "z"].map((tag, i) =>
      store.append([message(i), message(i + 10)], tag).then(() => order.push(`resolved ${tag}`))
    ),
  );
  for (const tag of ["x", "y", "z"]) {
    assert.ok(order.indexOf(`follower ${tag}`) >= 0, `the follower got ${tag}`);
    assert.ok(order.indexOf(`follower ${tag}`) < order.indexOf(`resolved ${tag}`), tag);
  }
  assert.deepEqual(seen.map((s) => s.tag), ["x", "x", "y", "y", "z", "z"]);
  await store.close();
});

pgTest("two stores on one log tail each other's appends in the same order", async (db) => {
  const a = await openPostgresStore<string>(db.url);
  const b = await openPostgresStore<string>(db.url);
  const seenA = recording(a.store);
  const seenB = recording(b.store);
  const appends: Promise<void>[] = [];
  for (let i = 0; i < 50; i++) {
    appends.push(a.store.append([message(2 * i, "alice")], `a${i}`));
    appends.push(b.store.append([message(2 * i + 1, "bob")], `b${i}`));
  }
  await Promise.all(appends);
  await waitFor(
    "both followers to have 100 events",
    () => seenA.length === 100 && seenB.length === 100,
  );
  assert.deepEqual(seenA.map((s) => s.event), seenB.map((s) => s.event));
  // Each store's own events come with their tag, the other's without.
  for (const { event, tag } of seenA) {
    assert.equal(tag === undefined, (event as { from: string }).from === "bob");
  }
  for (const { event, tag } of seenB) {
    assert.equal(tag === undefined, (event as { from: string }).from === "alice");
  }
  await Promise.all([a.store.close(), b.store.close()]);
});

pgTest("refused appends in a mixed batch store nothing; the others commit", async (db) => {
  const setup = await openPostgresStore<string>(db.url);
  recording(setup.store);
  await setup.store.append([signUp("bob"), withCid(0, "used")], "setup");
  await setup.store.append(
    [{ type: "cid_remembered", ts: 4, from: "carol", cid: "k", msg: "m" }],
    "k",
  );
  await setup.store.close();

  const { store } = await openPostgresStore<string>(db.url);
  const seen = recording(store);
  const batchesBefore = store.stats.batches;
  const results = await Promise.allSettled([
    store.append([signUp("alice")], "alice"),
    store.append([signUp("bob", 2), message(1)], "bob again"), // refused whole: no message 1
    store.append([withCid(2, "fresh")], "fresh cid"),
    store.append([withCid(3, "used")], "used cid"),
    store.append([withCid(5, "k", "carol")], "k again"), // the cid_remembered used it
    store.append([signUp("carol")], "carol"),
  ]);
  assert.equal(store.stats.batches - batchesBefore, 1, "one transaction for the whole batch");
  const outcome = results.map((r) =>
    r.status === "fulfilled"
      ? "ok"
      : r.reason instanceof AppendConflict
      ? r.reason.rule
      : String(r.reason)
  );
  assert.deepEqual(outcome, ["ok", "user_exists", "ok", "cid_used", "cid_used", "ok"]);
  assert.deepEqual(seen.map((s) => s.tag), ["alice", "fresh cid", "carol"]);
  const rows = await db.sql.unsafe(`SELECT position, type FROM ${db.schema}.events ORDER BY 1`);
  assert.deepEqual(rows.map((r) => `${r.position} ${r.type}`), [
    "1 user_signed_up",
    "2 message_sent",
    "3 cid_remembered",
    "4 user_signed_up",
    "5 message_sent",
    "6 user_signed_up",
  ]);
  await store.close();
});

pgTest("a conflict is told after the follower has the event it conflicts with", async (db) => {
  const a = await openPostgresStore<string>(db.url);
  const b = await openPostgresStore<string>(db.url, { pollIntervalMs: 60_000 });
  recording(a.store);
  const seenB = recording(b.store);
  await a.store.append([signUp("dora"), withCid(1, "c1")], "a");
  // B may not have read A's events yet; its refusals must wait until it has.
  const refusals = await Promise.allSettled([
    b.store.append([signUp("dora", 5)], "b1").catch((e) => {
      assert.ok(seenB.some((s) => s.event.type === "user_signed_up" && s.event.user === "dora"));
      throw e;
    }),
    b.store.append([withCid(2, "c1")], "b2").catch((e) => {
      assert.ok(seenB.some((s) => s.event.type === "message_sent" && s.event.cid === "c1"));
      throw e;
    }),
  ]);
  assert.deepEqual(
    refusals.map((r) => r.status === "rejected" && (r.reason as AppendConflict).rule),
    ["user_exists", "cid_used"],
  );
  await Promise.all([a.store.close(), b.store.close()]);
});

pgTest("a cid is refused while among the sender's last CID_MEMORY, like CidMemory", async (db) => {
  const { store } = await openPostgresStore<string>(db.url);
  recording(store);
  const cids = Array.from({ length: CID_MEMORY + 1 }, (_, i) => `cid-${i}`);
  await Promise.all(cids.map((cid, i) => store.append([withCid(i, cid)], cid)));
  const memory = new CidMemory();
  for (const cid of cids) memory.remember(cid, "m", 0);
  // The database refuses exactly the cids the projection's memory still holds.
  // cid-1000 is held; cid-0 is not, and storing it again pushes cid-1 out; cid-3 is held.
  const probes = ["cid-1000", "cid-0", "cid-1", "cid-3", "cid-0", "new"];
  const outcomes: string[] = [];
  let n = 5000;
  for (const cid of probes) {
    const remembered = memory.get(cid) !== undefined;
    const outcome = await store.append([withCid(n++, cid)], cid).then(
      () => "stored",
      (e) => e instanceof AppendConflict ? e.rule : String(e),
    );
    assert.equal(outcome, remembered ? "cid_used" : "stored", cid);
    if (!remembered) memory.remember(cid, "m", 0);
    outcomes.push(outcome);
  }
  assert.deepEqual(outcomes, ["cid_used", "stored", "stored", "cid_used", "cid_used", "stored"]);
  // Another sender's cids are its own.
  await store.append([withCid(5002, "cid-1", "bob")], "bob");
  await store.close();
});

pgTest(
  "an imported history remembers its cids like the appends it copies, each sender's count written once",
  async (db) => {
    const alice = Array.from({ length: CID_MEMORY + 100 }, (_, i) => withCid(i, `cid-${i}`));
    const history: Event[] = [
      signUp("alice"),
      signUp("bob"),
      ...alice,
      withCid(9000, "cid-0"), // a cid used again once it was forgotten, as CidMemory allows
      withCid(9001, "b-1", "bob"),
      { type: "cid_remembered", ts: 5, from: "carol", cid: "k", msg: "m" },
    ];
    await importIntoPostgres(db.url, history);
    // Counting a sender's uses by updating its row once per cid, inside the one transaction
    // of the copy, made a long history quadratic: every update walked the row's versions.
    const stats = () =>
      db.sql.unsafe(
        `SELECT relname, n_tup_ins::int AS ins, n_tup_upd::int AS upd FROM pg_stat_user_tables
         WHERE schemaname = '${db.schema}'`,
      );
    const deadline = performance.now() + 10_000;
    let rows = await stats();
    while (rows.find((r) => r.relname === "events")?.ins !== history.length) {
      assert.ok(performance.now() < deadline, "the import's statistics never showed up");
      await new Promise((r) => setTimeout(r, 20));
      rows = await stats();
    }
    const senders = rows.find((r) => r.relname === "cid_senders")!;
    assert.deepEqual({ ins: senders.ins, upd: senders.upd }, { ins: 3, upd: 0 });

    const { store } = await openPostgresStore<string>(db.url);
    recording(store);
    const memory = new CidMemory();
    for (const event of history) {
      if (event.type === "message_sent" && event.from === "alice") {
        memory.remember(event.cid!, "m", 0);
      }
    }
    const probes: [string, string][] = [
      ["alice", `cid-${CID_MEMORY + 99}`],
      ["alice", "cid-0"],
      ["alice", "cid-1"],
      ["alice", "cid-150"],
      ["bob", "b-1"],
      ["carol", "k"],
    ];
    const outcomes: string[] = [];
    let n = 20_000;
    for (const [from, cid] of probes) {
      outcomes.push(
        await store.append([withCid(n++, cid, from)], cid).then(
          () => "stored",
          (e) => e instanceof AppendConflict ? e.rule : String(e),
        ),
      );
    }
    assert.equal(memory.get("cid-1"), undefined, "cid-1 is forgotten: 1124 uses came after it");
    assert.deepEqual(outcomes, [
      "cid_used",
      "cid_used",
      "stored",
      "cid_used",
      "cid_used",
      "cid_used",
    ]);
    await assert.rejects(store.append([signUp("bob", 7)], "bob"), AppendConflict);
    await store.close();
  },
);

pgTest("appends of a closed store are refused; close commits deferred ones", async (db) => {
  const { store } = await openPostgresStore<string>(db.url);
  const seen = recording(store);
  const deferred = store.appendDeferred(message(1), "deferred");
  await store.close();
  await deferred;
  assert.equal(seen.length, 1);
  await assert.rejects(store.append([message(2)], "late"), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.equal(e.code, "closed");
    return true;
  });
});

pgTest("a malformed event is refused at once and stores nothing", async (db) => {
  const { store } = await openPostgresStore<string>(db.url);
  recording(store);
  const bad = { type: "message_sent", ts: 1, msg: "m", from: "a", to: "b" } as unknown as Event;
  await assert.rejects(store.append([message(1), bad], "bad"), TypeError);
  await store.append([message(2)], "good");
  const rows = await db.sql.unsafe(`SELECT count(*)::int AS n FROM ${db.schema}.events`);
  assert.equal(rows[0]!.n, 1);
  await store.close();
});

pgTest("rows are append-only: the database refuses to change or remove one", async (db) => {
  const { store } = await openPostgresStore<string>(db.url);
  recording(store);
  await store.append([message(1)], "x");
  await store.close();
  for (
    const statement of [
      `UPDATE ${db.schema}.events SET type = 'x'`,
      `DELETE FROM ${db.schema}.events`,
      `TRUNCATE ${db.schema}.events`,
    ]
  ) {
    await assert.rejects(db.sql.unsafe(statement), /append-only/);
  }
});

pgTest(
  "a URL whose host is an IPv6 literal reaches that host (the driver alone would look up '[')",
  async (db) => {
    // The throwaway cluster listens on 127.0.0.1; its IPv4-mapped IPv6 form is an IPv6 literal
    // that reaches it through an IPv6 socket.
    const url = db.url.replace("@127.0.0.1:", "@[::ffff:127.0.0.1]:");
    assert.notEqual(url, db.url, "the test database's URL names 127.0.0.1");
    const { store } = await openPostgresStore<string>(url);
    const seen = recording(store);
    await store.append([signUp("ipv6")], "a");
    await store.close();
    assert.deepEqual(seen, [{ event: signUp("ipv6"), tag: "a" }]);
    const read: Event[] = [];
    await readPostgresLog(url, { onEvent: (event) => read.push(event) });
    assert.deepEqual(read, [signUp("ipv6")]);
  },
);

pgTest(
  "a tool reading a schema that does not exist is told there is no log, not shown an empty one",
  async (db) => {
    const missing = db.url.replace(`schema=${db.schema}`, `schema=${db.schema}_typo`);
    assert.notEqual(missing, db.url);
    await assert.rejects(
      readPostgresLog(missing, { onEvent() {} }),
      (e) =>
        e instanceof StoreError && e.code === "bad_path" &&
        e.message.includes(`no schema ${db.schema}_typo`),
    );
  },
);

pgTest(
  "catch-ups share head queries: one running, the next shared by every call since, each seeing what came before its call",
  async (db) => {
    const reader = await openPostgresStore<string>(db.url);
    const writer = await openPostgresStore<string>(db.url);
    try {
      const seen = recording(reader.store);
      recording(writer.store);
      const before = reader.store.stats.headQueries;
      const first = Array.from({ length: 50 }, () => reader.store.catchUp());
      // Committed after the first 50 calls and before the next 50: those must see it.
      await writer.store.append([signUp("late")], "w");
      const second = Array.from({ length: 50 }, () => reader.store.catchUp());
      await Promise.all(second);
      assert.ok(
        seen.some((s) => s.event.type === "user_signed_up" && s.event.user === "late"),
        "a catch-up asked after a commit has applied it",
      );
      await Promise.all(first);
      const queries = reader.store.stats.headQueries - before;
      assert.equal(queries, 2, `100 catch-ups in two bursts made ${queries} head queries`);
    } finally {
      await reader.store.close();
      await writer.store.close();
    }
  },
);
