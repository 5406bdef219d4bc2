// `deno task torture [--seconds N] [--seed S] [--nodes N --store URL]`: honest users chat while
// the server (or, with several nodes on one PostgreSQL, a random node, and once PostgreSQL
// itself) is killed with SIGKILL and restarted again and again, then while hostile clients
// attack it. At the end
// every acknowledged message must have reached its recipient exactly once after dedupe, in
// per-sender order, no cid may be stored twice, every sealed message (a share of the honest
// traffic, §8) must have opened on arrival, honest latency and server memory stay bounded, and
// the guessed account stays usable. Exits non-zero on any failure.
import { parseArgs } from "node:util";
import { type Event, openStore, readEventLog } from "../../store/mod.ts";
import postgres from "postgres";
import { type Cluster, startCluster } from "../pg_cluster.ts";
import { runServer, type ServerProcess } from "../server_process.ts";
import { memoryOf } from "../proc.ts";
import { Prng } from "../prng.ts";
import handshakeVectors from "../../tests/vectors/handshake.json" with { type: "json" };
import { HonestUser, Ledger } from "./honest.ts";
import {
  BadRecords,
  BeforeLogin,
  ConnectionFlood,
  Drip,
  InvalidShares,
  OversizedLength,
  PasswordGuessing,
  RandomBytes,
  TruncatedFrame,
} from "./hostile.ts";
import { TestLink } from "../link.ts";
import { CRYPTO_MODES, cryptoModeOf, selectCrypto } from "../../crypto/mod.ts";

const HELP = `deno task torture [options]

  --seconds N      length of the run, split between the crash loop and the hostile phase (default 60)
  --seed S         seed for every random choice (default 1)
  --users N        honest users (default 8)
  --sealed-share F share of the honest messages sent sealed end to end (default 0.3)
  --rss-cap-mib M  the server's RSS must stay under M MiB during the hostile phase (default 256)
  --crypto MODE    auto | native | portable: the engine of the server and of the clients
                   here (default auto)
  --nodes N        server nodes on one shared log (default 1); more than one needs --store
  --store URL      the event log: a log file in a temporary directory by default;
                   postgres://… a PostgreSQL database (a fresh schema in it, dropped at the
                   end), or "throwaway" for a PostgreSQL cluster started and removed here.
                   On PostgreSQL the crash loop also restarts the database once: a throwaway
                   cluster is stopped and started; another is made to drop every connection
                   (pg_terminate_backend), which is what a restart looks like to the nodes
  --keep           keep the temporary directory (log, key) for inspection
  -h, --help       this help

The server runs with --insecure-fast-hash (many logins per second), MSG limits raised so that
honest traffic is not rate limited, and a 3 s handshake timeout (so the one-byte-per-second
drip is cut off within a short run); every other limit is the default.`;

const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    seed: { type: "string", default: "1" },
    users: { type: "string", default: "8" },
    "sealed-share": { type: "string", default: "0.3" },
    "rss-cap-mib": { type: "string", default: "256" },
    keep: { type: "boolean", default: false },
    crypto: { type: "string", default: "auto" },
    nodes: { type: "string", default: "1" },
    store: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (flags.help) {
  console.log(HELP);
  Deno.exit(0);
}
const seconds = Number(flags.seconds);
const seed = Number(flags.seed);
const userCount = Number(flags.users);
const rssCapMib = Number(flags["rss-cap-mib"]);
const nodeCount = Number(flags.nodes);
const sealedShare = Number(flags["sealed-share"]);
if (!(sealedShare >= 0 && sealedShare <= 1)) {
  console.error("torture: --sealed-share must be a number from 0 to 1");
  Deno.exit(2);
}
for (
  const [name, v, min] of [
    ["--seconds", seconds, 4],
    ["--seed", seed, 0],
    [
      "--users",
      userCount,
      2,
    ],
    ["--rss-cap-mib", rssCapMib, 16],
    ["--nodes", nodeCount, 1],
  ] as const
) {
  if (!Number.isInteger(v) || v < min) {
    console.error(`torture: ${name} must be an integer >= ${min}`);
    Deno.exit(2);
  }
}

if (nodeCount > 1 && flags.store === undefined) {
  console.error(
    "torture: several nodes share one PostgreSQL log: give --store postgres://… or --store throwaway",
  );
  Deno.exit(2);
}
if (
  flags.store !== undefined && flags.store !== "throwaway" &&
  !/^postgres(ql)?:\/\//.test(flags.store)
) {
  console.error(`torture: --store takes postgres://… or throwaway, got "${flags.store}"`);
  Deno.exit(2);
}

const cryptoMode = cryptoModeOf(flags.crypto);
if (cryptoMode === undefined) {
  console.error(`torture: --crypto must be one of ${CRYPTO_MODES.join(", ")}`);
  Deno.exit(2);
}
const { engine, detail } = selectCrypto(cryptoMode);

