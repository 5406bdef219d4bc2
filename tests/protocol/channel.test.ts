// Frame reader and writer over a transport: order, coalescing, and the bound on unread output.
import assert from "node:assert/strict";
import {
  FrameReader,
  FrameWriter,
  MAX_PENDING_WRITE,
  type Transport,
} from "../../protocol/channel.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { pipe } from "../_pipe.ts";

Deno.test("frames written in a burst arrive in order, in fewer writes than frames", async () => {
  const [a, b] = pipe();
  let writes = 0;
  const counting: Transport = {
    read: (p) => a.read(p),
    write: (p) => (writes++, a.write(p)),
    close: () => a.close(),
  };
  const writer = new FrameWriter(counting);
  for (let i = 1; i <= 100; i++) writer.send(new TextEncoder().encode(`frame ${i}`));
  await writer.drained();
  assert.ok(writes < 100, `${writes} writes for 100 frames`);
  const reader = new FrameReader(b);
  for (let i = 1; i <= 100; i++) {
    assert.equal(new TextDecoder().decode((await reader.next())!), `frame ${i}`);
  }
  a.close();
  assert.equal(await reader.next(), null);
});

Deno.test("a peer that never reads is cut off once MAX_PENDING_WRITE bytes wait", () => {
  // A transport whose writes never complete: everything sent stays queued.
  const stuck: Transport = {
    read: () => new Promise(() => {}),
    write: () => new Promise(() => {}),
    close: () => {},
  };
  const writer = new FrameWriter(stuck);
  const body = new Uint8Array(64 * 1024);
  let sent = 0;
  assert.throws(() => {
    while (true) {
      writer.send(body);
      sent += body.length + 4;
    }
  }, (e) => e instanceof ProtocolError && e.code === "slow_reader");
  assert.ok(sent <= MAX_PENDING_WRITE && sent > MAX_PENDING_WRITE - 2 * body.length);
  assert.throws(() => writer.send(new Uint8Array(1)), ProtocolError);
});

Deno.test("a stream that ends inside a frame is a ProtocolError, between frames a clean end", async () => {
  const [a, b] = pipe();
  await a.write(new Uint8Array([0, 0, 0, 5, 1, 2]));
  a.close();
  await assert.rejects(
    new FrameReader(b).next(),
    (e) => e instanceof ProtocolError && e.code === "truncated_frame",
  );
});

Deno.test("frames filled through reserve() arrive intact, across buffer growth and buffer reuse", async () => {
  const [a, b] = pipe();
  const writer = new FrameWriter(a);
  const reader = new FrameReader(b);
  const frame = (round: number, i: number) =>
    new TextEncoder().encode(`round ${round} frame ${i} `.repeat(1 + (i % 7)));
  // Round 0 grows the first buffer several times in one turn; later rounds reuse the buffer
  // of the write before, which must not disturb bytes already handed to the transport.
  for (let round = 0; round < 4; round++) {
    const count = round === 0 ? 200 : 20;
    for (let i = 0; i < count; i++) {
      const body = frame(round, i);
      if (i % 2 === 0) writer.reserve(body.length).set(body);
      else writer.send(body);
    }
    await writer.drained();
    for (let i = 0; i < count; i++) {
      assert.deepEqual(await reader.next(), frame(round, i), `round ${round}, frame ${i}`);
    }
  }
  assert.equal(writer.pendingBytes, 0);
  assert.throws(() => writer.reserve(0), RangeError);
  a.close();
  assert.equal(await reader.next(), null);
});
