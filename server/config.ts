// The server's command line and environment (HYBRID_*), with §5's limits as overridable
// defaults. Pure: returns a Config or throws a UsageError naming the bad value.
import { isAbsolute } from "node:path";
import { parseArgs } from "node:util";
import * as L from "../protocol/limits.ts";
import {
  CRYPTO_MODES,
  type CryptoMode,
  cryptoModeOf,
  KEX_GROUPS,
  type KexGroup,
  kexGroupByName,
} from "../crypto/mod.ts";
import {
  fileStoreUrl,
  type FsyncMode,
  parseStoreUrl,
  type StoreUrl,
  StoreUrlError,
} from "../store/mod.ts";

/** Limits and timeouts of PROTOCOL §5, plus the server's own bounds. */
export interface ServerLimits {
  handshake_timeout_ms: number;
  idle_timeout_ms: number;
  /** Failures per user from one source address before that address is throttled for the user. */
  login_failures_per_user: number;
  /** Failures per user from all addresses together before every address is throttled for it. */
  login_failures_per_user_total: number;
  login_failures_per_address: number;
  login_window_ms: number;
  /** First back-off once a key is throttled; doubles per further failure. */
  login_backoff_base_ms: number;
  /** Longest back-off: throttling slows guessing, it never locks an account for good. */
  login_backoff_max_ms: number;
  signups_per_address: number;
  signup_window_ms: number;
  msg_burst: number;
  msg_per_second: number;
  max_connections: number;
  max_connections_per_address: number;
  /**
   * Undelivered messages one recipient may have waiting; past it MSG to them is answered
   * rate_limited, so senders cannot fill the server's memory through an account that never logs in.
   */
  max_queued_per_recipient: number;
  /** Password hashes running at once (one per core on this 2-core machine). */
  hash_concurrency: number;
  /** Hashes waiting for a slot before `rate_limited`. */
  hash_queue: number;
  /**
   * A session must log in within this time after its handshake (or its LGO), else it gets
   * `BYE idle`: a session that only sends PNG cannot hold a connection for ever.
   */
  login_timeout_ms: number;
  /** Connections not logged in (handshaking included), in all: their own cap under max_connections. */
  max_unauthenticated: number;
  /** GUL per session: burst, then this many per second (`rate_limited`). */
  gul_burst: number;
  gul_per_second: number;
  /** Most users one GUL answer lists; the answer's `next` asks for the following page. */
  gul_page: number;
  /** UTF-8 bytes of undelivered texts one recipient may have waiting. */
  max_queued_bytes_per_recipient: number;
  /** UTF-8 bytes of undelivered texts one sender may have waiting, over all recipients. */
  max_queued_bytes_per_sender: number;
  /** UTF-8 bytes of undelivered texts in all: what bounds the queues' memory, and replay's. */
  max_queued_bytes_total: number;
  /** Handshakes per source address (IPv6: per /64): burst, then this many per second. */
  handshakes_per_address_burst: number;
  handshakes_per_address_per_second: number;
  /** ClientHellos being answered (queued or computing) at once; past it a connection is dropped. */
  max_handshakes_in_flight: number;
  /** Worker threads that compute handshakes off the event loop; 0 computes them inline. */
  handshake_workers: number;
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  handshake_timeout_ms: L.HANDSHAKE_TIMEOUT_MS,
  idle_timeout_ms: L.IDLE_TIMEOUT_MS,
  login_failures_per_user: L.LOGIN_FAILURES_PER_USER,
  login_failures_per_user_total: L.LOGIN_FAILURES_PER_USER_TOTAL,
  login_failures_per_address: L.LOGIN_FAILURES_PER_ADDRESS,
  login_window_ms: L.LOGIN_FAILURE_WINDOW_MS,
  login_backoff_base_ms: 1000,
  login_backoff_max_ms: 5 * 60_000,
  signups_per_address: L.SIGNUPS_PER_ADDRESS,
  signup_window_ms: L.SIGNUP_WINDOW_MS,
  msg_burst: L.MSG_BURST,
  msg_per_second: L.MSG_PER_SECOND,
  max_connections: L.MAX_CONNECTIONS,
  max_connections_per_address: L.MAX_CONNECTIONS_PER_ADDRESS,
  max_queued_per_recipient: 10_000,
  hash_concurrency: 2,
  hash_queue: 64,
  login_timeout_ms: L.LOGIN_TIMEOUT_MS,
  max_unauthenticated: 2048,
  gul_burst: 10,
  gul_per_second: 1,
  gul_page: L.MAX_GUL_PAGE,
  max_queued_bytes_per_recipient: 16 * 1024 * 1024,
  max_queued_bytes_per_sender: 16 * 1024 * 1024,
  max_queued_bytes_total: 256 * 1024 * 1024,
  handshakes_per_address_burst: 64,
  handshakes_per_address_per_second: 16,
  max_handshakes_in_flight: 64,
  handshake_workers: 1,
};

