// The global order of the PostgreSQL log under concurrency: several stores append at once on
// their own connections while plain readers poll by position; no reader may ever step over
// an event that becomes visible later, and every follower sees one and the same order.

import assert from "node:assert/strict";
import postgres from "postgres";
import type { Event } from "../../store/mod.ts";
import { openPostgresStore } from "../../store/postgres_store.ts";
import { pgTest } from "../_postgres.ts";
import { message } from "./_helpers.ts";

/** Appending stores, each with its own connections. */
const WRITERS = 4;
/** Appends per writer, each of EVENTS_PER_APPEND events, up to IN_FLIGHT of them at once. */
const APPENDS = 150;
const EVENTS_PER_APPEND = 2;
const IN_FLIGHT = 8;
/** Plain readers polling `position > last` as fast as they can during the appends. */
const READERS = 3;

pgTest("concurrent appenders on several connections: no reader skips an event", async (db) => {
  const stores = await Promise.all(
    Array.from({ length: WRITERS }, () => openPostgresStore<string>(db.url)),
  );
  const followed: string[][] = stores.map(() => []);
  stores.forEach(({ store }, w) =>
    store.follow((events) => {
      for (const event of events) followed[w]!.push((event as { msg: string }).msg);
    })
  );
  const total = WRITERS * APPENDS * EVENTS_PER_APPEND;
  let writing = true;

  // Each reader checks every row it gets: the very next position, never one seen before.
  const readers = Array.from({ length: READERS }, async () => {
    const sql = postgres(db.base, { max: 1, onnotice: () => {} });
    const seen: number[] = [];
    let last = 0;
    try {
      for (;;) {
        const done = !writing; // one more read after the writers finished
        const rows = await sql.unsafe(
          `SELECT position FROM ${db.schema}.events WHERE position > $1 ORDER BY position`,
          [last],
        );
        for (const row of rows) {
          const position = Number(row.position);
          assert.equal(position, last + 1, `a reader at ${last} was handed ${position}`);
          seen.push(position);
          last = position;
        }
        if (done && last === total) return seen;
        if (done) throw new Error(`reader stopped at ${last} of ${total}`);
      }
    } finally {
      await sql.end();
    }
  });

  const writers = stores.map(async ({ store }, w) => {
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < APPENDS; i++) {
      const events: Event[] = [];
      for (let k = 0; k < EVENTS_PER_APPEND; k++) {
        const id = `w${w}-${i}-${k}`;
        events.push({ ...message(i), msg: id, cid: id } as Event);
      }
      const p = store.append(events, `w${w}`).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  });
  const written = await Promise.allSettled(writers);
  writing = false;
  const read = await Promise.allSettled(readers);
  for (const outcome of [...written, ...read]) {
    if (outcome.status === "rejected") {
      for (const store of stores) await store.store.close();
      throw outcome.reason;
    }
  }
  const seenByReaders = read.map((r) => (r as PromiseFulfilledResult<number[]>).value);

  const expected = Array.from({ length: total }, (_, i) => i + 1);
  for (const seen of seenByReaders) assert.deepEqual(seen, expected);
  // Every follower: every event exactly once, all in the same order, each append's events
  // together and in their order.
  for (const store of stores) await store.store.close();
  const order = followed[0]!;
  assert.equal(new Set(order).size, total);
  for (const other of followed.slice(1)) assert.deepEqual(other, order);
  for (let i = 0; i < total; i += EVENTS_PER_APPEND) {
    const append = order[i]!.slice(0, order[i]!.lastIndexOf("-"));
    for (let k = 0; k < EVENTS_PER_APPEND; k++) assert.equal(order[i + k], `${append}-${k}`);
  }
  // The stores batched: far fewer transactions than appends.
  const [row] = await db.sql.unsafe(
    `SELECT count(DISTINCT xmin::text)::int AS transactions FROM ${db.schema}.events`,
  );
  assert.ok(row!.transactions < WRITERS * APPENDS, `${row!.transactions} transactions`);
});
