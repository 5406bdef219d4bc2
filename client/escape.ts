// Neutralises control characters and terminal escape sequences in text that came from the
// network (message texts, usernames, error messages), so that a peer can never drive the terminal.

/** Escapes that have a conventional short form. */
const SHORT_FORMS: Readonly<Record<number, string>> = {
  0x09: "\\t",
  0x0a: "\\n",
  0x0d: "\\r",
};

/**
 * Whether a code point must be shown escaped rather than written to a terminal:
 * - C0 controls and DEL: ESC starts every CSI/OSC sequence, BEL, BS and CR rewrite what is shown.
 * - C1 controls (U+0080..U+009F): U+009B is a one-character CSI on many terminals.
 * - Line and paragraph separators, which some terminals treat as newlines.
 * - Bidirectional overrides, isolates and marks ("Trojan Source", CVE-2021-42574): they reorder
 *   what is shown so that a text reads differently from what it is.
 * - The BOM / zero-width no-break space, invisible in the middle of a text.
 */
export function isUnsafeCodePoint(cp: number): boolean {
  return cp <= 0x1f ||
    (cp >= 0x7f && cp <= 0x9f) ||
    cp === 0x061c ||
    cp === 0x200e ||
    cp === 0x200f ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    cp === 0xfeff ||
    (cp >= 0xd800 && cp <= 0xdfff);
}

/** The visible escape for one unsafe code point: `\t`, `\x1b`, `\u202e`. */
export function escapeCodePoint(cp: number): string {
  const short = SHORT_FORMS[cp];
  if (short !== undefined) return short;
  if (cp < 0x80) return "\\x" + cp.toString(16).padStart(2, "0");
  return "\\u" + cp.toString(16).padStart(4, "0");
}

/**
 * `text` with every unsafe code point (see {@link isUnsafeCodePoint}) replaced by its visible
 * escape. `mark` may decorate each escape (the display dims them) — it sees only our own
 * ASCII escape text, never the peer's bytes.
 */
export function escapeControl(text: string, mark: (escape: string) => string = (e) => e): string {
  let out = "";
  let plainStart = 0;
  let i = 0;
  while (i < text.length) {
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    if (isUnsafeCodePoint(cp)) {
      out += text.slice(plainStart, i) + mark(escapeCodePoint(cp));
      plainStart = i + width;
    }
    i += width;
  }
  return plainStart === 0 ? text : out + text.slice(plainStart);
}

/**
 * A multi-line text as lines, each escaped: newlines separate lines (the display indents the
 * continuation lines so they cannot pass for new messages), everything else unsafe is escaped.
 */
export function escapeLines(text: string, mark?: (escape: string) => string): string[] {
  return text.split("\n").map((line) => escapeControl(line, mark));
}

/**
 * `JSON.stringify` for output lines: JSON already escapes C0 controls, but leaves C1 controls,
 * DEL, separators and bidi marks as raw characters; those are written as `\uXXXX` too, so that
 * `--json` output is safe on a terminal and still parses to the exact original string.
 */
export function safeJson(value: unknown): string {
  const json = JSON.stringify(value);
  let out = "";
  let plainStart = 0;
  for (let i = 0; i < json.length; i++) {
    const unit = json.charCodeAt(i);
    // Surrogates are left alone: JSON.stringify already escapes lone ones, and pairs are text.
    if (unit >= 0x7f && (unit < 0xd800 || unit > 0xdfff) && isUnsafeCodePoint(unit)) {
      out += json.slice(plainStart, i) + "\\u" + unit.toString(16).padStart(4, "0");
      plainStart = i + 1;
    }
  }
  return plainStart === 0 ? json : out + json.slice(plainStart);
}
