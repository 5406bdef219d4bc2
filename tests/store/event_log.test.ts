import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DEFERRED_COMMIT_MS,
  type Event,
  HEADER_BYTES,
  MAX_BATCH_BYTES,
  openEventLog,
  readEventLog,
  replay,
  snapshot,
  StoreError,
} from "../../store/mod.ts";
import { everyEventType, message, prng, randomHistory, withTempDir } from "./_helpers.ts";

/** Every event in the log at `path`, in order. */
async function eventsIn(path: string): Promise<Event[]> {
  const events: Event[] = [];
  await readEventLog(path, { onEvent: (e) => events.push(e) });
  return events;
}

Deno.test("openEventLog() creates a missing log with only a header, mode 0600", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log, state, report } = await openEventLog(path);
    await log.close();
    assert.equal(report.created, true);
    assert.equal(report.events, 0);
    assert.equal(report.bytes, HEADER_BYTES);
    assert.equal(state.events, 0);
    const info = await Deno.stat(path);
    assert.equal(info.size, HEADER_BYTES);
    assert.equal(info.mode! & 0o777, 0o600);
  });
});

Deno.test("events appended, closed and reopened come back the same, state included", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const events = [...everyEventType(), ...randomHistory(prng(7), 500)];
    {
      const { log } = await openEventLog(path);
      for (const event of events) await log.append(event);
      await log.close();
    }
    const seen: Event[] = [];
    const { log, state, report } = await openEventLog(path, { onEvent: (e) => seen.push(e) });
    await log.close();
    assert.deepEqual(seen, events);
    assert.equal(report.created, false);
    assert.equal(report.events, events.length);
    assert.equal(report.tornTail, undefined);
    assert.deepEqual(snapshot(state), snapshot(replay(events)));
  });
});

Deno.test("many concurrent appends are all written, in call order, in fewer syncs than appends", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    const resolved: number[] = [];
    const appends: Promise<void>[] = [];
    for (let n = 0; n < 2000; n++) {
      appends.push(log.append(message(n)).then(() => void resolved.push(n)));
      // Let some of the appends arrive while a write or sync is already running.
      if (n % 50 === 0) await Promise.resolve();
    }
    await Promise.all(appends);
    const { appends: count, batches } = log.stats;
    await log.close();
    assert.equal(count, 2000);
    assert.ok(batches < 2000 && batches >= 1, `batches ${batches}`);
    // Promises resolve in the order the appends were made …
    assert.deepEqual(resolved, Array.from({ length: 2000 }, (_, n) => n));
    // … and the file holds every event once, in that order.
    const msgs = (await eventsIn(path)).map((e) => (e as { msg: string }).msg);
    assert.deepEqual(msgs, Array.from({ length: 2000 }, (_, n) => `m${n}`));
  });
});

Deno.test("appends from independent async tasks interleave but each task's order is kept", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    const tasks = ["a", "b", "c", "d"].map(async (from) => {
      for (let n = 0; n < 100; n++) await log.append(message(n, from, "z", `${from}${n}`));
    });
    await Promise.all(tasks);
    await log.close();
    const texts = (await eventsIn(path)).map((e) => (e as { text: string }).text);
    assert.equal(texts.length, 400);
    for (const from of ["a", "b", "c", "d"]) {
      assert.deepEqual(
        texts.filter((t) => t.startsWith(from)),
        Array.from({ length: 100 }, (_, n) => `${from}${n}`),
      );
    }
  });
});

Deno.test("appendMany() writes its events together and in order", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    await log.appendMany([message(1), message(2)]);
    await log.appendMany([]);
    const both = Promise.all([log.append(message(3)), log.appendMany([message(4), message(5)])]);
    await both;
    await log.close();
    const msgs = (await eventsIn(path)).map((e) => (e as { msg: string }).msg);
    assert.deepEqual(msgs, ["m1", "m2", "m3", "m4", "m5"]);
  });
});

Deno.test("appendDeferred() rides the next append's commit, in order, without a sync of its own", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    const deferred = log.appendDeferred(message(1));
    await log.append(message(2));
    await deferred;
    assert.equal(log.stats.batches, 1);
    assert.equal(log.stats.appends, 2);
    await log.close();
    const msgs = (await eventsIn(path)).map((e) => (e as { msg: string }).msg);
    assert.deepEqual(msgs, ["m1", "m2"]);
  });
});

Deno.test("appendDeferred() alone is committed after DEFERRED_COMMIT_MS, also when queued during a sync", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    const started = performance.now();
    await log.appendDeferred(message(1));
    assert.ok(performance.now() - started >= DEFERRED_COMMIT_MS - 1);
    assert.equal(log.stats.batches, 1);
    // Queued while an urgent append's write is in flight (one microtask after append(), the
    // commit has taken its batch; the write cannot finish before the next event-loop turn):
    // not written by that commit, but by the timer armed when it ends.
    const urgent = log.append(message(2));
    await Promise.resolve();
    const late = log.appendDeferred(message(3));
    await urgent;
    assert.equal(log.stats.appends, 2);
    await late;
    assert.equal(log.stats.appends, 3);
    assert.equal(log.stats.batches, 3);
    await log.close();
    assert.equal((await eventsIn(path)).length, 3);
  });
});

