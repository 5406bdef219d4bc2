// Server log lines: human-readable by default, one JSON object per line with --json-logs.
// Callers pass fields, never secrets: no passwords, keys or message texts go through here.
// Field values may come from clients (user names, addresses, reasons), so no character that
// a terminal acts on or that starts a new line reaches the output raw: one log line per
// event, and no escape sequence forged into an operator's terminal.

export type LogLevel = "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | undefined>;

/**
 * Whether a UTF-16 unit is one a terminal may act on (C0/C1 controls such as ESC, CSI and
 * NEL, DEL) or that reorders or hides text (bidirectional and zero-width formatting, line
 * and paragraph separators, a lone surrogate).
 */
function isUnsafe(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || (code >= 0x200b && code <= 0x200f) ||
    (code >= 0x2028 && code <= 0x202e) || (code >= 0x2060 && code <= 0x2069) ||
    code === 0xfeff || (code >= 0xd800 && code <= 0xdfff);
}

/** `text` with every unsafe unit as a \uXXXX escape (valid inside JSON strings too). */
export function escapeUnsafe(text: string): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++; // a surrogate pair: an astral character such as an emoji, shown as it is
        continue;
      }
    }
    if (!isUnsafe(code)) continue;
    out += text.slice(start, i) + "\\u" + code.toString(16).padStart(4, "0");
    start = i + 1;
  }
  return start === 0 ? text : out + text.slice(start);
}

/**
 * A value of the text format: bare if it holds no space, quote, `=` or unsafe character,
 * else a JSON string with the unsafe characters JSON leaves raw (DEL, C1, bidi) escaped too.
 */
function showValue(value: string | number | boolean): string {
  if (typeof value !== "string") return String(value);
  if (value !== "" && !/[\s"=]/.test(value) && escapeUnsafe(value) === value) return value;
  return escapeUnsafe(JSON.stringify(value));
}

/** Writes one line per event to a sink (stderr by default). */
export class Logger {
  readonly #json: boolean;
  readonly #write: (line: string) => void;

  constructor(options: { json?: boolean; write?: (line: string) => void } = {}) {
    this.#json = options.json ?? false;
    this.#write = options.write ?? ((line) => console.error(line));
  }

  log(level: LogLevel, event: string, fields: LogFields = {}): void {
    const ts = new Date().toISOString();
    if (this.#json) {
      // JSON escapes C0 controls itself; DEL, C1 and bidi controls it leaves raw.
      this.#write(escapeUnsafe(JSON.stringify({ ts, level, event, ...fields })));
      return;
    }
    const parts = Object.entries(fields)
      .filter((entry): entry is [string, string | number | boolean] => entry[1] !== undefined)
      .map(([k, v]) => `${escapeUnsafe(k)}=${showValue(v)}`);
    this.#write(
      `${ts} ${level.padEnd(5)} ${escapeUnsafe(event)}${parts.length ? " " + parts.join(" ") : ""}`,
    );
  }

  info(event: string, fields?: LogFields): void {
    this.log("info", event, fields);
  }

  warn(event: string, fields?: LogFields): void {
    this.log("warn", event, fields);
  }

  error(event: string, fields?: LogFields): void {
    this.log("error", event, fields);
  }
}
