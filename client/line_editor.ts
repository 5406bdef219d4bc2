// The line being typed, as an editor without a terminal: keys in, the row's redraw out. The row
// is one screen line that scrolls sideways (as irssi's does), so that a redraw costs the width
// of the screen, not the length of the line: a long paste is inserted and drawn once.
import { escapeCodePoint, isUnsafeCodePoint } from "./escape.ts";
import type { KeyName } from "./keys.ts";

/** What a key asks of the terminal beyond editing the line. */
export type EditOutcome =
  | { readonly type: "edited" }
  | { readonly type: "submit"; readonly line: string }
  | { readonly type: "interrupt" }
  | { readonly type: "eof" }
  | { readonly type: "clear-screen" }
  /** Several completions and none longer to insert: the terminal lists them. */
  | { readonly type: "candidates"; readonly candidates: readonly string[] }
  | { readonly type: "bell" };

/** Tab completion in node:readline's shape: candidates for the last word, and that word. */
export type Completer = (lineBeforeCursor: string) => [string[], string];

export interface LineEditorOptions {
  /** History, newest first; read only (the terminal adds to it). */
  readonly history: readonly string[];
  readonly completer: Completer;
  /** Longest line kept, in characters (code points); typing beyond it rings the bell. */
  readonly maxChars: number;
}

/**
 * Columns a code point takes on a terminal: 0 for combining marks and joiners, 2 for East Asian
 * wide and fullwidth characters and most emoji (Unicode's East_Asian_Width W and F), else 1.
 */
