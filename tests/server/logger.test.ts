// The server's log lines: one line per event, and nothing a client chose can forge another
// line or reach the operator's terminal as a control sequence.
import assert from "node:assert/strict";
import { escapeUnsafe, Logger } from "../../server/logger.ts";

/** A logger that keeps its lines. */
function capture(json: boolean): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger({ json, write: (line) => lines.push(line) }), lines };
}

/** Client-chosen strings that try to start a line or drive a terminal. */
const HOSTILE = [
  "bob\n2030-01-01T00:00:00.000Z info  login ok user=admin",
  "bob\r2030-01-01T00:00:00.000Z info  login ok",
  "bob\x1b[2J\x1b]0;pwned\x07", // ESC: clear screen, set the window title
  "bob\u009b31m", // C1 CSI
  "bob\u0085fake line", // C1 NEL, a line break to some viewers
  "bob\u2028fake line", // LINE SEPARATOR
  "bob\u202eevil", // RIGHT-TO-LEFT OVERRIDE
  "bob\x7f\x00\x08",
  "bob\ud800", // a lone surrogate
];

/** Raw controls, C1, line and paragraph separators, bidi controls, lone surrogates. */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

Deno.test("text logs escape control, C1, bidi and separator characters in field values", () => {
  const { logger, lines } = capture(false);
  for (const user of HOSTILE) logger.warn("login failed", { user, addr: "192.0.2.1:4000" });
  assert.equal(lines.length, HOSTILE.length);
  for (const line of lines) {
    assert.doesNotMatch(line, UNSAFE);
    assert.doesNotMatch(line, LONE_SURROGATE);
    assert.match(line, /^\S+ warn {2}login failed user=".*" addr=192\.0\.2\.1:4000$/);
  }
  assert.ok(
    lines[2]!.endsWith(String.raw`user="bob\u001b[2J\u001b]0;pwned\u0007" addr=192.0.2.1:4000`),
  );
  assert.ok(lines[3]!.includes(String.raw`user="bob\u009b31m"`), lines[3]);
  assert.ok(lines[5]!.includes(String.raw`user="bob\u2028fake line"`), lines[5]);
});

Deno.test("text logs leave plain values bare and quote those with spaces, quotes or =", () => {
  const { logger, lines } = capture(false);
  logger.info("signup", { user: "alice", n: 3, ok: true, skipped: undefined });
  logger.info("note", { text: 'a "b" c=d', empty: "", emoji: "héllo👋" });
  assert.match(lines[0]!, / info {2}signup user=alice n=3 ok=true$/);
  assert.match(lines[1]!, / info {2}note text="a \\"b\\" c=d" empty="" emoji=héllo👋$/);
});

Deno.test("JSON logs round-trip every value and hold no raw control, C1 or bidi character", () => {
  const { logger, lines } = capture(true);
  for (const user of HOSTILE) logger.warn("login failed", { user });
  assert.equal(lines.length, HOSTILE.length);
  for (const [i, line] of lines.entries()) {
    assert.doesNotMatch(line, UNSAFE);
    assert.doesNotMatch(line, LONE_SURROGATE);
    const parsed = JSON.parse(line);
    assert.equal(parsed.level, "warn");
    assert.equal(parsed.event, "login failed");
    assert.equal(parsed.user, HOSTILE[i]);
  }
});

Deno.test("escapeUnsafe() escapes lone surrogates but keeps pairs", () => {
  assert.equal(escapeUnsafe("a\ud800b"), "a\\ud800b");
  assert.equal(escapeUnsafe("🙂"), "🙂");
  assert.equal(escapeUnsafe("plain"), "plain");
});
