// The REPL's command language: parsing a typed line into a Command (pure, never throws), the
// usage table behind /help and the one-line hints, and tab completion.
import { isRsaKeyBits, RSA_KEY_BITS, type RsaKeyBits } from "../crypto/mod.ts";
import { FINGERPRINT_PATTERN, isUsername } from "../protocol/messages.ts";
import { notAFingerprint } from "./args.ts";
import {
  MAX_PASSWORD_BYTES,
  MAX_TEXT_BYTES,
  MIN_PASSWORD_BYTES,
  USERNAME_PATTERN,
} from "../protocol/limits.ts";
import { plural } from "./display.ts";
import { parseServerList, type ServerSpec } from "./server_list.ts";

export type Command =
  | { readonly type: "connect"; readonly servers?: readonly ServerSpec[] }
  | { readonly type: "disconnect" }
  | { readonly type: "signup"; readonly user?: string }
  | { readonly type: "login"; readonly user?: string }
  | { readonly type: "logout" }
  | { readonly type: "passwd" }
  | { readonly type: "msg"; readonly to: string; readonly text: string }
  | { readonly type: "users" }
  | { readonly type: "keygen"; readonly bits?: RsaKeyBits }
  | { readonly type: "whois"; readonly user: string }
  | { readonly type: "trust"; readonly user: string; readonly fingerprint?: string }
  | { readonly type: "key" }
  | { readonly type: "accept-key"; readonly fingerprint: string }
  | { readonly type: "trace"; readonly on: boolean }
  | { readonly type: "status" }
  | { readonly type: "help"; readonly topic?: string }
  | { readonly type: "quit" }
  | { readonly type: "empty" };

/** A command that has a name (every one but the blank line). */
type NamedCommand = Exclude<Command, { readonly type: "empty" }>;
export type CommandName = NamedCommand["type"];

/** A parsed line, or a one-line hint saying what was wrong and how the command is used. */
export type ParsedLine =
  | { readonly ok: true; readonly command: Command }
  | { readonly ok: false; readonly error: string };

/** Every command with its usage and a one-line summary, in /help order. */
export const COMMANDS: readonly {
  readonly name: CommandName;
  readonly usage: string;
  readonly summary: string;
}[] = [
  {
    name: "connect",
    usage: "/connect [host[:port][,…]]",
    summary: "connect (or switch) to a server, or to the nodes of one service in turn",
  },
  { name: "disconnect", usage: "/disconnect", summary: "close the connection" },
  { name: "signup", usage: "/signup USER", summary: "create an account (asks for a password)" },
  { name: "login", usage: "/login USER", summary: "log in (asks for the password)" },
  { name: "logout", usage: "/logout", summary: "log out, staying connected" },
  { name: "passwd", usage: "/passwd", summary: "change your password" },
  { name: "msg", usage: "/msg USER TEXT", summary: "send a message (or: @USER TEXT)" },
  { name: "users", usage: "/users", summary: "list users and who is online" },
  {
    name: "whois",
    usage: "/whois USER",
    summary: "a user's key fingerprint, and whether you verified it",
  },
  {
    name: "trust",
    usage: "/trust USER [SHA256:…]",
    summary: "accept USER's key (the fingerprint you compared with them: verified)",
  },
  {
    name: "keygen",
    usage: "/keygen [2048|3072|4096]",
    summary: "make yourself a new key and publish it (older ones are kept)",
  },
  { name: "key", usage: "/key", summary: "show the server's key and whether it matches the pin" },
  {
    name: "accept-key",
    usage: "/accept-key SHA256:…",
    summary: "accept this key (checked with the server's operator) in place of its pin; connect",
  },
  { name: "trace", usage: "/trace on|off", summary: "show the handshake and every record" },
  { name: "status", usage: "/status", summary: "connection, user and session state" },
  { name: "help", usage: "/help [command]", summary: "this list, or one command's usage" },
  { name: "quit", usage: "/quit", summary: "leave (Ctrl-D too)" },
];

const NAMES: readonly string[] = COMMANDS.map((c) => c.name);

function usageOf(name: CommandName): string {
  return COMMANDS.find((c) => c.name === name)!.usage;
}

/**
 * How many lines after `line` its command reads as passwords: a new one is asked twice at a
 * terminal. When the command fails before asking, that many lines must still be skipped, or a
 * password would run as the next command (and could be sent as a message).
 */
export function secretLines(line: string, interactive: boolean): number {
  switch (passwordCommand(line)?.name) {
    case "login":
      return 1;
    case "signup":
      return interactive ? 2 : 1;
    case "passwd":
      return interactive ? 3 : 2;
    case undefined:
      return 0;
  }
}

/** The commands that read passwords, with the number of arguments each takes. */
const PASSWORD_COMMANDS = { login: 1, signup: 1, passwd: 0 } as const;

