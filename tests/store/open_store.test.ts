// openStore(): one call opens and replays whichever store `--store URL` names.

import assert from "node:assert/strict";
import { join } from "node:path";
import { FileEventStore, openStore, PostgresEventStore } from "../../store/mod.ts";
import { pgTest } from "../_postgres.ts";
import { message, withTempDir } from "./_helpers.ts";

/**
 * Opens `url` as a `kind` store, appends an event, closes it; opens it again and checks that
 * the event was replayed, with progress counted in `progressUnit`.
 */
async function assertOpensAndReplays(
  url: string,
  storeClass: abstract new (...args: never[]) => unknown,
  kind: "file" | "postgres",
  progressUnit: string,
): Promise<void> {
  const first = await openStore<string>(url);
  assert.ok(first.store instanceof storeClass);
  assert.equal(first.report.kind, kind);
  first.store.follow(() => {});
  await first.store.append([message(1)], "x");
  assert.equal(first.appends(), 1);
  await first.store.close();
  const units: string[] = [];
  const again = await openStore(url, {
    progress: (_label, unit) => (units.push(unit), () => {}),
  });
  assert.equal(again.state.events, 1);
  assert.deepEqual(units, [progressUnit]);
  await again.store.close();
}

Deno.test("openStore opens a file: URL as the file log, replayed", async () => {
  await withTempDir(async (dir) => {
    await assertOpensAndReplays(`file:${join(dir, "events.log")}`, FileEventStore, "file", "bytes");
  });
});

pgTest("openStore opens a postgres:// URL as the shared log, replayed", async (db) => {
  await assertOpensAndReplays(db.url, PostgresEventStore, "postgres", "events");
  await assert.rejects(openStore(db.url, { repair: true }), TypeError);
});