Deno.test("close() writes deferred appends too, and none is left waiting on a timer", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    const pending = Array.from({ length: 5 }, (_, n) => log.appendDeferred(message(n)));
    await log.close();
    await Promise.all(pending);
    assert.equal((await eventsIn(path)).length, 5);
  });
});

Deno.test("appends queued past MAX_BATCH_BYTES go out in several commits, every byte in order", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    // 12 records of ~900 KiB in one turn: more than one batch's worth, so a commit takes the
    // first appends and the rest of the buffer moves on to the next.
    const big = (n: number) => message(n, "alice", "bob", `${n}`.padEnd(900 * 1024, "x"));
    await Promise.all(Array.from({ length: 12 }, (_, n) => log.append(big(n))));
    assert.ok(log.stats.batches >= 2, `${log.stats.batches} commits`);
    await log.append(message(12));
    await log.close();
    const events = await eventsIn(path);
    assert.equal(events.length, 13);
    events.forEach((e, n) => {
      const expected = n < 12 ? big(n) : message(12);
      assert.deepEqual(e, expected, `event ${n}`);
    });
    assert.ok(MAX_BATCH_BYTES < 12 * 900 * 1024);
  });
});

Deno.test("close() writes the appends still pending before it closes", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    const pending = Array.from({ length: 50 }, (_, n) => log.append(message(n)));
    await log.close();
    await Promise.all(pending);
    assert.equal((await eventsIn(path)).length, 50);
  });
});

Deno.test("append() after close() rejects with StoreError closed", async () => {
  await withTempDir(async (dir) => {
    const { log } = await openEventLog(join(dir, "events.log"));
    await log.close();
    await log.close(); // idempotent
    await assert.rejects(
      log.append(message(1)),
      (e: unknown) => e instanceof StoreError && e.code === "closed",
    );
  });
});

Deno.test("a malformed event is rejected alone; the log stays usable", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    const good = log.append(message(1));
    const bad = log.append({ type: "logged_out", ts: 1 } as unknown as Event);
    await assert.rejects(bad, TypeError);
    await good;
    await log.append(message(2));
    await log.close();
    assert.equal((await eventsIn(path)).length, 2);
  });
});

Deno.test("fsync off still writes every append, in order", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path, { fsync: "off" });
    assert.equal(log.fsync, "off");
    await Promise.all(Array.from({ length: 300 }, (_, n) => log.append(message(n))));
    await log.close();
    assert.equal((await eventsIn(path)).length, 300);
  });
});

Deno.test("openEventLog() refuses an unknown fsync mode", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      openEventLog(join(dir, "events.log"), { fsync: "sometimes" as "off" }),
      TypeError,
    );
  });
});

Deno.test("a second open of a log that is open is refused with StoreError locked", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    await assert.rejects(
      openEventLog(path),
      (e: unknown) => e instanceof StoreError && e.code === "locked" && e.message.includes(path),
    );
    await log.close();
    const again = await openEventLog(path); // the lock went with the close
    await again.log.close();
  });
});

Deno.test("readEventLog() reads a log that is open for appending", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const { log } = await openEventLog(path);
    await log.append(message(1));
    const events = await eventsIn(path);
    await log.close();
    assert.deepEqual(events, [message(1)]);
  });
});

Deno.test("readEventLog() of a missing file throws NotFound and creates nothing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "missing.log");
    await assert.rejects(readEventLog(path, { onEvent() {} }), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("replay reports progress up to the file's size", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    {
      const { log } = await openEventLog(path, { fsync: "off" });
      await log.appendMany(
        Array.from({ length: 20_000 }, (_, n) => message(n, "a", "b", "x".repeat(500))),
      );
      await log.close();
    }
    const calls: [number, number][] = [];
    const { log } = await openEventLog(path, {
      onProgress: (done, total) => calls.push([done, total]),
    });
    await log.close();
    const size = (await Deno.stat(path)).size;
    assert.ok(calls.length >= 2, `${calls.length} progress calls for ${size} bytes`);
    assert.deepEqual(calls.at(-1), [size, size]);
    for (let i = 1; i < calls.length; i++) assert.ok(calls[i]![0] >= calls[i - 1]![0]);
  });
});

Deno.test("a log survives many reopenings, each appending, with the count carried on", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    for (let round = 0; round < 5; round++) {
      const { log, state } = await openEventLog(path);
      assert.equal(state.events, round * 10);
      await log.appendMany(Array.from({ length: 10 }, (_, n) => message(round * 10 + n)));
      await log.close();
    }
    assert.equal((await eventsIn(path)).length, 50);
  });
});
