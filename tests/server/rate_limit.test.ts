// Rate limiting primitives with an injected clock, and the bounded hash queue.
import assert from "node:assert/strict";
import { FailureThrottle, TokenBucket, WindowCounter } from "../../server/rate_limit.ts";
import { WorkQueue } from "../../server/work_queue.ts";

Deno.test("a token bucket allows its burst, then one token per 1/rate seconds", () => {
  const bucket = new TokenBucket(20, 10, 0);
  for (let i = 0; i < 20; i++) assert.equal(bucket.take(0), 0);
  assert.equal(bucket.take(0), 100); // next token in 100 ms at 10/s
  assert.equal(bucket.take(50), 50);
  assert.equal(bucket.take(100), 0);
  assert.equal(bucket.take(100), 100);
  assert.equal(bucket.take(10_000), 0); // refilled, capped at the burst
  for (let i = 0; i < 19; i++) assert.equal(bucket.take(10_000), 0);
  assert.ok(bucket.take(10_000) > 0);
});

Deno.test("a window counter allows `limit` events per window and forgets old ones", () => {
  const w = new WindowCounter(3, 1000);
  for (const t of [0, 10, 20]) {
    assert.equal(w.wait("a", t), 0);
    w.record("a", t);
  }
  assert.equal(w.wait("a", 500), 500); // the event at 0 leaves the window at 1000
  assert.equal(w.wait("b", 500), 0);
  assert.equal(w.wait("a", 1000), 0);
  w.sweep(5000);
  assert.equal(w.size, 0);
});

Deno.test("a failure throttle is free up to its limit, then doubles, capped, and never locks for good", () => {
  const t = new FailureThrottle(5, 15 * 60_000, 1000, 8000);
  for (let i = 0; i < 4; i++) t.recordFailure("k", i);
  assert.equal(t.wait("k", 4), 0);
  t.recordFailure("k", 4); // 5th failure: throttled from here
  assert.equal(t.wait("k", 4), 1000);
  t.recordFailure("k", 1004);
  assert.equal(t.wait("k", 1004), 2000);
  t.recordFailure("k", 3004);
  assert.equal(t.wait("k", 3004), 4000);
  for (let i = 0; i < 10; i++) t.recordFailure("k", 10_000);
  assert.equal(t.wait("k", 10_000), 8000); // capped
  assert.equal(t.wait("k", 10_000 + 15 * 60_000), 0); // everything aged out
  t.recordFailure("j", 0);
  t.clear("j");
  assert.equal(t.wait("j", 0), 0);
});

Deno.test("a work queue runs at most `concurrency` jobs, queues up to its cap, refuses beyond", async () => {
  const q = new WorkQueue(2, 1);
  let running = 0;
  let peak = 0;
  const releases: (() => void)[] = [];
  const job = () =>
    new Promise<void>((resolve) => {
      running++;
      peak = Math.max(peak, running);
      releases.push(() => {
        running--;
        resolve();
      });
    });
  const a = q.run(job);
  const b = q.run(job);
  const c = q.run(job);
  assert.ok(a && b && c);
  assert.equal(q.run(job), undefined);
  assert.deepEqual([q.active, q.queued], [2, 1]);
  await Promise.resolve();
  releases.shift()!();
  await a;
  while (releases.length < 2) await new Promise((r) => setTimeout(r, 1));
  for (const r of releases.splice(0)) r();
  await Promise.all([b, c]);
  assert.equal(peak, 2);
  assert.deepEqual([q.active, q.queued], [0, 0]);
});
