// Command-line flags of the client (node:util parseArgs), checked into Options or a usage error.
import { isAbsolute } from "node:path";
import { parseArgs } from "node:util";
import {
  CRYPTO_MODES,
  type CryptoMode,
  cryptoModeOf,
  isRsaKeyBits,
  KEX_GROUPS,
  type KexGroup,
  kexGroupByName,
  RSA_KEY_BITS,
  type RsaKeyBits,
} from "../crypto/mod.ts";
import { FINGERPRINT_PATTERN, isUsername } from "../protocol/messages.ts";
import { RECONNECT_BASE_MS, RECONNECT_MAX_MS } from "./connection.ts";
import type { Endpoint } from "./client_events.ts";
import { MAX_SERVERS, parseServerList, withPorts } from "./server_list.ts";

/** The client's version, printed by --version. */
export const VERSION = "0.1.0";
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 5002;
/** §2.6: a client should default to the post-quantum hybrid. */
export const DEFAULT_GROUP = "x25519mlkem768";
/** Size of the users' own keys made at sign-up and by /keygen (§8.1 allows 2048, 3072, 4096). */
export const DEFAULT_RSA_BITS: RsaKeyBits = 3072;

/** Everything the flags decide. */
export interface Options {
  /** The servers of the service, in the order they are tried (one, unless --host lists several). */
  readonly servers: readonly Endpoint[];
  readonly group: KexGroup;
  /** Pre-fills /signup and /login. */
  readonly user: string | undefined;
  /** known_hosts path; undefined for the default in the config directory. */
  readonly knownHosts: string | undefined;
  readonly acceptNewKey: boolean;
  /** Fingerprints the user checked: each is accepted in place of a different pin. */
  readonly acceptKeys: readonly string[];
  readonly trace: boolean;
  readonly json: boolean;
  readonly noColor: boolean;
  /** Piped input: run every line, even after a command failed (else the first failure stops). */
  readonly keepGoing: boolean;
  /** Engine for AES, HMAC, RSA and DH (crypto/engine.ts). */
  readonly crypto: CryptoMode;
  /** libcrypto for the native engine; undefined for the OS's usual name. */
  readonly libcrypto: string | undefined;
  /** Size of the keys made at sign-up, at a first login without one, and by /keygen. */
  readonly rsaBits: RsaKeyBits;
  /** Refuse to send anything unsealed (§8). */
  readonly requireSealed: boolean;
}

export type ParsedArgs =
  | { readonly kind: "run"; readonly options: Options }
  | { readonly kind: "help" }
  | { readonly kind: "version" }
  | { readonly kind: "error"; readonly message: string };

/** The reconnect rounds' waits, in words (backoffDelay in connection.ts). */
const BACKOFF_TEXT =
  `min(${RECONNECT_BASE_MS / 1000} s × 2^(n-1), ${RECONNECT_MAX_MS / 1000} s):\n` +
  `${halves(RECONNECT_BASE_MS)}, then ${halves(2 * RECONNECT_BASE_MS)}, … up to ` +
  halves(RECONNECT_MAX_MS);

function halves(ms: number): string {
  return `${ms / 2000}-${ms / 1000} s`;
}

export const HELP = `hybrid-client ${VERSION} — terminal client for HSP/1 chat servers

Usage: deno task client [options]

Options:
  --host HOST[:PORT][,HOST[:PORT]…]
                       server to connect to at start (default ${DEFAULT_HOST}), or up to
                       ${MAX_SERVERS} nodes of one service, tried in turn; IPv6 in brackets
  --port PORT          the port of a host given without one (default ${DEFAULT_PORT})
  --group GROUP        key exchange: ${KEX_GROUPS.map((g) => g.name).join(" | ")}
                       (default ${DEFAULT_GROUP}: X25519 with post-quantum ML-KEM-768)
  --user USER          pre-fill the name for /signup and /login
  --known-hosts PATH   pinned server keys (default: known_hosts in $HYBRID_HOME,
                       $XDG_CONFIG_HOME/hybrid or ~/.config/hybrid)
  --accept-key SHA256:…
                       accept this key (the fingerprint you checked) in place of a
                       different pin, and re-pin it; may be repeated
  --accept-new-key     accept any key that differs from its pin (prefer --accept-key)
  --rsa-bits BITS      size of your own RSA key (2048 | 3072 | 4096, default ${DEFAULT_RSA_BITS}),
                       made at /signup (or at the first login of an account without
                       one) and by /keygen: messages to you are sealed to it
  --require-sealed     refuse to send a message that cannot be sealed end to end
  --trace              show the handshake step by step, every record, and each step
                       of sealing and opening messages
  --json               print one JSON object per line for every event
  --no-color           no colors (also when NO_COLOR is set)
  --keep-going         with piped input, run every line even after a command failed
  --crypto MODE        auto | native | portable (default auto, or HYBRID_CRYPTO): native is
                       OpenSSL 3's libcrypto over FFI, portable is @noble + node:crypto
  --libcrypto PATH     libcrypto for the native engine (default the OS's, or HYBRID_LIBCRYPTO)
  -h, --help           this help
  -V, --version        the version

Several servers (--host a:5002,b:5002) are the nodes of one service, sharing one key. At
start each is tried once, in order, until one answers. After a lost connection the client
reconnects in rounds, each trying every server once, starting after the one lost; before
round n it waits a random time in the upper half of ${BACKOFF_TEXT}.
A server showing a key other than the one pinned for it or for any server of the list is
refused loudly, and the next one is not tried.

Type /help once running for the commands. With stdin not a terminal, commands are read
line by line: the line after /signup or /login is the password (the two after /passwd:
current, new), even when the command fails before asking for it. The first failed
command stops the script (unless --keep-going); the exit status is 0 when every command
succeeded, 1 when one failed, 2 for bad flags.
`;

