// Server key pinning of PROTOCOL §6: a known_hosts file of `host:port fingerprint` lines,
// trusted on first use as SSH does, checked on every later connection.
import { dirname } from "node:path";
import { FINGERPRINT_PATTERN } from "../protocol/messages.ts";
import { ensurePrivateDir, writePrivateFile } from "./config.ts";

/** One pinned key, as read from the file (`line` is 1-based, for messages). */
export interface KnownHost {
  readonly endpoint: string;
  readonly fingerprint: string;
  readonly line: number;
}

/** A line that does not parse: where, why, and its first field (what it may be a pin for). */
export interface KnownHostsProblem {
  readonly line: number;
  readonly first: string;
  readonly reason: string;
}

/** The parsed file: its entries, and the lines that do not parse. */
export interface KnownHostsContent {
  readonly entries: readonly KnownHost[];
  readonly problems: readonly KnownHostsProblem[];
}

/** How a presented key relates to the pins for its endpoint and the other servers of its list. */
export type PinCheck =
  /** A pin of the endpoint's, and no server of the list pinned to other keys only. */
  | { readonly kind: "match" }
  /** No pin for the endpoint; a server of the list (`sibling`) is pinned to this key. */
  | { readonly kind: "sibling"; readonly sibling: string }
  /** No pin for any server of the list. */
  | { readonly kind: "unknown" }
  /** `pinnedFor`: the servers whose pins (`pinned`, all of them) the key is not among. */
  | {
    readonly kind: "mismatch";
    readonly pinned: readonly string[];
    readonly pinnedFor: readonly string[];
  };

/**
 * The file's name for a server: `host:port`, host lower-cased (DNS names are case-insensitive),
 * an IPv6 literal in brackets so that the last colon always separates the port.
 */
export function endpointName(host: string, port: number): string {
  return `${hostName(host)}:${port}`;
}

/** The host part of an endpoint's name. */
function hostName(host: string): string {
  const name = host.toLowerCase();
  return name.includes(":") && !name.startsWith("[") ? `[${name}]` : name;
}

const ENDPOINT = /^(\[[0-9a-f:.%a-z]+\]|[^\s:[\]]+):([0-9]{1,5})$/;

/** Parses known_hosts text; blank lines and `#` comments are skipped, malformed lines reported. */
export function parseKnownHosts(text: string): KnownHostsContent {
  const entries: KnownHost[] = [];
  const problems: KnownHostsProblem[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    const [endpoint, fingerprint] = fields;
    const port = Number(ENDPOINT.exec(endpoint ?? "")?.[2]);
    const problem = (reason: string) =>
      problems.push({ line: index + 1, first: (endpoint ?? "").toLowerCase(), reason });
    if (fields.length !== 2 || endpoint === undefined || fingerprint === undefined) {
      problem('expected "host:port fingerprint"');
    } else if (!(port >= 1 && port <= 65535)) {
      problem(`"${endpoint.slice(0, 80)}" is not host:port`);
    } else if (!FINGERPRINT_PATTERN.test(fingerprint)) {
      problem("not a SHA256: fingerprint");
    } else {
      entries.push({ endpoint: endpoint.toLowerCase(), fingerprint, line: index + 1 });
    }
  });
  return { entries, problems };
}

/**
 * The lines that do not parse but may be meant for a server on `host`: their first field is the
 * host, with or without a port or with something stuck to it. Ignoring one could pin a new key
 * over the one its author meant, so a connection to that host must refuse instead.
 */
export function problemsFor(
  problems: readonly KnownHostsProblem[],
  host: string,
): KnownHostsProblem[] {
  const name = hostName(host);
  return problems.filter((p) =>
    p.first.startsWith(name) && !/[a-z0-9.-]/.test(p.first.charAt(name.length))
  );
}

/**
 * Compares the fingerprint `endpoint` presents with the pins of every server of its list
 * `servers` (endpoint names; `endpoint` is one of them). The servers of a list are the nodes of
 * one service and share one key, so each server's pins bind them all: a server pinned to other
 * keys only is a mismatch whichever server shows the key. Without that, an attacker answering
 * for a server never pinned (or blocking the pinned ones) would be a first contact. Within one
 * server's pins any one may match, as in SSH.
 */
export function checkPin(
  entries: readonly KnownHost[],
  endpoint: string,
  fingerprint: string,
  servers: readonly string[] = [endpoint],
): PinCheck {
  const pinned: string[] = [];
  const pinnedFor: string[] = [];
  let own = false;
  let sibling: string | undefined;
  for (const server of new Set([endpoint, ...servers])) {
    const pins = entries.filter((e) => e.endpoint === server).map((e) => e.fingerprint);
    if (pins.length === 0) continue;
    if (!pins.includes(fingerprint)) {
      pinnedFor.push(server);
      pinned.push(...pins.filter((p) => !pinned.includes(p)));
    } else if (server === endpoint) {
      own = true;
    } else {
      sibling ??= server;
    }
  }
  if (pinnedFor.length > 0) return { kind: "mismatch", pinned, pinnedFor };
  if (own) return { kind: "match" };
  return sibling === undefined ? { kind: "unknown" } : { kind: "sibling", sibling };
}

/**
 * The file text with `endpoint` pinned to `fingerprint` alone: older lines for that endpoint are
 * dropped (an accepted new key replaces the old one), every other line is kept as it was.
 */
export function withPin(text: string, endpoint: string, fingerprint: string): string {
  const kept = text.split("\n").filter((raw) => {
    const first = raw.trim().split(/\s+/)[0] ?? "";
    return first.toLowerCase() !== endpoint;
  });
  while (kept.length > 0 && kept[kept.length - 1]!.trim() === "") kept.pop();
  return [...kept, `${endpoint} ${fingerprint}`].join("\n") + "\n";
}

/** The known_hosts file at `path`: read on every check, so that edits by hand take effect. */
export class KnownHosts {
  constructor(readonly path: string) {}

  /** The file's content; an absent file is an empty one. */
  async read(): Promise<KnownHostsContent> {
    return parseKnownHosts(await this.#text());
  }

  /**
   * Why the file cannot be trusted to hold the user's pins, or undefined: it (or its directory)
   * is writable by the group or others, who could pin their own server's key in it.
   */
  async looseness(): Promise<string | undefined> {
    if (Deno.build.os === "windows") return undefined;
    for (const path of [this.path, dirname(this.path)]) {
      let mode: number | null;
      try {
        mode = (await Deno.stat(path)).mode;
      } catch {
        continue;
      }
      // A sticky directory (/tmp) lets no one replace another's file.
      const sticky = path !== this.path && mode !== null && (mode & 0o1000) !== 0;
      if (mode !== null && (mode & 0o022) !== 0 && !sticky) {
        const octal = (mode & 0o777).toString(8).padStart(4, "0");
        const fix = path === this.path ? `chmod 600 ${path}` : `chmod go-w ${path}`;
        return `${path} is writable by others (mode ${octal}): whoever can write it can make ` +
          `this client trust their server; run ${fix}`;
      }
    }
    return undefined;
  }

  /** Records `fingerprint` as the one key of each of `endpoints` (directory 0700, file 0600). */
  async pin(endpoints: readonly string[], fingerprint: string): Promise<void> {
    const text = endpoints.reduce((t, e) => withPin(t, e, fingerprint), await this.#text());
    await ensurePrivateDir(dirname(this.path));
    await writePrivateFile(this.path, text);
  }

  async #text(): Promise<string> {
    try {
      return await Deno.readTextFile(this.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return "";
      throw err;
    }
  }
}
