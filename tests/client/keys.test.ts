// Terminal input decoded into keys: typed runs, editing keys whatever sequence a terminal sends,
// and bracketed pastes whole, however the bytes are split into chunks.
import assert from "node:assert/strict";
import { type Key, KeyDecoder, MAX_PASTE_CHARS } from "../../client/keys.ts";

function decode(...chunks: string[]): Key[] {
  const decoder = new KeyDecoder();
  return chunks.flatMap((chunk) => decoder.push(chunk));
}

const key = (name: string) => ({ type: "key", name });

Deno.test("KeyDecoder gives typed text as runs and control keys by what they do", () => {
  assert.deepEqual(decode("hello wörld 🙂\r"), [
    { type: "text", text: "hello wörld 🙂" },
    key("enter"),
  ]);
  assert.deepEqual(
    decode("\x01\x05\x02\x06\x7f\x08\x15\x0b\x17\x0c\x03\x04\t\x10\x0e"),
    [
      "home",
      "end",
      "left",
      "right",
      "backspace",
      "backspace",
      "kill-start",
      "kill-end",
      "kill-word",
      "clear-screen",
      "interrupt",
      "eof",
      "tab",
      "up",
      "down",
    ].map(key),
  );
  assert.deepEqual(decode("a\x00\x1a\u0085b"), [{ type: "text", text: "ab" }], "others ignored");
});

Deno.test("KeyDecoder reads escape sequences, also split between chunks, and skips unknown ones", () => {
  assert.deepEqual(decode("\x1b[A\x1b[B\x1b[C\x1b[D\x1bOH\x1b[4~\x1b[3~"), [
    key("up"),
    key("down"),
    key("right"),
    key("left"),
    key("home"),
    key("end"),
    key("delete"),
  ]);
  assert.deepEqual(decode("\x1b[1;5", "D\x1b", "b\x1b", "[1;3C"), [
    key("word-left"),
    key("word-left"),
    key("word-right"),
  ]);
  assert.deepEqual(decode("a\x1b[15~\x1b[?1;2cb\x1bxc"), [
    { type: "text", text: "a" },
    { type: "text", text: "b" },
    { type: "text", text: "c" },
  ]);
});

Deno.test("KeyDecoder gives a bracketed paste as one key, line breaks as LF, markers split anywhere", () => {
  const paste = "\x1b[200~first\r\nsecond\rthird\x1b[A\x03\x1b[201~";
  for (let cut = 0; cut <= paste.length; cut++) {
    assert.deepEqual(
      decode("x", paste.slice(0, cut), paste.slice(cut), "\r"),
      [
        { type: "text", text: "x" },
        { type: "paste", text: "first\nsecond\nthird\x1b[A\x03", dropped: 0 },
        key("enter"),
      ],
      `cut at ${cut}`,
    );
  }
});

Deno.test("KeyDecoder keeps at most MAX_PASTE_CHARS of a paste and counts the rest", () => {
  const decoder = new KeyDecoder();
  assert.deepEqual(decoder.push("\x1b[200~" + "x".repeat(MAX_PASTE_CHARS - 1)), []);
  const [pasted] = decoder.push("y".repeat(11) + "\x1b[201~");
  assert.ok(pasted?.type === "paste");
  assert.equal(pasted.text.length, MAX_PASTE_CHARS);
  assert.equal(pasted.dropped, 10);
});
