// Input without a terminal: stdin split into lines, whatever the chunking.
import assert from "node:assert/strict";
import { LineSplitter, MAX_INPUT_LINE_CHARS, PipedInput } from "../../client/terminal.ts";

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
  assert.equal(await input.secret("password: "), "secret pass");
  assert.equal(await input.next(), "/login x");
  assert.equal(await input.skipSecret(), true);
  assert.equal(await input.next(), "/quit");
  assert.equal(await input.skipSecret(), false);
  assert.equal(await input.next(), null);
  assert.equal(await input.next(), null);
});