const rng = new Prng(seed);
const dir = await Deno.makeTempDir({ prefix: "hybrid-torture-" });
const logPath = `${dir}/events.log`;
const failures: string[] = [];
const say = (line: string) =>
  console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const started = performance.now();
say(`crypto engine here and in the server: ${cryptoMode} (${engine.name}: ${detail})`);

// ── The store: a log file, or a PostgreSQL schema of our own ──────────────────────────────
let cluster: Cluster | undefined;
let storeUrl: string | undefined;
let schema = "";
if (flags.store !== undefined) {
  const base = flags.store === "throwaway"
    ? (cluster = await startCluster({ fsync: true, watchPid: Deno.pid })).url
    : flags.store;
  schema = `torture_${Date.now().toString(36)}`;
  storeUrl = `${base}${base.includes("?") ? "&" : "?"}schema=${schema}`;
}
const storeFlags = storeUrl === undefined ? ["--log", logPath] : ["--store", storeUrl];
say(
  `store: ${storeUrl === undefined ? logPath : storeUrl.replace(/:[^:@/]*@/, "@")}; ` +
    `${nodeCount} node${nodeCount === 1 ? "" : "s"}`,
);

// ── The nodes, each restartable on its own port, all with one identity key ────────────────
const SERVER_FLAGS = [
  "--crypto",
  cryptoMode,
  "--insecure-fast-hash",
  "--key",
  `${dir}/server_key.pem`,
  "--limit",
  "msg_burst=200",
  "--limit",
  "msg_per_second=200",
  ...storeFlags,
];
interface Node {
  server: ServerProcess;
  port: number;
  expectedExit: boolean;
}
const nodes: Node[] = [];
let unexpectedExits = 0;
function watch(node: Node, p: ServerProcess): void {
  p.exited.then((code) => {
    if (!node.expectedExit && p === node.server) {
      unexpectedExits++;
      failures.push(
        `a node exited on its own with code ${code}:\n${p.stderr.lines.slice(-5).join("\n")}`,
      );
    }
  });
}
for (let i = 0; i < nodeCount; i++) {
  // The first node makes the identity key; the others start with the same one, as a service's do.
  const server = await runServer(["--host", "127.0.0.1", "--port", "0", ...SERVER_FLAGS]);
  const node: Node = { server, port: server.port, expectedExit: false };
  nodes.push(node);
  watch(node, server);
}
const port = nodes[0]!.port;
/** A node for a new connection: any of them (a killed one refuses, and the client tries again). */
const anyPort = () => nodes[rng.range(0, nodes.length - 1)]!.port;

async function restart(node: Node): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      node.server = await runServer([
        "--host",
        "127.0.0.1",
        "--port",
        String(node.port),
        ...SERVER_FLAGS,
      ]);
      watch(node, node.server);
      return;
    } catch (err) {
      if (attempt >= 50) throw err;
      await sleep(100); // the port may linger for a moment after SIGKILL; the database may be away
    }
  }
}

async function kill(node: Node): Promise<void> {
  node.expectedExit = true;
  node.server.child.kill("SIGKILL");
  await node.server.exited;
  node.expectedExit = false;
}

