// How events look: lines for people (colored or not, everything received escaped) or one JSON
// object per line for --json. Pure: the terminal layer decides where the lines go.
import type { ByeReason } from "../protocol/messages.ts";
import { escapeControl, escapeLines, safeJson } from "./escape.ts";
import type { ClientEvent, ErrorContext } from "./client_events.ts";
import { endpointName } from "./known_hosts.ts";
import type { Paint, Style } from "./style.ts";
import { formatHandshakeTrace, formatRecordTrace, formatSealedTrace } from "./trace.ts";

/** What rendering needs besides the event. */
export interface RenderContext {
  readonly style: Style;
  /** The logged-in user, shown as "you". */
  readonly me: string | undefined;
  /** For choosing between a time and a date (injectable for tests). */
  readonly now: number;
}

/** The --json line of an event: `{"event": type, ...fields}`, safe for a terminal. */
export function jsonLine(event: ClientEvent): string {
  const { type, ...fields } = event;
  return safeJson({ event: type, ...fields });
}

const BYE_TEXT: Readonly<Record<ByeReason, string>> = {
  shutdown: "the server is shutting down",
  logged_in_elsewhere: "you logged in from another client",
  idle: "the connection was idle too long",
  logged_out_by_server: "the server logged you out",
};

const CONTEXT_TEXT: Readonly<Record<ErrorContext, string>> = {
  SNU: "sign-up failed",
  LGN: "login failed",
  LGO: "logout failed",
  CPW: "password change failed",
  GSR: "key request failed",
  GUL: "user list failed",
  MSG: "not sent",
  KEY: "key not published",
  GPK: "key request failed",
  PNG: "ping failed",
  command: "",
  connect: "cannot connect",
  connection: "connection",
  input: "input",
};

