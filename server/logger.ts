// Server log lines: human-readable by default, one JSON object per line with --json-logs.
// Callers pass fields, never secrets: no passwords, keys or message texts go through here.

export type LogLevel = "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | undefined>;

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
      this.#write(JSON.stringify({ ts, level, event, ...fields }));
      return;
    }
    const parts = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === "string" && /[\s"=]/.test(v) ? JSON.stringify(v) : v}`);
    this.#write(`${ts} ${level.padEnd(5)} ${event}${parts.length ? " " + parts.join(" ") : ""}`);
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
