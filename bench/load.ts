// `deno task load`: the system benchmark. Starts the real server (server/main.ts)
// as a child process on a temporary log, drives it over loopback with many logged-in clients
// sending to each other, and measures, in the same run and with the same load generator, the
// baselines it is judged against: a plain relay (bench/plain_relay.ts: same framing and
// routing, no crypto, no JSON, no log) and TLS 1.3 handshakes (bench/tls_server.ts, rustls,
// a self-signed RSA-2048 certificate made here). Handshakes are measured in every key-exchange
// group, each beside that same TLS figure. Prints a table, or one JSON object.
import { parseArgs } from "node:util";
import {
  CRYPTO_MODES,
  type CryptoEngine,
  type CryptoMode,
  cryptoModeOf,
  hashPassword,
  isRsaKeyBits,
  KEX_GROUPS,
  type KexGroup,
  kexGroupByName,
  type RsaKeyBits,
  selectCrypto,
  TEST_ONLY_WEAK_PARAMS,
} from "../crypto/mod.ts";
import { portableCrypto } from "../crypto/portable.ts";
import { type Event, openEventLog, openStore, parseStoreUrl, readEventLog } from "../store/mod.ts";
import postgres from "postgres";
import { HspClient, hspHandshakeOnce, type LoadClient, RelayClient } from "./_clients.ts";
import {
  keyEvents,
  ringEnvelopes,
  type RingSend,
  type SealedLoadKey,
  sealedLoadKey,
  sealedSenders,
} from "./_sealed_load.ts";
import { formatSummary, InspectorProfiler, summarise } from "./_cpu_profile.ts";
import { cpuMsOf, fileLimit, machineBusyMs, ServerChild } from "./_process.ts";
import { selfSignedCert } from "./_tls_cert.ts";
import { COUNT_LINE, STARTED } from "./tls_clients.ts";

const SERVER_MAIN = new URL("../server/main.ts", import.meta.url).pathname;
const RELAY_MAIN = new URL("./plain_relay.ts", import.meta.url).pathname;
const TLS_MAIN = new URL("./tls_server.ts", import.meta.url).pathname;
const TLS_CLIENTS_MAIN = new URL("./tls_clients.ts", import.meta.url).pathname;
const REPO_ROOT = new URL("../", import.meta.url).href;

/** Every load user's password; its hash (weak scrypt) is written into the log up front. */
const PASSWORD = "bench-password";
/** Logins in flight while opening idle sessions: below the server's hash_queue (64). */
const LOGIN_CONCURRENCY = 32;
/** Rate limits raised so the load measures relaying, not the §5 per-session throttle. */
const UNTHROTTLED = 1_000_000_000;
/** How long to wait for in-flight messages after a phase before giving up on them. */
const DRAIN_TIMEOUT_MS = 15_000;
/** V8 sampling interval of --profile. */
const PROFILE_INTERVAL_US = 250;
/** The group of the sessions when every group's handshakes are measured: the client's default. */
const SESSION_GROUP = kexGroupByName("x25519mlkem768")!;
/**
 * Handshake targets against TLS 1.3 in the same run: x25519 at least matches it, the hybrid at
 * least half; the finite-field groups keep the earlier target of the ffdhe2048 handshake.
 */
const HANDSHAKE_TARGETS: Record<KexGroup["name"], { ratio: string; serverCpu: string }> = {
  ffdhe2048: { ratio: ">= 0.50", serverCpu: "<= 3 ms" },
  ffdhe3072: { ratio: "", serverCpu: "" },
  ffdhe4096: { ratio: "", serverCpu: "" },
  x25519: { ratio: ">= 1.00", serverCpu: "< 1 ms" },
  x25519mlkem768: { ratio: ">= 0.50", serverCpu: "" },
};

const HELP = `bench/load.ts — system benchmark of hybrid-server beside its baselines

Usage: deno task load [options]

  --seconds N           measured seconds per phase (default 10; a quarter more, at most
                        2 s, warms up first)
  --clients N           logged-in clients sending to each other in a ring (default 100)
  --window N            MSGs each client keeps in flight at saturation (default 8)
  --rate R              messages/s offered in the latency phase (default 5000)
  --idle N              idle sessions (handshaken, then logged in) opened to measure server
                        memory per session (default 5000)
  --connectors N        concurrent connect+handshake loops for handshakes/s (default 8)
  --group G|all         key exchange of the handshake phase and of every session: one of
                        ${KEX_GROUPS.map((g) => g.name).join(", ")}; all (the default)
                        measures handshakes in each group, sessions use ${SESSION_GROUP.name}
  --handshakes-only     only the handshake phases (TLS 1.3 and the groups), no messages
  --text-bytes N        message text size (default 100)
  --sealed              also saturate with sealed messages (§8) of texts of that size,
                        beside texts of that size and texts as long as the envelopes
                        (at most 16384 bytes, the most a text may be),
                        back to back on the same clients: messages/s and server CPU
                        per message, sealed against text
  --sealed-bits B       RSA key of the sealed phases (2048 | 3072 | 4096, default 3072,
                        the client's default)
  --fsync always|off    the server's log mode (default always)
  --crypto MODE         auto | native | portable: the crypto engine of the server and of
                        the generator's clients (default auto: OpenSSL over FFI if it loads)
  --profile PATH        write a V8 CPU profile of the server during saturation and latency
                        to PATH (.cpuprofile, opens in Chrome DevTools) and print a summary
  --server-v8-flags F   pass --v8-flags=F to the server (GC tuning experiments)
  --store URL           also run the message phases on one server whose log is PostgreSQL at
                        URL (in a fresh schema, dropped afterwards), beside the file log's
  --server-limit N=V    pass --limit N=V to the server; repeatable (handshake_workers=0 for
                        handshakes on the event loop, say)
  --server-main PATH    run this server/main.ts instead of the one beside this file (A/B
                        runs of two checkouts under the same load generator)
  --json                print one JSON object instead of the table
  -h, --help            this help

The server, the plain relay and the TLS server each run as a child process; the clients all
run in this process (one JS thread) and share the machine's cores with them. The server runs
with the per-session message rate and the connection, handshake and login limits per address
raised to ${
  UNTHROTTLED.toLocaleString("en-US")
} (every client connects from 127.0.0.1). Users are written
into the log before the server starts, with weak scrypt hashes, so logins cost little;
password hashing is measured by bench/password_bench.ts.
`;

interface Options {
  seconds: number;
  clients: number;
  window: number;
  rate: number;
  idle: number;
  connectors: number;
  textBytes: number;
  sealed: boolean;
  sealedBits: RsaKeyBits;
  fsync: "always" | "off";
  crypto: CryptoMode;
  /** The generator's clients' engine: the one the server is told to use. */
  engine: CryptoEngine;
  /** Groups whose handshakes are measured, and the one every session uses. */
  handshakeGroups: readonly KexGroup[];
  sessionGroup: KexGroup;
  handshakesOnly: boolean;
  profile: string | undefined;
  serverMain: string;
  serverV8Flags: string | undefined;
  serverLimits: string[];
  store: string | undefined;
  json: boolean;
}