/** Limits that may be 0: every other one at 0 would refuse everything. */
const ZERO_ALLOWED = new Set(["handshake_workers"]);

export interface Config {
  host: string;
  port: number;
  /** Where the event log lives: `--store URL`, or `--log PATH` as `file:PATH`. */
  store: StoreUrl;
  /**
   * The log file's path when `store` is a file; DEFAULT_LOG otherwise (a PostgreSQL store has
   * no path). Kept for callers that open the file log directly.
   */
  log: string;
  /** Identity key file; defaults to server_key.pem beside the log. */
  key: string;
  fsync: FsyncMode;
  repair: boolean;
  trace: boolean;
  jsonLogs: boolean;
  /** FOR TESTS ONLY: cheap password hashing. */
  insecureFastHash: boolean;
  /** Engine for AES, HMAC, RSA and DH (crypto/engine.ts). */
  crypto: CryptoMode;
  /** libcrypto to load for the native engine; undefined for the OS's usual name. */
  libcrypto: string | undefined;
  /** Key-exchange groups offered (§2.6: all five unless narrowed). */
  groups: readonly KexGroup[];
  limits: ServerLimits;
}

export const DEFAULT_HOST = "0.0.0.0";
export const DEFAULT_PORT = 5002;
export const DEFAULT_LOG = "./events.log";

/** The longest limit name, so that every default in --help lines up. */
const LIMIT_NAME_WIDTH = Math.max(...Object.keys(DEFAULT_LIMITS).map((k) => k.length));

export const HELP = `hybrid-server — the HSP/1 secure chat server

Usage: deno task server [options]

Options (each also read from the environment variable shown):
  --host HOST               address to listen on (HYBRID_HOST, default ${DEFAULT_HOST})
  --port PORT               TCP port, 0 picks a free one (HYBRID_PORT, default ${DEFAULT_PORT})
  --store URL               where the event log lives (HYBRID_STORE): file:PATH, or
                            postgres://[user[:password]@]host[:port][,host2…]/db[?schema=NAME]
                            shared by several nodes (see docs/SCALING.md)
  --log PATH                shorthand for --store file:PATH (HYBRID_LOG, default ${DEFAULT_LOG})
  --key PATH                RSA identity key, created on first start with mode 0600
                            (HYBRID_KEY, default server_key.pem beside a log file, else
                            ./server_key.pem; nodes of one service share the same key)
  --fsync always|off        sync each append before acknowledging (HYBRID_FSYNC, default always);
                            off is for benchmarks only and loses data on power failure
  --crypto auto|native|portable
                            engine for AES, HMAC, RSA and DH (HYBRID_CRYPTO, default auto):
                            native is OpenSSL 3's libcrypto over FFI (needs --allow-ffi, 3-10x
                            faster), portable is @noble + node:crypto; auto takes native if it loads
  --libcrypto PATH          libcrypto for the native engine, an absolute path (HYBRID_LIBCRYPTO,
                            default the usual places of the OS's OpenSSL 3)
  --groups LIST             key-exchange groups offered, comma-separated (HYBRID_GROUPS, default
                            all: ${KEX_GROUPS.map((g) => g.name).join(",")})
  --repair                  on mid-log damage keep a backup, drop only the damaged bytes, keep the rest
  --max-connections N       connections in all (HYBRID_MAX_CONNECTIONS, default ${L.MAX_CONNECTIONS})
  --max-connections-per-address N
                            per source address (HYBRID_MAX_CONNECTIONS_PER_ADDRESS, default ${L.MAX_CONNECTIONS_PER_ADDRESS})
  --limit NAME=VALUE        override any limit below; repeatable (HYBRID_LIMITS="a=1,b=2")
  --trace                   print every handshake step and record, readably (HYBRID_TRACE=1)
  --json-logs               log JSON lines instead of text (HYBRID_JSON_LOGS=1)
  --insecure-fast-hash      FOR TESTS ONLY: weak password hashing (a flag only: no variable)
  -h, --help                show this help
  -V, --version             show the version

Under \`deno task server\` the process may write only in HYBRID_DATA (default: the project
directory) and read only there and its own code: set HYBRID_DATA to the directory of --log and
--key when they are elsewhere.

Limits (--limit NAME=VALUE), with their defaults:
${Object.entries(DEFAULT_LIMITS).map(([k, v]) => `  ${k.padEnd(LIMIT_NAME_WIDTH)} ${v}`).join("\n")}
`;

