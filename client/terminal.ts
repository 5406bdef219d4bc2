// Where lines come from and go to. On a terminal: node:readline with line editing, history and
// completion; output printed above the prompt without disturbing the line being typed; secrets
// read in raw mode without echo. Otherwise: stdin read line by line, output written plainly.
import process from "node:process";
import * as readline from "node:readline";
import { Writable } from "node:stream";

/** Longest input line kept whole; the rest of a longer one is dropped (a message is 16 KiB). */
export const MAX_INPUT_LINE_CHARS = 1 << 20;

/** Lines in: commands, and secrets (passwords), which are never echoed nor kept in history. */
export interface LineInput {
  /** The next line, or null at the end of input. */
  next(): Promise<string | null>;
  /** The next line as a secret, after showing `prompt` (on a terminal); null if cancelled. */
  secret(prompt: string): Promise<string | null>;
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

  secret(_prompt: string): Promise<string | null> {
    return this.next();
  }

  async skipSecret(): Promise<boolean> {
    return (await this.next()) !== null;
  }
}

/** A Writable in front of stdout that can be muted, so readline echoes nothing of a secret. */
class MutableOutput extends Writable {
  muted = false;

  override _write(
    chunk: Uint8Array | string,
    _encoding: string,
    done: (error?: Error | null) => void,
  ): void {
    if (!this.muted) process.stdout.write(chunk);
    done();
  }

  // readline reads these to lay out the line; they are stdout's.
  get columns(): number {
    return process.stdout.columns ?? 80;
  }

  get rows(): number {
    return process.stdout.rows ?? 24;
  }

  get isTTY(): boolean {
    return true;
  }
}

export interface TerminalOptions {
  /** History entries, newest first; the array is kept up to date in place. */
  readonly history: string[];
  readonly completer: (line: string) => [string[], string];
  /** Called after each line that changed the history (never with a secret in it). */
  readonly onHistory: (history: readonly string[]) => void;
  readonly historySize: number;
  /** The first prompt; "" for none (--json: the output is for a program). */
  readonly prompt: string;
}

/** A terminal: node:readline in raw mode. */
export class Terminal implements LineInput, Screen {
  readonly #rl: readline.Interface;
  readonly #output = new MutableOutput();
  readonly #history: string[];
  readonly #onHistory: (history: readonly string[]) => void;
  readonly #lines: string[] = [];
  #waiter: ((line: string | null) => void) | undefined;
  #secretPrompt: string | undefined;
  /** A prompt to show from the next redraw on. */
  #nextPrompt: string | undefined;
  #closed = false;
  #interrupted = false;

  constructor(options: TerminalOptions) {
    this.#history = options.history;
    this.#onHistory = options.onHistory;
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: this.#output,
      terminal: true,
      history: this.#history,
      historySize: options.historySize,
      completer: options.completer,
      tabSize: 4,
    });
    process.stdout.on("resize", () => this.#output.emit("resize"));
    this.#rl.on("line", (line) => this.#onLine(line));
    this.#rl.on("close", () => this.#onClose());
    this.#rl.on("SIGINT", () => this.#onInterrupt());
    this.#rl.setPrompt(options.prompt);
    this.#rl.prompt();
  }

  next(): Promise<string | null> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  secret(prompt: string): Promise<string | null> {
    // A line typed ahead is taken as it is (it was echoed already).
    if (this.#lines.length > 0 || this.#closed) return this.next();
    this.#clearInput();
    this.#secretPrompt = prompt;
    process.stdout.write(prompt);
    this.#output.muted = true;
    return this.next();
  }

  skipSecret(): Promise<boolean> {
    return Promise.resolve(this.#lines.shift() !== undefined);
  }

  print(lines: readonly string[]): void {
    if (lines.length === 0) return;
    if (this.#closed) {
      process.stdout.write(lines.join("\n") + "\n");
      return;
    }
    this.#clearInput();
    process.stdout.write(lines.join("\n") + "\n");
    this.#redraw();
  }

  setPrompt(prompt: string, redraw = true): void {
    if (!redraw || this.#closed || this.#secretPrompt !== undefined) {
      // Applied at the next redraw: what is on screen is erased with the old prompt's width.
      this.#nextPrompt = prompt;
      return;
    }
    this.#clearInput();
    this.#nextPrompt = prompt;
    this.#redraw();
  }

  /** Restores the terminal (cooked mode, echo on). */
  close(): void {
    this.#output.muted = false;
    if (!this.#closed) this.#rl.close();
  }

  /** Erases the prompt and the line being typed, however many rows it wraps over. */
  #clearInput(): void {
    const out = process.stdout;
    if (this.#secretPrompt !== undefined) {
      readline.cursorTo(out, 0);
      readline.clearLine(out, 0);
      return;
    }
    const { rows } = this.#rl.getCursorPos();
    readline.moveCursor(out, 0, -rows);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
  }

  /** Shows the prompt and the line being typed again, the cursor where it was. */
  #redraw(): void {
    if (this.#secretPrompt !== undefined) {
      process.stdout.write(this.#secretPrompt);
      return;
    }
    if (this.#nextPrompt !== undefined) {
      this.#rl.setPrompt(this.#nextPrompt);
      this.#nextPrompt = undefined;
    }
    this.#rl.prompt(true);
  }

  #deliver(line: string | null): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter(line);
    else if (line !== null) this.#lines.push(line);
  }

  #onLine(line: string): void {
    this.#interrupted = false;
    if (this.#secretPrompt !== undefined) {
      // readline has put the secret in its history; take it out before anything saves it.
      if (this.#history[0] === line) this.#history.shift();
      this.#output.muted = false;
      this.#secretPrompt = undefined;
      process.stdout.write("\n");
      this.#deliver(line);
      this.#redraw();
      return;
    }
    // A line typed with a leading space stays out of the saved history (as in bash).
    if (line.startsWith(" ") && this.#history[0] === line) this.#history.shift();
    this.#onHistory(this.#history);
    this.#deliver(line);
    this.#redraw();
  }

  #onInterrupt(): void {
    if (this.#secretPrompt !== undefined) {
      // Ctrl-C cancels the secret: forget what was typed.
      this.#rl.write(null, { ctrl: true, name: "e" });
      this.#rl.write(null, { ctrl: true, name: "u" });
      this.#output.muted = false;
      this.#secretPrompt = undefined;
      process.stdout.write("^C\n");
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter?.(null);
      this.#redraw();
      return;
    }
    if (this.#rl.line.length > 0) {
      this.#rl.write(null, { ctrl: true, name: "e" });
      this.#rl.write(null, { ctrl: true, name: "u" });
      return;
    }
    if (this.#interrupted) {
      this.#rl.close();
      return;
    }
    this.#interrupted = true;
    this.print(["(Ctrl-C again or Ctrl-D to quit)"]);
  }

  #onClose(): void {
    this.#closed = true;
    this.#output.muted = false;
    if (this.#secretPrompt !== undefined) process.stdout.write("\n");
    this.#secretPrompt = undefined;
    this.#deliver(null);
  }
}
