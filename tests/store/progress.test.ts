import assert from "node:assert/strict";
import { replayProgress } from "../../store/mod.ts";

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
    "replaying events.log: 40% (20.0 of 50.0 MB)\n",
    "replaying events.log: 80% (40.0 of 50.0 MB)\n",
    "replaying events.log: 100% (50.0 of 50.0 MB)\n",
  ]);
});

Deno.test("on a terminal, progress redraws one line and ends it once", () => {
  const written = drive([[1000, 1], [1300, 2], [1400, 4]], 4, true);
  assert.deepEqual(written, [
    "\rreplaying events.log: 25% (0.0 of 0.0 MB)\x1b[K",
    "\rreplaying events.log: 50% (0.0 of 0.0 MB)\x1b[K",
    "\rreplaying events.log: 100% (0.0 of 0.0 MB)\x1b[K\n",
  ]);
});

Deno.test("progress writes nothing after the final update", () => {
  const written = drive([[1000, 5], [1500, 10], [3000, 10]], 10);
  assert.equal(written.length, 2);
});