/** A bad flag or value; the message says which and why. */
export class UsageError extends Error {
  override name = "UsageError";
}

function integer(name: string, value: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(value) || +value < min || +value > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return +value;
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value);
}

/** Parses argv and env; returns "help" or "version" for those flags. */
export function parseConfig(
  args: string[],
  env: Record<string, string | undefined>,
): Config | "help" | "version" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        log: { type: "string" },
        store: { type: "string" },
        key: { type: "string" },
        fsync: { type: "string" },
        repair: { type: "boolean" },
        crypto: { type: "string" },
        libcrypto: { type: "string" },
        groups: { type: "string" },
        "max-connections": { type: "string" },
        "max-connections-per-address": { type: "string" },
        limit: { type: "string", multiple: true },
        trace: { type: "boolean" },
        "json-logs": { type: "boolean" },
        "insecure-fast-hash": { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    });
  } catch (cause) {
    throw new UsageError((cause as Error).message, { cause });
  }
  const v = parsed.values;
  if (v.help) return "help";
  if (v.version) return "version";

  // An environment variable is inherited by every process started from a shell that set it
  // once: too easy to leave on by accident for something that weakens every password.
  if (env.HYBRID_INSECURE_FAST_HASH !== undefined) {
    throw new UsageError(
      "HYBRID_INSECURE_FAST_HASH is not read: weak password hashing is for tests only and must " +
        "be asked for on the command line (--insecure-fast-hash); unset the variable",
    );
  }
  const host = v.host ?? env.HYBRID_HOST ?? DEFAULT_HOST;
  if (host.length === 0) throw new UsageError("--host must not be empty");
  const port = integer("--port", v.port ?? env.HYBRID_PORT ?? String(DEFAULT_PORT), 0, 65535);
  const store = storeOf(v.store, v.log, env);
  const log = store.kind === "file" ? store.path : DEFAULT_LOG;
  const dir = store.kind === "file" && log.includes("/")
    ? log.slice(0, log.lastIndexOf("/") + 1)
    : "";
  const key = v.key ?? env.HYBRID_KEY ?? `${dir}server_key.pem`;
  const fsync = v.fsync ?? env.HYBRID_FSYNC ?? "always";
  if (fsync !== "always" && fsync !== "off") {
    throw new UsageError(`--fsync must be "always" or "off", got "${fsync}"`);
  }
  if (store.kind === "postgres" && fsync === "off") {
    throw new UsageError("--fsync off applies to a log file; PostgreSQL always commits durably");
  }
  if (store.kind === "postgres" && v.repair) {
    throw new UsageError("--repair applies to a log file; PostgreSQL keeps its own integrity");
  }

  const cryptoValue = v.crypto ?? env.HYBRID_CRYPTO ?? "auto";
  const crypto = cryptoModeOf(cryptoValue);
  if (crypto === undefined) {
    throw new UsageError(
      `--crypto must be one of ${CRYPTO_MODES.join(", ")}, got "${cryptoValue}"`,
    );
  }
  const libcrypto = v.libcrypto ?? env.HYBRID_LIBCRYPTO;
  if (libcrypto === "") throw new UsageError("--libcrypto must not be empty");
  if (libcrypto !== undefined && !isAbsolute(libcrypto)) {
    throw new UsageError(`--libcrypto must be an absolute path, got "${libcrypto}"`);
  }
  const groups = parseGroups(v.groups ?? env.HYBRID_GROUPS);

  const limits: ServerLimits = { ...DEFAULT_LIMITS };
  const overrides = [
    ...(env.HYBRID_LIMITS ? env.HYBRID_LIMITS.split(",") : []),
    ...(v.limit ?? []),
  ];
  for (const item of overrides) {
    const [name, value, extra] = item.trim().split("=");
    if (name === undefined || value === undefined || extra !== undefined || !(name in limits)) {
      throw new UsageError(
        `--limit takes NAME=VALUE with NAME one of ${
          Object.keys(limits).join(", ")
        }; got "${item}"`,
      );
    }
    const min = ZERO_ALLOWED.has(name) ? 0 : 1;
    limits[name as keyof ServerLimits] = integer(`limit ${name}`, value, min, 2 ** 31 - 1);
  }
  const maxConn = v["max-connections"] ?? env.HYBRID_MAX_CONNECTIONS;
  if (maxConn !== undefined) {
    limits.max_connections = integer("--max-connections", maxConn, 1, 1_000_000);
  }
  const maxPerAddr = v["max-connections-per-address"] ?? env.HYBRID_MAX_CONNECTIONS_PER_ADDRESS;
  if (maxPerAddr !== undefined) {
    limits.max_connections_per_address = integer(
      "--max-connections-per-address",
      maxPerAddr,
      1,
      1_000_000,
    );
  }

  return {
    host,
    port,
    store,
    log,
    key,
    fsync,
    repair: v.repair ?? false,
    trace: v.trace ?? truthy(env.HYBRID_TRACE),
    jsonLogs: v["json-logs"] ?? truthy(env.HYBRID_JSON_LOGS),
    insecureFastHash: v["insecure-fast-hash"] ?? false,
    crypto,
    libcrypto,
    groups,
    limits,
  };
}