function parseOptions(args: string[]): Options | "help" {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      seconds: { type: "string", default: "10" },
      clients: { type: "string", default: "100" },
      window: { type: "string", default: "8" },
      rate: { type: "string", default: "5000" },
      idle: { type: "string", default: "5000" },
      connectors: { type: "string", default: "8" },
      "text-bytes": { type: "string", default: "100" },
      sealed: { type: "boolean", default: false },
      "sealed-bits": { type: "string", default: "3072" },
      fsync: { type: "string", default: "always" },
      crypto: { type: "string", default: "auto" },
      group: { type: "string", default: "all" },
      "handshakes-only": { type: "boolean", default: false },
      profile: { type: "string" },
      "server-main": { type: "string", default: SERVER_MAIN },
      "server-v8-flags": { type: "string" },
      "server-limit": { type: "string", multiple: true },
      store: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  const number = (name: string, value: string, min: number, max: number): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new RangeError(`--${name} must be a number from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
  const integer = (name: string, value: string, min: number, max: number): number => {
    const n = number(name, value, min, max);
    if (!Number.isInteger(n)) throw new RangeError(`--${name} must be an integer, got "${value}"`);
    return n;
  };
  if (values.fsync !== "always" && values.fsync !== "off") {
    throw new RangeError(`--fsync must be "always" or "off", got "${values.fsync}"`);
  }
  const crypto = cryptoModeOf(values.crypto);
  if (crypto === undefined) {
    throw new RangeError(
      `--crypto must be one of ${CRYPTO_MODES.join(", ")}, got "${values.crypto}"`,
    );
  }
  const group = values.group === "all" ? undefined : kexGroupByName(values.group);
  if (values.group !== "all" && group === undefined) {
    throw new RangeError(
      `--group must be all or one of ${KEX_GROUPS.map((g) => g.name).join(", ")}, ` +
        `got "${values.group}"`,
    );
  }
  const sealedBits = Number(values["sealed-bits"]);
  if (!isRsaKeyBits(sealedBits)) {
    throw new RangeError(
      `--sealed-bits must be 2048, 3072 or 4096, got "${values["sealed-bits"]}"`,
    );
  }
  return {
    seconds: number("seconds", values.seconds, 0.1, 3600),
    clients: integer("clients", values.clients, 2, 10_000),
    window: integer("window", values.window, 1, 1000),
    rate: number("rate", values.rate, 1, 1_000_000),
    idle: integer("idle", values.idle, 0, 100_000),
    connectors: integer("connectors", values.connectors, 1, 1000),
    textBytes: integer("text-bytes", values["text-bytes"], 32, 16_384),
    sealed: values.sealed,
    sealedBits,
    fsync: values.fsync,
    crypto,
    engine: portableCrypto, // replaced by the --crypto engine in main()
    handshakeGroups: group === undefined ? KEX_GROUPS : [group],
    sessionGroup: group ?? SESSION_GROUP,
    handshakesOnly: values["handshakes-only"],
    profile: values.profile,
    serverMain: values["server-main"],
    serverV8Flags: values["server-v8-flags"],
    serverLimits: values["server-limit"] ?? [],
    store: values.store,
    json: values.json,
  };
}

// ─── Measuring ───────────────────────────────────────────────────────────────────────────────

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Runs `make(i)` for i < count with at most `concurrency` in flight; results in order. */
async function pooled<T>(
  count: number,
  concurrency: number,
  make: (i: number) => Promise<T>,
): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await make(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}

/** The warm-up before each measured window: a quarter of it, at most 2 s. */
function warmupMs(o: Options): number {
  return Math.min(2000, o.seconds * 250);
}

/** CPU use over a measured window, each as % of one core. */
interface CpuUse {
  /** Milliseconds of CPU the server child used (all its threads). */
  serverMs: number;
  serverPct: number;
  /** This process: the load generator. */
  generatorPct: number;
  /** Everything else on the machine (other users' work): it competes for the same cores. */
  otherPct: number;
}

/** CPU time of the server child, of this process (the generator) and of the rest of the machine. */
class CpuWindow {
  readonly #server: number;
  readonly #serverStart: number;
  readonly #selfStart = cpuMsOf("self");
  readonly #machineStart = machineBusyMs();
  readonly #t0 = performance.now();

  constructor(serverPid: number) {
    this.#server = serverPid;
    this.#serverStart = cpuMsOf(serverPid);
  }

  end(): CpuUse {
    const wall = performance.now() - this.#t0;
    const serverMs = cpuMsOf(this.#server) - this.#serverStart;
    const selfMs = cpuMsOf("self") - this.#selfStart;
    const otherMs = Math.max(0, machineBusyMs() - this.#machineStart - serverMs - selfMs);
    const pct = (ms: number) => (ms / wall) * 100;
    return {
      serverMs,
      serverPct: pct(serverMs),
      generatorPct: pct(selfMs),
      otherPct: pct(otherMs),
    };
  }
}

interface HandshakeResult {
  perSecond: number;
  serverCpuMs: number;
  /** CPU of the process driving the handshakes (this one, or the TLS clients' child) per one. */
  clientCpuMs: number;
  /** Other processes' CPU over the window, % of one core: another user's load skews the rate. */
  othersPct: number;
  failed: number;
}

/** Handshakes completed and failed so far, by whoever drives them. */
interface HandshakeCounts {
  done: number;
  failed: number;
}

/**
 * Measures a running handshake driver: handshakes/s, and the CPU per handshake of the server and
 * of the clients (`clientPid`: a child process, or undefined for this one).
 */
async function handshakeWindow(
  counts: () => HandshakeCounts,
  server: ServerChild,
  o: Options,
  clientPid?: number,
): Promise<HandshakeResult> {
  await sleep(warmupMs(o));
  const d0 = counts().done;
  const t0 = performance.now();
  const cpu = new CpuWindow(server.pid);
  const client0 = clientPid === undefined ? 0 : cpuMsOf(clientPid);
  await sleep(o.seconds * 1000);
  const { done, failed } = counts();
  const n = done - d0;
  const wall = performance.now() - t0;
  const use = cpu.end();
  const generatorMs = (use.generatorPct / 100) * wall;
  const clientMs = clientPid === undefined ? generatorMs : cpuMsOf(clientPid) - client0;
  // The child's CPU is part of "others" for CpuWindow; take it out again.
  const othersMs = (use.otherPct / 100) * wall - (clientPid === undefined ? 0 : clientMs);
  return {
    perSecond: n / (wall / 1000),
    serverCpuMs: n > 0 ? use.serverMs / n : NaN,
    clientCpuMs: n > 0 ? clientMs / n : NaN,
    othersPct: Math.max(0, othersMs / wall * 100),
    failed,
  };
}

/** `connectors` loops of connect + handshake + close in this process. */
async function handshakeRate(
  once: () => Promise<void>,
  server: ServerChild,
  o: Options,
): Promise<HandshakeResult> {
  const counts: HandshakeCounts = { done: 0, failed: 0 };
  let running = true;
  const loop = async () => {
    while (running) {
      try {
        await once();
        counts.done++;
      } catch {
        counts.failed++;
        await sleep(10);
      }
    }
  };
  const loops = Array.from({ length: o.connectors }, loop);
  try {
    return await handshakeWindow(() => ({ ...counts }), server, o);
  } finally {
    running = false;
    await Promise.all(loops);
  }
}

interface SaturationResult {
  perSecond: number;
  /** Server CPU time per delivered message (all its threads), in microseconds. */
  serverCpuUs: number;
  cpu: CpuUse;
  errors: Record<string, number>;
}

function countError(errors: Record<string, number>, code: string): void {
  errors[code] = (errors[code] ?? 0) + 1;
}

/**
 * Closed loop: every client keeps `window` MSGs in flight to the next client in a ring, texts
 * of `o.textBytes` unless `send` says what client `i` sends instead.
 */
async function saturate(
  clients: LoadClient[],
  server: ServerChild,
  o: Options,
  send?: (client: LoadClient, i: number, to: string) => void,
): Promise<SaturationResult> {
  const text = "x".repeat(o.textBytes);
  const sendOne = send ?? ((c: LoadClient, _i: number, to: string) => c.send(to, text));
  let running = true;
  let delivered = 0;
  let acked = 0;
  let inFlight = 0;
  const errors: Record<string, number> = {};
  clients.forEach((c, i) => {
    const to = clients[(i + 1) % clients.length]!.name;
    c.onDeliver = () => delivered++;
    c.onAck = (ok, error) => {
      inFlight--;
      if (ok) acked++;
      else countError(errors, error);
      if (running) {
        inFlight++;
        sendOne(c, i, to);
      }
    };
    for (let w = 0; w < o.window; w++) {
      inFlight++;
      sendOne(c, i, to);
    }
  });
  await sleep(warmupMs(o));
  const d0 = delivered;
  const t0 = performance.now();
  const cpu = new CpuWindow(server.pid);
  await sleep(o.seconds * 1000);
  const n = delivered - d0;
  const wall = performance.now() - t0;
  const use = cpu.end();
  running = false;
  if (!await until(() => inFlight === 0 && delivered >= acked, DRAIN_TIMEOUT_MS)) {
    countError(errors, "undrained");
  }
  for (const c of clients) if (c.failure) countError(errors, `closed: ${c.failure}`);
  return {
    perSecond: n / (wall / 1000),
    serverCpuUs: n > 0 ? (use.serverMs * 1000) / n : NaN,
    cpu: use,
    errors,
  };
}

interface LatencyResult {
  cpu: CpuUse;
  p50: number;
  p99: number;
  p999: number;
  achievedRate: number;
  samples: number;
  errors: Record<string, number>;
}

/** The q-quantile of sorted samples (nearest rank). */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/**
 * Open loop at `rate` messages/s, spread round-robin over the clients, whatever the replies
 * do. Latency is MSG handed to the socket → DLV opened and parsed by the recipient; the text
 * carries the send time (sender and recipient share this process's clock).
 */
async function latencyAt(
  clients: LoadClient[],
  server: ServerChild,
  rate: number,
  o: Options,
): Promise<LatencyResult> {
  const pad = "x".repeat(o.textBytes);
  const samples: number[] = [];
  const errors: Record<string, number> = {};
  let measureFrom = Infinity;
  let sent = 0;
  let measured = 0;
  let received = 0;
  clients.forEach((c) => {
    c.onAck = (ok, error) => {
      if (!ok) countError(errors, error);
    };
    c.onDeliver = (text) => {
      const at = performance.now();
      received++;
      const sentAt = parseFloat(text);
      if (sentAt >= measureFrom) samples.push(at - sentAt);
    };
  });
  const start = performance.now();
  const warm = warmupMs(o);
  const end = start + warm + o.seconds * 1000;
  let next = 0;
  let cpu: CpuWindow | undefined;
  for (let now = start; now < end; now = performance.now()) {
    if (measureFrom === Infinity && now >= start + warm) {
      measureFrom = now;
      cpu = new CpuWindow(server.pid);
    }
    const due = Math.floor(((now - start) / 1000) * rate);
    while (sent < due) {
      const from = clients[next]!;
      const to = clients[(next + 1) % clients.length]!.name;
      next = (next + 1) % clients.length;
      const stamp = performance.now().toFixed(3) + " ";
      from.send(to, stamp + pad.slice(stamp.length));
      sent++;
      if (measureFrom !== Infinity) measured++;
    }
    await sleep(1);
  }
  const window = (performance.now() - measureFrom) / 1000;
  const use = cpu!.end();
  if (!await until(() => received >= sent, DRAIN_TIMEOUT_MS)) countError(errors, "undrained");
  const sorted = Float64Array.from(samples).sort();
  return {
    cpu: use,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    achievedRate: measured / window,
    samples: sorted.length,
    errors,
  };
}

interface IdleResult {
  /** Bytes of server RSS per session after the handshake alone. */
  perHandshaken: number;
  /** Bytes per session once every session is also logged in (HSP) or registered (relay). */
  perSession: number;
  opened: number;
}

/** The server's RSS once it has been quiet for a moment. */
async function settledRss(server: ServerChild, ms: number): Promise<number> {
  await sleep(ms);
  return server.memory().rss;
}

/** Opens `o.idle` sessions, reads the server's RSS growth, then closes them. */
async function idleSessions(
  server: ServerChild,
  kind: "hsp" | "relay",
  o: Options,
): Promise<IdleResult> {
  if (o.idle === 0) return { perHandshaken: NaN, perSession: NaN, opened: 0 };
  const settle = o.idle >= 1000 ? 1000 : 200;
  const before = await settledRss(server, settle);
  let perHandshaken = NaN;
  let sessions: LoadClient[];
  if (kind === "hsp") {
    const hsp = await pooled(
      o.idle,
      o.connectors,
      () => HspClient.connect(server.port, o.engine, o.sessionGroup),
    );
    sessions = hsp;
    perHandshaken = ((await settledRss(server, settle)) - before) / o.idle;
    await pooled(o.idle, LOGIN_CONCURRENCY, (i) => hsp[i]!.login(`idle${i}`, PASSWORD));
  } else {
    sessions = await pooled(
      o.idle,
      o.connectors,
      (i) => RelayClient.connect(server.port, `idle${i}`),
    );
  }
  const perSession = ((await settledRss(server, settle)) - before) / o.idle;
  await pooled(sessions.length, 256, (i) => sessions[i]!.close());
  return { perHandshaken, perSession, opened: sessions.length };
}

// ─── The runs ────────────────────────────────────────────────────────────────────────────────

interface RelayRun {
  saturation: SaturationResult;
  latency: LatencyResult;
  idle: IdleResult;
  peakRss: number;
}

/** Handshake results per group name, in KEX_GROUPS order. */
type GroupHandshakes = Map<KexGroup["name"], HandshakeResult>;

interface ServerRun extends RelayRun {
  handshakes: GroupHandshakes;
  profile: string | undefined;
  sealed: SealedRun | undefined;
}

/** --sealed: three saturations back to back on the same clients. */
interface SealedRun {
  text: SaturationResult;
  sealed: SaturationResult;
  sameWire: SaturationResult;
  envelopeChars: number;
  sameWireBytes: number;
}

/** Two windows of one phase as one: rates and CPU per message averaged, errors added up. */
function mergeSaturations(a: SaturationResult, b: SaturationResult): SaturationResult {
  const errors = { ...a.errors };
  for (const [code, n] of Object.entries(b.errors)) errors[code] = (errors[code] ?? 0) + n;
  const mean = (x: number, y: number) => (x + y) / 2;
  return {
    perSecond: mean(a.perSecond, b.perSecond),
    serverCpuUs: mean(a.serverCpuUs, b.serverCpuUs),
    cpu: {
      serverMs: a.cpu.serverMs + b.cpu.serverMs,
      serverPct: mean(a.cpu.serverPct, b.cpu.serverPct),
      generatorPct: mean(a.cpu.generatorPct, b.cpu.generatorPct),
      otherPct: mean(a.cpu.otherPct, b.cpu.otherPct),
    },
    errors,
  };
}

/** --sealed: texts, sealed messages of texts of that size, texts as long as the envelopes. */
async function sealedPhases(
  server: ServerChild,
  connect: (i: number) => Promise<HspClient>,
  key: SealedLoadKey,
  o: Options,
): Promise<SealedRun> {
  const clients = await pooled(o.clients, o.connectors, connect);
  try {
    const envelopes = ringEnvelopes(o.engine, key, clients.map((c) => c.name), o.textBytes);
    const senders = sealedSenders(envelopes, o.textBytes);
    const as = (send: RingSend) => (c: LoadClient, i: number, to: string) =>
      send(c as HspClient, i, to);
    // Each phase twice, half as long, in the order A B C C B A, so that neither the order nor
    // the log growing under them favours one.
    const half = { ...o, seconds: o.seconds / 2 };
    const text1 = await saturate(clients, server, half, as(senders.text));
    const sealed1 = await saturate(clients, server, half, as(senders.sealed));
    const wire1 = await saturate(clients, server, half, as(senders.sameWire));
    const wire2 = await saturate(clients, server, half, as(senders.sameWire));
    const sealed2 = await saturate(clients, server, half, as(senders.sealed));
    const text2 = await saturate(clients, server, half, as(senders.text));
    return {
      text: mergeSaturations(text1, text2),
      sealed: mergeSaturations(sealed1, sealed2),
      sameWire: mergeSaturations(wire1, wire2),
      envelopeChars: senders.envelopeChars,
      sameWireBytes: senders.sameWireBytes,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/**
 * Logs in `o.clients` load clients, runs saturation then latency, and closes them. `around`
 * wraps the two phases (the profiler starts once every client is logged in).
 */
async function relayPhases<T>(
  server: ServerChild,
  connect: (i: number) => Promise<LoadClient>,
  o: Options,
  around: <R>(phases: () => Promise<R>) => Promise<[R, T]>,
): Promise<{ saturation: SaturationResult; latency: LatencyResult; extra: T }> {
  const clients = await pooled(o.clients, o.connectors, connect);
  try {
    const [{ saturation, latency }, extra] = await around(async () => {
      const saturation = await saturate(clients, server, o);
      const latency = await latencyAt(clients, server, o.rate, o);
      return { saturation, latency };
    });
    return { saturation, latency, extra };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** No wrapping: the phases alone. */
async function plainly<R>(phases: () => Promise<R>): Promise<[R, undefined]> {
  return [await phases(), undefined];
}

async function runRelay(o: Options): Promise<RelayRun> {
  const relay = await ServerChild.start(RELAY_MAIN, ["--port", "0"], {
    openFiles: o.idle + o.clients + o.connectors + 256,
  });
  try {
    const idle = await idleSessions(relay, "relay", o);
    const { saturation, latency } = await relayPhases(
      relay,
      (i) => RelayClient.connect(relay.port, `load${i}`),
      o,
      plainly,
    );
    return { saturation, latency, idle, peakRss: relay.memory().hwm };
  } finally {
    await relay.stop();
  }
}

/**
 * TLS 1.3 handshakes/s: bench/tls_server.ts against `connectors` loops in bench/tls_clients.ts,
 * a child process of its own (see there why).
 */
async function runTls(o: Options, dir: string): Promise<HandshakeResult> {
  const { certPem, keyPem } = selfSignedCert();
  const cert = `${dir}/tls_cert.pem`;
  const key = `${dir}/tls_key.pem`;
  await Deno.writeTextFile(cert, certPem);
  await Deno.writeTextFile(key, keyPem, { mode: 0o600 });
  const tls = await ServerChild.start(TLS_MAIN, ["--port", "0", "--cert", cert, "--key", key]);
  try {
    let counts: HandshakeCounts = { done: 0, failed: 0 };
    const clients = await ServerChild.start(TLS_CLIENTS_MAIN, [
      "--port",
      String(tls.port),
      "--ca",
      cert,
      "--connectors",
      String(o.connectors),
    ], {
      ready: new RegExp(`^${STARTED}$`),
      onLine: (line) => {
        const m = line.match(COUNT_LINE);
        if (m) counts = { done: Number(m[1]), failed: Number(m[2]) };
      },
      openFiles: fileLimit().hard,
    });
    try {
      return await handshakeWindow(() => counts, tls, o, clients.pid);
    } finally {
      await clients.stop();
    }
  } finally {
    await tls.stop();
  }
}

/**
 * Writes every load and idle user into a fresh log, so the server starts with them; with
 * `key`, every load user has published it (§8.1).
 */
async function prepareLog(path: string, o: Options, key?: SealedLoadKey): Promise<void> {
  const passwordHash = await hashPassword(PASSWORD, TEST_ONLY_WEAK_PARAMS);
  const ts = Date.now();
  const users = [
    ...Array.from({ length: o.clients }, (_, i) => `load${i}`),
    ...Array.from({ length: o.idle }, (_, i) => `idle${i}`),
  ];
  const events: Event[] = users.map((user) => ({ type: "user_signed_up", ts, user, passwordHash }));
  if (key) {
    events.push(...keyEvents(Array.from({ length: o.clients }, (_, i) => `load${i}`), key, ts));
  }
  const { log } = await openEventLog(path, { fsync: "off" });
  await log.appendMany(events);
  await log.close();
}

/** The server's flags for a load run (reported with the results). */
function serverArgs(dir: string, o: Options, store?: string): string[] {
  const limits = {
    msg_burst: UNTHROTTLED,
    msg_per_second: UNTHROTTLED,
    max_connections: UNTHROTTLED,
    max_connections_per_address: UNTHROTTLED,
    // Every client connects from 127.0.0.1: the per-address handshake rate would refuse them.
    max_unauthenticated: UNTHROTTLED,
    handshakes_per_address_burst: UNTHROTTLED,
    handshakes_per_address_per_second: UNTHROTTLED,
    max_handshakes_in_flight: UNTHROTTLED,
    // §5 counts each login in flight as a possible failure of its address, so LOGIN_CONCURRENCY
    // logins from 127.0.0.1 at once would be refused past the default budget (20). The load
    // stands for clients on many addresses, each logging in once with the right password: the
    // budget is lifted like the limits above rather than the logins slowed to fit it, and the
    // throttle's bookkeeping still runs on every login, so its cost stays in the figures.
    login_failures_per_address: UNTHROTTLED,
  };
  return [
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    // The log's users are hashed with the weak test parameters (prepareLog). A server on the
    // real ones hashes each password again at its first login (a full scrypt, about 60 ms), so
    // 5,000 idle logins would take minutes and outlive the login deadline (BYE idle).
    // checkNoRehash proves after each run that no login paid for it.
    "--insecure-fast-hash",
    ...(store === undefined
      ? ["--log", `${dir}/events.log`, "--fsync", o.fsync]
      : ["--store", store]),
    "--crypto",
    o.crypto,
    ...Object.entries(limits).flatMap(([k, v]) => ["--limit", `${k}=${v}`]),
    ...o.serverLimits.flatMap((l) => ["--limit", l]),
  ];
}

/** Handshakes/s in each of `o.handshakeGroups`, one group after the other. */
async function groupHandshakes(server: ServerChild, o: Options): Promise<GroupHandshakes> {
  const results: GroupHandshakes = new Map();
  for (const group of o.handshakeGroups) {
    if (!o.json) console.error(`… HSP/1 handshakes in ${group.name}`);
    results.set(
      group.name,
      await handshakeRate(() => hspHandshakeOnce(server.port, o.engine, group), server, o),
    );
  }
  return results;
}

function startServer(o: Options, dir: string): Promise<ServerChild> {
  return ServerChild.start(o.serverMain, serverArgs(dir, o), {
    denoFlags: [
      ...(o.profile === undefined ? [] : ["--inspect=127.0.0.1:0"]),
      ...(o.serverV8Flags === undefined ? [] : [`--v8-flags=${o.serverV8Flags}`]),
    ],
    openFiles: o.idle + o.clients + o.connectors + 256,
  });
}

/** --handshakes-only: the server's handshakes in every group, nothing else. */
async function runServerHandshakes(o: Options, dir: string): Promise<GroupHandshakes> {
  await prepareLog(`${dir}/events.log`, { ...o, clients: 0, idle: 0 });
  const server = await startServer(o, dir);
  try {
    return await groupHandshakes(server, o);
  } finally {
    const code = await server.stop();
    if (code !== 0 && !o.json) console.error(`server exited with ${code}:\n${server.tail}`);
  }
}

/** One node on PostgreSQL (--store): messages per second and latency, and its group commits. */
interface StoreRun {
  saturation: SaturationResult;
  latency: LatencyResult;
  /** Events the server appended during the two phases, and the transactions they took. */
  events: number;
  commits: number;
  description: string;
  /** CPU a second, idle node spent applying those events (it serves no client). */
  followerCpuMs: number;
}

/**
 * --store: the message phases again, on a server whose log is PostgreSQL. The users are written
 * into a fresh schema first, as prepareLog writes them into the file; the schema is dropped at
 * the end. Commits are counted from the rows' batch ids (one per group commit).
 */
async function runStore(o: Options, url: string): Promise<StoreRun> {
  const base = parseStoreUrl(url);
  if (base.kind !== "postgres") throw new Error(`--store takes a postgres:// URL, got ${url}`);
  const schema = `load_${Date.now().toString(36)}`;
  const target = `${url}${url.includes("?") ? "&" : "?"}schema=${schema}`;
  const where = parseStoreUrl(target);
  if (where.kind !== "postgres") throw new Error("unreachable");
  const passwordHash = await hashPassword(PASSWORD, TEST_ONLY_WEAK_PARAMS);
  const users = Array.from({ length: o.clients }, (_, i) => `load${i}`);
  const prepared = await openStore<string>(target);
  prepared.store.follow(() => {}); // appends resolve once the follower has them
  for (let i = 0; i < users.length; i += 1000) {
    await prepared.store.append(
      users.slice(i, i + 1000).map((user) => ({
        type: "user_signed_up" as const,
        ts: Date.now(),
        user,
        passwordHash,
      })),
      "load",
    );
  }
  await prepared.store.close();
  const sql = postgres(where.connection, { max: 1, onnotice: () => {} });
  // A second node on the same log, serving nobody: what it spends is the cost of applying
  // every event of the service, which every node pays (docs/SCALING.md).
  const follower = await ServerChild.start(o.serverMain, serverArgs("", o, target), {});
  const server = await ServerChild.start(o.serverMain, serverArgs("", o, target), {
    openFiles: o.clients + o.connectors + 256,
  });
  try {
    const followerBefore = follower.cpuMs();
    const [before] = await sql.unsafe(
      `SELECT coalesce(max(position), 0) AS head FROM ${schema}.events`,
    );
    const connect = async (i: number) => {
      const c = await HspClient.connect(server.port, o.engine, o.sessionGroup);
      await c.login(`load${i}`, PASSWORD);
      return c;
    };
    const { saturation, latency } = await relayPhases(server, connect, o, plainly);
    const followerCpuMs = follower.cpuMs() - followerBefore;
    const [counted] = await sql.unsafe(
      `SELECT count(*) AS events, count(DISTINCT batch) AS commits FROM ${schema}.events
        WHERE position > $1`,
      [before!.head],
    );
    return {
      saturation,
      latency,
      events: Number(counted!.events),
      commits: Number(counted!.commits),
      description: where.description,
      followerCpuMs,
    };
  } finally {
    await follower.stop();
    const code = await server.stop();
    if (code !== 0 && !o.json) console.error(`server exited with ${code}:\n${server.tail}`);
    await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await sql.end({ timeout: 1 });
  }
}

/** --store's rows beside the file log's: the same phases, the same generator. */
function storeComparison(file: ServerRun, pg: StoreRun, o: Options) {
  const seconds = o.seconds;
  return {
    store: pg.description,
    file_delivered_per_s: round(file.saturation.perSecond, 0),
    postgres_delivered_per_s: round(pg.saturation.perSecond, 0),
    file_p99_ms: round(file.latency.p99, 2),
    postgres_p99_ms: round(pg.latency.p99, 2),
    postgres_commits_per_s: round(pg.commits / (2 * seconds), 0),
    postgres_events_per_commit: round(pg.events / Math.max(1, pg.commits), 1),
    follower_cpu_us_per_event: round((pg.followerCpuMs * 1000) / Math.max(1, pg.events), 2),
    postgres_server_cpu_us_per_msg: round(pg.saturation.serverCpuUs, 1),
    file_server_cpu_us_per_msg: round(file.saturation.serverCpuUs, 1),
  };
}

async function runServer(o: Options, dir: string): Promise<ServerRun> {
  const key = o.sealed ? await sealedLoadKey(o.engine, o.sealedBits) : undefined;
  await prepareLog(`${dir}/events.log`, o, key);
  const server = await startServer(o, dir);
  let run: ServerRun;
  try {
    const handshakes = await groupHandshakes(server, o);
    const idle = await idleSessions(server, "hsp", o);
    const connect = async (i: number) => {
      const c = await HspClient.connect(server.port, o.engine, o.sessionGroup);
      await c.login(`load${i}`, PASSWORD);
      return c;
    };
    const profiled = async <R>(phases: () => Promise<R>): Promise<[R, string | undefined]> => {
      if (o.profile === undefined) return [await phases(), undefined];
      if (!await until(() => server.inspector !== "", 5000)) {
        throw new Error(`no inspector URL from the server:\n${server.tail}`);
      }
      const profiler = await InspectorProfiler.connect(server.inspector);
      try {
        await profiler.start(PROFILE_INTERVAL_US);
        const result = await phases();
        const data = await profiler.stop();
        await Deno.writeTextFile(o.profile, JSON.stringify(data));
        return [result, formatSummary(summarise(data, REPO_ROOT))];
      } finally {
        profiler.close();
      }
    };
    const { saturation, latency, extra: profile } = await relayPhases(server, connect, o, profiled);
    const sealed = key === undefined ? undefined : await sealedPhases(server, connect, key, o);
    run = { saturation, latency, idle, handshakes, peakRss: server.memory().hwm, profile, sealed };
  } finally {
    const code = await server.stop();
    if (code !== 0 && !o.json) console.error(`server exited with ${code}:\n${server.tail}`);
  }
  await checkNoRehash(`${dir}/events.log`);
  return run;
}

/**
 * Fails the run if a login re-hashed a password (a `password_changed` event): the figures
 * would then measure scrypt, not messaging, and large idle counts would not log in in time.
 */
async function checkNoRehash(path: string): Promise<void> {
  let rehashed = 0;
  await readEventLog(path, {
    onEvent: (event) => {
      if (event.type === "password_changed") rehashed++;
    },
  });
  if (rehashed > 0) {
    throw new Error(
      `the server re-hashed ${rehashed} passwords at login: it is not on the weak parameters ` +
        "the load's log was written with (--insecure-fast-hash)",
    );
  }
}

// ─── Reporting ───────────────────────────────────────────────────────────────────────────────

function environment(crypto: string): Record<string, string | number> {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1];
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const files = fileLimit();
  return {
    cores: navigator.hardwareConcurrency,
    cpu: cpu ?? "unknown",
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    load_average_at_start: load,
    open_files_soft_limit: files.soft,
    crypto_engine: crypto,
  };
}

