// Where lines come from and go to. On a terminal: raw mode, our line editor (one scrolling row,
// history, completion, bracketed paste), output printed above the row, and keys typed ahead
// kept unread until a line or a secret is asked for, so that a password typed ahead is never
// shown nor kept in the history. Otherwise: stdin read line by line, output written plainly.
import { BRACKETED_PASTE_OFF, BRACKETED_PASTE_ON, type Key, KeyDecoder } from "./keys.ts";
import { type Completer, LineEditor } from "./line_editor.ts";
import { MAX_TEXT_BYTES } from "../protocol/limits.ts";

/**
 * Longest input line (a message is 16 KiB): a longer piped line is cut there, and at a terminal
 * typing beyond it inserts nothing.
 */
export const MAX_INPUT_LINE_CHARS = 1 << 20;

/** A secret read from the input, or why there is none. */
export type Secret =
  | { readonly type: "secret"; readonly value: string }
  /** The user cancelled the prompt (Ctrl-C). */
  | { readonly type: "cancelled" }
  /** The input ended. */
  | { readonly type: "end" };

/** Lines in: commands, and secrets (passwords), which are never echoed nor kept in history. */
export interface LineInput {
  /** The next line, or null at the end of input. */
  next(): Promise<string | null>;
  /** The next line as a secret, after showing `prompt` (on a terminal). */
  secret(prompt: string): Promise<Secret>;
  /**
   * Drops, unread and unshown, the line a secret prompt that never came would have taken: the
   * next line of piped input, a line typed ahead at a terminal. Whether there was one.
   */
  skipSecret(): Promise<boolean>;
}

/** Lines out. */
export interface Screen {
  /** Prints whole lines (above the prompt, on a terminal). */
  print(lines: readonly string[]): void;
  /** Sets the prompt shown while waiting for a line (terminal only), redrawn unless told not to. */
  setPrompt(prompt: string, redraw?: boolean): void;
  /**
   * A one-line status while a command runs (a spinner), drawn over in place, output printed
   * above it; undefined clears it. Terminals only: elsewhere there is none.
   */
  status?(text: string | undefined): void;
}

const encoder = new TextEncoder();

/** Writes all of `text` to stdout, synchronously, so that output keeps its order with exit(). */
function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** Output without a terminal: one line after the other. */
export class PlainScreen implements Screen {
  print(lines: readonly string[]): void {
    if (lines.length > 0) writeStdout(lines.join("\n") + "\n");
  }

  setPrompt(_prompt: string, _redraw?: boolean): void {}
}

/**
 * Splits a stream of text into lines (LF or CRLF); a last line without a newline counts. Lines
 * longer than MAX_INPUT_LINE_CHARS are cut there, so that memory stays bounded.
 */
export class LineSplitter {
  #partial = "";

  /** The complete lines in `chunk` (with what came before). */
  push(chunk: string): string[] {
    const parts = (this.#partial + chunk).split("\n");
    this.#partial = parts.pop()!.slice(0, MAX_INPUT_LINE_CHARS);
    return parts.map(finish);
  }

  /** What is left at the end of the stream, if anything. */
  end(): string[] {
    const rest = this.#partial;
    this.#partial = "";
    return rest === "" ? [] : [finish(rest)];
  }
}

function finish(line: string): string {
  const cut = line.slice(0, MAX_INPUT_LINE_CHARS);
  return cut.endsWith("\r") ? cut.slice(0, -1) : cut;
}

/** Input from a pipe or file: each line is a command, or the secret a command asked for. */
export class PipedInput implements LineInput {
  readonly #reader: ReadableStreamDefaultReader<string>;
  readonly #splitter = new LineSplitter();
  readonly #lines: string[] = [];
  #ended = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  async next(): Promise<string | null> {
    while (this.#lines.length === 0) {
      if (this.#ended) return null;
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#ended = true;
        this.#lines.push(...this.#splitter.end());
      } else {
        this.#lines.push(...this.#splitter.push(value));
      }
    }
    return this.#lines.shift()!;
  }

  async secret(_prompt: string): Promise<Secret> {
    const line = await this.next();
    return line === null ? { type: "end" } : { type: "secret", value: line };
  }

  async skipSecret(): Promise<boolean> {
    return (await this.next()) !== null;
  }
}