/** `--groups a,b`: known names, each once, at least one; undefined means all five. */
function parseGroups(value: string | undefined): readonly KexGroup[] {
  if (value === undefined) return KEX_GROUPS;
  const names = value.split(",").map((n) => n.trim());
  const groups = names.map((name) => {
    const group = kexGroupByName(name);
    if (group === undefined) {
      throw new UsageError(
        `--groups takes names from ${KEX_GROUPS.map((g) => g.name).join(", ")}; got "${name}"`,
      );
    }
    return group;
  });
  if (new Set(groups).size !== groups.length) {
    throw new UsageError(`--groups names a group twice: "${value}"`);
  }
  return groups;
}

/**
 * The store from `--store`, `--log` (as `file:PATH`), HYBRID_STORE or HYBRID_LOG, the flags
 * before the variables; both kinds at one level is ambiguous and refused.
 */
function storeOf(
  store: string | undefined,
  log: string | undefined,
  env: Record<string, string | undefined>,
): StoreUrl {
  if (store !== undefined && log !== undefined) {
    throw new UsageError("give --store or --log, not both (--log PATH means --store file:PATH)");
  }
  if (store === undefined && log === undefined) {
    if (env.HYBRID_STORE !== undefined && env.HYBRID_LOG !== undefined) {
      throw new UsageError("set HYBRID_STORE or HYBRID_LOG, not both");
    }
    store = env.HYBRID_STORE;
    log = env.HYBRID_LOG;
  }
  try {
    if (store !== undefined) return parseStoreUrl(store);
    if (log !== undefined && log.length === 0) throw new UsageError("--log must not be empty");
    return fileStoreUrl(log ?? DEFAULT_LOG);
  } catch (e) {
    if (e instanceof StoreUrlError) throw new UsageError(`--store: ${e.message}`, { cause: e });
    throw e;
  }
}
