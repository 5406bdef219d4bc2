// `deno task migrate`, `events --store` and `compact --store` against a real PostgreSQL, run
// with the permissions their tasks in deno.json grant.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Event,
  openEventLog,
  openPostgresStore,
  readEventLog,
  replay,
  snapshot,
} from "../../store/mod.ts";
import { redactEvent } from "../../admin/print_events.ts";
import { pgTest } from "../_postgres.ts";
import { everyEventType, withTempDir } from "../store/_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TASK_PERMISSIONS = {
  migrate: ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"],
  events: ["--allow-read", "--allow-env", "--allow-net", "--allow-sys"],
  compact: ["--allow-read", "--allow-write", "--allow-env"],
};
const SCRIPTS = {
  migrate: "admin/migrate.ts",
  events: "admin/print_events.ts",
  compact: "admin/compact_log.ts",
};

async function task(
  name: keyof typeof SCRIPTS,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...TASK_PERMISSIONS[name], join(ROOT, SCRIPTS[name]), ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

async function fileEvents(path: string): Promise<Event[]> {
  const events: Event[] = [];
  await readEventLog(path, { onEvent: (event) => events.push(event) });
  return events;
}

pgTest("migrate copies a log file into PostgreSQL and back, event for event", async (db) => {
  await withTempDir(async (dir) => {
    const source = join(dir, "events.log");
    const history = everyEventType();
    const { log } = await openEventLog(source);
    await log.appendMany(history);
    await log.close();

    const into = await task("migrate", "--from", `file:${source}`, "--to", db.url);
    assert.equal(into.code, 0, into.stderr);
    assert.match(into.stdout, new RegExp(`copied ${history.length} events .* verified`));
    const password = db.cluster?.password ?? new URL(db.base).password;
    assert.ok(
      password === "" || !(into.stdout + into.stderr).includes(password),
      "password printed",
    );
    const opened = await openPostgresStore(db.url);
    await opened.store.close();
    assert.deepEqual(snapshot(opened.state), snapshot(replay(history)));

    const back = join(dir, "back", "events.log");
    const out = await task("migrate", "--from", db.url, "--to", `file:${back}`);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(await fileEvents(back), history);

    // Neither target is taken again: a copy never merges two histories.
    const again = await task("migrate", "--from", `file:${source}`, "--to", db.url);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds events/);
    const over = await task("migrate", "--from", db.url, "--to", `file:${back}`);
    assert.equal(over.code, 1);
    assert.match(over.stderr, /already exists and is not empty/);
    assert.deepEqual(await fileEvents(back), history);
  });
});

pgTest("events --store reads a PostgreSQL log; compact --store refuses one", async (db) => {
  const { store } = await openPostgresStore<string>(db.url);
  store.follow(() => {});
  await store.append(everyEventType().slice(0, 6), "x");
  await store.close();

  const shown = await task("events", "--store", db.url, "--json", "--tail", "2");
  assert.equal(shown.code, 0, shown.stderr);
  const lines = shown.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(lines, everyEventType().slice(4, 6).map(redactEvent));
  const text = await task("events", "--store", db.url, "--type", "user_signed_up");
  assert.match(
    text.stdout,
    /user_signed_up {2}user=alice passwordHash=scrypt\$17\$8\$1\$<redacted>/,
  );

  const compact = await task("compact", "--store", db.url);
  assert.equal(compact.code, 1);
  assert.match(compact.stderr, /not compacted in place.*deno task migrate/s);
  const password = db.cluster?.password ?? new URL(db.base).password;
  assert.ok(password === "" || !compact.stderr.includes(password), "the password was printed");
});