const MIB = 2 ** 20;
const KIB = 1024;
const round = (n: number, digits = 2) => Number.isFinite(n) ? Number(n.toFixed(digits)) : n;

/** The handshake figures: the sessions' group in the top-level keys, and every group measured. */
function handshakeReport(o: Options, hs: GroupHandshakes, tls: HandshakeResult) {
  const main = hs.get(o.sessionGroup.name)!;
  return {
    handshake_group: o.sessionGroup.name,
    handshakes_per_s: round(main.perSecond, 1),
    tls_handshakes_per_s: round(tls.perSecond, 1),
    server_cpu_ms_per_handshake: round(main.serverCpuMs, 3),
    tls_server_cpu_ms_per_handshake: round(tls.serverCpuMs, 3),
    client_cpu_ms_per_handshake: round(main.clientCpuMs, 3),
    tls_client_cpu_ms_per_handshake: round(tls.clientCpuMs, 3),
    tls_others_pct_of_one_core: round(tls.othersPct, 0),
    handshakes_by_group: Object.fromEntries(
      [...hs].map(([name, h]) => [name, {
        handshakes_per_s: round(h.perSecond, 1),
        ratio_to_tls: round(h.perSecond / tls.perSecond, 2),
        server_cpu_ms_per_handshake: round(h.serverCpuMs, 3),
        client_cpu_ms_per_handshake: round(h.clientCpuMs, 3),
        others_pct_of_one_core: round(h.othersPct, 0),
        failed: h.failed,
      }]),
    ),
  };
}