/** Parses the client's flags (and HYBRID_CRYPTO, HYBRID_LIBCRYPTO from `env`); never throws. */
export function parseClientArgs(
  args: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
): ParsedArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        group: { type: "string" },
        user: { type: "string" },
        "known-hosts": { type: "string" },
        "accept-key": { type: "string", multiple: true },
        "accept-new-key": { type: "boolean" },
        trace: { type: "boolean" },
        json: { type: "boolean" },
        "no-color": { type: "boolean" },
        "keep-going": { type: "boolean" },
        crypto: { type: "string" },
        libcrypto: { type: "string" },
        "rsa-bits": { type: "string" },
        "require-sealed": { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    }));
  } catch (err) {
    return { kind: "error", message: (err as Error).message };
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!/^[0-9]{1,5}$/.test(values.port ?? "5002") || !(port >= 1 && port <= 65535)) {
    return { kind: "error", message: `--port ${values.port} is not a port (1-65535)` };
  }
  const list = parseServerList(values.host ?? DEFAULT_HOST);
  const servers = list.ok ? withPorts(list.servers, port) : list;
  if (!servers.ok) return { kind: "error", message: `--host ${servers.error}` };
  const groupName = values.group ?? DEFAULT_GROUP;
  const group = kexGroupByName(groupName);
  if (group === undefined) {
    return {
      kind: "error",
      message: `--group ${groupName} is not one of ${KEX_GROUPS.map((g) => g.name).join(", ")}`,
    };
  }
  if (values.user !== undefined && !isUsername(values.user)) {
    return { kind: "error", message: `--user ${JSON.stringify(values.user)} is not a username` };
  }
  if (values["known-hosts"] === "") {
    return { kind: "error", message: "--known-hosts needs a path" };
  }
  const acceptKeys = values["accept-key"] ?? [];
  const badKey = acceptKeys.find((k) => !FINGERPRINT_PATTERN.test(k));
  if (badKey !== undefined) {
    return { kind: "error", message: `--accept-key ${notAFingerprint(badKey)}` };
  }
  const cryptoValue = values.crypto ?? env("HYBRID_CRYPTO") ?? "auto";
  const crypto = cryptoModeOf(cryptoValue);
  if (crypto === undefined) {
    return {
      kind: "error",
      message: `--crypto ${cryptoValue} is not one of ${CRYPTO_MODES.join(", ")}`,
    };
  }
  const libcrypto = values.libcrypto ?? env("HYBRID_LIBCRYPTO");
  if (libcrypto === "") return { kind: "error", message: "--libcrypto needs a path" };
  if (libcrypto !== undefined && !isAbsolute(libcrypto)) {
    return { kind: "error", message: `--libcrypto ${libcrypto} is not an absolute path` };
  }
  const rsaBits = Number(values["rsa-bits"] ?? DEFAULT_RSA_BITS);
  if (!isRsaKeyBits(rsaBits) || !/^[0-9]+$/.test(values["rsa-bits"] ?? "0")) {
    return {
      kind: "error",
      message: `--rsa-bits ${values["rsa-bits"]} is not one of ${RSA_KEY_BITS.join(", ")}`,
    };
  }
  return {
    kind: "run",
    options: {
      servers: servers.servers,
      group,
      user: values.user,
      knownHosts: values["known-hosts"],
      acceptNewKey: values["accept-new-key"] ?? false,
      acceptKeys,
      trace: values.trace ?? false,
      json: values.json ?? false,
      noColor: values["no-color"] ?? false,
      keepGoing: values["keep-going"] ?? false,
      crypto,
      libcrypto,
      rsaBits,
      requireSealed: values["require-sealed"] ?? false,
    },
  };
}

/** Why `text` is not a fingerprint, for --accept-key and /accept-key. */
export function notAFingerprint(text: string): string {
  return `${JSON.stringify(text.slice(0, 60))} is not a fingerprint (SHA256: and 43 base64 ` +
    "characters, as the server prints it)";
}
