// The servers of one service as the user names them (`--host a:5002,b:5002`, `/connect …`): the
// nodes of one service share one key, so the client tries them in turn and pins them as one.
import type { Endpoint } from "./client_events.ts";
import { endpointName } from "./known_hosts.ts";

/**
 * Servers one list may name: more nodes than a service behind one name runs, and few enough
 * that trying each in turn (each up to CONNECT_TIMEOUT_MS) stays a wait a user sits through.
 */
export const MAX_SERVERS = 8;

/** One entry of a list: a host, and its port when the entry gives one. */
export interface ServerSpec {
  readonly host: string;
  readonly port?: number;
}

/** A list read, or why not (a message to put after the flag or the command). */
export type ServerListParse =
  | { readonly ok: true; readonly servers: readonly ServerSpec[] }
  | { readonly ok: false; readonly error: string };

/**
 * `host`, `host:port`, `[v6]` or `[v6]:port`; undefined when malformed or the port is not
 * 1..65535. The port is absent when not given (the caller supplies the default).
 */
export function parseHostPort(text: string): ServerSpec | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/@,]+))(?::([0-9]{1,5}))?$/.exec(text);
  if (match === null) return undefined;
  const host = match[1] ?? match[2]!;
  if (match[3] === undefined) return { host };
  const port = Number(match[3]);
  return port >= 1 && port <= 65535 ? { host, port } : undefined;
}

/**
 * Reads a comma-separated list of `host[:port]` entries (blanks around an entry are ignored):
 * an empty entry, a malformed one, or more than MAX_SERVERS of them is an error naming it.
 */
export function parseServerList(text: string): ServerListParse {
  const entries = text.split(",");
  if (entries.length > MAX_SERVERS) {
    return fail(`names ${entries.length} servers, more than MAX_SERVERS (${MAX_SERVERS})`);
  }
  const servers: ServerSpec[] = [];
  for (const [index, raw] of entries.entries()) {
    const entry = raw.trim();
    const which = entries.length === 1 ? "" : ` (entry ${index + 1})`;
    if (entry === "") return fail(`has an empty entry${which}: ${JSON.stringify(text)}`);
    const server = parseHostPort(entry);
    if (server === undefined) {
      return fail(
        `${JSON.stringify(entry.slice(0, 80))}${which} is not host[:port] (port 1-65535, an ` +
          "IPv6 address in brackets)",
      );
    }
    servers.push(server);
  }
  return { ok: true, servers };
}

/**
 * The endpoints of `specs`, `defaultPort` where an entry gave none; a server named twice (as
 * known_hosts names it: host case and default port do not make two) is an error.
 */
export function withPorts(
  specs: readonly ServerSpec[],
  defaultPort: number,
): { readonly ok: true; readonly servers: readonly Endpoint[] } | {
  readonly ok: false;
  readonly error: string;
} {
  const servers = specs.map((s) => ({ host: s.host, port: s.port ?? defaultPort }));
  const names = servers.map((s) => endpointName(s.host, s.port));
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) return fail(`names ${twice} twice`);
  return { ok: true, servers };
}

/** `a:5002,b:5002`: how a list is shown (and compared: the same names in the same order). */
export function serverListName(servers: readonly Endpoint[]): string {
  return servers.map((s) => endpointName(s.host, s.port)).join(",");
}

function fail(error: string): { readonly ok: false; readonly error: string } {
  return { ok: false, error };
}
