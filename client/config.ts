// Where the client keeps its files (known_hosts, history), and how it writes them: private to
// the user, since they say which servers and people the user talks to.
import { dirname, isAbsolute, join } from "node:path";

/** Mode of the config directory: the user's alone. */
export const CONFIG_DIR_MODE = 0o700;
/** Mode of every file in it. */
export const CONFIG_FILE_MODE = 0o600;
/** Entries kept in the history file. */
export const MAX_HISTORY = 1000;

/**
 * The config directory: `$HYBRID_HOME`, else `$XDG_CONFIG_HOME/hybrid` (an absolute one only, as
 * the XDG spec asks), else `%APPDATA%\hybrid` on Windows, else `~/.config/hybrid`.
 */
export function configDir(
  env: (name: string) => string | undefined,
  os: string = Deno.build.os,
): string {
  const hybridHome = env("HYBRID_HOME");
  if (hybridHome) return hybridHome;
  const xdg = env("XDG_CONFIG_HOME");
  if (xdg && isAbsolute(xdg)) return join(xdg, "hybrid");
  const appData = env("APPDATA");
  if (os === "windows" && appData) return join(appData, "hybrid");
  const home = env("HOME") ?? env("USERPROFILE");
  if (home) return join(home, ".config", "hybrid");
  throw new Error("no config directory: set HYBRID_HOME (or HOME)");
}

/**
 * The folder of one account on one server (§8): its own keys (encrypted), its contacts' pinned
 * keys, its memory of opened envelopes and the messages it holds. `host` is made a safe name.
 */
export function accountDir(configDir: string, host: string, port: number, user: string): string {
  const server = `${host.toLowerCase().replace(/[^a-z0-9.-]/g, "_")}_${port}`;
  return join(configDir, "accounts", server, user);
}

/**
 * The account's folder on a list of servers (the nodes of one service): the first server's that
 * exists, else the first server's. The keys are the account's, not a node's: which node happens
 * to answer must not decide which keys a login opens (or that a new one is made).
 */
export async function serviceAccountDir(
  configDir: string,
  servers: readonly { readonly host: string; readonly port: number }[],
  user: string,
): Promise<string> {
  for (const { host, port } of servers) {
    const dir = accountDir(configDir, host, port, user);
    try {
      if ((await Deno.stat(dir)).isDirectory) return dir;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  const first = servers[0];
  if (first === undefined) throw new RangeError("an account needs a server");
  return accountDir(configDir, first.host, first.port, user);
}

/** Creates `dir` and its parents with mode 0700 if missing (an existing one is left as it is). */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: CONFIG_DIR_MODE });
}

/**
 * Replaces `path` with `text`, atomically (a temporary file renamed over it), mode 0600 whatever
 * the umask or the old file's mode was.
 */
export async function writePrivateFile(path: string, text: string): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeTextFile(temporary, text, { createNew: true, mode: CONFIG_FILE_MODE });
    if (Deno.build.os !== "windows") await Deno.chmod(temporary, CONFIG_FILE_MODE);
    await Deno.rename(temporary, path);
  } catch (err) {
    await Deno.remove(temporary).catch(() => {});
    throw err;
  }
}

/** The text of `path`, or "" when there is no such file. */
export async function readTextIfPresent(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "";
    throw err;
  }
}

/** History entries, newest first (node:readline's order); none when the file is absent. */
export async function loadHistory(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return text.split("\n").filter((line) => line !== "").slice(-MAX_HISTORY).reverse();
}

/** Writes history entries (newest first, as readline keeps them) oldest first, one a line. */
export async function saveHistory(path: string, history: readonly string[]): Promise<void> {
  const lines = history.slice(0, MAX_HISTORY).filter((line) => !line.includes("\n")).reverse();
  await ensurePrivateDir(dirname(path));
  await writePrivateFile(path, lines.length === 0 ? "" : lines.join("\n") + "\n");
}