type HandshakeReport = ReturnType<typeof handshakeReport>;

function failedHandshakes(hs: GroupHandshakes): number {
  return [...hs.values()].reduce((n, h) => n + h.failed, 0);
}

/** --handshakes-only: the environment and the handshake figures. */
function handshakesOnlyReport(
  o: Options,
  env: Record<string, string | number>,
  hs: GroupHandshakes,
  tls: HandshakeResult,
) {
  return {
    environment: env,
    settings: { seconds: o.seconds, warmup_seconds: warmupMs(o) / 1000, connectors: o.connectors },
    ...handshakeReport(o, hs, tls),
    errors: { handshakes_failed: failedHandshakes(hs), tls_handshakes_failed: tls.failed },
  };
}

function report(
  o: Options,
  env: Record<string, string | number>,
  s: ServerRun,
  r: RelayRun,
  tls: HandshakeResult,
) {
  return {
    environment: env,
    settings: {
      seconds: o.seconds,
      warmup_seconds: warmupMs(o) / 1000,
      clients: o.clients,
      window: o.window,
      idle_sessions: o.idle,
      connectors: o.connectors,
      text_bytes: o.textBytes,
      fsync: o.fsync,
      server_v8_flags: o.serverV8Flags ?? "",
      server_limits: o.serverLimits.join(" "),
      server_limits_raised: [
        "msg_burst",
        "msg_per_second",
        "max_connections",
        "max_connections_per_address",
      ],
      idle_sessions_are: "handshaken and logged in",
      generator:
        "this process (one JS thread); server and baselines in child processes; all share the cores",
    },
    delivered_per_s: round(s.saturation.perSecond, 0),
    baseline_relay_per_s: round(r.saturation.perSecond, 0),
    server_cpu_us_per_msg: round(s.saturation.serverCpuUs, 1),
    baseline_relay_cpu_us_per_msg: round(r.saturation.serverCpuUs, 1),
    offered_rate: o.rate,
    achieved_rate: round(s.latency.achievedRate, 0),
    p50_ms: round(s.latency.p50, 3),
    p99_ms: round(s.latency.p99, 3),
    p999_ms: round(s.latency.p999, 3),
    latency_samples: s.latency.samples,
    baseline_relay_p50_ms: round(r.latency.p50, 3),
    baseline_relay_p99_ms: round(r.latency.p99, 3),
    baseline_relay_p999_ms: round(r.latency.p999, 3),
    ...handshakeReport(o, s.handshakes, tls),
    server_peak_rss_mib: round(s.peakRss / MIB, 1),
    baseline_relay_peak_rss_mib: round(r.peakRss / MIB, 1),
    rss_per_idle_session_kib: round(s.idle.perSession / KIB, 1),
    rss_per_handshaken_session_kib: round(s.idle.perHandshaken / KIB, 1),
    baseline_relay_rss_per_idle_kib: round(r.idle.perSession / KIB, 1),
    cpu_pct_of_one_core_at_saturation: {
      server: round(s.saturation.cpu.serverPct, 0),
      generator: round(s.saturation.cpu.generatorPct, 0),
      others: round(s.saturation.cpu.otherPct, 0),
      relay: round(r.saturation.cpu.serverPct, 0),
      generator_with_relay: round(r.saturation.cpu.generatorPct, 0),
      others_with_relay: round(r.saturation.cpu.otherPct, 0),
    },
    cpu_pct_of_one_core_at_offered_rate: {
      server: round(s.latency.cpu.serverPct, 0),
      generator: round(s.latency.cpu.generatorPct, 0),
      others: round(s.latency.cpu.otherPct, 0),
      relay: round(r.latency.cpu.serverPct, 0),
      generator_with_relay: round(r.latency.cpu.generatorPct, 0),
      others_with_relay: round(r.latency.cpu.otherPct, 0),
    },
    ...(s.sealed === undefined ? {} : { sealed: sealedReport(o, s.sealed) }),
    errors: {
      server_saturation: s.saturation.errors,
      server_latency: s.latency.errors,
      relay_saturation: r.saturation.errors,
      relay_latency: r.latency.errors,
      handshakes_failed: failedHandshakes(s.handshakes),
      tls_handshakes_failed: tls.failed,
    },
  };
}

