// Where the event log lives, as the operator writes it (`--store URL`): `file:PATH` for the
// embedded log, `postgres://…` (or `postgresql://…`) for a log shared by several nodes.
// Pure: parses and checks, never connects, and never repeats a password in a message.

/** The schema a PostgreSQL log uses unless the URL names another (`?schema=NAME`). */
export const DEFAULT_SCHEMA = "hybrid";
/**
 * A schema name we accept: lower-case, digits and underscores, so it never needs quoting in
 * SQL or in a LISTEN channel, and at most 40 characters, leaving room within PostgreSQL's
 * 63-byte identifiers for the suffixes of the objects named after it.
 */
export const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,39}$/;
/**
 * The URL parameters passed on to the driver, beside our own `schema`. Any other is refused
 * here: the driver would send it to the server as a setting, where a typo fails only at
 * connect time and far less clearly.
 */
export const DRIVER_PARAMETERS: readonly string[] = [
  "sslmode",
  "sslrootcert",
  "target_session_attrs",
  "application_name",
];
const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
const SESSION_ATTRS = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"];

/** A parsed `--store` value. */
export type StoreUrl =
  | {
    kind: "file";
    /** The log's path, as given. */
    path: string;
    /** `file:PATH`, for people. */
    description: string;
  }
  | {
    kind: "postgres";
    /** What the driver connects with: the URL as given, less our own `schema` parameter. */
    connection: string;
    /** The schema holding the log's tables. */
    schema: string;
    /** The URL without its password (and with the schema), for logs and messages. */
    description: string;
    /** The URL's hosts in order, IPv6 literals without their brackets; empty for the default. */
    hosts: readonly { readonly host: string; readonly port?: number }[];
  };

/** A `--store` value that is not one we accept; the message never holds a password. */
export class StoreUrlError extends TypeError {
  override name = "StoreUrlError";
}

/** `file:PATH` for a log path (what `--log PATH` means). */
export function fileStoreUrl(path: string): StoreUrl {
  if (path.length === 0) throw new StoreUrlError("the event log's path must not be empty");
  return { kind: "file", path, description: `file:${path}` };
}

/**
 * Parses a `--store` value. `file:PATH` takes PATH as it is (relative or absolute);
 * `file:///abs/path` is accepted too. `postgres://[user[:password]@][host[:port][,…]][/db]
 * [?param=value&…]` takes `schema` (default DEFAULT_SCHEMA) and DRIVER_PARAMETERS.
 */
export function parseStoreUrl(text: string): StoreUrl {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(text)?.[1]?.toLowerCase();
  if (scheme === "file") {
    let path = text.slice("file:".length);
    if (path.startsWith("//")) {
      if (!path.startsWith("///")) {
        throw new StoreUrlError(
          `${JSON.stringify(text)} names a host; use file:PATH or file:///absolute/path`,
        );
      }
      path = path.slice(2);
    }
    if (path.length === 0) throw new StoreUrlError("file: needs a path, e.g. file:events.log");
    return { kind: "file", path, description: `file:${path}` };
  }
  if (scheme === "postgres" || scheme === "postgresql") return parsePostgres(text);
  const shown = JSON.stringify(redactUrl(text).slice(0, 80));
  throw new StoreUrlError(
    scheme === undefined
      ? `${shown} is not a store URL: write file:PATH for a log file, or postgres://…`
      : `unknown store scheme "${scheme}:" in ${shown}: use file:PATH or postgres://…`,
  );
}

