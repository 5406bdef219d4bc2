// Recovery at start-up: torn tails are cut; damaged regions before the tail are
// refused or, with repair, dropped after a backup, keeping every whole record after them.

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
  StoreError,
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

/** The names in `dir`, sorted. */
async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** `bytes` with `insert` placed at `at`. */
function inserted(bytes: Uint8Array, at: number, insert: Uint8Array): Uint8Array {
  return new Uint8Array([...bytes.subarray(0, at), ...insert, ...bytes.subarray(at)]);
}

/** 13 bytes no record starts with: each length field they could give is above the maximum. */
const JUNK = new Uint8Array(13).fill(0xa5);

Deno.test("repair drops only the damaged record, keeps every record after it, and keeps a backup", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const [badAt, badEnd] = [offsets[3]!, offsets[4]!];
    const damaged = flipBit(bytes, (badAt + 12) * 8);
    const { report, events, size } = await openBytes(dir, damaged, true);
    assert.deepEqual(events, [...EVENTS.slice(0, 3), ...EVENTS.slice(4)]);
    assert.equal(size, bytes.length - (badEnd - badAt));
    assert.equal(report.bytes, size);
    assert.equal(report.events, EVENTS.length - 1);
    assert.deepEqual(
      report.repaired?.dropped.map(({ kind, offset, bytes }) => ({ kind, offset, bytes })),
      [{ kind: "corrupt", offset: badAt, bytes: badEnd - badAt }],
    );
    assert.match(report.repaired!.dropped[0]!.reason, /checksum mismatch/);
    assert.equal(report.repaired?.bytes, badEnd - badAt);
    assert.equal(report.tornTail, undefined);
    const backup = report.repaired!.backupPath;
    assert.match(backup, /events\.log\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.bak$/);
    assert.deepEqual(await Deno.readFile(backup), damaged);
    assert.equal((await Deno.stat(backup)).mode! & 0o777, 0o600);
    const path = join(dir, "events.log");
    assert.deepEqual(
      await Deno.readFile(path),
      new Uint8Array([...bytes.subarray(0, badAt), ...bytes.subarray(badEnd)]),
    );
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    // The repaired log opens cleanly and takes appends.
    const { log, report: again } = await openEventLog(path);
    await log.append(message(50));
    await log.close();
    assert.equal(again.events, EVENTS.length - 1);
    assert.equal(again.repaired, undefined);
    assert.deepEqual(await namesIn(dir), [
      "events.log",
      backup.slice(dir.length + 1),
      "original.log",
    ]);
  });
});

Deno.test("repair of a flipped bit anywhere in a record before the last drops that record alone", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const [start, end] = [offsets[3]!, offsets[4]!];
    for (let bit = start * 8; bit < end * 8; bit++) {
      const { report, events } = await openBytes(dir, flipBit(bytes, bit), true);
      assert.deepEqual(events, [...EVENTS.slice(0, 3), ...EVENTS.slice(4)], `bit ${bit}`);
      assert.deepEqual(report.repaired?.dropped.map((r) => [r.offset, r.bytes]), [[
        start,
        end - start,
      ]], `bit ${bit}`);
      await Deno.remove(report.repaired!.backupPath);
    }
  });
});

Deno.test("repair of junk inserted mid-log drops just the junk and keeps every record", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    // Between two records: the junk alone is dropped, nothing of the history is lost.
    const at = offsets[4]!;
    const between = await openBytes(dir, inserted(bytes, at, JUNK), true);
    assert.deepEqual(between.events, EVENTS);
    assert.deepEqual(between.report.repaired?.dropped.map((r) => [r.offset, r.bytes]), [[at, 13]]);
    assert.deepEqual(await Deno.readFile(join(dir, "events.log")), bytes);
    // Inside a record: that record and the junk are dropped, the records after it kept.
    const inside = offsets[2]! + 10;
    const split = await openBytes(dir, inserted(bytes, inside, JUNK), true);
    assert.deepEqual(split.events, [...EVENTS.slice(0, 2), ...EVENTS.slice(3)]);
    assert.deepEqual(split.report.repaired?.dropped.map((r) => [r.offset, r.bytes]), [
      [offsets[2]!, offsets[3]! - offsets[2]! + 13],
    ]);
    assert.equal(split.report.repaired?.bytes, offsets[3]! - offsets[2]! + 13);
  });
});

/** EVENTS' log with records 1 and 4 damaged and the last record cut short. */
function damagedTwiceAndTorn({ bytes, offsets }: Log): Uint8Array {
  let damaged = flipBit(bytes, (offsets[1]! + 2) * 8);
  damaged = flipBit(damaged, (offsets[4]! + 20) * 8);
  return damaged.subarray(0, offsets.at(-1)! - 3);
}

Deno.test("repair drops each of several damaged regions, cuts a torn tail, and says so", async () => {
  await withTempDir(async (dir) => {
    const made = await makeLog(dir);
    const { bytes, offsets } = made;
    const damaged = damagedTwiceAndTorn(made);
    const { report, events, size } = await openBytes(dir, damaged, true);
    assert.deepEqual(events, [EVENTS[0], EVENTS[2], EVENTS[3], EVENTS[5], EVENTS[6]]);
    const dropped = report.repaired!.dropped.map((r) => [r.kind, r.offset, r.bytes]);
    assert.deepEqual(dropped, [
      ["corrupt", offsets[1]!, offsets[2]! - offsets[1]!],
      ["corrupt", offsets[4]!, offsets[5]! - offsets[4]!],
    ]);
    const last = offsets.at(-2)!;
    assert.deepEqual(report.tornTail && [report.tornTail.offset, report.tornTail.bytes], [
      last,
      damaged.length - last,
    ]);
    assert.deepEqual(await Deno.readFile(report.repaired!.backupPath), damaged);
    const kept = [[0, offsets[1]!], [offsets[2]!, offsets[4]!], [offsets[5]!, last]];
    const expected = new Uint8Array(kept.flatMap(([from, to]) => [...bytes.subarray(from, to)]));
    assert.deepEqual(await Deno.readFile(join(dir, "events.log")), expected);
    assert.equal(size, expected.length);
  });
});