type Report = ReturnType<typeof report>;

/** --sealed's figures: each phase's rate and server CPU per message, and the ratios. */
function sealedReport(o: Options, s: SealedRun) {
  return {
    key_bits: o.sealedBits,
    text_bytes: o.textBytes,
    envelope_chars: s.envelopeChars,
    same_wire_text_bytes: s.sameWireBytes,
    text_per_s: round(s.text.perSecond, 0),
    sealed_per_s: round(s.sealed.perSecond, 0),
    same_wire_text_per_s: round(s.sameWire.perSecond, 0),
    text_cpu_us_per_msg: round(s.text.serverCpuUs, 1),
    sealed_cpu_us_per_msg: round(s.sealed.serverCpuUs, 1),
    same_wire_text_cpu_us_per_msg: round(s.sameWire.serverCpuUs, 1),
    cpu_ratio_sealed_to_text: round(s.sealed.serverCpuUs / s.text.serverCpuUs, 2),
    cpu_ratio_sealed_to_same_wire_text: round(s.sealed.serverCpuUs / s.sameWire.serverCpuUs, 2),
    errors: { text: s.text.errors, sealed: s.sealed.errors, same_wire: s.sameWire.errors },
  };
}

/** --sealed's table: the three phases, each beside the text of the same plaintext size. */
function sealedTable(r: ReturnType<typeof sealedReport>): string[] {
  return markdown([
    ["same clients, back to back", "delivered msgs/s", "server CPU/msg", "CPU ratio", "target"],
    [
      `text, ${r.text_bytes} bytes`,
      fmt(r.text_per_s),
      `${fmt(r.text_cpu_us_per_msg, 1)} µs`,
      "1.00",
      "",
    ],
    [
      `sealed, ${r.text_bytes}-byte text, RSA-${r.key_bits} (${fmt(r.envelope_chars)} chars)`,
      fmt(r.sealed_per_s),
      `${fmt(r.sealed_cpu_us_per_msg, 1)} µs`,
      fmt(r.cpu_ratio_sealed_to_text, 2),
      "<= 1.30",
    ],
    [
      `text, ${fmt(r.same_wire_text_bytes)} bytes (${
        r.same_wire_text_bytes === r.envelope_chars
          ? "the envelope's size"
          : "the most a text may be"
      })`,
      fmt(r.same_wire_text_per_s),
      `${fmt(r.same_wire_text_cpu_us_per_msg, 1)} µs`,
      fmt(r.same_wire_text_cpu_us_per_msg / r.text_cpu_us_per_msg, 2),
      "",
    ],
  ]);
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "n/a";
const ratio = (a: number, b: number) => Number.isFinite(a / b) ? (a / b).toFixed(2) : "n/a";

/** Rows as a Markdown table: the first column left-aligned, the others right-aligned. */
function markdown(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    "| " + r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(" | ") +
    " |";
  const rule = "|" +
    widths.map((w, i) => (i === 0 ? "-" : "").padEnd(w + 1, "-") + (i === 0 ? "-" : ":")).join(
      "|",
    ) + "|";
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)];
}