/**
 * The password-reading command `line` runs, or means: a typo of one (`/lgoin`) is counted as
 * it, for the password typed ahead after it is one all the same. With its argument count.
 */
function passwordCommand(
  line: string,
): { readonly name: keyof typeof PASSWORD_COMMANDS; readonly args: number } | undefined {
  const match = /^\s*\/(\S+)(.*)$/s.exec(line);
  if (match === null) return undefined;
  const word = match[1]!.toLowerCase();
  const name = NAMES.includes(word) ? word : closest(word, NAMES);
  if (name !== "login" && name !== "signup" && name !== "passwd") return undefined;
  const rest = match[2]!.trim();
  return { name, args: rest === "" ? 0 : rest.split(/\s+/).length };
}

/**
 * Whether `line` may hold a password typed on it (`/login alice hunter2`, `/passwd old new`):
 * more arguments than its command takes. Such a line is refused, and never kept in the history.
 */
export function mayHoldPassword(line: string): boolean {
  const command = passwordCommand(line);
  return command !== undefined && command.args > PASSWORD_COMMANDS[command.name];
}

/**
 * Why a paste at a terminal that would make the input line `line` is refused, or undefined:
 * pasted lines are never several commands (nor a command and its password, shown on the
 * screen), only one message's text.
 */
export function pasteProblem(line: string): string | undefined {
  if (!line.includes("\n") || /^\s*(?:@\S+[ \t]|\/msg[ \t]+\S+[ \t])/i.test(line)) return undefined;
  return "several lines can only be one message's text: type @USER and a space, then paste";
}

