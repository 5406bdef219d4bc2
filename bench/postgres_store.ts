// The PostgreSQL store's append rate beside the database's own commit ceiling, on one
// throwaway cluster with fsync on: pgbench (one INSERT per transaction, 8 clients), then
// PostgresEventStore with concurrent appenders on one node and on several.
//
//   deno run -A bench/postgres_store.ts [--seconds 10]

import { parseArgs } from "node:util";
import { openPostgresStore } from "../store/postgres_store.ts";
import type { Event } from "../store/mod.ts";
import { startCluster } from "../tools/pg_cluster.ts";

const { values } = parseArgs({ args: Deno.args, options: { seconds: { type: "string" } } });
const SECONDS = Number(values.seconds ?? 10);
/** Appends each appender keeps in flight, like a server's sessions waiting for their ACKs. */
const APPENDERS = 64;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

const cluster = await startCluster({ fsync: true });
try {
  const pgbenchScript = await Deno.makeTempFile({ suffix: ".sql" });
  await Deno.writeTextFile(pgbenchScript, "INSERT INTO bench_commit (v) VALUES (1);\n");
  await Deno.chmod(pgbenchScript, 0o644);
  await cluster.run("psql", ["-qc", "CREATE TABLE bench_commit (id bigserial, v int)"]);
  for (const clients of [1, 8]) {
    const out = await cluster.run("pgbench", [
      "-n",
      "-c",
      String(clients),
      "-j",
      "2",
      "-T",
      String(SECONDS),
      "-f",
      pgbenchScript,
    ]);
    const tps = /tps = ([0-9.]+)/.exec(out.output)?.[1];
    console.log(`pgbench, 1 INSERT per transaction, ${clients} clients: ${tps} commits/s`);
  }
  await Deno.remove(pgbenchScript);

  for (const nodes of [1, 3]) {
    const url = `${cluster.url}?schema=bench_${nodes}`;
    const stores = await Promise.all(
      Array.from({ length: nodes }, () => openPostgresStore<number>(url)),
    );
    for (const { store } of stores) store.follow(() => {});
    const latencies: number[] = [];
    let n = 0;
    const end = performance.now() + SECONDS * 1000;
    const appender = async (store: (typeof stores)[number]["store"]) => {
      while (performance.now() < end) {
        const i = n++;
        const event: Event = {
          type: "message_sent",
          ts: Date.now(),
          msg: `m${i}`,
          from: `u${i % 1000}`,
          to: `u${(i + 1) % 1000}`,
          text: "x".repeat(100),
          cid: `c${i}`,
        };
        const started = performance.now();
        await store.append([event], i);
        latencies.push(performance.now() - started);
      }
    };
    const started = performance.now();
    await Promise.all(
      stores.flatMap(({ store }) =>
        Array.from({ length: Math.ceil(APPENDERS / nodes) }, () => appender(store))
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const appends = stores.reduce((sum, { store }) => sum + store.stats.appends, 0);
    const batches = stores.reduce((sum, { store }) => sum + store.stats.batches, 0);
    latencies.sort((a, b) => a - b);
    console.log(
      `store, ${nodes} node(s), ${APPENDERS} appenders: ${
        Math.round(appends / seconds)
      } appends/s, ` +
        `${Math.round(batches / seconds)} commits/s, ${
          (appends / batches).toFixed(1)
        } events per ` +
        `commit, latency p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${
          percentile(latencies, 0.99).toFixed(2)
        } ms`,
    );
    for (const { store } of stores) await store.close();
  }
} finally {
  cluster.destroySync();
}
