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
import { openEventLog, StoreCorruptError, StoreError } from "../store/mod.ts";
import { HELP, parseConfig, UsageError } from "./config.ts";
import { Logger } from "./logger.ts";
import { progressOnStderr } from "./progress.ts";
import { Server } from "./server.ts";
import { PROTOCOL, VERSION } from "./version.ts";

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

  let opened;
  try {
    opened = await openEventLog(config.log, {
      fsync: config.fsync,
      repair: config.repair,
      onProgress: progressOnStderr(config.log),
    });
  } catch (err) {
    if (err instanceof StoreCorruptError) {
      fail(
        `${err.message}\nRun again with --repair to keep a backup and truncate at the first bad record.`,
      );
    }
    if (err instanceof StoreError) fail(err.message);
    throw err;
  }
  const { log, state, report } = opened;
  if (report.tornTail) {
    logger.warn("torn tail cut", {
      offset: report.tornTail.offset,
      bytes: report.tornTail.bytes,
      reason: report.tornTail.reason,
    });
  }
  if (report.repaired) {
    logger.warn("log repaired", {
      offset: report.repaired.offset,
      bytes: report.repaired.bytes,
      reason: report.repaired.reason,
      backup: report.repaired.backupPath,
    });
  }
  let queued = 0;
  for (const q of state.queues.values()) queued += q.size;
  console.log(
    `replayed ${report.events} events from ${config.log} in ${report.ms.toFixed(0)} ms: ` +
      `${state.users.size} users, ${queued} queued messages${report.created ? " (new log)" : ""}`,
  );

  let identity;
  try {
    const loaded = await loadOrCreateIdentity(config.key, engine);
    identity = loaded.identity;
    if (loaded.created) {
      logger.info("identity key created", { path: config.key, bits: identity.bits });
    }
  } catch (err) {
    await log.close();
    fail((err as Error).message);
  }
  console.log(`server key ${identity.fingerprint} (RSA-${identity.bits}, ${config.key})`);

  let server: Server;
  try {
    server = new Server({
      host: config.host,
      port: config.port,
      identity,
      crypto: engine,
      store: log,
      state,
      limits: config.limits,
      logger,
      trace: config.trace,
      hashParams: config.insecureFastHash ? TEST_ONLY_WEAK_PARAMS : PASSWORD_PARAMS,
    });
  } catch (err) {
    await log.close();
    if (err instanceof Deno.errors.AddrInUse) {
      fail(`${config.host}:${config.port} is already in use`);
    }
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
  }
  console.log(`listening on ${server.addr.hostname}:${server.addr.port}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn("second signal: exiting at once", { signal });
      Deno.exit(130);
    }
    stopping = true;
    logger.info("shutting down", { signal, connections: server.connectionCount });
    await server.shutdown();
    await log.close();
    logger.info("shutdown complete", { appends: log.stats.appends });
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void stop(signal));
  }
}

if (import.meta.main) await main();
