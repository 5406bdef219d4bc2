// `deno task server`: parses the command line, replays the event log, loads or creates the
// identity key, serves HSP/1, and shuts down gracefully on SIGINT/SIGTERM.
import {
  loadOrCreateIdentity,
  NativeCryptoError,
  PASSWORD_PARAMS,
  PORTABLE_ENGINE_COST,
  selectCrypto,
  TEST_ONLY_WEAK_PARAMS,
} from "../crypto/mod.ts";
import { openStore, plural, StoreCorruptError, StoreError } from "../store/mod.ts";
import type { AppendTag } from "./core.ts";
import { HELP, parseConfig, UsageError } from "./config.ts";
import { Logger } from "./logger.ts";
import { progressOnStderr } from "./progress.ts";
import { Server } from "./server.ts";
import { inHandshakeWorker, runHandshakeWorker } from "./handshake_worker.ts";
import { PROTOCOL, VERSION } from "./version.ts";

/**
 * A second SIGINT this soon after the first is the same Ctrl-C: `deno task` forwards the
 * signal its child already got from the terminal. A later one means "stop now".
 */
const SAME_SIGNAL_MS = 1000;

/** Replay found more undelivered text than the server may hold (max_queued_bytes_total). */
class ReplayTooLarge extends Error {}

function fail(message: string, code = 1): never {
  console.error(`hybrid-server: ${message}`);
  Deno.exit(code);
}

