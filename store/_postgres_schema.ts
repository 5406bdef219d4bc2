// The PostgreSQL side of the shared event log: its tables, and the one function every batch
// of appends goes through. Private to postgres_store.ts, which explains the design.

import { CID_MEMORY } from "../protocol/limits.ts";

/** The layout version this code writes (the schema's `meta` table records it). */
export const SCHEMA_FORMAT = 1;

/**
 * First key of the advisory locks (pg_advisory_xact_lock(int4, int4)): "HSEV" in ASCII, so
 * our locks are told apart from any other application's in pg_locks. The second key is
 * hashtext() of the schema name, so two logs in one database do not wait for each other.
 */
export const LOCK_CLASS = 0x48534556;
/** Second key of the lock that serialises schema creation (any value a hash rarely takes). */
const DDL_OBJECT = 0;

/** The LISTEN/NOTIFY channel on which a schema's log announces its new head. */
export function channelOf(schema: string): string {
  return `${schema}_events`;
}

/**
 * The statements that create the schema if missing; run in one transaction, after
 * `ddlLockSql`. Every one is idempotent (IF NOT EXISTS, OR REPLACE), and the lock makes
 * concurrent starts of several nodes take turns instead of failing on the catalogs.
 */
export function schemaStatements(schema: string): string[] {
  const s = schema; // checked against SCHEMA_PATTERN by the caller: never needs quoting
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `CREATE TABLE IF NOT EXISTS ${s}.meta (key text PRIMARY KEY, value text NOT NULL)`,
    `INSERT INTO ${s}.meta (key, value) VALUES ('format', '${SCHEMA_FORMAT}')
       ON CONFLICT (key) DO NOTHING`,
    // `record` is one record of record_format.ts with salt 0: the codec the file log uses,
    // with its checksum. Not text or jsonb: a message may hold U+0000, which neither takes.
    // `batch` names the group commit that wrote the row, so that a node reading its own
    // rows before its commit has answered knows them for its own.
    `CREATE TABLE IF NOT EXISTS ${s}.events (
       position bigint PRIMARY KEY,
       type text NOT NULL,
       record bytea NOT NULL,
       batch uuid NOT NULL
     )`,
    // The cluster-wide rules: a name signed up once; a cid used once among a sender's last
    // CID_MEMORY (the window of the projection's CidMemory, so the database and every
    // node's memory agree on which cids are still remembered). Keys are UTF-8 bytes.
    `CREATE TABLE IF NOT EXISTS ${s}.user_names (name bytea PRIMARY KEY)`,
    `CREATE TABLE IF NOT EXISTS ${s}.cid_senders (sender bytea PRIMARY KEY, uses bigint NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.cids (
       sender bytea NOT NULL,
       cid bytea NOT NULL,
       use bigint NOT NULL,
       PRIMARY KEY (sender, cid)
     )`,
    // History is append-only: nodes follow it by position, so a changed or removed row would
    // make them disagree for ever.
    `CREATE OR REPLACE FUNCTION ${s}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       RAISE EXCEPTION 'the event log %.events is append-only', TG_TABLE_SCHEMA;
     END $$`,
    `CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE OR DELETE ON ${s}.events
       FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_change()`,
    `CREATE OR REPLACE TRIGGER no_truncate BEFORE TRUNCATE ON ${s}.events
       FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_change()`,
    appendFunction(s),
  ];
}

/** Serialises schema creation across nodes (held until the creating transaction ends). */
export function ddlLockSql(): string {
  return `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${DDL_OBJECT})`;
}

/** The lock every append to `schema`'s log takes (held until its transaction ends). */
export function appendLockSql(schema: string): string {
  return `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext('${schema}'))`;
}

/**
 * append_batch: one group commit. Called as a statement of its own, so the statement is
 * the transaction: the caller's answer arrives after COMMIT (synchronous_commit on), in one
 * round trip, and the lock below is held for no client round trip at all.
 *
 * Arguments: the batch's id; per event: its record (hex), its type, and the index (from 0)
 * of the append it belongs to; per rule key, sorted by append: the append, the kind ('user' or 'cid') and
 * the key's one or two parts (hex UTF-8). `enforce` false records the keys without refusing
 * (a migration copies a history as it is). Returns the head before the batch and the
 * appends refused, with their rule; the accepted ones' events take the positions after the
 * head, in order, with no gap.
 */
