// Micro figures of the store: append rates under group commit, with and without
// fsync, and replay, each per 100,000 events of ~100 bytes, beside a baseline of the same run.
//
//   deno bench --allow-read --allow-write bench/store_bench.ts

import { join } from "node:path";
import { type Event, openEventLog } from "../store/mod.ts";

const EVENTS = 100_000;
/** Appends in flight at once, as from that many busy sessions. */
const CONCURRENCY = 64;

function messageEvent(i: number): Event {
  return {
    type: "message_sent",
    ts: 1_700_000_000_000 + i,
    msg: `m${i.toString(36).padStart(8, "0")}`,
    from: `user${i % 100}`,
    to: `user${(i * 7 + 3) % 100}`,
    text: `message #${i}: see you at the usual place at eight`,
    cid: `c${i}`,
  };
}

const dir = await Deno.makeTempDir({ prefix: "store_bench_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

const replayPath = join(dir, "replay.log");
{
  const { log } = await openEventLog(replayPath, { fsync: "off" });
  await log.appendMany(Array.from({ length: EVENTS }, (_, i) => messageEvent(i)));
  await log.close();
}

let run = 0;
/** Appends EVENTS events from CONCURRENCY concurrent appenders to a fresh log. */
async function appendAll(b: Deno.BenchContext, fsync: "always" | "off"): Promise<void> {
  const path = join(dir, `append-${run++}.log`);
  const { log } = await openEventLog(path, { fsync });
  let next = 0;
  const appender = async () => {
    while (next < EVENTS) await log.append(messageEvent(next++));
  };
  b.start();
  await Promise.all(Array.from({ length: CONCURRENCY }, appender));
  b.end();
  await log.close();
  await Deno.remove(path);
}

Deno.bench({
  name: `append ${EVENTS} events, fsync off, ${CONCURRENCY} appenders`,
  group: "append",
  baseline: true,
  n: 3,
  warmup: 1,
  async fn(b) {
    await appendAll(b, "off");
  },
});

Deno.bench({
  name: `append ${EVENTS} events, fsync always (group commit), ${CONCURRENCY} appenders`,
  group: "append",
  n: 3,
  warmup: 1,
  async fn(b) {
    await appendAll(b, "always");
  },
});

Deno.bench({
  name: `read the ${EVENTS}-event log's bytes in 8 MiB chunks (no decoding)`,
  group: "replay",
  baseline: true,
  n: 5,
  warmup: 1,
  async fn() {
    using file = await Deno.open(replayPath, { read: true });
    const buffer = new Uint8Array(8 << 20);
    while ((await file.read(buffer)) !== null) { /* read only */ }
  },
});

Deno.bench({
  name: `replay ${EVENTS} events (open, check, decode, evolve)`,
  group: "replay",
  n: 5,
  warmup: 1,
  async fn() {
    const { log } = await openEventLog(replayPath, { fsync: "off" });
    await log.close();
  },
});

Deno.bench({
  name: "append 1000 events one at a time, fsync always (a sync per append)",
  group: "sync",
  n: 3,
  warmup: 1,
  async fn(b) {
    const path = join(dir, `sequential-${run++}.log`);
    const { log } = await openEventLog(path, { fsync: "always" });
    b.start();
    for (let i = 0; i < 1000; i++) await log.append(messageEvent(i));
    b.end();
    await log.close();
    await Deno.remove(path);
  },
});