async function main(): Promise<void> {
  let config;
  try {
    // Variables are read one by one as parseConfig asks, so --allow-env=HYBRID_* suffices.
    const env = new Proxy({}, {
      get: (_, name) => typeof name === "string" ? Deno.env.get(name) : undefined,
    }) as Record<string, string | undefined>;
    config = parseConfig(Deno.args, env);
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message}\nTry --help.`, 2);
    throw err;
  }
  if (config === "help") {
    console.log(HELP);
    return;
  }
  if (config === "version") {
    console.log(`hybrid-server ${VERSION} (${PROTOCOL})`);
    return;
  }
  const logger = new Logger({ json: config.jsonLogs });
  if (config.fsync === "off") {
    logger.warn(
      "FSYNC IS OFF: acknowledged messages can be lost on a crash or power failure (benchmarks only)",
    );
  }
  if (config.insecureFastHash) {
    logger.warn("INSECURE FAST PASSWORD HASHING: for tests only, never for real users");
  }
  let engine;
  try {
    const selected = selectCrypto(config.crypto, config.libcrypto);
    engine = selected.engine;
    logger.info("crypto engine", { engine: engine.name, detail: selected.detail });
    if (selected.fallback !== undefined) {
      logger.warn("NATIVE CRYPTO UNAVAILABLE: running on the portable engine", {
        reason: selected.fallback,
        cost: PORTABLE_ENGINE_COST,
      });
    }
  } catch (err) {
    if (err instanceof NativeCryptoError) fail(`--crypto native: ${err.message}`);
    throw err;
  }

  // Bind first: a port in use must not leave a new log or key file behind.
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: config.host, port: config.port, transport: "tcp" });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      fail(`${config.host}:${config.port} is already in use`);
    }
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
  }

  const maxQueued = config.limits.max_queued_bytes_total;
  const where = config.store.kind === "file" ? config.log : config.store.description;
  let opened;
  try {
    opened = await openStore<AppendTag>(config.store, {
      onEvent: (_event, at, replayed) => {
        // Undelivered texts live in memory: a log holding more than the server may hold
        // stops here with the limit to raise, not later with the process out of memory.
        if (replayed.queuedBytes > maxQueued) {
          throw new ReplayTooLarge(
            `undelivered messages at ${
              config.store.kind === "file" ? "offset" : "position"
            } ${at} of ${where} take over ${maxQueued} bytes (max_queued_bytes_total); ` +
              `raise it with --limit max_queued_bytes_total=N if this machine has the memory`,
          );
        }
      },
      fsync: config.fsync,
      repair: config.repair,
      progress: progressOnStderr,
      onStatus: (status) => {
        // PostgreSQL stopped or started answering: requests meanwhile get ERR internal, the
        // connections stay, and nothing acknowledged is lost.
        if (status.kind === "available") logger.info("event store available again");
        else logger.warn(`event store ${status.kind}`, { error: String(status.error) });
      },
    });
  } catch (err) {
    if (err instanceof ReplayTooLarge) fail(err.message);
    if (err instanceof StoreCorruptError) {
      // Advice that fits the case: repair helps only damaged records, and is not offered twice.
      const advice = config.store.kind === "postgres"
        ? "Nothing was changed."
        : err.code === "bad_header"
        ? "Nothing was changed. Check that --log names the server's event log; --repair " +
          "cannot help, as without a valid header no record can be checked."
        : err.code === "unsupported_version"
        ? "Nothing was changed. Run the version of the server that wrote this log."
        : config.repair
        ? "Nothing was changed."
        : "Nothing was changed. Run again with --repair to do that.";
      fail(`${err.message}\n${advice}`);
    }
    if (err instanceof StoreError) fail(err.message);
    throw err;
  }
  const { store, state, report, appends } = opened;
  if (report.kind === "file") {
    if (report.tornTail) {
      logger.warn("torn tail cut", {
        offset: report.tornTail.offset,
        bytes: report.tornTail.bytes,
        reason: report.tornTail.reason,
      });
    }
    if (report.repaired) {
      const { dropped, bytes, backupPath } = report.repaired;
      for (const region of dropped) {
        logger.warn("log repaired: damaged bytes dropped", {
          offset: region.offset,
          bytes: region.bytes,
          reason: region.reason,
        });
      }
      logger.warn("log repaired", { regions: dropped.length, bytes, backup: backupPath });
    }
    for (const dir of report.createdDirectories ?? []) {
      logger.info("directory created", { path: dir, mode: "0700" });
    }
  }
  let queued = 0;
  for (const q of state.queues.values()) queued += q.size;
  console.log(
    `replayed ${plural(report.events, "event")} from ${where} in ${report.ms.toFixed(0)} ms: ` +
      `${plural(state.users.size, "user")}, ${plural(queued, "queued message")}` +
      (report.created ? ` (new ${report.kind === "file" ? "log" : "schema"})` : ""),
  );

  let identity;
  try {
    const loaded = await loadOrCreateIdentity(config.key, engine);
    identity = loaded.identity;
    if (loaded.created) {
      logger.info("identity key created", { path: config.key, bits: identity.bits });
    }
  } catch (err) {
    await store.close();
    fail((err as Error).message);
  }
  console.log(`server key ${identity.fingerprint} (RSA-${identity.bits}, ${config.key})`);

  const server = new Server({
    listener,
    identity,
    crypto: engine,
    store,
    state,
    limits: config.limits,
    groups: config.groups,
    logger,
    trace: config.trace,
    hashParams: config.insecureFastHash ? TEST_ONLY_WEAK_PARAMS : PASSWORD_PARAMS,
    // Workers run this very module (see the end of the file), so a bundle or a compiled
    // binary starts them from itself.
    handshakeWorkers: {
      url: import.meta.url,
      init: {
        crypto: config.crypto,
        libcrypto: config.libcrypto,
        groups: config.groups.map((g) => g.id),
      },
    },
  });

  let firstSignal: number | undefined;
  const stop = async (signal: string) => {
    const now = Date.now();
    if (firstSignal !== undefined) {
      if (now - firstSignal < SAME_SIGNAL_MS) return; // the same Ctrl-C, forwarded
      logger.warn("second signal: exiting at once", { signal });
      Deno.exit(130);
    }
    firstSignal = now;
    logger.info("shutting down", { signal, connections: server.connectionCount });
    await server.shutdown();
    await store.close();
    logger.info("shutdown complete", { appends: appends() });
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void stop(signal));
  }
  // Said only once the signals are ours: a supervisor may send SIGTERM as soon as it reads it.
  console.log(`listening on ${server.addr.hostname}:${server.addr.port}`);
}

if (inHandshakeWorker()) runHandshakeWorker();
else if (import.meta.main) await main();
