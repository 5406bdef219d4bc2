// Received text can never drive the terminal: every control and reordering character is escaped.
import assert from "node:assert/strict";
import { escapeControl, escapeLines, isUnsafeCodePoint, safeJson } from "../../client/escape.ts";
import { TERMINAL_CONTROL } from "./_harness.ts";

Deno.test("escapeControl() shows CSI, OSC and other C0 sequences as visible escapes", () => {
  assert.equal(escapeControl("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  assert.equal(escapeControl("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
  assert.equal(escapeControl("a\tb\rc\nd\0e\x7f"), "a\\tb\\rc\\nd\\x00e\\x7f");
  assert.equal(escapeControl("back\b\bspace"), "back\\x08\\x08space");
});

Deno.test("escapeControl() escapes C1 controls, separators and bidi overrides", () => {
  assert.equal(escapeControl("\u009b2J"), "\\u009b2J");
  assert.equal(escapeControl("\u0085next"), "\\u0085next");
  assert.equal(escapeControl("a\u2028b\u2029c"), "a\\u2028b\\u2029c");
  assert.equal(escapeControl("evil\u202etxt.exe"), "evil\\u202etxt.exe");
  assert.equal(
    escapeControl("\u2066x\u2069\u200e\u200f\u061c\ufeff"),
    "\\u2066x\\u2069\\u200e\\u200f\\u061c\\ufeff",
  );
});

Deno.test("escapeControl() leaves printable text, accents and emoji (surrogate pairs) alone", () => {
  const text = "héllo wörld — 日本語 🙂 \\x1b is just text";
  assert.equal(escapeControl(text), text);
  assert.equal(escapeControl("🙂\x1b🙂"), "🙂\\x1b🙂");
});

Deno.test("escapeControl() escapes a lone surrogate", () => {
  assert.equal(escapeControl("a\ud800b"), "a\\ud800b");
  assert.equal(escapeControl("a\udc00"), "a\\udc00");
});

Deno.test("escapeControl() lets the display mark each escape, and only the escapes", () => {
  assert.equal(escapeControl("a\x1bb\x07", (e) => `[${e}]`), "a[\\x1b]b[\\x07]");
});

Deno.test("isUnsafeCodePoint() covers every C0 and C1 control and nothing printable in Latin-1", () => {
  for (let cp = 0; cp <= 0xff; cp++) {
    const control = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
    assert.equal(isUnsafeCodePoint(cp), control, `U+${cp.toString(16)}`);
  }
});

Deno.test("escapeLines() splits on newlines and escapes within each line", () => {
  assert.deepEqual(escapeLines("one\n\x1b[2Jtwo\r\n"), ["one", "\\x1b[2Jtwo\\r", ""]);
});

Deno.test("safeJson() parses back to the same value with no raw control character in it", () => {
  const value = {
    text: "esc \x1b c1 \u0085\u009b del \x7f bidi \u202e\u2067 sep \u2028 🙂 \ud800",
  };
  const json = safeJson(value);
  assert.deepEqual(JSON.parse(json), value);
  assert.doesNotMatch(json, TERMINAL_CONTROL);
  assert.ok(json.includes("🙂"), "a surrogate pair stays as text");
});
