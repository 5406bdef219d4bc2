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

/** The parsed file: its entries, and the lines that were ignored because they are malformed. */
export interface KnownHostsContent {
  readonly entries: readonly KnownHost[];
  readonly problems: readonly string[];
}

/** How a presented key relates to the pins for its endpoint. */
export type PinCheck =
  | { readonly kind: "match" }
  | { readonly kind: "unknown" }
  | { readonly kind: "mismatch"; readonly pinned: readonly string[] };

/**
 * The file's name for a server: `host:port`, host lower-cased (DNS names are case-insensitive),
 * an IPv6 literal in brackets so that the last colon always separates the port.
 */
export function endpointName(host: string, port: number): string {
  const name = host.toLowerCase();
  return name.includes(":") && !name.startsWith("[") ? `[${name}]:${port}` : `${name}:${port}`;
}

const ENDPOINT = /^(\[[0-9a-f:.%a-z]+\]|[^\s:[\]]+):([0-9]{1,5})$/;

/** Parses known_hosts text; blank lines and `#` comments are skipped, malformed lines reported. */
export function parseKnownHosts(text: string): KnownHostsContent {
  const entries: KnownHost[] = [];
  const problems: string[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    const [endpoint, fingerprint] = fields;
    const port = Number(ENDPOINT.exec(endpoint ?? "")?.[2]);
    if (fields.length !== 2 || endpoint === undefined || fingerprint === undefined) {
      problems.push(`line ${index + 1}: expected "host:port fingerprint"`);
    } else if (!(port >= 1 && port <= 65535)) {
      problems.push(`line ${index + 1}: "${endpoint.slice(0, 80)}" is not host:port`);
    } else if (!FINGERPRINT_PATTERN.test(fingerprint)) {
      problems.push(`line ${index + 1}: not a SHA256: fingerprint`);
    } else {
      entries.push({ endpoint: endpoint.toLowerCase(), fingerprint, line: index + 1 });
    }
  });
  return { entries, problems };
}

/** Compares a presented fingerprint with every pin for `endpoint` (any one may match, as in SSH). */
export function checkPin(
  entries: readonly KnownHost[],
  endpoint: string,
  fingerprint: string,
): PinCheck {
  const pinned = entries.filter((e) => e.endpoint === endpoint).map((e) => e.fingerprint);
  if (pinned.length === 0) return { kind: "unknown" };
  return pinned.includes(fingerprint) ? { kind: "match" } : { kind: "mismatch", pinned };
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

  /** How `fingerprint` relates to the pins for `endpoint`. */
  async check(endpoint: string, fingerprint: string): Promise<PinCheck> {
    return checkPin((await this.read()).entries, endpoint, fingerprint);
  }

  /** Records `fingerprint` as the one key of `endpoint` (directory 0700, file 0600). */
  async pin(endpoint: string, fingerprint: string): Promise<void> {
    const text = withPin(await this.#text(), endpoint, fingerprint);
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
