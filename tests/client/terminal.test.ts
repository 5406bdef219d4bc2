// Input without a terminal: stdin split into lines, whatever the chunking. And the terminal on a
// fake one: keys typed ahead, secrets, pastes, Ctrl-C and Ctrl-D.
import assert from "node:assert/strict";
import { waitFor } from "../_postgres.ts";
import {
  LineSplitter,
  MAX_INPUT_LINE_CHARS,
  PipedInput,
  Terminal,
  type TerminalIo,
} from "../../client/terminal.ts";

Deno.test("LineSplitter joins lines split across chunks and drops CR before LF", () => {
  const splitter = new LineSplitter();
  assert.deepEqual(splitter.push("/log"), []);
  assert.deepEqual(splitter.push("in alice\r\npass"), ["/login alice"]);
  assert.deepEqual(splitter.push("word\n\n/users"), ["password", ""]);
  assert.deepEqual(splitter.end(), ["/users"], "a last line without a newline counts");
  assert.deepEqual(splitter.end(), []);
});

Deno.test("LineSplitter cuts a line longer than MAX_INPUT_LINE_CHARS and keeps going", () => {
  const splitter = new LineSplitter();
  const long = "x".repeat(MAX_INPUT_LINE_CHARS + 10);
  assert.deepEqual(splitter.push(long.slice(0, 700_000)), []);
  const lines = splitter.push(long.slice(700_000) + "\nnext\n");
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.length, MAX_INPUT_LINE_CHARS);
  assert.equal(lines[1], "next");
});

Deno.test("PipedInput reads commands and secrets line by line, then null at the end", async () => {
  const bytes = new TextEncoder().encode("/login alice\nsecret pass\n/login x\nskipped\n/quit");
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      // One byte at a time: a multi-byte chunking must not matter.
      for (const b of bytes) controller.enqueue(new Uint8Array([b]));
      controller.close();
    },
  });
  const input = new PipedInput(stream);
  assert.equal(await input.next(), "/login alice");
  assert.deepEqual(await input.secret("password: "), { type: "secret", value: "secret pass" });
  assert.equal(await input.next(), "/login x");
  assert.equal(await input.skipSecret(), true);
  assert.equal(await input.next(), "/quit");
  assert.equal(await input.skipSecret(), false);
  assert.equal(await input.next(), null);
  assert.equal(await input.next(), null);
});

/** A Terminal on a fake terminal: keys typed into a stream, everything written collected. */
function fakeTerminal(history: string[] = [], onAbort?: () => void) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({ start: (c) => (controller = c) });
  const out = { text: "", raw: [] as boolean[] };
  const io: TerminalIo = {
    input,
    write: (text) => (out.text += text),
    columns: () => 80,
    setRaw: (raw) => out.raw.push(raw),
    onResize: () => () => {},
  };
  const saved: string[][] = [];
  const terminal = new Terminal({
    history,
    historySize: 100,
    prompt: "> ",
    completer: () => [[], ""],
    onHistory: (entries) => saved.push([...entries]),
    pasteProblem: (line) => line.includes("\n") && !line.startsWith("@") ? "no" : undefined,
    onAbort,
  }, io);
  const type = (text: string) => controller.enqueue(new TextEncoder().encode(text));
  return { terminal, type, out, saved, history };
}

Deno.test("Terminal keeps keys typed ahead unread: a password typed before its prompt is never drawn nor saved", async () => {
  const t = fakeTerminal();
  t.type("/login alice\rhunter2\r/users\r");
  assert.equal(await t.terminal.next(), "/login alice");
  assert.ok(!t.out.text.includes("/users"), "the lines after it are not drawn yet");
  assert.deepEqual(await t.terminal.secret("password: "), { type: "secret", value: "hunter2" });
  assert.equal(await t.terminal.next(), "/users");
  t.terminal.close();
  assert.ok(!t.out.text.includes("hunter2"), JSON.stringify(t.out.text));
  assert.deepEqual(t.history, ["/users", "/login alice"]);
  assert.ok(t.saved.every((entries) => !entries.includes("hunter2")));
  assert.deepEqual(t.out.raw, [true, false], "raw mode on, then off");
  assert.ok(t.out.text.startsWith("\x1b[?2004h") && t.out.text.endsWith("\x1b[?2004l"));
});

