// System figure of replay speed: writes 1,000,000 message events of ~100 bytes to a temporary
// log, then times replaying it (open, lock, check, decode, evolve), beside a baseline that
// only reads the file's bytes in the same chunk size. Target: under 2 s (≥ 500k events/s).
// Wall time depends on what else the machine runs; CPU time (user + system) much less so.
//
// By default every event is a message_sent (all still queued: the heaviest projection);
// with --delivered, half are message_delivered, each ~1000 events after its message.
//
//   deno run --allow-read --allow-write bench/replay_1m.ts [--events N] [--runs R] [--delivered]

import { parseArgs } from "node:util";
import { join } from "node:path";
import { cpuUsage } from "node:process";
import { type Event, type MessageSent, openEventLog } from "../store/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    events: { type: "string", default: "1000000" },
    runs: { type: "string", default: "3" },
    delivered: { type: "boolean", default: false },
  },
});
const EVENTS = Number(values.events);
const RUNS = Number(values.runs);
const USERS = 100;

/** A message event whose record is about 100 bytes, cid included. */
function messageEvent(i: number): Event {
  return {
    type: "message_sent",
    ts: 1_700_000_000_000 + i,
    msg: `m${i.toString(36).padStart(8, "0")}`,
    from: `user${i % USERS}`,
    to: `user${(i * 7 + 3) % USERS}`,
    text: `message #${i}: see you at the usual place at eight`,
    cid: `c${i}`,
  };
}

/** DAK lag, in messages, of the --delivered mix. */
const DELIVERY_LAG = 500;

/** Event `i` of the log: a message, or with --delivered every second one a delivery. */
function eventAt(i: number): Event {
  if (!values.delivered || i % 2 === 0) return messageEvent(values.delivered ? i / 2 : i);
  const n = (i - 1) / 2 - DELIVERY_LAG;
  if (n < 0) return messageEvent(EVENTS + i); // nothing old enough to deliver yet
  const { ts, msg, to } = messageEvent(n) as MessageSent;
  return { type: "message_delivered", ts: ts + 1, msg, user: to };
}

/** Runs `fn`, returning its wall and CPU milliseconds. */
async function timed(fn: () => Promise<void>): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  await fn();
  const wallMs = performance.now() - t0;
  const cpu = cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const dir = await Deno.makeTempDir({ prefix: "replay_1m_" });
try {
  const path = join(dir, "events.log");
  const write = await timed(async () => {
    const { log } = await openEventLog(path, { fsync: "off" });
    const BATCH = 10_000;
    for (let i = 0; i < EVENTS; i += BATCH) {
      const batch: Event[] = [];
      for (let j = i; j < Math.min(i + BATCH, EVENTS); j++) batch.push(eventAt(j));
      await log.appendMany(batch);
    }
    await log.close();
  });
  const size = (await Deno.stat(path)).size;
  console.log(
    `wrote ${EVENTS} events, ${(size / 1e6).toFixed(1)} MB ` +
      `(${(size / EVENTS).toFixed(1)} bytes per record, 8-byte record header included) ` +
      `in ${write.wallMs.toFixed(0)} ms`,
  );

  const walls: number[] = [];
  for (let run = 1; run <= RUNS; run++) {
    // Baseline: read the same bytes in the same 8 MiB chunks, decoding nothing.
    const baseline = await timed(async () => {
      using file = await Deno.open(path, { read: true });
      const buffer = new Uint8Array(8 << 20);
      while ((await file.read(buffer)) !== null) { /* read only */ }
    });
    let queued = 0;
    let replayed = 0;
    let heapMb = 0;
    const replay = await timed(async () => {
      const { log, state, report } = await openEventLog(path, { fsync: "off" });
      await log.close();
      for (const queue of state.queues.values()) queued += queue.size;
      replayed = report.events;
      heapMb = Deno.memoryUsage().heapUsed / 1e6;
    });
    if (replayed !== EVENTS) throw new Error("replay lost events");
    walls.push(replay.wallMs);
    const rate = Math.round(EVENTS / (replay.wallMs / 1000)).toLocaleString("en-US");
    console.log(
      `run ${run}: replay ${replay.wallMs.toFixed(0)} ms wall, ${replay.cpuMs.toFixed(0)} ms CPU ` +
        `(${rate} events/s; heap ${heapMb.toFixed(0)} MB, ${queued} messages queued); ` +
        `baseline read ${baseline.wallMs.toFixed(0)} ms`,
    );
  }
  const median = walls.sort((a, b) => a - b)[Math.floor(walls.length / 2)]!;
  console.log(`median replay of ${EVENTS} events: ${median.toFixed(0)} ms (target < 2000 ms)`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
