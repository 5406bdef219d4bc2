// Recovery at start-up (issue #3 §4): torn tails are cut, damage before the tail is refused
// or, with repair, truncated after a backup.

import assert from "node:assert/strict";
import { join } from "node:path";
import { crc32c } from "../../store/_crc32c.ts";
import {
  decodeHeader,
  type Event,
  HEADER_BYTES,
  openEventLog,
  type OpenReport,
  readEventLog,
  replay,
  snapshot,
  StoreCorruptError,
} from "../../store/mod.ts";
import { message, withTempDir } from "./_helpers.ts";

const EVENTS: Event[] = [
  { type: "user_signed_up", ts: 1, user: "alice", passwordHash: "scrypt$17$8$1$c2FsdA==$aGFzaA==" },
  ...Array.from({ length: 6 }, (_, n) => message(n)),
  { type: "login_succeeded", ts: 2, user: "alice", addr: "192.0.2.1:5555" },
];

interface Log {
  bytes: Uint8Array;
  /** Offset of each record, and the file size last. */
  offsets: number[];
}

/** Writes EVENTS to a fresh log and returns its bytes and record offsets. */
async function makeLog(dir: string): Promise<Log> {
  const path = join(dir, "original.log");
  const { log } = await openEventLog(path);
  for (const event of EVENTS) await log.append(event);
  await log.close();
  const offsets: number[] = [];
  await readEventLog(path, { onEvent: (_, offset) => offsets.push(offset) });
  const bytes = await Deno.readFile(path);
  offsets.push(bytes.length);
  return { bytes, offsets };
}

interface Opened {
  report: OpenReport;
  events: Event[];
  size: number;
}

/** Writes `bytes` as the log, opens it (recovering), closes it, and says what it found. */
async function openBytes(dir: string, bytes: Uint8Array, repair = false): Promise<Opened> {
  const path = join(dir, "events.log");
  await Deno.writeFile(path, bytes, { mode: 0o600 });
  const events: Event[] = [];
  const { log, state, report } = await openEventLog(path, {
    repair,
    onEvent: (e) => events.push(e),
  });
  await log.close();
  assert.deepEqual(snapshot(state), snapshot(replay(events)));
  return { report, events, size: (await Deno.stat(path)).size };
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

Deno.test("a log cut at every byte offset of its last record recovers to the record before", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const lastStart = offsets.at(-2)!;
    for (let cut = lastStart; cut < bytes.length; cut++) {
      const { report, events, size } = await openBytes(dir, bytes.slice(0, cut));
      assert.deepEqual(events, EVENTS.slice(0, -1), `cut at ${cut}`);
      assert.equal(size, lastStart, `cut at ${cut}`);
      assert.equal(report.bytes, lastStart);
      if (cut === lastStart) {
        assert.equal(report.tornTail, undefined); // a clean end, nothing torn
      } else {
        assert.equal(report.tornTail?.offset, lastStart, `cut at ${cut}`);
        assert.equal(report.tornTail?.bytes, cut - lastStart);
      }
    }
  });
});

Deno.test("after cutting a torn tail, appends continue and read back whole", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    await openBytes(dir, bytes.slice(0, offsets.at(-1)! - 3));
    const path = join(dir, "events.log");
    {
      const { log } = await openEventLog(path);
      await log.append(message(99));
      await log.close();
    }
    const events: Event[] = [];
    const report = await readEventLog(path, { onEvent: (e) => events.push(e) });
    assert.deepEqual(events, [...EVENTS.slice(0, -1), message(99)]);
    assert.equal(report.tornTail, undefined);
  });
});

Deno.test("a zero-filled tail after the last record is cut, keeping every record", async () => {
  await withTempDir(async (dir) => {
    const { bytes } = await makeLog(dir);
    for (const zeros of [1, 7, 8, 9, 100, 4096, 70_000]) {
      const padded = new Uint8Array(bytes.length + zeros);
      padded.set(bytes);
      const { report, events, size } = await openBytes(dir, padded);
      assert.deepEqual(events, EVENTS, `${zeros} zeros`);
      assert.equal(size, bytes.length);
      assert.deepEqual(report.tornTail && [report.tornTail.offset, report.tornTail.bytes], [
        bytes.length,
        zeros,
      ]);
    }
  });
});

Deno.test("a last record zeroed from any offset on recovers to the record before", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const lastStart = offsets.at(-2)!;
    for (let from = lastStart; from < bytes.length; from++) {
      const zeroed = bytes.slice();
      zeroed.fill(0, from);
      const { report, events } = await openBytes(dir, zeroed);
      assert.deepEqual(events, EVENTS.slice(0, -1), `zeroed from ${from}`);
      assert.equal(report.tornTail?.offset, lastStart);
    }
  });
});

Deno.test("a flipped bit anywhere in the last record recovers to the record before", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const lastStart = offsets.at(-2)!;
    for (let bit = lastStart * 8; bit < bytes.length * 8; bit++) {
      const { report, events, size } = await openBytes(dir, flipBit(bytes, bit));
      assert.deepEqual(events, EVENTS.slice(0, -1), `bit ${bit}`);
      assert.equal(report.tornTail?.offset, lastStart, `bit ${bit}`);
      assert.equal(size, lastStart);
    }
  });
});