function appendFunction(s: string): string {
  return `CREATE OR REPLACE FUNCTION ${s}.append_batch(
      p_batch uuid, p_records text[], p_types text[], p_owners int[],
      p_key_owners int[], p_key_kinds text[], p_key_a text[], p_key_b text[],
      p_enforce boolean,
      OUT head bigint, OUT refused_owners int[], OUT refused_rules text[])
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $fn$
    DECLARE
      n int := coalesce(cardinality(p_key_owners), 0);
      i int := 1;
      j int;
      first_key int;
      cur_owner int;
      bad text;
      uses bigint;
      last_use bigint;
      inserted bigint;
    BEGIN
      -- Appends take turns: positions are given and made visible in order (see
      -- postgres_store.ts), and a rule checked here cannot be raced by another node.
      ${appendLockSql(s).replace("SELECT", "PERFORM")};
      SELECT coalesce(max(position), 0) INTO head FROM ${s}.events;
      refused_owners := '{}';
      refused_rules := '{}';
      WHILE i <= n LOOP
        cur_owner := p_key_owners[i];
        first_key := i;
        bad := NULL;
        WHILE i <= n AND p_key_owners[i] = cur_owner LOOP
          IF p_enforce AND bad IS NULL THEN
            IF p_key_kinds[i] = 'user' THEN
              IF EXISTS (SELECT 1 FROM ${s}.user_names WHERE name = decode(p_key_a[i], 'hex'))
              THEN
                bad := 'user_exists';
              END IF;
            ELSE
              SELECT c.uses INTO uses FROM ${s}.cid_senders c
                WHERE c.sender = decode(p_key_a[i], 'hex');
              SELECT c.use INTO last_use FROM ${s}.cids c
                WHERE c.sender = decode(p_key_a[i], 'hex') AND c.cid = decode(p_key_b[i], 'hex');
              IF last_use IS NOT NULL AND last_use > coalesce(uses, 0) - ${CID_MEMORY} THEN
                bad := 'cid_used';
              END IF;
            END IF;
          END IF;
          i := i + 1;
        END LOOP;
        IF bad IS NOT NULL THEN
          refused_owners := refused_owners || cur_owner;
          refused_rules := refused_rules || bad;
          CONTINUE;
        END IF;
        FOR j IN first_key .. i - 1 LOOP
          IF p_key_kinds[j] = 'user' THEN
            INSERT INTO ${s}.user_names (name) VALUES (decode(p_key_a[j], 'hex'))
              ON CONFLICT DO NOTHING;
          ELSE
            INSERT INTO ${s}.cid_senders AS c (sender, uses) VALUES (decode(p_key_a[j], 'hex'), 1)
              ON CONFLICT (sender) DO UPDATE SET uses = c.uses + 1
              RETURNING c.uses INTO uses;
            INSERT INTO ${s}.cids AS c (sender, cid, use)
              VALUES (decode(p_key_a[j], 'hex'), decode(p_key_b[j], 'hex'), uses)
              ON CONFLICT (sender, cid) DO UPDATE SET use = excluded.use;
          END IF;
        END LOOP;
      END LOOP;
      INSERT INTO ${s}.events (position, type, record, batch)
        SELECT head + row_number() OVER (ORDER BY k), p_types[k], decode(p_records[k], 'hex'),
          p_batch
        FROM generate_subscripts(p_records, 1) AS k
        WHERE NOT (p_owners[k] = ANY (refused_owners));
      GET DIAGNOSTICS inserted = ROW_COUNT;
      IF inserted > 0 THEN
        -- Delivered at commit, to every node listening: a wake-up, not the truth.
        PERFORM pg_notify('${channelOf(s)}', (head + inserted)::text);
      END IF;
    END
    $fn$`;
}