/** What the terminal needs from the process; the real one is stdioTerminal(). */
export interface TerminalIo {
  /** Bytes as typed (raw mode: no line discipline, no echo, Ctrl-C a key like any other). */
  readonly input: ReadableStream<Uint8Array>;
  readonly write: (text: string) => void;
  /** The screen's width in columns. */
  readonly columns: () => number;
  readonly setRaw: (raw: boolean) => void;
  /** Calls `listener` when the screen's size changes; returns what stops that. */
  readonly onResize: (listener: () => void) => () => void;
}

/** Screen width assumed when the terminal does not tell (a pseudo-terminal without a size). */
export const DEFAULT_COLUMNS = 80;
/** Keys typed ahead, unread, that are kept; more are dropped (a paste is one key). */
export const MAX_TYPED_AHEAD_KEYS = 10_000;

/** The process's own terminal: stdin in raw mode, stdout, SIGWINCH. */
function stdioTerminal(): TerminalIo {
  return {
    input: Deno.stdin.readable,
    write: writeStdout,
    columns: () => {
      try {
        return Deno.consoleSize().columns || DEFAULT_COLUMNS;
      } catch {
        return DEFAULT_COLUMNS;
      }
    },
    setRaw: (raw) => Deno.stdin.setRaw(raw),
    onResize: (listener) => {
      if (Deno.build.os === "windows") return () => {};
      Deno.addSignalListener("SIGWINCH", listener);
      return () => Deno.removeSignalListener("SIGWINCH", listener);
    },
  };
}

export interface TerminalOptions {
  /** History entries, newest first; the array is kept up to date in place. */
  readonly history: string[];
  readonly completer: Completer;
  /** Called after each line that changed the history (never with a secret in it). */
  readonly onHistory: (history: readonly string[]) => void;
  readonly historySize: number;
  /** The first prompt; "" for none (--json: the output is for a program). */
  readonly prompt: string;
  /** Why a paste that would make the line `line` must not go in, or undefined. */
  readonly pasteProblem?: (line: string) => string | undefined;
  /** Whether a submitted line must stay out of the history (a password typed on it). */
  readonly unsaved?: (line: string) => boolean;
  /** Called on a second Ctrl-C while a command runs (nothing is read): the user wants out now. */
  readonly onAbort?: () => void;
}

/** Who is waiting for input, and for what. */
type Reading =
  | { readonly mode: "line"; readonly resolve: (line: string | null) => void }
  | {
    readonly mode: "secret";
    readonly prompt: string;
    value: string;
    readonly resolve: (secret: Secret) => void;
  };

/** An interactive terminal: see the file comment. */
export class Terminal implements LineInput, Screen {
  readonly #io: TerminalIo;
  readonly #history: string[];
  readonly #historySize: number;
  readonly #onHistory: (history: readonly string[]) => void;
  readonly #pasteProblem: (line: string) => string | undefined;
  readonly #unsaved: (line: string) => boolean;
  readonly #onAbort: () => void;
  /** Ctrl-C pressed since the last read began, while a command runs. */
  #busyInterrupts = 0;
  readonly #editor: LineEditor;
  readonly #decoder = new KeyDecoder();
  /** Keys typed ahead: read when a line or a secret is asked for, in that mode. */
  readonly #keys: Key[] = [];
  #reading: Reading | undefined;
  #prompt: string;
  /** The input row is on the screen (someone is waiting for input). */
  #shown = false;
  /** The status line on the screen while a command runs, if any. */
  #status: string | undefined;
  #ended = false;
  #closed = false;
  /** Ctrl-C on an empty line once: a second one quits. */
  #interrupted = false;
  readonly #stopResize: () => void;
  readonly #reader: ReadableStreamDefaultReader<string>;

