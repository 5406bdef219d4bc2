// Keys from a terminal in raw mode: bytes (as text) into typed runs, editing keys and bracketed
// pastes. A paste arrives whole, as one key, so that the editor inserts it once and a line
// break inside it cannot end a command.

/** An editing key; the name says what it does, whichever keys a terminal sends for it. */
export type KeyName =
  | "enter"
  | "tab"
  | "backspace"
  | "delete"
  | "left"
  | "right"
  | "word-left"
  | "word-right"
  | "home"
  | "end"
  | "up"
  | "down"
  | "kill-start"
  | "kill-end"
  | "kill-word"
  | "clear-screen"
  | "interrupt"
  | "eof";

export type Key =
  /** Printable characters typed (a run of them, when they came together). */
  | { readonly type: "text"; readonly text: string }
  /** A bracketed paste; `dropped` counts characters beyond MAX_PASTE_CHARS, not kept. */
  | { readonly type: "paste"; readonly text: string; readonly dropped: number }
  | { readonly type: "key"; readonly name: KeyName };

/**
 * Longest paste kept (1 MiB of UTF-16), far above a message's 16 KiB; the rest is counted and
 * dropped, so that memory stays bounded whatever is pasted.
 */
export const MAX_PASTE_CHARS = 1 << 20;

/** xterm's bracketed paste mode: on, off, and the markers around a paste. */
export const BRACKETED_PASTE_ON = "\x1b[?2004h";
export const BRACKETED_PASTE_OFF = "\x1b[?2004l";
const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

/** Single bytes with a meaning (Ctrl-letter and friends). */
const CONTROL: Readonly<Record<string, KeyName>> = {
  "\r": "enter",
  "\n": "enter",
  "\t": "tab",
  "\x7f": "backspace",
  "\x08": "backspace",
  "\x01": "home",
  "\x05": "end",
  "\x02": "left",
  "\x06": "right",
  "\x10": "up",
  "\x0e": "down",
  "\x15": "kill-start",
  "\x0b": "kill-end",
  "\x17": "kill-word",
  "\x0c": "clear-screen",
  "\x03": "interrupt",
  "\x04": "eof",
};

/** Escape sequences (after ESC) with a meaning; any other complete one is ignored. */
const SEQUENCES: Readonly<Record<string, KeyName>> = {
  "[A": "up",
  "[B": "down",
  "[C": "right",
  "[D": "left",
  "[H": "home",
  "[F": "end",
  "[1~": "home",
  "[4~": "end",
  "[7~": "home",
  "[8~": "end",
  "[3~": "delete",
  "[1;5C": "word-right",
  "[1;5D": "word-left",
  "[1;3C": "word-right",
  "[1;3D": "word-left",
  "OA": "up",
  "OB": "down",
  "OC": "right",
  "OD": "left",
  "OH": "home",
  "OF": "end",
  "b": "word-left",
  "f": "word-right",
  "\x7f": "kill-word",
};

/** A CSI sequence (ESC [ parameters intermediates final), or an SS3 one (ESC O final). */
// deno-lint-ignore no-control-regex -- escape sequences are the input here
const CSI = /^\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]|O[\x40-\x7e])/;
// deno-lint-ignore no-control-regex -- as above: a sequence still missing its last bytes
const PARTIAL = /^\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|O)?$/;

/** Turns chunks of terminal input into keys; a sequence split between chunks is kept whole. */
export class KeyDecoder {
  /** Input not yet decoded: the start of an escape sequence cut by the chunk's end. */
  #pending = "";
  /** Inside a paste: what it holds so far (as parts), and how much was dropped. */
  #paste: { parts: string[]; chars: number; dropped: number } | undefined;

  /** The keys in `chunk`, with what came before it. */
  push(chunk: string): Key[] {
    const keys: Key[] = [];
    const input = this.#pending + chunk;
    this.#pending = "";
    let text = "";
    const flush = () => {
      if (text !== "") keys.push({ type: "text", text });
      text = "";
    };
    let i = 0;
    while (i < input.length) {
      if (this.#paste !== undefined) {
        const end = input.indexOf(PASTE_END, i);
        if (end < 0) {
          // Keep a tail that may be the start of the end marker.
          const keep = partialSuffix(input, PASTE_END);
          this.#addToPaste(input.slice(i, input.length - keep));
          this.#pending = input.slice(input.length - keep);
          return keys;
        }
        this.#addToPaste(input.slice(i, end));
        keys.push(this.#endPaste());
        i = end + PASTE_END.length;
        continue;
      }
      const c = input[i]!;
      if (c === "\x1b") {
        const rest = input.slice(i, i + 32);
        if (rest.startsWith(PASTE_START)) {
          flush();
          this.#paste = { parts: [], chars: 0, dropped: 0 };
          i += PASTE_START.length;
          continue;
        }
        const sequence = CSI.exec(rest)?.[0];
        if (sequence !== undefined) {
          flush();
          const name = SEQUENCES[sequence.slice(1)];
          if (name !== undefined) keys.push({ type: "key", name });
          i += sequence.length;
          continue;
        }
        if (PARTIAL.test(rest) || PASTE_START.startsWith(rest)) {
          // Cut by the chunk's end: decoded with the next chunk.
          flush();
          this.#pending = rest;
          return keys;
        }
        // ESC and one character: Alt-key (a second ESC starts a sequence of its own).
        flush();
        const [alt = ""] = [...input.slice(i + 1, i + 3)];
        if (alt === "\x1b") {
          i++;
          continue;
        }
        const name = SEQUENCES[alt];
        if (name !== undefined) keys.push({ type: "key", name });
        i += 1 + alt.length;
        continue;
      }
      const control = CONTROL[c];
      if (control !== undefined) {
        flush();
        keys.push({ type: "key", name: control });
        i++;
        continue;
      }
      const code = c.charCodeAt(0);
      // Other C0 and C1 controls do nothing.
      if (code >= 0x20 && !(code >= 0x7f && code <= 0x9f)) text += c;
      i++;
    }
    flush();
    return keys;
  }

  #addToPaste(part: string): void {
    const paste = this.#paste!;
    const room = MAX_PASTE_CHARS - paste.chars;
    if (part.length > room) {
      paste.dropped += part.length - Math.max(room, 0);
      part = part.slice(0, Math.max(room, 0));
    }
    if (part !== "") paste.parts.push(part);
    paste.chars += part.length;
  }

  #endPaste(): Key {
    const paste = this.#paste!;
    this.#paste = undefined;
    // Terminals send a pasted line break as CR; one line break is LF from here on.
    const text = paste.parts.join("").replace(/\r\n?/g, "\n");
    return { type: "paste", text, dropped: paste.dropped };
  }
}

/** How many characters at the end of `text` could begin `marker`. */
function partialSuffix(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (marker.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}
