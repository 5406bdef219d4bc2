// The PostgreSQL log when the database goes away: appends are refused as `unavailable` in
// bounded time, nothing acknowledged is lost, and the store resumes by itself.

import assert from "node:assert/strict";
import { type Event, StoreError } from "../../store/mod.ts";
import {
  CONNECT_TIMEOUT_S,
  importIntoPostgres,
  openPostgresStore,
  postgresLogHead,
  type PostgresStatus,
  QUERY_TIMEOUT_MS,
  readPostgresLog,
} from "../../store/postgres_store.ts";
import { PG_SKIP_REASON, pgTest, waitFor, withSchema } from "../_postgres.ts";
import { message } from "./_helpers.ts";

/** A shortened query timeout, so the test sees every deadline pass quickly. */
const TIMEOUT_MS = 2_000;
/** Slack over a deadline for a loaded 2-core machine. */
const SLACK_MS = 2_000;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test({
  name: "opening an unreachable database fails promptly as unavailable, password unshown",
  ignore: PG_SKIP_REASON !== undefined,
  async fn() {
    const password = "s3cret-Pa55word";
    const url = `postgres://hybrid:${password}@127.0.0.1:${freePort()}/chat?schema=x`;
    const started = performance.now();
    const error = await openPostgresStore(url).then(() => undefined, (e) => e);
    assert.ok(error instanceof StoreError, String(error));
    assert.equal(error.code, "unavailable");
    assert.ok(performance.now() - started < CONNECT_TIMEOUT_S * 1000 + SLACK_MS);
    assert.match(error.message, /127\.0\.0\.1/);
    assert.doesNotMatch(`${error.message} ${error.stack}`, new RegExp(password));
  },
});

Deno.test({
  name: "a database that takes connections and drops them unanswered fails opening in bounded time",
  ignore: PG_SKIP_REASON !== undefined,
  async fn() {
    // What a TCP proxy or balancer in front of a database that is down does: it accepts, then
    // hangs up. The driver retries a first connection that closes for ever, so without a
    // bound of our own a node never started and the tools never returned.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    let accepted = 0;
    const accepting = (async () => {
      for await (const conn of listener) {
        accepted++;
        conn.close();
      }
    })();
    const password = "s3cret-Pa55word";
    const url = `postgres://hybrid:${password}@127.0.0.1:${port}/chat?schema=x`;
    try {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("no outcome in time"), QUERY_TIMEOUT_MS + SLACK_MS);
      });
      const outcomes = await Promise.all(
        [
          openPostgresStore(url, { queryTimeoutMs: TIMEOUT_MS }),
          readPostgresLog(url, { onEvent() {} }),
          postgresLogHead(url),
          importIntoPostgres(url, [message(1)]),
        ].map((opening) => Promise.race([opening.then(() => "opened", (e) => e), hung])),
      );
      clearTimeout(timer);
      for (const error of outcomes) {
        assert.ok(error instanceof StoreError, String(error));
        assert.equal(error.code, "unavailable");
        assert.match(error.message, /127\.0\.0\.1.*no answer within \d+ ms/);
        assert.doesNotMatch(`${error.message} ${error.stack}`, new RegExp(password));
      }
      assert.ok(accepted > 0, "the listener was never reached");
    } finally {
      listener.close();
      await accepting.catch(() => {});
    }
  },
});

pgTest("a password in the URL appears in no description or error", async (db) => {
  const password = db.cluster?.password;
  const { store, report } = await openPostgresStore(db.url);
  await store.close();
  if (password) {
    assert.doesNotMatch(report.description, new RegExp(password));
    assert.doesNotMatch(store.description, new RegExp(password));
  }
  const wrong = withSchema(db.base.replace(/:[^:@/]*@/, ":wrong-Pa55@"), db.schema);
  const error = await openPostgresStore(wrong).then(() => undefined, (e) => e);
  if (password) {
    assert.ok(error instanceof StoreError);
    assert.match(error.message, /password authentication failed/);
    assert.doesNotMatch(error.message, /wrong-Pa55/);
  }
});

pgTest(
  "PostgreSQL restarting under appends: refused in bounded time, nothing acknowledged lost, resumed by itself",
  async (db) => {
    const cluster = db.cluster!;
    const statuses: PostgresStatus["kind"][] = [];
    const { store } = await openPostgresStore<string>(db.url, {
      queryTimeoutMs: TIMEOUT_MS,
      pollIntervalMs: 100,
      onStatus: (s) => statuses.push(s.kind),
    });
    const followed: Event[] = [];
    const tags: (string | undefined)[] = [];
    store.follow((events, tag) => {
      for (const event of events) {
        followed.push(event);
        tags.push(tag);
      }
    });
    const acknowledged: string[] = [];
    const refusals: { ms: number; error: unknown }[] = [];
    let n = 0;
    const appendOne = async () => {
      const event = message(n++);
      const started = performance.now();
      try {
        await store.append([event], "x");
        acknowledged.push((event as { msg: string }).msg);
        return true;
      } catch (error) {
        refusals.push({ ms: performance.now() - started, error });
        return false;
      }
    };

    for (let i = 0; i < 20; i++) await appendOne();
    const stopping = cluster.stop();
    // Appends while it stops and while it is down: each one answers within the deadline.
    while (refusals.length < 3) await appendOne();
    await stopping;
    for (let i = 0; i < 3; i++) await appendOne();
    await cluster.start();
    // Nothing to do but append: the store reconnects by itself.
    const deadline = performance.now() + 20_000;
    while (!(await appendOne())) assert.ok(performance.now() < deadline, "appends resumed");
    for (let i = 0; i < 20; i++) assert.ok(await appendOne());

    for (const { ms, error } of refusals) {
      assert.ok(error instanceof StoreError, String(error));
      assert.equal(error.code, "unavailable");
      assert.ok(ms < 2 * TIMEOUT_MS + SLACK_MS, `refused after ${ms} ms`);
      assert.doesNotMatch(error.message, new RegExp(cluster.password));
    }
    assert.ok(statuses.includes("unavailable") && statuses.at(-1) === "available", `${statuses}`);

    // Another node appends: this store's tailing, resumed on its own, hands it over.
    const other = await openPostgresStore<string>(db.url);
    other.store.follow(() => {});
    await other.store.append([{ ...message(9999), msg: "from-other" } as Event], "other");
    await other.store.close();
    await waitFor(
      "the other node's event",
      () => followed.some((e) => (e as { msg: string }).msg === "from-other"),
    );

    // Every acknowledged event is stored, and the follower got the stored log exactly once, in
    // order (refused appends that committed anyway come without their tag).
    const rows = await db.sql.unsafe(`SELECT record FROM ${db.schema}.events ORDER BY position`);
    const stored = rows.length;
    await waitFor("the follower to catch up", () => followed.length === stored);
    const msgs = followed.map((e) => (e as { msg: string }).msg);
    assert.equal(new Set(msgs).size, msgs.length, "no event handed over twice");
    for (const msg of acknowledged) assert.ok(msgs.includes(msg), `acknowledged ${msg} is stored`);
    const acked = new Set(acknowledged);
    msgs.forEach((msg, i) => assert.equal(tags[i] !== undefined, acked.has(msg), msg));
    await store.close();
  },
  { ownCluster: true },
);
