// Shared by the PostgreSQL tests: one throwaway cluster per test process, started on first
// use and removed at exit (tools/pg_cluster.ts), or the database of HYBRID_TEST_PG_URL; each
// test gets a schema of its own. Without PostgreSQL binaries the tests are reported as
// ignored, with a line saying why: they never pass without running.

import postgres from "postgres";
import { type Cluster, findPostgresBinaries, startCluster } from "../tools/pg_cluster.ts";

const EXTERNAL_URL = Deno.env.get("HYBRID_TEST_PG_URL") || undefined;

function skipReason(): string | undefined {
  if (EXTERNAL_URL !== undefined) return undefined;
  const { bindir, looked } = findPostgresBinaries();
  if (bindir) return undefined;
  return `no PostgreSQL server binaries found (looked at ${looked.join(", ")}); install ` +
    "Debian's postgresql package, or set HYBRID_TEST_PG_URL to a database the tests may use";
}

/** Why the PostgreSQL tests cannot run here, or undefined when they can. */
export const PG_SKIP_REASON: string | undefined = skipReason();
if (PG_SKIP_REASON !== undefined) console.log(`PostgreSQL tests ignored: ${PG_SKIP_REASON}`);

let cluster: Promise<Cluster> | undefined;

/** The process's throwaway cluster (undefined when HYBRID_TEST_PG_URL is used). */
export function testCluster(): Promise<Cluster> | undefined {
  if (EXTERNAL_URL !== undefined) return undefined;
  if (cluster === undefined) {
    cluster = startCluster({ watchPid: Deno.pid });
    // The cluster outlives single tests (they share it), so it cannot be a test's resource:
    // it is stopped when the test process exits.
    cluster.then((c) => globalThis.addEventListener("unload", () => c.destroySync()), () => {});
  }
  return cluster;
}

/** What a PostgreSQL test gets. */
export interface TestDatabase {
  /** The database's URL without a schema. */
  base: string;
  /** `base` with `schema=` this test's own schema. */
  url: string;
  schema: string;
  /** The cluster, when the tests started it (not with HYBRID_TEST_PG_URL). */
  cluster: Cluster | undefined;
  /** A plain connection to the database for checks, ended after the test. */
  sql: postgres.Sql;
}

let schemas = 0;

/** The URL of `base` with `?schema=` (or `&schema=`) `schema`. */
export function withSchema(base: string, schema: string): string {
  return `${base}${base.includes("?") ? "&" : "?"}schema=${schema}`;
}

/**
 * Registers a test that runs against PostgreSQL in a fresh schema, dropped afterwards.
 * `ownCluster`: the test stops and starts the server, so it needs the throwaway cluster
 * (it is ignored, and says so, under HYBRID_TEST_PG_URL).
 */
export function pgTest(
  name: string,
  fn: (db: TestDatabase) => Promise<void>,
  options: { ownCluster?: boolean } = {},
): void {
  const needsOwn = options.ownCluster === true && EXTERNAL_URL !== undefined;
  if (needsOwn && PG_SKIP_REASON === undefined) {
    console.log(`"${name}" ignored: it restarts PostgreSQL, which HYBRID_TEST_PG_URL's is not`);
  }
  Deno.test({
    name,
    ignore: PG_SKIP_REASON !== undefined || needsOwn,
    async fn() {
      const c = await testCluster();
      const base = c?.url ?? EXTERNAL_URL!;
      const schema = `t${Date.now().toString(36)}_${schemas++}_${crypto.randomUUID().slice(0, 8)}`;
      const sql = postgres(base, { max: 2, onnotice: () => {}, connection: {} });
      try {
        await fn({ base, url: withSchema(base, schema), schema, cluster: c, sql });
      } finally {
        try {
          if (c && !c.running) await c.start(); // a test that stopped it and failed
          await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } finally {
          await sql.end({ timeout: 0 });
        }
      }
    },
  });
}

/** Waits until `condition()` holds, checking every few ms; throws after `ms` naming `what`. */
export async function waitFor(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
