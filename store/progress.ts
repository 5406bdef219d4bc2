// When and how to show replay progress: only for replays longer than a
// second, throttled; and sizes and counts worded for people. The store prints nothing
// itself: the caller supplies `write`.

/** Replays shorter than this show no progress at all. */
export const PROGRESS_DELAY_MS = 1000;
/** At most one progress update per this many milliseconds on a terminal… */
export const PROGRESS_INTERVAL_MS = 250;
/** …and per this many when each update is a line of its own (a log file, a pipe). */
export const PROGRESS_LINE_INTERVAL_MS = 1000;

/** Options of `replayProgress`. */
export interface ProgressOptions {
  /** What is being replayed, e.g. the log's path. */
  label: string;
  /** Receives the text to write as it is (e.g. to stderr). */
  write: (text: string) => void;
  /**
   * True: the text redraws one terminal line (`\r`, the line, erase to its end), with a
   * newline after the last. False (default): each update is a line ending in `\n`.
   */
  terminal?: boolean;
  /**
   * What the two numbers count: `bytes` of a log file (default), or `events` of a log in a
   * database, which has no file size to show.
   */
  unit?: "bytes" | "events";
  /** The word before the label: `replaying` (default), or `reading` and `copying into` for tools. */
  verb?: string;
  /** Clock in milliseconds; default `performance.now`. */
  now?: () => number;
  delayMs?: number;
  intervalMs?: number;
}

/**
 * An `onProgress` callback for `openEventLog` that writes an update such as
 * `replaying events.log: 42% (12.5 MiB of 29.8 MiB)` once the replay has run for `delayMs`,
 * then at most every `intervalMs`, and a last one at 100% if it wrote any before.
 */
export function replayProgress(
  options: ProgressOptions,
): (bytesDone: number, bytesTotal: number) => void {
  const now = options.now ?? (() => performance.now());
  const terminal = options.terminal ?? false;
  const delayMs = options.delayMs ?? PROGRESS_DELAY_MS;
  const intervalMs = options.intervalMs ??
    (terminal ? PROGRESS_INTERVAL_MS : PROGRESS_LINE_INTERVAL_MS);
  const started = now();
  let lastWrite: number | undefined;
  let finished = false;
  return (bytesDone, bytesTotal) => {
    if (finished) return;
    const t = now();
    const final = bytesDone >= bytesTotal;
    if (final) {
      finished = true;
      if (lastWrite === undefined) return;
    } else if (t - started < delayMs || (lastWrite !== undefined && t - lastWrite < intervalMs)) {
      return;
    }
    lastWrite = t;
    const percent = bytesTotal > 0 ? Math.floor((bytesDone / bytesTotal) * 100) : 100;
    const amount = options.unit === "events"
      ? `${bytesDone} of ${plural(bytesTotal, "event")}`
      : `${formatBytes(bytesDone)} of ${formatBytes(bytesTotal)}`;
    const line = `${options.verb ?? "replaying"} ${options.label}: ${percent}% (${amount})`;
    options.write(terminal ? `\r${line}\x1b[K${final ? "\n" : ""}` : `${line}\n`);
  };
}

/** `1 byte`, `2 bytes`: a count and its noun, singular only for exactly one. */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

const BINARY_UNITS = ["KiB", "MiB", "GiB", "TiB"] as const;

/**
 * A size for people: exact bytes below 1 KiB (`1 byte`, `900 bytes`), else one decimal of
 * the largest binary unit that keeps the figure at least 1 (`1.5 KiB`, `29.8 MiB`).
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return plural(bytes, "byte");
  let value = bytes / 1024;
  let unit = 0;
  // 1023.96 KiB would print as "1024.0 KiB": round first, then pick the unit.
  while (Number(value.toFixed(1)) >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${BINARY_UNITS[unit]}`;
}