/** Parses one input line. Leading and trailing blanks are ignored; a blank line is `empty`. */
export function parseLine(line: string): ParsedLine {
  const input = line.trim();
  if (input === "") return ok({ type: "empty" });
  if (input.startsWith("@")) return parseMessage(input.slice(1), "@USER TEXT");
  if (input.includes("\n") && !/^\/msg\s/i.test(input)) {
    // Pasted lines at a terminal arrive as one: never run them as several commands.
    return fail(
      "a line break can only be inside a message's text (@USER TEXT); the pasted lines were " +
        "not run",
    );
  }
  if (!input.startsWith("/")) {
    return fail("not a command: send with @USER TEXT or /msg USER TEXT; /help lists commands");
  }
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(input)!;
  const name = (match[1] ?? "").toLowerCase();
  const rest = match[2] ?? "";
  const args = rest === "" ? [] : rest.split(/\s+/);
  const arity = (max: number, command: NamedCommand): ParsedLine =>
    args.length <= max ? ok(command) : fail(`usage: ${usageOf(command.type)}`);
  switch (name) {
    case "connect":
      return parseConnect(args);
    case "disconnect":
      return arity(0, { type: "disconnect" });
    case "signup":
    case "login": {
      if (args.length > 1) return fail(`usage: ${usageOf(name)}`);
      const user = args[0];
      if (user !== undefined && !isUsername(user)) return fail(badUsername(user));
      return ok(user === undefined ? { type: name } : { type: name, user });
    }
    case "logout":
      return arity(0, { type: "logout" });
    case "passwd":
      return arity(0, { type: "passwd" });
    case "msg":
      return parseMessage(rest, usageOf("msg"));
    case "users":
      return arity(0, { type: "users" });
    case "keygen": {
      if (args.length === 0) return ok({ type: "keygen" });
      const bits = Number(args[0]);
      if (args.length > 1 || !/^[0-9]+$/.test(args[0]!) || !isRsaKeyBits(bits)) {
        return fail(`usage: ${usageOf(name)} (RSA key sizes: ${RSA_KEY_BITS.join(", ")})`);
      }
      return ok({ type: "keygen", bits });
    }
    case "whois": {
      const user = args[0];
      if (args.length !== 1 || user === undefined) return fail(`usage: ${usageOf(name)}`);
      if (!isUsername(user)) return fail(badUsername(user));
      return ok({ type: "whois", user });
    }
    case "trust": {
      const [user, fingerprint] = args;
      if (args.length < 1 || args.length > 2 || user === undefined) {
        return fail(`usage: ${usageOf(name)}`);
      }
      if (!isUsername(user)) return fail(badUsername(user));
      if (fingerprint === undefined) return ok({ type: "trust", user });
      if (!FINGERPRINT_PATTERN.test(fingerprint)) return fail(notAFingerprint(fingerprint));
      return ok({ type: "trust", user, fingerprint });
    }
    case "key":
      return arity(0, { type: "key" });
    case "accept-key": {
      const fingerprint = args[0];
      if (args.length !== 1 || fingerprint === undefined) return fail(`usage: ${usageOf(name)}`);
      if (!FINGERPRINT_PATTERN.test(fingerprint)) return fail(notAFingerprint(fingerprint));
      return ok({ type: "accept-key", fingerprint });
    }
    case "trace":
      if (args.length === 1 && (args[0] === "on" || args[0] === "off")) {
        return ok({ type: "trace", on: args[0] === "on" });
      }
      return fail(`usage: ${usageOf("trace")}`);
    case "status":
      return arity(0, { type: "status" });
    case "help": {
      const topic = args[0]?.replace(/^\//, "").toLowerCase();
      if (args.length > 1 || (topic !== undefined && !NAMES.includes(topic))) {
        return fail(`usage: ${usageOf("help")} — commands: ${NAMES.join(" ")}`);
      }
      return ok(topic === undefined ? { type: "help" } : { type: "help", topic });
    }
    case "quit":
    case "exit":
      return arity(0, { type: "quit" });
    default: {
      const guess = closest(name, NAMES);
      return fail(
        `unknown command /${name.slice(0, 32)}${guess ? ` (did you mean /${guess}?)` : ""}` +
          "; /help lists commands",
      );
    }
  }
}

function parseMessage(rest: string, usage: string): ParsedLine {
  const match = /^(\S+)\s+([\s\S]+)$/.exec(rest);
  if (match === null) return fail(`usage: ${usage}`);
  const to = match[1]!;
  const text = match[2]!;
  if (!isUsername(to)) return fail(badUsername(to));
  const size = new TextEncoder().encode(text).length;
  if (size > MAX_TEXT_BYTES) {
    return fail(`message is ${size} bytes, above the limit of ${MAX_TEXT_BYTES}`);
  }
  return ok({ type: "msg", to, text });
}

function parseConnect(args: string[]): ParsedLine {
  if (args.length === 0) return ok({ type: "connect" });
  if (args.length > 1) return fail(`usage: ${usageOf("connect")} (no blank in the list)`);
  const list = parseServerList(args[0]!);
  if (!list.ok) return fail(`/connect ${list.error}`);
  return ok({ type: "connect", servers: list.servers });
}

/** Why the server would refuse `password` as a new one (§4.3), or undefined: said before sending. */
export function newPasswordProblem(password: string): string | undefined {
  const size = new TextEncoder().encode(password).length;
  if (size < MIN_PASSWORD_BYTES) {
    return `password is ${plural(size, "byte")}, below the minimum of ${MIN_PASSWORD_BYTES} bytes`;
  }
  if (size > MAX_PASSWORD_BYTES) {
    return `password is ${size} bytes, above the maximum of ${MAX_PASSWORD_BYTES} bytes`;
  }
  return undefined;
}

function badUsername(user: string): string {
  const shown = JSON.stringify(user.slice(0, 40));
  return `${shown} is not a username: usernames match ${USERNAME_PATTERN.source}`;
}

function ok(command: Command): ParsedLine {
  return { ok: true, command };
}

function fail(error: string): ParsedLine {
  return { ok: false, error };
}

/** The one candidate `word` begins, else the nearest within edit distance 2. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  const extending = candidates.filter((c) => word !== "" && c.startsWith(word));
  if (extending.length === 1) return extending[0];
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 32) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** What completion can draw on: usernames seen this session, and pinned servers. */
export interface CompletionSources {
  readonly users: Iterable<string>;
  readonly endpoints: Iterable<string>;
}

/**
 * Tab completion in node:readline's shape: the candidates that complete the last word of `line`,
 * and that word. Commands after a leading `/`, usernames after `/msg`, `/login`, `/signup`,
 * `/whois`, `/trust` and `@`, key sizes after `/keygen`, `on|off` after `/trace`, pinned servers
 * after `/connect`, commands after `/help`.
 */
export function complete(line: string, sources: CompletionSources): [string[], string] {
  const pick = (word: string, options: Iterable<string>, prefix = "", suffix = " ") => {
    const hits = [...new Set(options)]
      .filter((o) => o.startsWith(word.slice(prefix.length)))
      .sort()
      .map((o) => prefix + o + suffix);
    return [hits, word] as [string[], string];
  };
  if (/^@\S*$/.test(line)) return pick(line, sources.users, "@");
  const command = /^\/(\S*)$/.exec(line);
  if (command) return pick(line, NAMES, "/");
  const argument = /^\/(\S+)\s+(\S*)$/.exec(line);
  if (argument) {
    const word = argument[2]!;
    switch (argument[1]!.toLowerCase()) {
      case "msg":
      case "login":
      case "signup":
      case "whois":
      case "trust":
        return pick(word, sources.users);
      case "keygen":
        return pick(word, RSA_KEY_BITS.map(String), "", "");
      case "trace":
        return pick(word, ["on", "off"], "", "");
      case "connect":
        return pick(word, sources.endpoints, "", "");
      case "help":
        return pick(word, NAMES, "", "");
    }
  }
  return [[], line];
}