Deno.test("a log damaged in several regions is refused, each region named, the file left as it was", async () => {
  await withTempDir(async (dir) => {
    const made = await makeLog(dir);
    const { offsets } = made;
    const damaged = damagedTwiceAndTorn(made);
    await assert.rejects(openBytes(dir, damaged), (e: unknown) => {
      assert.ok(e instanceof StoreCorruptError);
      assert.equal(e.code, "corrupt_record");
      assert.equal(e.offset, offsets[1]);
      assert.deepEqual(e.damaged.map((r) => [r.offset, r.bytes]), [
        [offsets[1]!, offsets[2]! - offsets[1]!],
        [offsets[4]!, offsets[5]! - offsets[4]!],
      ]);
      for (const offset of [offsets[1]!, offsets[2]!, offsets[4]!, offsets[5]!, offsets.at(-2)!]) {
        assert.ok(e.message.includes(`offset ${offset}`), `${offset} in ${e.message}`);
      }
      assert.match(e.message, /keeps every whole record \(5 events\)/);
      return true;
    });
    assert.deepEqual(await Deno.readFile(join(dir, "events.log")), damaged);
    assert.deepEqual(await namesIn(dir), ["events.log", "original.log"]);
  });
});

Deno.test("a repaired log is locked like any other, and a repair that died leaves nothing in the way", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const path = join(dir, "events.log");
    await Deno.writeFile(path, flipBit(bytes, (offsets[2]! + 9) * 8), { mode: 0o600 });
    await Deno.writeTextFile(`${path}.repair-tmp`, "left by a repair that died");
    const { log, report } = await openEventLog(path, { repair: true });
    try {
      assert.equal(report.events, EVENTS.length - 1);
      await assert.rejects(
        openEventLog(path),
        (e: unknown) => e instanceof StoreError && e.code === "locked",
      );
      await log.append(message(60));
    } finally {
      await log.close();
    }
    const events: Event[] = [];
    await readEventLog(path, { onEvent: (e) => events.push(e) });
    assert.deepEqual(events, [...EVENTS.slice(0, 2), ...EVENTS.slice(3), message(60)]);
    await assert.rejects(Deno.stat(`${path}.repair-tmp`), Deno.errors.NotFound);
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
    assert.deepEqual(report.repaired?.dropped.map((r) => [r.kind, r.offset, r.bytes]), [
      ["bad_event", bytes.length, record.length],
    ]);
  });
});

Deno.test("a whole record holding no valid event mid-log is dropped by repair, the rest kept", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const { salt } = decodeHeader(bytes.subarray(0, HEADER_BYTES));
    const record = new Uint8Array(8 + 9);
    const view = new DataView(record.buffer);
    view.setUint32(4, 9);
    record[8] = 250; // an unknown tag
    view.setUint32(0, (crc32c(record, 4) ^ salt) >>> 0);
    const at = offsets[2]!;
    const withBadEvent = inserted(bytes, at, record);
    await assert.rejects(
      openBytes(dir, withBadEvent),
      (e: unknown) => e instanceof StoreCorruptError && e.code === "bad_event" && e.offset === at,
    );
    const { events, report } = await openBytes(dir, withBadEvent, true);
    assert.deepEqual(events, EVENTS);
    assert.deepEqual(report.repaired?.dropped.map((r) => [r.kind, r.offset, r.bytes]), [
      ["bad_event", at, record.length],
    ]);
    assert.deepEqual(await Deno.readFile(join(dir, "events.log")), bytes);
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

Deno.test("readEventLog() reports a torn tail without cutting it", async () => {
  await withTempDir(async (dir) => {
    const { bytes, offsets } = await makeLog(dir);
    const path = join(dir, "events.log");
    const torn = bytes.slice(0, -2);
    await Deno.writeFile(path, torn);
    const events: Event[] = [];
    const report = await readEventLog(path, { onEvent: (e) => events.push(e) });
    assert.equal(events.length, EVENTS.length - 1);
    assert.equal(report.tornTail?.offset, offsets.at(-2));
    assert.deepEqual(report.damaged, []);
    assert.deepEqual(await Deno.readFile(path), torn);
  });
});

Deno.test("readEventLog() reads every whole record of a damaged log and says where the damage is", async () => {
  await withTempDir(async (dir) => {
    const made = await makeLog(dir);
    const { offsets } = made;
    const path = join(dir, "events.log");
    const damaged = damagedTwiceAndTorn(made);
    await Deno.writeFile(path, damaged);
    const seen: (string | number)[] = [];
    const report = await readEventLog(path, {
      onEvent: (e) => seen.push(e.type === "message_sent" ? e.msg : e.type),
      onDamage: (region) => seen.push(region.offset),
    });
    assert.deepEqual(seen, [
      "user_signed_up",
      offsets[1]!,
      "m1",
      "m2",
      offsets[4]!,
      "m4",
      "m5",
    ]);
    assert.equal(report.events, 5);
    assert.deepEqual(report.damaged.map((r) => [r.offset, r.bytes]), [
      [offsets[1]!, offsets[2]! - offsets[1]!],
      [offsets[4]!, offsets[5]! - offsets[4]!],
    ]);
    assert.equal(report.tornTail?.offset, offsets.at(-2));
    assert.deepEqual(await Deno.readFile(path), damaged);
  });
});
