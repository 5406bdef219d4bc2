// Rate limiting primitives with an injected clock, and the bounded hash queue.
import assert from "node:assert/strict";
import {
  beginAttempt,
  bucketWait,
  endAttempt,
  newBucket,
  newFailureThrottle,
  recordInWindow,
  sweepWindows,
  takeToken,
  type ThrottleRule,
  throttleWait,
  type Windows,
  windowWait,
} from "../../server/rate_limit.ts";
import { WorkQueue } from "../../server/work_queue.ts";

Deno.test("a token bucket allows its burst, then one token per 1/rate seconds", () => {
  const bucket = newBucket(20, 0);
  const take = (now: number) => {
    const wait = bucketWait(bucket, 20, 10, now);
    if (wait === 0) takeToken(bucket, 20, 10, now);
    return wait;
  };
  for (let i = 0; i < 20; i++) assert.equal(take(0), 0);
  assert.equal(take(0), 100); // next token in 100 ms at 10/s
  assert.equal(take(50), 50);
  assert.equal(take(100), 0);
  assert.equal(take(100), 100);
  assert.equal(take(10_000), 0); // refilled, capped at the burst
  for (let i = 0; i < 19; i++) assert.equal(take(10_000), 0);
  assert.ok(take(10_000) > 0);
});

Deno.test("a window counter allows `limit` events per window and forgets old ones", () => {
  const w: Windows = new Map();
  for (const t of [0, 10, 20]) {
    assert.equal(windowWait(w, "a", 3, 1000, t), 0);
    recordInWindow(w, "a", 1000, 3, t);
  }
  assert.equal(windowWait(w, "a", 3, 1000, 500), 500); // the event at 0 leaves the window at 1000
  assert.equal(windowWait(w, "b", 3, 1000, 500), 0);
  assert.equal(windowWait(w, "a", 3, 1000, 1000), 0);
  sweepWindows(w, 1000, 5000);
  assert.equal(w.size, 0);
});

const RULE: ThrottleRule = { free: 5, windowMs: 15 * 60_000, baseMs: 1000, maxMs: 8000 };

Deno.test("a failure throttle is free up to its limit, then doubles, capped, and never locks for good", () => {
  const t = newFailureThrottle();
  const fail = (key: string, now: number) => {
    beginAttempt(t, key);
    endAttempt(t, key, RULE, "failed", now);
  };
  for (let i = 0; i < 4; i++) fail("k", i);
  assert.equal(throttleWait(t, "k", RULE, 4), 0);
  fail("k", 4); // 5th failure: throttled from here
  assert.equal(throttleWait(t, "k", RULE, 4), 1000);
  fail("k", 1004);
  assert.equal(throttleWait(t, "k", RULE, 1004), 2000);
  fail("k", 3004);
  assert.equal(throttleWait(t, "k", RULE, 3004), 4000);
  for (let i = 0; i < 10; i++) fail("k", 10_000);
  assert.equal(throttleWait(t, "k", RULE, 10_000), 8000); // capped
  assert.equal(throttleWait(t, "k", RULE, 10_000 + 15 * 60_000), 0); // everything aged out
  fail("j", 0);
  beginAttempt(t, "j");
  endAttempt(t, "j", RULE, "cleared", 0);
  assert.equal(throttleWait(t, "j", RULE, 0), 0);
});

Deno.test("attempts in flight count as failures until settled, and a success gives its place back", () => {
  const t = newFailureThrottle();
  for (let i = 0; i < 5; i++) {
    assert.equal(throttleWait(t, "k", RULE, 0), 0, `attempt ${i + 1} admitted`);
    beginAttempt(t, "k");
  }
  // Five are being verified: the sixth must wait, before any verdict is known.
  assert.equal(throttleWait(t, "k", RULE, 0), 1000);
  endAttempt(t, "k", RULE, "succeeded", 10);
  assert.equal(throttleWait(t, "k", RULE, 10), 0, "a success frees its reservation");
  for (let i = 0; i < 4; i++) endAttempt(t, "k", RULE, "failed", 20);
  assert.equal(t.inFlight.size, 0);
  assert.equal(throttleWait(t, "k", RULE, 20), 0, "four settled failures are still free");
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