/** One row per group beside TLS 1.3's row, all from the same run. */
function handshakeTable(rep: HandshakeReport): string[] {
  const rows = [[
    "handshake",
    "handshakes/s",
    "ratio to TLS",
    "target",
    "server CPU/handshake",
    "target",
    "client CPU/handshake",
    "others, % of a core",
  ], [
    "TLS 1.3 (rustls, RSA-2048)",
    fmt(rep.tls_handshakes_per_s),
    "1.00",
    "",
    `${fmt(rep.tls_server_cpu_ms_per_handshake, 2)} ms`,
    "",
    `${fmt(rep.tls_client_cpu_ms_per_handshake, 2)} ms`,
    fmt(rep.tls_others_pct_of_one_core),
  ]];
  for (const [name, h] of Object.entries(rep.handshakes_by_group)) {
    const target = HANDSHAKE_TARGETS[name as KexGroup["name"]];
    rows.push([
      `HSP/1 ${kexGroupByName(name)!.title}`,
      fmt(h.handshakes_per_s),
      ratio(h.handshakes_per_s, rep.tls_handshakes_per_s),
      target.ratio,
      `${fmt(h.server_cpu_ms_per_handshake, 2)} ms`,
      target.serverCpu,
      `${fmt(h.client_cpu_ms_per_handshake, 2)} ms`,
      fmt(h.others_pct_of_one_core),
    ]);
  }
  return markdown(rows);
}

