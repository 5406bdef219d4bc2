// openStore(): one call opens and replays whichever store `--store URL` names.

import assert from "node:assert/strict";
import { join } from "node:path";
import { FileEventStore, openStore, PostgresEventStore } from "../../store/mod.ts";
import { pgTest } from "../_postgres.ts";
import { message, withTempDir } from "./_helpers.ts";

Deno.test("openStore opens a file: URL as the file log, replayed", async () => {
  await withTempDir(async (dir) => {
    const url = `file:${join(dir, "events.log")}`;
    const first = await openStore<string>(url);
    assert.ok(first.store instanceof FileEventStore);
    assert.equal(first.report.kind, "file");
    first.store.follow(() => {});
    await first.store.append([message(1)], "x");
    assert.equal(first.appends(), 1);
    await first.store.close();
    const units: string[] = [];
    const again = await openStore(url, {
      progress: (_label, unit) => (units.push(unit), () => {}),
    });
    assert.equal(again.state.events, 1);
    assert.deepEqual(units, ["bytes"]);
    await again.store.close();
  });
});

pgTest("openStore opens a postgres:// URL as the shared log, replayed", async (db) => {
  const first = await openStore<string>(db.url);
  assert.ok(first.store instanceof PostgresEventStore);
  assert.equal(first.report.kind, "postgres");
  first.store.follow(() => {});
  await first.store.append([message(1)], "x");
  assert.equal(first.appends(), 1);
  await first.store.close();
  const units: string[] = [];
  const again = await openStore(db.url, {
    progress: (_label, unit) => (units.push(unit), () => {}),
  });
  assert.equal(again.state.events, 1);
  assert.deepEqual(units, ["events"]);
  await again.store.close();
  await assert.rejects(openStore(db.url, { repair: true }), TypeError);
});
