import assert from "node:assert/strict";
import { formatBytes, plural, replayProgress } from "../../store/mod.ts";

/** Drives a replayProgress callback with a fake clock; returns what it wrote. */
function drive(steps: [ms: number, done: number][], total: number, terminal = false): string[] {
  let now = 0;
  const written: string[] = [];
  const onProgress = replayProgress({
    label: "events.log",
    write: (t) => written.push(t),
    now: () => now,
    terminal,
  });
  for (const [ms, done] of steps) {
    now = ms;
    onProgress(done, total);
  }
  return written;
}

Deno.test("a replay that ends within a second shows no progress", () => {
  assert.deepEqual(drive([[100, 10], [500, 50], [999, 100]], 100), []);
});

Deno.test("a replay past a second shows progress, throttled, and a final 100% line", () => {
  const written = drive(
    [[500, 10e6], [1000, 20e6], [1200, 30e6], [2000, 40e6], [2100, 50e6]],
    50e6,
  );
  assert.deepEqual(written, [
    "replaying events.log: 40% (19.1 MiB of 47.7 MiB)\n",
    "replaying events.log: 80% (38.1 MiB of 47.7 MiB)\n",
    "replaying events.log: 100% (47.7 MiB of 47.7 MiB)\n",
  ]);
});

Deno.test("on a terminal, progress redraws one line and ends it once", () => {
  const written = drive([[1000, 1], [1300, 2], [1400, 4]], 4, true);
  assert.deepEqual(written, [
    "\rreplaying events.log: 25% (1 byte of 4 bytes)\x1b[K",
    "\rreplaying events.log: 50% (2 bytes of 4 bytes)\x1b[K",
    "\rreplaying events.log: 100% (4 bytes of 4 bytes)\x1b[K\n",
  ]);
});

Deno.test("a tool names what it does to the log: reading it, copying into another", () => {
  let now = 0;
  const written: string[] = [];
  const onProgress = replayProgress({
    label: "postgres://db/chat?schema=hybrid",
    unit: "events",
    verb: "copying into",
    write: (t) => written.push(t),
    now: () => now,
  });
  now = 1000;
  onProgress(3, 4);
  onProgress(4, 4);
  assert.deepEqual(written, [
    "copying into postgres://db/chat?schema=hybrid: 75% (3 of 4 events)\n",
    "copying into postgres://db/chat?schema=hybrid: 100% (4 of 4 events)\n",
  ]);
});

Deno.test("progress writes nothing after the final update", () => {
  const written = drive([[1000, 5], [1500, 10], [3000, 10]], 10);
  assert.equal(written.length, 2);
});

Deno.test("formatBytes() gives exact bytes below 1 KiB, then one decimal of KiB, MiB, GiB", () => {
  const cases: [number, string][] = [
    [0, "0 bytes"],
    [1, "1 byte"],
    [2, "2 bytes"],
    [1023, "1023 bytes"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [1024 * 1024 - 1, "1.0 MiB"],
    [29.8 * 1024 * 1024, "29.8 MiB"],
    [3 * 1024 ** 3, "3.0 GiB"],
    [5 * 1024 ** 5, "5120.0 TiB"],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
});

Deno.test("plural() is singular for exactly one", () => {
  assert.equal(plural(1, "event"), "1 event");
  assert.equal(plural(0, "event"), "0 events");
  assert.equal(plural(2, "entry", "entries"), "2 entries");
});