function header(env: Record<string, string | number>): string[] {
  return [
    `hybrid-server load — ${env.cores} cores (${env.cpu}), Deno ${env.deno}, V8 ${env.v8}, ` +
    `${env.os}, load average at start ${env.load_average_at_start}`,
    `crypto engine (${env.crypto_engine})`,
  ];
}

function table(rep: Report, o: Options): string {
  const target = HANDSHAKE_TARGETS[rep.handshake_group as KexGroup["name"]];
  const rows: [string, string, string, string, string][] = [
    ["figure", "HSP/1 server", "baseline", "ratio", "target"],
    [
      "delivered msgs/s at saturation",
      fmt(rep.delivered_per_s),
      `${fmt(rep.baseline_relay_per_s)} plain relay`,
      ratio(rep.delivered_per_s, rep.baseline_relay_per_s),
      ">= 20,000",
    ],
    [
      "server CPU per delivered msg",
      `${fmt(rep.server_cpu_us_per_msg, 1)} µs`,
      `${fmt(rep.baseline_relay_cpu_us_per_msg, 1)} µs plain relay`,
      ratio(rep.server_cpu_us_per_msg, rep.baseline_relay_cpu_us_per_msg),
      "",
    ],
    [
      `latency p50 at ${fmt(rep.offered_rate)}/s offered`,
      `${fmt(rep.p50_ms, 2)} ms`,
      `${fmt(rep.baseline_relay_p50_ms, 2)} ms plain relay`,
      ratio(rep.p50_ms, rep.baseline_relay_p50_ms),
      "",
    ],
    [
      "latency p99",
      `${fmt(rep.p99_ms, 2)} ms`,
      `${fmt(rep.baseline_relay_p99_ms, 2)} ms plain relay`,
      ratio(rep.p99_ms, rep.baseline_relay_p99_ms),
      "<= 20 ms",
    ],
    [
      "latency p99.9",
      `${fmt(rep.p999_ms, 2)} ms`,
      `${fmt(rep.baseline_relay_p999_ms, 2)} ms plain relay`,
      ratio(rep.p999_ms, rep.baseline_relay_p999_ms),
      "",
    ],
    [
      `handshakes/s (${rep.handshake_group})`,
      fmt(rep.handshakes_per_s),
      `${fmt(rep.tls_handshakes_per_s)} TLS 1.3`,
      ratio(rep.handshakes_per_s, rep.tls_handshakes_per_s),
      target.ratio,
    ],
    [
      "server CPU per handshake",
      `${fmt(rep.server_cpu_ms_per_handshake, 2)} ms`,
      `${fmt(rep.tls_server_cpu_ms_per_handshake, 2)} ms TLS 1.3`,
      ratio(rep.server_cpu_ms_per_handshake, rep.tls_server_cpu_ms_per_handshake),
      target.serverCpu,
    ],
    [
      "client CPU per handshake",
      `${fmt(rep.client_cpu_ms_per_handshake, 2)} ms`,
      `${fmt(rep.tls_client_cpu_ms_per_handshake, 2)} ms TLS 1.3`,
      ratio(rep.client_cpu_ms_per_handshake, rep.tls_client_cpu_ms_per_handshake),
      "",
    ],
    [
      "server peak RSS",
      `${fmt(rep.server_peak_rss_mib, 1)} MiB`,
      `${fmt(rep.baseline_relay_peak_rss_mib, 1)} MiB plain relay`,
      ratio(rep.server_peak_rss_mib, rep.baseline_relay_peak_rss_mib),
      "",
    ],
    [
      `RSS per idle session (${fmt(o.idle)} open)`,
      `${fmt(rep.rss_per_idle_session_kib, 1)} KiB`,
      `${fmt(rep.baseline_relay_rss_per_idle_kib, 1)} KiB plain relay`,
      ratio(rep.rss_per_idle_session_kib, rep.baseline_relay_rss_per_idle_kib),
      "<= 50 KiB",
    ],
  ];
  const cpu = rep.cpu_pct_of_one_core_at_saturation;
  const lat = rep.cpu_pct_of_one_core_at_offered_rate;
  return [
    ...header(rep.environment),
    `server: fsync=${o.fsync}; msg_burst, msg_per_second, max_connections(_per_address) raised; weak password hashing; ` +
    `${o.clients} clients x window ${o.window}, ${o.textBytes}-byte texts, ${o.seconds} s per ` +
    `phase; sessions in ${rep.handshake_group}`,
    "",
    ...markdown(rows),
    "",
    `handshakes per group (${o.connectors} connect loops, ${o.seconds} s each):`,
    "",
    ...handshakeTable(rep),
    "",
    `achieved rate in the latency phase: ${fmt(rep.achieved_rate)}/s (${
      fmt(rep.latency_samples)
    } samples)`,
    `RSS per session after the handshake alone: ${fmt(rep.rss_per_handshaken_session_kib, 1)} KiB`,
    `CPU at saturation, % of one core: server ${cpu.server}, generator ${cpu.generator}, ` +
    `other processes ${cpu.others}; plain relay ${cpu.relay}, generator ${cpu.generator_with_relay}, ` +
    `other processes ${cpu.others_with_relay}`,
    `CPU at ${
      fmt(rep.offered_rate)
    }/s offered: server ${lat.server}, generator ${lat.generator}, ` +
    `other processes ${lat.others}; plain relay ${lat.relay}, generator ${lat.generator_with_relay}, ` +
    `other processes ${lat.others_with_relay}`,
    ...(rep.sealed === undefined ? [] : [
      "",
      `sealed messages (§8), ${o.clients} clients x window ${o.window}, ${o.seconds} s each:`,
      "",
      ...sealedTable(rep.sealed),
      `sealed errors: ${JSON.stringify(rep.sealed.errors)}`,
    ]),
    `errors: ${JSON.stringify(rep.errors)}`,
  ].join("\n");
}

