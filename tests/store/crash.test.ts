// Durability under SIGKILL: a child appends under load and prints each append
// once it resolved; it is killed at a seeded point; every printed append must survive.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Event, openEventLog, type OpenReport } from "../../store/mod.ts";
import { between, prng, withTempDir } from "./_helpers.ts";

const CHILD = new URL("./_crash_child.ts", import.meta.url).pathname;
/** A child that has printed nothing for this long is stuck: the test fails rather than hang. */
const STALL_TIMEOUT_MS = 30_000;

interface Run {
  /** Numbers of the appends the child saw resolve. */
  resolved: number[];
  stderr: string;
  signal: Deno.Signal | null;
}

/**
 * Runs the appending child on `path` and kills it once it printed `killAfter` lines. The
 * child keeps appending while the lines travel, so the kill lands wherever it then is:
 * encoding, writing, syncing or printing.
 */
async function runAndKill(
  path: string,
  seed: number,
  fsync: string,
  killAfter: number,
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHILD, "append", path, String(seed), fsync],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let killed = false;
  const kill = () => {
    if (killed) return;
    killed = true;
    child.kill("SIGKILL");
  };
  let stall = setTimeout(kill, STALL_TIMEOUT_MS);
  const resolved: number[] = [];
  let partial = "";
  try {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) resolved.push(Number(line));
      clearTimeout(stall);
      stall = setTimeout(kill, STALL_TIMEOUT_MS);
      if (resolved.length >= killAfter) kill();
    }
  } finally {
    clearTimeout(stall);
  }
  const { signal } = await child.status;
  assert.equal(partial, "", "a line was cut: stdout writes are whole lines");
  return { resolved, stderr: await stderr, signal };
}

/** Opens the log, recovering it, and returns the numbers of its events and the report. */
async function recover(path: string): Promise<{ numbers: number[]; report: OpenReport }> {
  const numbers: number[] = [];
  const { log, report } = await openEventLog(path, {
    onEvent: (e: Event) => numbers.push(e.ts),
  });
  await log.close();
  return { numbers, report };
}

for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
  const fsync = seed % 2 === 0 ? "off" : "always";
  Deno.test(`every append that resolved survives SIGKILL and recovery (seed ${seed}, fsync ${fsync})`, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "events.log");
      const random = prng(seed);
      let expected = 0; // the log must hold exactly events 0..n-1, for some n ≥ expected
      for (let round = 0; round < 3; round++) {
        const killAfter = between(random, 1, 300);
        const run = await runAndKill(path, seed * 10 + round, fsync, killAfter);
        assert.equal(run.signal, "SIGKILL", `the child died on its own: ${run.stderr}`);
        assert.ok(run.resolved.length >= killAfter, `only ${run.resolved.length} appends resolved`);
        const { numbers, report } = await recover(path);
        // A prefix of the appends, in order, with no gap and no duplicate …
        assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => i));
        // … that holds every append the child saw resolve.
        const highest = Math.max(...run.resolved);
        assert.ok(
          numbers.length > highest,
          `resolved ${highest} but the log ends at ${numbers.length - 1}`,
        );
        assert.ok(numbers.length >= expected);
        expected = numbers.length;
        assert.equal(report.repaired, undefined);
      }
    });
  });
}