/** PostgreSQL goes away and comes back, under the nodes (see --store in the help). */
async function restartDatabase(): Promise<void> {
  if (cluster) {
    await cluster.stop();
    await sleep(rng.range(500, 2000));
    await cluster.start();
    return;
  }
  const sql = postgres(flags.store!, { max: 1, onnotice: () => {} });
  try {
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE pid <> pg_backend_pid() AND datname = current_database()`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

// ── Honest users ────────────────────────────────────────────────────────────────────────────
const ledger = new Ledger();
const names = Array.from({ length: userCount }, (_, i) => `user${i}`);
const victim = names[0]!;
// Each honest user's own key (§8.1), published at sign-up; 2048 bits, to be made quickly.
const keys = new Map(
  await Promise.all(names.map(async (name) => [name, await engine.generateRsaKey(2048)] as const)),
);
const users = names.map((name) =>
  new HonestUser({
    name,
    peers: names,
    port: anyPort,
    crypto: engine,
    ledger,
    rng: rng.fork(),
    sendChance: 0.5,
    disconnectChance: 0.02,
    skipDakChance: 0.1,
    sealedShare,
    keys,
  })
);

// Nobody writes to a peer before every peer has an account (a MSG to a name not yet signed up
// is rightly unknown_user); then the run begins.
for (const u of users) u.sending = false;
{
  const deadline = Date.now() + 30_000;
  while (!users.every((u) => u.loggedIn) && Date.now() < deadline) await sleep(20);
  if (!users.every((u) => u.loggedIn)) {
    failures.push("not every honest user could log in at the start");
  }
  for (const u of users) u.sending = true;
}

async function drain(what: string, ms: number): Promise<void> {
  for (const u of users) {
    u.sending = false;
    u.o.disconnectChance = 0;
  }
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const pending = users.reduce((n, u) => n + u.outbox.length, 0);
    if (pending === 0 && ledger.undelivered().length === 0 && users.every((u) => u.loggedIn)) {
      return;
    }
    await sleep(50);
  }
  const pending = users.reduce((n, u) => n + u.outbox.length, 0);
  failures.push(
    `${what}: after ${ms} ms, ${pending} sends unacknowledged and ${ledger.undelivered().length} acknowledged messages undelivered`,
  );
}

// ── Phase 1: the crash loop ────────────────────────────────────────────────────────────────
const crashMs = seconds * 500;
let kills = 0;
say(
  `crash loop: ${userCount} honest users, SIGKILL at random moments for ${
    crashMs / 1000
  } s (seed ${seed})`,
);
const crashEnd = Date.now() + crashMs;
let databaseRestarts = 0;
while (Date.now() < crashEnd) {
  await sleep(rng.range(700, 2500));
  if (Date.now() >= crashEnd) break;
  if (storeUrl !== undefined && databaseRestarts === 0 && Date.now() > crashEnd - crashMs / 2) {
    say("restarting PostgreSQL under the nodes");
    await restartDatabase();
    databaseRestarts++;
    continue;
  }
  const node = nodes[rng.range(0, nodes.length - 1)]!;
  await kill(node);
  kills++;
  await restart(node);
}
say(`crash loop done: ${kills} kills, ${databaseRestarts} database restarts; draining`);
await drain("after the crash loop", 30_000);

// ── Phase 2: hostile clients beside the honest ones ────────────────────────────────────────
const hostileMs = seconds * 500;
let peakRssKib = 0;
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    try {
      peakRssKib = Math.max(peakRssKib, memoryOf(nodes[0]!.server.child.pid).rss / 1024);
    } catch { /* between restarts */ }
    await sleep(200);
  }
})();

function p99(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

for (const u of users) u.sending = true;
ledger.measuring = true;
say(`hostile phase: ${hostileMs / 3000} s baseline, then ${(hostileMs * 2) / 3000} s under attack`);
await sleep(hostileMs / 3);
const baseline = ledger.latencies;
ledger.latencies = [];

const target = { port: () => port, crypto: engine };
const attacks = [
  new RandomBytes("random bytes", "127.0.0.11", target, rng.fork()),
  new TruncatedFrame("truncated frames", "127.0.0.12", target, rng.fork()),
  new OversizedLength("oversized lengths", "127.0.0.13", target, rng.fork()),
  new Drip("one byte per second", "127.0.0.14", target, rng.fork()),
  new InvalidShares("127.0.0.15", target, rng.fork(), handshakeVectors.invalid_shares),
  new BadRecords("tampered/replayed/reordered records", "127.0.0.16", target, rng.fork()),
  new BeforeLogin("requests before login", "127.0.0.17", target, rng.fork()),
  new PasswordGuessing("127.0.0.18", target, rng.fork(), victim),
  new ConnectionFlood("127.0.0.19", target, rng.fork(), 120, 64),
].map((a) => a.start());
await sleep((hostileMs * 2) / 3);
const underAttack = ledger.latencies;
ledger.measuring = false;
await Promise.all(attacks.map((a) => a.stop()));
sampling = false;
await sampler;
say("hostile phase done; draining");
await drain("after the hostile phase", 30_000);

// The guessed account still works for its owner (from the owner's own address).
let ownerOk = false;
{
  const link = await TestLink.open(port, () => {}, { crypto: engine });
  const r = await link.request({ code: "LGN", user: victim, password: users[0]!.password });
  ownerOk = r !== "closed" && r.code === "ACK";
  if (!ownerOk) {
    failures.push(`the guessed account ${victim} refused its owner: ${JSON.stringify(r)}`);
  }
  await link.close();
}

await Promise.all(users.map((u) => u.stop()));
for (const node of nodes) {
  node.expectedExit = true;
  node.server.child.kill("SIGTERM");
  const exitCode = await node.server.exited;
  if (exitCode !== 0) failures.push(`graceful shutdown exited with ${exitCode}`);
}

// ── Verdict ─────────────────────────────────────────────────────────────────────────────────
const stored = new Map<string, number>();
let storedMessages = 0;
let storedSealed = 0;
const count = (e: Event) => {
  if (e.type !== "message_sent" && e.type !== "sealed_message_sent") return;
  storedMessages++;
  if (e.type === "sealed_message_sent") storedSealed++;
  if (e.cid !== undefined) {
    stored.set(`${e.from}\0${e.cid}`, (stored.get(`${e.from}\0${e.cid}`) ?? 0) + 1);
  }
};
if (storeUrl === undefined) {
  await readEventLog(logPath, { onEvent: count });
} else {
  const { store } = await openStore(storeUrl, { onEvent: count });
  await store.close();
}
const cidTwice = [...stored.values()].filter((n) => n > 1).length;
const acked = ledger.acked.size;
const lost = ledger.undelivered().length;
const delivered = acked - lost;
const uniqueDeliveries = [...ledger.firstDeliveries.values()].reduce((n, l) => n + l.length, 0);
const duplicates = ledger.receipts - uniqueDeliveries;
const order = ledger.orderViolations();
const honestErrors = users.flatMap((u) => u.errors.map((e) => `${u.o.name}: ${e}`));
if (lost > 0) failures.push(`${lost} acknowledged messages never delivered`);
if (cidTwice > 0) failures.push(`${cidTwice} cids stored more than once`);
if (storedMessages !== acked) {
  failures.push(`${storedMessages} messages stored but ${acked} acknowledged`);
}
if (order.length > 0) failures.push(`order violated: ${order.slice(0, 5).join("; ")}`);
if (ledger.anomalies.length > 0) {
  failures.push(`wrong deliveries: ${ledger.anomalies.slice(0, 5).join("; ")}`);
}
if (honestErrors.length > 0) {
  failures.push(`honest clients failed: ${honestErrors.slice(0, 5).join("; ")}`);
}
if (peakRssKib / 1024 > rssCapMib) {
  failures.push(
    `server RSS peaked at ${(peakRssKib / 1024).toFixed(1)} MiB, over the ${rssCapMib} MiB cap`,
  );
}
if (underAttack.length === 0) failures.push("no honest message was delivered under attack");
if (ledger.sealedOpened !== ledger.sealedDelivered) {
  failures.push(
    `${ledger.sealedDelivered - ledger.sealedOpened} of ${ledger.sealedDelivered} sealed ` +
      "messages did not open on arrival",
  );
}
if (sealedShare > 0 && ledger.sealedDelivered === 0) failures.push("no sealed message delivered");
const attackAnomalies = attacks.flatMap((a) =>
  a.stats.anomalies.map((x) => `${a.stats.name}: ${x}`)
);
if (attackAnomalies.length > 0) {
  failures.push(`the server mishandled hostile input: ${attackAnomalies.slice(0, 5).join("; ")}`);
}

const row = (k: string, v: string | number) => console.log(`  ${k.padEnd(36)} ${v}`);
console.log("\nsummary");
row("seed", seed);
row("nodes", nodeCount);
row("node kills (SIGKILL) and restarts", kills);
row("database restarts", databaseRestarts);
row("unexpected server exits", unexpectedExits);
row("messages created / stored", `${ledger.created} / ${storedMessages}`);
row(
  "sealed: stored / delivered / opened",
  `${storedSealed} / ${ledger.sealedDelivered} / ${ledger.sealedOpened}`,
);
row("honest reconnects", users.reduce((n, u) => n + u.reconnects, 0));
row("sends refused: event store unavailable", users.reduce((n, u) => n + u.storeOutages, 0));
const reasons = new Map<string, number>();
for (const u of users) {
  for (const [k, v] of u.closeReasons) reasons.set(k, (reasons.get(k) ?? 0) + v);
}
for (const [k, v] of reasons) row(`  closed: ${k}`, v);
row("honest p99 latency, baseline", `${p99(baseline).toFixed(1)} ms (${baseline.length} messages)`);
row(
  "honest p99 latency, under attack",
  `${p99(underAttack).toFixed(1)} ms (${underAttack.length} messages)`,
);
row(
  "server peak RSS, hostile phase",
  `${(peakRssKib / 1024).toFixed(1)} MiB (cap ${rssCapMib} MiB)`,
);
for (const a of attacks) {
  row(`  ${a.stats.name}`, `${a.stats.attempts} tries, ${a.stats.expected} handled as specified`);
}
row("guessed account usable by its owner", ownerOk ? "yes" : "NO");
row("cids stored twice", cidTwice);
console.log(`\nacked ${acked}, delivered ${delivered}, lost ${lost}, duplicates ${duplicates}`);
if (flags.keep) console.log(`kept ${dir}`);
else await Deno.remove(dir, { recursive: true });
if (storeUrl !== undefined && !flags.keep) {
  const sql = postgres(cluster?.url ?? flags.store!, { max: 1, onnotice: () => {} });
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await sql.end({ timeout: 1 });
}
cluster?.destroySync();
if (failures.length > 0) {
  console.log(`\nFAILED:\n- ${failures.join("\n- ")}`);
  Deno.exit(1);
}
console.log("\nOK");