Deno.test("a flipped bit anywhere in a record before the last is refused, naming its offset", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const [start, end] = [offsets[3]!, offsets[4]!];
    for (let bit = start * 8; bit < end * 8; bit++) {
      const damaged = flipBit(bytes, bit);
      await assert.rejects(
        openBytes(dir, damaged),
        (e: unknown) =>
          e instanceof StoreCorruptError && e.code === "corrupt_record" && e.offset === start &&
          e.message.includes(`offset ${start}`),
        `bit ${bit}`,
      );
      // Refusing leaves the file exactly as it was.
      assert.deepEqual(await Deno.readFile(join(dir, "events.log")), damaged);
    }
  });
});

Deno.test("repair keeps a backup of a corrupt log and truncates it at the first bad record", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const badAt = offsets[3]!;
    const damaged = flipBit(bytes, (badAt + 12) * 8);
    const { report, events, size } = await openBytes(dir, damaged, true);
    assert.deepEqual(events, EVENTS.slice(0, 3));
    assert.equal(size, badAt);
    assert.equal(report.repaired?.offset, badAt);
    assert.equal(report.repaired?.bytes, bytes.length - badAt);
    assert.equal(report.tornTail, undefined);
    const backup = report.repaired!.backupPath;
    assert.ok(backup.startsWith(join(dir, "events.log.bak-")), backup);
    assert.deepEqual(await Deno.readFile(backup), damaged);
    assert.equal((await Deno.stat(backup)).mode! & 0o777, 0o600);
    // The repaired log opens cleanly and takes appends.
    const path = join(dir, "events.log");
    const { log, report: again } = await openEventLog(path);
    await log.append(message(50));
    await log.close();
    assert.equal(again.events, 3);
    assert.equal(again.repaired, undefined);
  });
});

Deno.test("repair of a log that is only torn cuts the tail and keeps no backup", async () => {
  await withTempDir(async (dir) => {
    const { bytes } = await makeLog(dir);
    const { report, events } = await openBytes(dir, bytes.slice(0, -1), true);
    assert.equal(events.length, EVENTS.length - 1);
    assert.equal(report.repaired, undefined);
    assert.ok(report.tornTail);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["events.log", "original.log"]);
  });
});

Deno.test("a whole last record that holds no valid event is refused, not cut", async () => {
  await withTempDir(async (dir) => {
    const { bytes } = await makeLog(dir);
    const { salt } = decodeHeader(bytes.subarray(0, HEADER_BYTES));
    // A record with a valid checksum around a payload with an unknown tag.
    const payload = new Uint8Array(9);
    payload[0] = 250;
    const record = new Uint8Array(8 + payload.length);
    const view = new DataView(record.buffer);
    view.setUint32(4, payload.length);
    record.set(payload, 8);
    view.setUint32(0, (crc32c(record, 4) ^ salt) >>> 0);
    const withBadEvent = new Uint8Array([...bytes, ...record]);
    await assert.rejects(
      openBytes(dir, withBadEvent),
      (e: unknown) =>
        e instanceof StoreCorruptError && e.code === "bad_event" && e.offset === bytes.length,
    );
    const { events, report } = await openBytes(dir, withBadEvent, true);
    assert.deepEqual(events, EVENTS);
    assert.equal(report.repaired?.offset, bytes.length);
  });
});

Deno.test("a header cut short at creation is rewritten and reported", async () => {
  await withTempDir(async (dir) => {
    const { bytes } = await makeLog(dir);
    for (const length of [1, 8, HEADER_BYTES - 1]) {
      const { report, events, size } = await openBytes(dir, bytes.slice(0, length));
      assert.deepEqual(events, []);
      assert.equal(size, HEADER_BYTES);
      assert.deepEqual(report.tornTail && [report.tornTail.offset, report.tornTail.bytes], [
        0,
        length,
      ]);
    }
    const { report, size } = await openBytes(dir, new Uint8Array(0));
    assert.equal(size, HEADER_BYTES);
    assert.equal(report.tornTail, undefined);
    assert.equal(report.created, false);
  });
});

Deno.test("a file that is not an event log is refused, even with repair, and left alone", async () => {
  await withTempDir(async (dir) => {
    const text = new TextEncoder().encode("these are not the events you are looking for\n");
    for (const bytes of [text, text.subarray(0, 5)]) {
      for (const repair of [false, true]) {
        await assert.rejects(
          openBytes(dir, bytes, repair),
          (e: unknown) => e instanceof StoreCorruptError && e.code === "bad_header",
        );
        assert.deepEqual(await Deno.readFile(join(dir, "events.log")), bytes);
      }
    }
  });
});

Deno.test("readEventLog() reports a torn tail without cutting it, and refuses mid-log damage", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const path = join(dir, "events.log");
    const torn = bytes.slice(0, -2);
    await Deno.writeFile(path, torn);
    const events: Event[] = [];
    const report = await readEventLog(path, { onEvent: (e) => events.push(e) });
    assert.equal(events.length, EVENTS.length - 1);
    assert.equal(report.tornTail?.offset, offsets.at(-2));
    assert.deepEqual(await Deno.readFile(path), torn);
    await Deno.writeFile(path, flipBit(bytes, (offsets[2]! + 9) * 8));
    await assert.rejects(
      readEventLog(path, { onEvent() {} }),
      (e: unknown) => e instanceof StoreCorruptError && e.offset === offsets[2],
    );
  });
});