async function main(): Promise<void> {
  let o: Options | "help";
  try {
    o = parseOptions(Deno.args);
  } catch (err) {
    console.error(`load: ${(err as Error).message}\nTry --help.`);
    Deno.exit(2);
  }
  if (o === "help") {
    console.log(HELP);
    return;
  }
  const need = o.idle + o.clients + o.connectors + 256;
  const files = fileLimit();
  if (files.soft < need) {
    console.error(
      `load: ${need} open files needed, the limit is ${files.soft}; run \`ulimit -n ${need}\` first`,
    );
    Deno.exit(2);
  }
  // The generator's clients use the engine the server is told to use (a server whose native
  // engine fails under --crypto native stops at start, so the two cannot silently differ).
  const { engine, detail } = selectCrypto(o.crypto);
  o.engine = engine;
  const env = environment(`${o.crypto}: ${engine.name}, ${detail}`);
  const progress = (what: string) => {
    if (!o.json) console.error(`… ${what}`);
  };
  const dir = await Deno.makeTempDir({ prefix: "hybrid-load-" });
  try {
    progress("TLS 1.3 baseline: handshakes");
    const tls = await runTls(o, dir);
    if (o.handshakesOnly) {
      const rep = handshakesOnlyReport(o, env, await runServerHandshakes(o, dir), tls);
      if (o.json) console.log(JSON.stringify(rep));
      else {
        console.log(
          [...header(env), "", ...handshakeTable(rep), "", `errors: ${JSON.stringify(rep.errors)}`]
            .join("\n"),
        );
      }
      return;
    }
    progress("plain relay baseline: idle connections, saturation, latency");
    const relay = await runRelay(o);
    progress("HSP/1 server: handshakes, idle sessions, saturation, latency");
    const server = await runServer(o, dir);
    let store: ReturnType<typeof storeComparison> | undefined;
    if (o.store !== undefined) {
      progress("HSP/1 server on PostgreSQL: saturation, latency");
      store = storeComparison(server, await runStore(o, o.store), o);
    }
    const rep = {
      ...report(o, env, server, relay, tls),
      ...(store ? { store_comparison: store } : {}),
    };
    if (o.json) console.log(JSON.stringify(rep));
    else {
      console.log(table(rep, o));
      if (store) {
        console.log(
          [
            "",
            `one node, log file against PostgreSQL (${store.store}):`,
            ...markdown([
              ["", "log file", "PostgreSQL"],
              [
                "delivered msgs/s at saturation",
                fmt(store.file_delivered_per_s),
                fmt(store.postgres_delivered_per_s),
              ],
              ["latency p99", `${store.file_p99_ms} ms`, `${store.postgres_p99_ms} ms`],
              ["commits/s (PostgreSQL)", "", fmt(store.postgres_commits_per_s)],
              ["events per commit (PostgreSQL)", "", String(store.postgres_events_per_commit)],
              [
                "server CPU per delivered msg",
                `${store.file_server_cpu_us_per_msg} µs`,
                `${store.postgres_server_cpu_us_per_msg} µs`,
              ],
              [
                "an idle second node's CPU per event applied",
                "",
                `${store.follower_cpu_us_per_event} µs`,
              ],
            ]),
          ].join("\n"),
        );
      }
      if (server.profile) console.log(`\nserver CPU profile (${o.profile}):\n${server.profile}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