function parsePostgres(text: string): StoreUrl {
  const redacted = redactUrl(text);
  const fail = (why: string): never => {
    throw new StoreUrlError(`bad PostgreSQL URL ${JSON.stringify(redacted)}: ${why}`);
  };
  const afterScheme = text.slice(text.indexOf("://") + 3);
  if (!text.includes("://")) fail("expected postgres://[user[:password]@]host[:port]/database");
  const queryAt = afterScheme.indexOf("?");
  const beforeQuery = queryAt < 0 ? afterScheme : afterScheme.slice(0, queryAt);
  const query = queryAt < 0 ? "" : afterScheme.slice(queryAt + 1);
  const slash = beforeQuery.indexOf("/");
  const authority = slash < 0 ? beforeQuery : beforeQuery.slice(0, slash);
  const database = slash < 0 ? "" : decode(beforeQuery.slice(slash + 1), "database", fail);
  if (database.includes("/")) fail("the database name must not contain '/'");
  const at = authority.lastIndexOf("@");
  const userinfo = at < 0 ? "" : authority.slice(0, at);
  const hosts = at < 0 ? authority : authority.slice(at + 1);
  const colon = userinfo.indexOf(":");
  const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), "user name", fail);
  // Checked here so that a bad escape is a usage error; the driver decodes it again itself.
  if (colon >= 0) decode(userinfo.slice(colon + 1), "password", fail);
  const parsedHosts: { host: string; port?: number }[] = [];
  for (const host of hosts === "" ? [] : hosts.split(",")) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::([0-9]*))?$/.exec(host);
    if (!m) fail(`bad host "${host}"`);
    const port = m![2];
    if (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || +port < 1 || +port > 65535)) {
      fail(`port must be an integer from 1 to 65535, got "${port}"`);
    }
    const name = m![1]!.startsWith("[") ? m![1]!.slice(1, -1) : m![1]!;
    parsedHosts.push(port === undefined ? { host: name } : { host: name, port: +port });
  }
  let schema = DEFAULT_SCHEMA;
  const passed: string[] = [];
  for (const pair of query === "" ? [] : query.split("&")) {
    const eq = pair.indexOf("=");
    const name = decode(eq < 0 ? pair : pair.slice(0, eq), "parameter name", fail);
    const value = decode(eq < 0 ? "" : pair.slice(eq + 1), `parameter ${name}`, fail);
    if (name === "schema") {
      if (!SCHEMA_PATTERN.test(value)) {
        fail(
          `schema must match ${SCHEMA_PATTERN.source} (lower-case letters, digits, _), ` +
            `got ${JSON.stringify(value.slice(0, 50))}`,
        );
      }
      schema = value;
      continue;
    }
    if (!DRIVER_PARAMETERS.includes(name)) {
      fail(
        `unknown parameter ${JSON.stringify(name.slice(0, 40))}; known: schema, ` +
          DRIVER_PARAMETERS.join(", "),
      );
    }
    if (name === "sslmode" && !SSL_MODES.includes(value)) {
      fail(`sslmode must be one of ${SSL_MODES.join(", ")}, got ${JSON.stringify(value)}`);
    }
    if (name === "target_session_attrs" && !SESSION_ATTRS.includes(value)) {
      fail(
        `target_session_attrs must be one of ${SESSION_ATTRS.join(", ")}, ` +
          `got ${JSON.stringify(value)}`,
      );
    }
    passed.push(pair);
  }
  const base = text.slice(0, text.length - (queryAt < 0 ? 0 : query.length + 1));
  const connection = passed.length > 0 ? `${base}?${passed.join("&")}` : base;
  const shownUser = user === "" ? "" : `${encodeURIComponent(user)}@`;
  const description = `postgres://${shownUser}${hosts}/${encodeURIComponent(database)}` +
    `?schema=${schema}`;
  return { kind: "postgres", connection, schema, description, hosts: parsedHosts };
}

function decode(part: string, what: string, fail: (why: string) => never): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return fail(`the ${what} has a bad %-escape`);
  }
}

/**
 * `text` with the password of a `scheme://user:password@host` URL replaced by `***`, for
 * messages about a URL that may not even parse: everything from the first `:` after the
 * scheme to the last `@` counts as the password, so one holding an unescaped `/`, `?` or `@`
 * is hidden too (a few characters too many may be hidden; never one too few).
 */
export function redactUrl(text: string): string {
  const start = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.exec(text)?.[0].length;
  if (start === undefined) return text;
  const at = text.lastIndexOf("@");
  const colon = text.indexOf(":", start);
  if (at < start || colon < 0 || colon > at) return text;
  return `${text.slice(0, colon)}:***${text.slice(at)}`;
}
