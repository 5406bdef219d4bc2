// The line editor without a terminal: editing keys, history, completion, and a row that scrolls
// sideways, whose redraw costs the screen's width however long the line is.
import assert from "node:assert/strict";
import { cellWidth, LineEditor, textWidth } from "../../client/line_editor.ts";
import type { KeyName } from "../../client/keys.ts";

function editor(history: string[] = [], completions: string[] = []) {
  return new LineEditor({
    history,
    maxChars: 1 << 20,
    completer: (before) => {
      const word = before.split(" ").at(-1) ?? "";
      return [completions.filter((c) => c.startsWith(word)), word];
    },
  });
}

function keys(e: LineEditor, ...names: KeyName[]) {
  return names.map((name) => e.apply(name));
}

/** What the row shows: the rendered bytes without the control sequences, and the cursor column. */
function screen(e: LineEditor, prompt: string, columns: number) {
  const bytes = e.render(prompt, columns);
  // deno-lint-ignore no-control-regex -- taking our own sequences apart
  const match = /^\r(.*)\x1b\[K\r(?:\x1b\[(\d+)C)?$/s.exec(bytes);
  assert.ok(match, JSON.stringify(bytes));
  return { text: match[1] ?? "", cursor: Number(match[2] ?? 0) };
}

Deno.test("LineEditor edits: insert anywhere, delete, kill, words, home and end", () => {
  const e = editor();
  e.insert("hello world");
  keys(e, "word-left", "left");
  e.insert(",");
  assert.equal(e.line, "hello, world");
  keys(e, "home", "delete", "end", "backspace", "word-left");
  assert.equal(e.line, "ello, worl");
  keys(e, "kill-end");
  assert.equal(e.line, "ello, ");
  keys(e, "kill-word");
  assert.equal(e.line, "");
  e.insert("a b c");
  keys(e, "left", "left", "kill-start");
  assert.equal(e.line, " c");
  assert.deepEqual(e.apply("enter"), { type: "submit", line: " c" });
  e.clear();
  assert.deepEqual(e.apply("eof"), { type: "eof" }, "Ctrl-D on an empty line");
});

Deno.test("LineEditor browses the history and gives back the line being typed", () => {
  const e = editor(["/users", "@bob hi"]);
  e.insert("draft");
  keys(e, "up");
  assert.equal(e.line, "/users");
  keys(e, "up");
  assert.equal(e.line, "@bob hi");
  assert.deepEqual(e.apply("up"), { type: "bell" });
  keys(e, "down", "down");
  assert.equal(e.line, "draft");
});

Deno.test("LineEditor completes the one candidate, the common part of several, or lists them", () => {
  const e = editor([], ["bea", "bob", "carol"]);
  e.insert("@x c");
  keys(e, "tab");
  assert.equal(e.line, "@x carol");
  e.clear();
  e.insert("say b");
  assert.deepEqual(e.apply("tab"), { type: "candidates", candidates: ["bea", "bob"] });
});

Deno.test("LineEditor shows the end of a long line, scrolls back with the cursor, draws controls as escapes", () => {
  const e = editor();
  e.insert("0123456789".repeat(10));
  // At the end of a long line, the row jumps to show the last half of its width (8 of 17).
  assert.deepEqual(screen(e, "> ", 20), { text: "> 23456789", cursor: 10 });
  keys(e, "home");
  assert.deepEqual(screen(e, "> ", 20), { text: "> 01234567890123456", cursor: 2 });

  const c = editor();
  c.insert("a\x1b[31mb\nc\u202ed");
  assert.equal(screen(c, "", 80).text, "a\\x1b[31mb↵c\\u202ed");
});

Deno.test("LineEditor measures wide and combining characters in columns", () => {
  assert.deepEqual(["a", "é", "\u0301", "漢", "🙂"].map((c) => cellWidth(c.codePointAt(0)!)), [
    1,
    1,
    0,
    2,
    2,
  ]);
  assert.equal(textWidth("\x1b[1malice@h\x1b[22m> 漢"), 11);
  const e = editor();
  e.insert("漢字");
  assert.deepEqual(screen(e, "> ", 80), { text: "> 漢字", cursor: 6 });
});

Deno.test("LineEditor redraws at a cost bounded by the screen's width, not the line's length", () => {
  const columns = 80;
  const e = editor();
  const typed = 20_000;
  let bytes = 0;
  for (let i = 0; i < typed; i++) {
    e.insert("x");
    bytes += e.render("alice@127.0.0.1:5002> ", columns).length;
  }
  // Measured per key: a walk back to the row's start and one across it, at most.
  assert.ok(e.work <= typed * 2 * columns, `${e.work / typed} characters measured per key`);
  assert.ok(bytes <= typed * (columns + 16), `${bytes / typed} bytes written per key`);
  // The same after a paste of the same length: one insert, one redraw.
  const pasted = editor();
  pasted.insert("x".repeat(typed));
  const once = pasted.render("> ", columns);
  assert.ok(pasted.work <= 2 * columns, `${pasted.work} characters measured for the paste`);
  assert.ok(once.length <= columns + 16);
});