Deno.test("Terminal drops a password typed ahead for a prompt that never came, unread", async () => {
  const t = fakeTerminal();
  t.type("/login Alice\rs3cret\r/users\r");
  assert.equal(await t.terminal.next(), "/login Alice");
  assert.equal(await t.terminal.skipSecret(), true);
  assert.equal(await t.terminal.skipSecret(), true, "the next whole line");
  assert.equal(await t.terminal.skipSecret(), false, "nothing more typed ahead");
  t.type("@bob hi\r");
  assert.equal(await t.terminal.next(), "@bob hi");
  t.terminal.close();
  assert.ok(!t.out.text.includes("s3cret"));
});

Deno.test("Terminal inserts a paste whole and draws the row once for it", async () => {
  const t = fakeTerminal();
  const text = "x".repeat(16_000);
  t.type(`@bob \x1b[200~${text}\rEND\x1b[201~\r`);
  assert.equal(await t.terminal.next(), `@bob ${text}\nEND`);
  assert.ok(t.out.text.length < 300, `${t.out.text.length} bytes written`);
  // Refused pastes are not drawn at all.
  t.type(
    "\x1b[200~/login a\rpass-in-paste\r\x1b[201~\x1b[200~" + "y".repeat(17_000) + "\x1b[201~\r",
  );
  assert.equal(await t.terminal.next(), "");
  t.terminal.close();
  assert.ok(!t.out.text.includes("pass-in-paste"));
  assert.ok(t.out.text.includes("(pasted text not inserted: no)"));
  assert.ok(
    t.out.text.includes("(pasted text not inserted: 17000 bytes, above the 16384 a message holds)"),
  );
});

Deno.test("Terminal: Ctrl-C cancels a secret; on an empty line twice quits; Ctrl-D ends", async () => {
  const t = fakeTerminal();
  t.type("half\x03");
  assert.deepEqual(await t.terminal.secret("password: "), { type: "cancelled" });
  t.type("\x03\x03");
  assert.equal(await t.terminal.next(), null);
  t.type("abc\x03\x04");
  assert.equal(await t.terminal.next(), null, "Ctrl-C cleared the line, Ctrl-D on it ends");
  t.terminal.close();
  assert.ok(t.out.text.includes("(Ctrl-C again or Ctrl-D to quit)"));
});

Deno.test("Terminal: Ctrl-C twice while a command runs aborts at once, not when it is done", async () => {
  let aborted = 0;
  const t = fakeTerminal([], () => aborted++);
  // Nothing is read: a command (a connection that hangs, say) is running.
  t.type("\x03");
  await waitFor(
    "the hint",
    () => t.out.text.includes("(a command is running: Ctrl-C again to quit now)"),
  );
  assert.equal(aborted, 0, "one Ctrl-C only says how to leave");
  t.type("\x03");
  await waitFor("onAbort", () => aborted === 1);
  t.terminal.close();
});

Deno.test("Terminal: one Ctrl-C per command that runs never aborts; a read starts the count again", async () => {
  let aborted = 0;
  const t = fakeTerminal([], () => aborted++);
  t.type("\x03");
  await waitFor("the hint", () => t.out.text.includes("Ctrl-C again to quit now"));
  // The Ctrl-C stays typed ahead: at the prompt it is one on an empty line, as it always was.
  t.type("x\r");
  assert.equal(await t.terminal.next(), "x");
  t.type("\x03");
  await waitFor("the second hint", () => t.out.text.split("Ctrl-C again to quit now").length === 3);
  t.terminal.close();
  assert.equal(aborted, 0);
  assert.ok(t.out.text.includes("(Ctrl-C again or Ctrl-D to quit)"));
});