/** `1 message`, `2 messages`: a count and its noun. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Local time of a server timestamp: HH:MM:SS today, with the date otherwise. */
export function formatTime(ts: number, now: number): string {
  const date = new Date(ts);
  const pad = (n: number) => String(n).padStart(2, "0");
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (new Date(now).toDateString() === date.toDateString()) return time;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** The lines that show `event` to a person; every string that came from elsewhere is escaped. */
export function renderEvent(event: ClientEvent, context: RenderContext): string[] {
  const { style } = context;
  const safe = (text: string) => escapeControl(text, style.escape);
  const user = (name: string) => style.user(safe(name));
  const note = (text: string) => `${style.dim("·")} ${text}`;
  // An IPv6 host in brackets, as in known_hosts: "::1:5002" would not say where the port starts.
  const where = (e: { host: string; port: number }) => safe(endpointName(e.host, e.port));
  /** A sealed message not shown as text: its time, a mark in words, its sender, and why. */
  const unshownMessage = (
    e: { readonly ts: number; readonly from: string },
    paint: Paint,
    mark: string,
    why: string,
  ) => [
    `${style.dim(formatTime(e.ts, context.now))} ${paint(style.bold(mark))} ${user(e.from)}: ${
      paint(why)
    }`,
  ];
  switch (event.type) {
    case "connecting": {
      if (event.servers === 1) {
        return [style.dim(`· connecting to ${where(event)} (${safe(event.group)})…`)];
      }
      const last = event.last_error === undefined ? "" : ` — last try: ${safe(event.last_error)}`;
      return [
        style.dim(
          `· trying ${where(event)} (${event.server}/${event.servers}, ${safe(event.group)})…` +
            last,
        ),
      ];
    }
    case "connected": {
      const head = `connected to ${style.bold(where(event))} (${safe(event.group)})`;
      switch (event.pin) {
        case "match":
          return [note(`${head} · server key ${safe(event.fingerprint)} matches the pin`)];
        case "first_contact":
          return [
            note(head),
            note(`first contact: the server's key is ${style.bold(safe(event.fingerprint))}`),
            note(
              "check it against the line `server key SHA256:…` the server printed at start-up " +
                "(ask its operator); if they differ, /disconnect and delete the pin",
            ),
            note(`pinned in ${safe(event.known_hosts)}; later connections must show this key`),
          ];
        case "sibling":
          return [
            note(`${head} · server key ${safe(event.fingerprint)} matches the pin`),
            note(
              `of ${safe(event.sibling ?? "")}, a server of the same list (they share one key): ` +
                `now pinned for ${where(event)} too`,
            ),
          ];
        case "replaced":
          return [
            note(head),
            style.yellow(
              `· new server key ${safe(event.fingerprint)} pinned in ` +
                `${safe(event.known_hosts)}, replacing ${event.previous.map(safe).join(", ")}`,
            ),
          ];
        default:
          return unreachable(event.pin);
      }
    }
    case "key_mismatch": {
      const bar = style.red(style.bold("@".repeat(66)));
      const loud = (text: string) => style.red(style.bold(text));
      const session = event.source === "session";
      const pinned = style.bold(event.pinned.map(safe).join(", "));
      // Pinned for other servers of the list only: this one was never pinned itself.
      const own = event.pinned_for.some((n) => n === endpointName(event.host, event.port));
      const forOthers = event.pinned_for.length === 1 && own
        ? ""
        : `for ${event.pinned_for.map(safe).join(", ")}, `;
      return [
        bar,
        loud(
          session
            ? `@  WARNING: THE KEY OF SERVER ${
              where(event)
            } HAS CHANGED SINCE THIS SESSION CONNECTED!`
            : own
            ? `@  WARNING: THE KEY OF SERVER ${where(event)} HAS CHANGED!`
            : `@  WARNING: SERVER ${where(event)} DOES NOT SHOW THE KEY OF ITS LIST!`,
        ),
        bar,
        session
          ? `   this session: ${pinned}`
          : `   pinned:    ${pinned}  (${forOthers}${safe(event.known_hosts ?? "")})`,
        ...(session || own ? [] : [
          "   The servers of one list are the nodes of one service and share one key;",
          `   ${where(event)} has no pin of its own, so it must show theirs.`,
        ]),
        `   presented:${session ? "    " : " "}${style.bold(safe(event.presented))}`,
        "   Someone may be intercepting this connection (a man-in-the-middle attack),",
        "   or the server's key was replaced.",
        ...(session
          ? [loud("   Not reconnecting, and your password was not sent.")]
          : event.accepted
          ? [style.yellow("   Accepted as you asked: the new key replaces the pin.")]
          : [
            loud("   Connection refused."),
            "   If the server's operator confirms that the presented key is the server's new one,",
            `   accept exactly that key: /accept-key ${safe(event.presented)}`,
            "   (or start the client with --accept-key and that fingerprint).",
          ]),
      ];
    }
    case "disconnected":
      return [
        style.yellow(`· disconnected from ${where(event)}: ${safe(event.reason)}`),
      ];
    case "reconnecting": {
      const last = event.last_error === undefined ? "" : ` — last try: ${safe(event.last_error)}`;
      const target = event.servers === 1
        ? where(event)
        : `the ${event.servers} servers, from ${where(event)},`;
      return [
        style.dim(
          `· reconnecting to ${target} in ${seconds(event.delay_ms)} ` +
            `(attempt ${event.attempt})${last}`,
        ),
      ];
    }
    case "ack":
      switch (event.request) {
        case "SNU":
          return [
            `${style.green("✓")} signed up as ${user(event.user)}; now /login`,
            ...(event.fingerprint === undefined ? [] : [
              note(`your key ${style.bold(safe(event.fingerprint))} is published with the account`),
            ]),
          ];
        case "KEY":
          return [
            `${style.green("✓")} your new key ${style.bold(safe(event.fingerprint))} ` +
            `(RSA-${event.bits}) is published: messages to you are sealed to it from now on`,
            note(
              `its private half is in ${safe(event.path)}, encrypted with your password; ` +
                "older keys stay there, so older messages still open",
            ),
          ];
        case "LGN": {
          const waiting = event.queued === 0 ? "" : ` · ${plural(event.queued, "message")} waiting`;
          return [
            event.relogin
              ? `${style.green("✓")} logged in again as ${user(event.user)}${waiting}`
              : `${style.green("✓")} logged in as ${user(event.user)}${waiting}`,
          ];
        }
        case "LGO":
          return [`${style.green("✓")} logged out`];
        case "CPW":
          return [`${style.green("✓")} password changed`];
        case "GSR": {
          const same = event.fingerprint === event.handshake_fingerprint
            ? "the key this connection was signed with"
            : style.red("NOT the key this connection was signed with");
          return [
            `server key ${style.bold(safe(event.fingerprint))} (${same})`,
            `key exchange ${safe(event.handshake_group)}`,
            event.matches_pin ? `${style.green("✓")} matches the pin in known_hosts` : style.red(
              `✗ does not match the pin${event.pinned.length > 0 ? "s" : ""} ${
                event.pinned.map(safe).join(", ") || "(none)"
              }`,
            ),
          ];
        }
        case "GUL": {
          const online = event.users.filter((u) => u.online).length;
          const list = event.users.map((u) => {
            const name = u.online
              ? `${style.green("●")} ${user(u.user)}`
              : `${style.dim("○")} ${safe(u.user)}`;
            return u.fingerprint === undefined ? `${name} ${style.dim("(no key)")}` : name;
          });
          const more = event.more ? `, and more: /users shows the first ${event.users.length}` : "";
          return [
            `users (${online} online of ${event.users.length}${more}): ${
              list.join("  ") || "none"
            }`,
          ];
        }
        case "MSG":
          return messageLines(
            formatTime(event.ts, context.now),
            `${sealedMark(event.sealed, style)} you → ${user(event.to)}`,
            event.text,
            context,
            true,
          );
        default:
          return unreachable(event);
      }
    case "message": {
      const from = event.to === context.me || context.me === undefined
        ? user(event.from)
        : `${user(event.from)} → ${user(event.to)}`;
      return messageLines(
        formatTime(event.ts, context.now),
        `${sealedMark(event.sealed, style)} ${from}`,
        event.text,
        context,
        false,
      );
    }
    case "message_failed":
      return unshownMessage(
        event,
        style.red,
        "[NOT OPENED]",
        `a sealed message failed the ${event.check} check (${safe(event.reason)}); it is not shown`,
      );
    case "message_held":
      return unshownMessage(
        event,
        style.yellow,
        "[HELD]",
        `a sealed message signed with the key ${safe(event.fingerprint)}, which you have not ` +
          `accepted; kept unread until /trust ${safe(event.from)}`,
      );
    case "contact_key":
      return contactKeyLines(event, style, safe);
    case "whois":
      return whoisLines(event, style, safe);
    case "bye":
      return [style.yellow(`· the server says goodbye: ${BYE_TEXT[event.reason]}`)];
    case "error": {
      const what = CONTEXT_TEXT[event.context];
      if (event.code === "cancelled") {
        return [style.yellow(`✗ ${what.replace(/ failed$/, "") || "command"} cancelled`)];
      }
      const retry = event.retry_after_ms === undefined
        ? ""
        : `; retry in ${seconds(event.retry_after_ms)}`;
      // A usage hint is its own explanation; other errors name their stable code.
      const code = event.code === "usage" ? "" : style.dim(` (${safe(event.code)}${retry})`);
      return [style.red(`✗ ${what ? `${what}: ` : ""}${safe(event.message)}`) + code];
    }
    case "status": {
      const row = (label: string, value: string) => `  ${style.dim(label.padEnd(12))}${value}`;
      return [
        row("server", `${where(event)} · ${event.state} · ${safe(event.group)}`),
        ...(event.servers.length > 1 ? [row("servers", event.servers.map(safe).join(", "))] : []),
        row("key", event.fingerprint === null ? "—" : safe(event.fingerprint)),
        row("user", event.user === null ? "not logged in" : user(event.user)),
        row(
          "records",
          event.records === null
            ? "—"
            : `${event.records.sent} sent · ${event.records.received} received`,
        ),
        row("messages", `${event.messages_received} received`),
        row(
          "your key",
          event.user_key === null
            ? "— (messages go out unsealed)"
            : `${safe(event.user_key)} (messages are sealed when the recipient has a key)`,
        ),
        row("unsealed", event.require_sealed ? "refused (--require-sealed)" : "allowed"),
        row("trace", event.trace ? "on" : "off"),
        row("known_hosts", safe(event.known_hosts)),
      ];
    }
    case "trace":
      // The trace formatters escape the one peer-chosen field (a record's code) themselves.
      if ("handshake" in event) {
        return formatHandshakeTrace(event.handshake, style, where(event));
      }
      if ("sealed" in event) return formatSealedTrace(event.sealed, style);
      return [formatRecordTrace(event.record, style)];
    case "help": {
      const width = Math.max(...event.commands.map((c) => c.usage.length)) + 2;
      return [
        style.bold("commands:"),
        ...event.commands.map((c) => `  ${style.cyan(c.usage.padEnd(width))}${c.summary}`),
        style.dim("  Tab completes commands and usernames; Ctrl-D quits."),
      ];
    }
    case "info":
      return [note(safe(event.message))];
    case "warning":
      return [style.yellow(`! ${safe(event.message)}`)];
    default:
      return unreachable(event);
  }
}

/**
 * Whether a message was sealed, in words, so that it reads without colors and in any terminal:
 * only a sealed one is known to come from its sender unread by the server.
 */
function sealedMark(sealed: boolean, style: Style): string {
  return sealed ? style.green("[sealed]") : style.yellow("[not sealed]");
}

type Escape = (text: string) => string;

/** A contact's key seen first (pinned), changed (loudly, as a changed server key), accepted. */
function contactKeyLines(
  event: Extract<ClientEvent, { type: "contact_key" }>,
  style: Style,
  safe: Escape,
): string[] {
  const name = safe(event.user);
  const fingerprint = style.bold(safe(event.fingerprint));
  const note = (text: string) => `${style.dim("·")} ${text}`;
  switch (event.change) {
    case "first_use":
      return [
        note(`${name}'s key is ${fingerprint} (first contact): pinned in ${safe(event.contacts)}`),
        note(
          `compare it with ${name} by another channel; if it matches: /trust ${name} ` +
            `${safe(event.fingerprint)} marks it verified`,
        ),
      ];
    case "changed": {
      const bar = style.red(style.bold("@".repeat(66)));
      const loud = (text: string) => style.red(style.bold(text));
      return [
        bar,
        loud(`@  WARNING: THE KEY OF ${name} HAS CHANGED!`),
        bar,
        `   pinned:    ${style.bold(event.pinned.map(safe).join(", "))}`,
        `   presented: ${fingerprint}`,
        `   ${name} may have made a new key (/keygen, another device), or the server is`,
        `   handing you a key that is not ${name}'s, to read what you send or to forge messages.`,
        loud(
          `   Sealed messages to ${name} are stopped; ${name}'s signed with it are held unread.`,
        ),
        `   Compare the presented fingerprint with ${name} by another channel, then accept it:`,
        `   /trust ${name} ${safe(event.fingerprint)}`,
      ];
    }
    case "accepted":
      return [
        `${style.green("✓")} ${name}'s key ${fingerprint} accepted (not verified: you did not ` +
        "give its fingerprint)",
      ];
    case "verified":
      return [`${style.green("✓")} ${name}'s key ${fingerprint} accepted and marked verified`];
    default:
      return unreachable(event.change);
  }
}

/** /whois: a user's key and what this client makes of it. */
function whoisLines(
  event: Extract<ClientEvent, { type: "whois" }>,
  style: Style,
  safe: Escape,
): string[] {
  const name = style.user(safe(event.user));
  if (event.fingerprint === null) {
    return [
      `${name}: no key published — messages between you are not sealed` +
      (event.pinned.length > 0
        ? style.red(` (yet ${safe(event.user)} had ${event.pinned.map(safe).join(", ")})`)
        : ""),
    ];
  }
  const key = `${style.bold(safe(event.fingerprint))}${
    event.bits === null ? "" : ` (RSA-${event.bits})`
  }`;
  switch (event.status) {
    case "own":
      return [
        `${name} (you): key ${key}`,
        event.path === null
          ? style.red("  its private half is not on this client: /keygen makes one here")
          : `  private half in ${safe(event.path)}, encrypted with your password`,
      ];
    case "none":
    case "current":
    case "earlier":
      return [
        `${name}: key ${key} · ${
          event.verified
            ? style.green("verified ✓")
            : `pinned, not verified — compare it with ${safe(event.user)}, then /trust ${
              safe(event.user)
            } ${safe(event.fingerprint)}`
        }`,
      ];
    case "changed":
      return [
        `${name}: key ${key} · ${
          style.red(
            `CHANGED from the pinned ${event.pinned.map(safe).join(", ")}: not trusted; ` +
              `sealed sending stopped until /trust ${safe(event.user)}`,
          )
        }`,
      ];
    default:
      return unreachable(event.status);
  }
}

/** A message: time, who, and the text; continuation lines are indented under a bar. */
function messageLines(
  time: string,
  who: string,
  text: string,
  context: RenderContext,
  mine: boolean,
): string[] {
  const { style } = context;
  const [first = "", ...rest] = escapeLines(text, style.escape);
  const head = `${style.dim(time)} ${who}: ${mine ? style.dim(first) : first}`;
  return [
    head,
    ...rest.map((line) => `${style.dim("         │")} ${mine ? style.dim(line) : line}`),
  ];
}

function unreachable(value: never): never {
  throw new TypeError(`unhandled event ${JSON.stringify(value)}`);
}