  constructor(options: TerminalOptions, io: TerminalIo = stdioTerminal()) {
    this.#io = io;
    this.#history = options.history;
    this.#historySize = options.historySize;
    this.#onHistory = options.onHistory;
    this.#pasteProblem = options.pasteProblem ?? (() => undefined);
    this.#unsaved = options.unsaved ?? (() => false);
    this.#onAbort = options.onAbort ?? (() => {});
    this.#prompt = options.prompt;
    this.#editor = new LineEditor({
      history: this.#history,
      completer: options.completer,
      maxChars: MAX_INPUT_LINE_CHARS,
    });
    io.setRaw(true);
    io.write(BRACKETED_PASTE_ON);
    this.#stopResize = io.onResize(() => this.#redraw());
    this.#reader = io.input.pipeThrough(new TextDecoderStream()).getReader();
    void this.#pump();
  }

  next(): Promise<string | null> {
    return new Promise((resolve) => this.#read({ mode: "line", resolve }));
  }

  secret(prompt: string): Promise<Secret> {
    return new Promise((resolve) => this.#read({ mode: "secret", prompt, value: "", resolve }));
  }

  skipSecret(): Promise<boolean> {
    const enter = this.#keys.findIndex((k) => k.type === "key" && k.name === "enter");
    if (enter >= 0) this.#keys.splice(0, enter + 1);
    return Promise.resolve(enter >= 0);
  }

  print(lines: readonly string[]): void {
    if (lines.length === 0) return;
    const text = lines.join("\n") + "\n";
    if (this.#shown) this.#io.write(`\r\x1b[K${text}${this.#row()}`);
    else if (this.#status !== undefined) this.#io.write(`\r\x1b[K${text}\r${this.#status}\x1b[K`);
    else this.#io.write(text);
  }

  status(text: string | undefined): void {
    // The row belongs to the line being read, if one is: a status waits for its command.
    if (this.#closed || this.#shown) return;
    this.#status = text;
    this.#io.write(text === undefined ? "\r\x1b[K" : `\r${text}\x1b[K`);
  }

  setPrompt(prompt: string, redraw = true): void {
    this.#prompt = prompt;
    if (redraw) this.#redraw();
  }

  /** Restores the terminal (line discipline, echo, no bracketed paste). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopResize();
    this.#io.write((this.#shown ? "\r\n" : "") + BRACKETED_PASTE_OFF);
    this.#shown = false;
    this.#io.setRaw(false);
    this.#reader.cancel().catch(() => {});
  }

  async #pump(): Promise<void> {
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        for (const key of this.#decoder.push(value)) {
          if (key.type === "key" && key.name === "interrupt") this.#interruptWhileBusy();
          if (this.#keys.length < MAX_TYPED_AHEAD_KEYS) this.#keys.push(key);
        }
        this.#process();
      }
    } catch {
      // Input gone (closed under us): the same as its end.
    }
    this.#ended = true;
    this.#process();
  }

  /**
   * A Ctrl-C while a command runs (a connection that hangs, say) waits with the keys typed
   * ahead; a second one does not wait: it calls onAbort.
   */
  #interruptWhileBusy(): void {
    if (this.#reading !== undefined || this.#closed) return;
    this.#busyInterrupts++;
    if (this.#busyInterrupts === 1) {
      this.print(["(a command is running: Ctrl-C again to quit now)"]);
    } else this.#onAbort();
  }

  #read(reading: Reading): void {
    if (this.#reading !== undefined) throw new Error("one read at a time");
    this.#busyInterrupts = 0;
    this.#reading = reading;
    this.#process();
  }

  /** Applies the keys typed ahead while someone waits, then shows the row. */
  #process(): void {
    while (this.#reading !== undefined) {
      const key = this.#keys.shift();
      if (key === undefined) break;
      if (this.#reading.mode === "line") this.#lineKey(key);
      else this.#secretKey(this.#reading, key);
    }
    const reading = this.#reading;
    if (reading === undefined || this.#closed) return;
    if (this.#ended) {
      this.#finishRow();
      this.#reading = undefined;
      if (reading.mode === "line") reading.resolve(null);
      else reading.resolve({ type: "end" });
      return;
    }
    this.#showRow();
  }

  #lineKey(key: Key): void {
    if (key.type !== "key" || key.name !== "interrupt") this.#interrupted = false;
    switch (key.type) {
      case "text":
        this.#editor.insert(key.text);
        return;
      case "paste":
        return this.#paste(key.text, key.dropped);
      case "key":
        break;
      default: {
        const never: never = key;
        throw new TypeError(`unhandled key ${JSON.stringify(never)}`);
      }
    }
    const outcome = this.#editor.apply(key.name);
    switch (outcome.type) {
      case "edited":
      case "bell":
        return;
      case "submit":
        this.#showRow();
        this.#finishRow();
        this.#editor.clear();
        this.#remember(outcome.line);
        return this.#deliverLine(outcome.line);
      case "interrupt":
        if (!this.#editor.empty) {
          this.#editor.clear();
        } else if (this.#interrupted) {
          this.#finishRow();
          this.#deliverLine(null);
        } else {
          this.#interrupted = true;
          this.print(["(Ctrl-C again or Ctrl-D to quit)"]);
        }
        return;
      case "eof":
        this.#finishRow();
        return this.#deliverLine(null);
      case "clear-screen":
        this.#io.write("\x1b[H\x1b[2J");
        return;
      case "candidates":
        this.print([outcome.candidates.join("  ")]);
        return;
      default: {
        const never: never = outcome;
        throw new TypeError(`unhandled outcome ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * A paste goes into the line whole, its line breaks too (a pasted text is one message, never
   * several commands), unless it is larger than any message could be or `pasteProblem` refuses
   * the line it would make: refused, it is not shown at all (it may hold a password).
   */
  #paste(text: string, dropped: number): void {
    const bytes = new TextEncoder().encode(text).length + dropped;
    const problem = bytes > MAX_TEXT_BYTES || !this.#editor.fits(text)
      ? `${bytes} bytes, above the ${MAX_TEXT_BYTES} a message holds`
      : this.#pasteProblem(this.#editor.lineWith(text));
    if (problem === undefined) this.#editor.insert(text);
    else this.print([`(pasted text not inserted: ${problem})`]);
  }

  #secretKey(reading: Extract<Reading, { mode: "secret" }>, key: Key): void {
    switch (key.type) {
      case "text":
        reading.value += key.text;
        return;
      case "paste": {
        const [first = "", ...rest] = key.text.split("\n");
        reading.value += first;
        if (rest.length === 0) return;
        if (rest.join("") !== "") {
          this.print(["(the pasted text after the password's line break was dropped)"]);
        }
        return this.#deliverSecret({ type: "secret", value: reading.value });
      }
      case "key":
        break;
      default: {
        const never: never = key;
        throw new TypeError(`unhandled key ${JSON.stringify(never)}`);
      }
    }
    switch (key.name) {
      case "enter":
        return this.#deliverSecret({ type: "secret", value: reading.value });
      case "backspace":
        reading.value = Array.from(reading.value).slice(0, -1).join("");
        return;
      case "kill-start":
      case "kill-word":
        reading.value = "";
        return;
      case "interrupt":
        this.#showRow();
        this.#io.write("^C");
        return this.#deliverSecret({ type: "cancelled" });
      case "eof":
        if (reading.value === "") this.#deliverSecret({ type: "end" });
        return;
      default:
        // Nothing else edits a secret one cannot see.
        return;
    }
  }

  #deliverLine(line: string | null): void {
    const reading = this.#reading;
    if (reading?.mode !== "line") return;
    this.#reading = undefined;
    reading.resolve(line);
  }

  #deliverSecret(secret: Secret): void {
    const reading = this.#reading;
    if (reading?.mode !== "secret") return;
    this.#finishRow();
    this.#reading = undefined;
    reading.resolve(secret);
  }

  /**
   * Adds a submitted line to the history: not blank ones, nor one typed with a leading space,
   * nor one that may hold a password.
   */
  #remember(line: string): void {
    if (line.trim() === "" || line.startsWith(" ") || this.#history[0] === line) return;
    if (this.#unsaved(line)) return;
    this.#history.unshift(line);
    if (this.#history.length > this.#historySize) this.#history.length = this.#historySize;
    this.#onHistory(this.#history);
  }

  /** Leaves the row as it is on the screen, and moves to the next line. */
  #finishRow(): void {
    if (this.#shown) this.#io.write("\r\n");
    this.#shown = false;
  }

  #showRow(): void {
    this.#status = undefined;
    this.#io.write(this.#row());
    this.#shown = true;
  }

  #redraw(): void {
    if (this.#shown && !this.#closed) this.#io.write(this.#row());
  }

  /** The bytes that draw the input row: the prompt and the line, or a secret's prompt alone. */
  #row(): string {
    const reading = this.#reading;
    if (reading?.mode === "secret") return `\r${reading.prompt}\x1b[K`;
    return this.#editor.render(this.#prompt, this.#io.columns());
  }
}