export function cellWidth(cp: number): number {
  if (
    cp === 0x200d || (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x1ab0 && cp <= 0x1aff) ||
    (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x20d0 && cp <= 0x20ff) ||
    (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0xfe20 && cp <= 0xfe2f) ||
    (cp >= 0xe0100 && cp <= 0xe01ef)
  ) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

/**
 * How one character of the line is drawn: a line break (from a paste) as ↵, a control
 * character or an escape as its visible escape (`\x1b`), never as itself.
 */
function cellText(char: string): string {
  if (char === "\n") return "↵";
  const cp = char.codePointAt(0)!;
  return isUnsafeCodePoint(cp) ? escapeCodePoint(cp) : char;
}

function drawnWidth(char: string): number {
  if (char === "\n") return 1;
  const cp = char.codePointAt(0)!;
  return isUnsafeCodePoint(cp) ? escapeCodePoint(cp).length : cellWidth(cp);
}

/** Columns of text that may hold SGR color sequences (a styled prompt). */
export function textWidth(text: string): number {
  // deno-lint-ignore no-control-regex -- our own color sequences take no columns
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  let width = 0;
  for (const char of plain) width += drawnWidth(char);
  return width;
}

const isSpace = (char: string | undefined) => char !== undefined && /\s/.test(char);

/** The line being typed, its cursor and the part of it the row shows. */
export class LineEditor {
  readonly #options: LineEditorOptions;
  /** The line, one code point per element. */
  #chars: string[] = [];
  #cursor = 0;
  /** Index of the first character the row shows. */
  #scroll = 0;
  /** Position in the history while browsing it (-1: the line being typed), and that line. */
  #historyIndex = -1;
  #draft: string[] = [];
  /**
   * Characters measured while drawing the row, over the editor's life: the cost of redraws,
   * for tests to check that it grows with the screen's width, never with the line's length.
   */
  work = 0;

  constructor(options: LineEditorOptions) {
    this.#options = options;
  }

  get line(): string {
    return this.#chars.join("");
  }

  get empty(): boolean {
    return this.#chars.length === 0;
  }

  /** Whether `text` can be inserted without the line growing too long. */
  fits(text: string): boolean {
    return this.#chars.length + text.length <= this.#options.maxChars;
  }

  /** The line as it would be with `text` inserted at the cursor. */
  lineWith(text: string): string {
    return this.#chars.slice(0, this.#cursor).join("") + text +
      this.#chars.slice(this.#cursor).join("");
  }

  /** Inserts `text` at the cursor; false (nothing inserted) if the line would grow too long. */
  insert(text: string): boolean {
    const chars = Array.from(text);
    if (this.#chars.length + chars.length > this.#options.maxChars) return false;
    if (this.#cursor === this.#chars.length) {
      for (const char of chars) this.#chars.push(char);
    } else {
      this.#chars = this.#chars.slice(0, this.#cursor).concat(
        chars,
        this.#chars.slice(this.#cursor),
      );
    }
    this.#cursor += chars.length;
    this.#historyIndex = -1;
    return true;
  }

  /** Empties the line (after it was submitted or cancelled). */
  clear(): void {
    this.#chars = [];
    this.#cursor = 0;
    this.#scroll = 0;
    this.#historyIndex = -1;
  }

  /** Applies an editing key. */
  apply(name: KeyName): EditOutcome {
    const chars = this.#chars;
    const at = this.#cursor;
    switch (name) {
      case "enter": {
        const line = this.line;
        return { type: "submit", line };
      }
      case "tab":
        return this.#complete();
      case "backspace":
        if (at === 0) return { type: "bell" };
        chars.splice(at - 1, 1);
        this.#cursor--;
        return EDITED;
      case "delete":
        if (at === chars.length) return { type: "bell" };
        chars.splice(at, 1);
        return EDITED;
      case "eof":
        if (chars.length === 0) return { type: "eof" };
        return this.apply("delete");
      case "left":
        this.#cursor = Math.max(0, at - 1);
        return EDITED;
      case "right":
        this.#cursor = Math.min(chars.length, at + 1);
        return EDITED;
      case "word-left":
        this.#cursor = this.#wordStart(at);
        return EDITED;
      case "word-right": {
        let i = at;
        while (i < chars.length && isSpace(chars[i])) i++;
        while (i < chars.length && !isSpace(chars[i])) i++;
        this.#cursor = i;
        return EDITED;
      }
      case "home":
        this.#cursor = 0;
        return EDITED;
      case "end":
        this.#cursor = chars.length;
        return EDITED;
      case "kill-start":
        chars.splice(0, at);
        this.#cursor = 0;
        return EDITED;
      case "kill-end":
        chars.splice(at);
        return EDITED;
      case "kill-word": {
        const start = this.#wordStart(at);
        chars.splice(start, at - start);
        this.#cursor = start;
        return EDITED;
      }
      case "up":
      case "down":
        return this.#browse(name === "up" ? 1 : -1);
      case "clear-screen":
        return { type: "clear-screen" };
      case "interrupt":
        return { type: "interrupt" };
      default: {
        const never: never = name;
        throw new TypeError(`unhandled key ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * The bytes that redraw the row: carriage return, the prompt, the visible part of the line,
   * erase to the end of the screen line, the cursor back to its column. `columns` is the
   * screen's width; the row uses one column less, so that the terminal never wraps it.
   */
  render(prompt: string, columns: number): string {
    const promptWidth = textWidth(prompt);
    const room = Math.max(columns - promptWidth - 1, 1);
    this.#scrollToCursor(room);
    let shown = "";
    let width = 0;
    let cursorColumn = promptWidth;
    for (let i = this.#scroll; i < this.#chars.length; i++) {
      const char = this.#chars[i]!;
      const w = drawnWidth(char);
      this.work++;
      if (width + w > room) break;
      if (i === this.#cursor) cursorColumn = promptWidth + width;
      shown += cellText(char);
      width += w;
    }
    if (this.#cursor >= this.#chars.length) cursorColumn = promptWidth + width;
    const back = cursorColumn > 0 ? `\x1b[${cursorColumn}C` : "";
    return `\r${prompt}${shown}\x1b[K\r${back}`;
  }

  /** Moves the shown part so that the cursor is in it, measuring no more than the row's width. */
  #scrollToCursor(room: number): void {
    const chars = this.#chars;
    if (this.#cursor < this.#scroll) {
      // Leftwards: show a third of the row before the cursor.
      this.#scroll = this.#startBefore(this.#cursor, Math.floor(room / 3));
      return;
    }
    // Is the cursor's cell within the row, counting from the current start?
    let width = 0;
    let i = this.#cursor;
    const cursorCell = i < chars.length ? drawnWidth(chars[i]!) : 1;
    while (i > this.#scroll && width + cursorCell <= room) {
      width += drawnWidth(chars[--i]!);
      this.work++;
    }
    if (width + cursorCell <= room) return;
    // Rightwards: jump so that the cursor is in the middle, not at the edge on every key.
    this.#scroll = this.#startBefore(this.#cursor, Math.floor(room / 2));
  }

  /** The first index such that the characters from it to `end` take about `width` columns. */
  #startBefore(end: number, width: number): number {
    let used = 0;
    let i = end;
    while (i > 0) {
      const w = drawnWidth(this.#chars[i - 1]!);
      this.work++;
      if (used + w > width) break;
      used += w;
      i--;
    }
    return i;
  }

  #wordStart(at: number): number {
    let i = at;
    while (i > 0 && isSpace(this.#chars[i - 1])) i--;
    while (i > 0 && !isSpace(this.#chars[i - 1])) i--;
    return i;
  }

  #browse(step: 1 | -1): EditOutcome {
    const { history } = this.#options;
    const next = this.#historyIndex + step;
    if (next < -1 || next >= history.length) return { type: "bell" };
    if (this.#historyIndex === -1) this.#draft = this.#chars;
    this.#historyIndex = next;
    this.#chars = next === -1 ? this.#draft : Array.from(history[next]!);
    this.#cursor = this.#chars.length;
    return EDITED;
  }

  #complete(): EditOutcome {
    const before = this.#chars.slice(0, this.#cursor).join("");
    const [hits, word] = this.#options.completer(before);
    if (hits.length === 0) return { type: "bell" };
    const common = hits.reduce((a, b) => {
      let n = 0;
      while (n < a.length && n < b.length && a[n] === b[n]) n++;
      return a.slice(0, n);
    });
    if (common.length <= word.length) {
      return hits.length === 1 ? EDITED : { type: "candidates", candidates: hits };
    }
    const keep = this.#cursor - Array.from(word).length;
    const replaced = Array.from(common);
    this.#chars = this.#chars.slice(0, keep).concat(replaced, this.#chars.slice(this.#cursor));
    this.#cursor = keep + replaced.length;
    return EDITED;
  }
}

const EDITED: EditOutcome = { type: "edited" };
