// Command-line flags of the client (node:util parseArgs), checked into Options or a usage error.
import { isAbsolute } from "node:path";
import { parseArgs } from "node:util";
import {
  CRYPTO_MODES,
  type CryptoMode,
  cryptoModeOf,
  type DhGroup,
  groupByName,
  GROUPS,
} from "../crypto/mod.ts";
import { isUsername } from "../protocol/messages.ts";

/** The client's version, printed by --version. */
export const VERSION = "0.1.0";
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 5002;
export const DEFAULT_GROUP = "ffdhe2048";

/** Everything the flags decide. */
export interface Options {
  readonly host: string;
  readonly port: number;
  readonly group: DhGroup;
  /** Pre-fills /signup and /login. */
  readonly user: string | undefined;
  /** known_hosts path; undefined for the default in the config directory. */
  readonly knownHosts: string | undefined;
  readonly acceptNewKey: boolean;
  readonly trace: boolean;
  readonly json: boolean;
  readonly noColor: boolean;
  /** Engine for AES, HMAC, RSA and DH (crypto/engine.ts). */
  readonly crypto: CryptoMode;
  /** libcrypto for the native engine; undefined for the OS's usual name. */
  readonly libcrypto: string | undefined;
}

export type ParsedArgs =
  | { readonly kind: "run"; readonly options: Options }
  | { readonly kind: "help" }
  | { readonly kind: "version" }
  | { readonly kind: "error"; readonly message: string };

export const HELP = `hybrid-client ${VERSION} — terminal client for HSP/1 chat servers

Usage: deno task client [options]

Options:
  --host HOST          server to connect to at start (default ${DEFAULT_HOST})
  --port PORT          its port (default ${DEFAULT_PORT})
  --group GROUP        Diffie-Hellman group: ${GROUPS.map((g) => g.name).join(" | ")}
                       (default ${DEFAULT_GROUP})
  --user USER          pre-fill the name for /signup and /login
  --known-hosts PATH   pinned server keys (default: known_hosts in $HYBRID_HOME,
                       $XDG_CONFIG_HOME/hybrid or ~/.config/hybrid)
  --accept-new-key     accept a server key that differs from its pin, and re-pin it
  --trace              show the handshake step by step and every record
  --json               print one JSON object per line for every event
  --no-color           no colors (also when NO_COLOR is set)
  --crypto MODE        auto | native | portable (default auto, or HYBRID_CRYPTO): native is
                       OpenSSL 3's libcrypto over FFI, portable is @noble + node:crypto
  --libcrypto PATH     libcrypto for the native engine (default the OS's, or HYBRID_LIBCRYPTO)
  -h, --help           this help
  -V, --version        the version

Type /help once running for the commands. With stdin not a terminal, commands are read
line by line (the line after /signup or /login is the password); the exit status is 0
when every command succeeded.
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
        "accept-new-key": { type: "boolean" },
        trace: { type: "boolean" },
        json: { type: "boolean" },
        "no-color": { type: "boolean" },
        crypto: { type: "string" },
        libcrypto: { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    }));
  } catch (err) {
    return { kind: "error", message: (err as Error).message };
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  const host = values.host ?? DEFAULT_HOST;
  if (host === "" || /[\s/@]/.test(host)) {
    return { kind: "error", message: `--host ${JSON.stringify(host)} is not a host name` };
  }
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!/^[0-9]{1,5}$/.test(values.port ?? "5002") || !(port >= 1 && port <= 65535)) {
    return { kind: "error", message: `--port ${values.port} is not a port (1-65535)` };
  }
  const groupName = values.group ?? DEFAULT_GROUP;
  const group = groupByName(groupName);
  if (group === undefined) {
    return {
      kind: "error",
      message: `--group ${groupName} is not one of ${GROUPS.map((g) => g.name).join(", ")}`,
    };
  }
  if (values.user !== undefined && !isUsername(values.user)) {
    return { kind: "error", message: `--user ${JSON.stringify(values.user)} is not a username` };
  }
  if (values["known-hosts"] === "") {
    return { kind: "error", message: "--known-hosts needs a path" };
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
  return {
    kind: "run",
    options: {
      host: host.replace(/^\[(.*)\]$/, "$1"),
      port,
      group,
      user: values.user,
      knownHosts: values["known-hosts"],
      acceptNewKey: values["accept-new-key"] ?? false,
      trace: values.trace ?? false,
      json: values.json ?? false,
      noColor: values["no-color"] ?? false,
      crypto,
      libcrypto,
    },
  };
}
