// The §1 frame codec: round trips under random splits, exact limits, and hostile input.

import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder } from "../../protocol/frame.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { FRAME_HEADER, MAX_FRAME, MAX_HANDSHAKE_FRAME } from "../../protocol/limits.ts";
import { Prng } from "../../tools/prng.ts";

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Cuts `bytes` into chunks of random sizes (empty ones too), each in a buffer reused after use. */
function* randomChunks(prng: Prng, bytes: Uint8Array, maxChunk: number): Generator<Uint8Array> {
  const scratch = new Uint8Array(maxChunk);
  let at = 0;
  while (at < bytes.length) {
    const size = Math.min(prng.int(maxChunk + 1), bytes.length - at);
    scratch.set(bytes.subarray(at, at + size));
    yield scratch.subarray(0, size);
    scratch.fill(0xee); // a reading loop would overwrite its buffer: frames must be copies
    at += size;
  }
}

/** A frame body size, skewed towards the small sizes of real traffic but reaching the limit. */
function randomSize(prng: Prng, max: number): number {
  switch (prng.int(4)) {
    case 0:
      return prng.range(1, 8);
    case 1:
      return prng.range(1, 300);
    case 2:
      return prng.range(1, 20_000);
    default:
      return prng.range(Math.max(1, max - 5), max);
  }
}

function expectViolation(fn: () => unknown, code: string, message: string): ProtocolError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError, got ${caught}`);
  assert.equal(caught.code, code);
  assert.equal(caught.message, message);
  return caught;
}

Deno.test("encodeFrame() writes a big-endian u32 length then a copy of the body", () => {
  const body = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x01]);
  const frame = encodeFrame(body);
  assert.deepEqual(frame, new Uint8Array([0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x01]));
  body[0] = 0;
  assert.equal(frame[4], 0xde);
  const big = encodeFrame(new Uint8Array(0x010203));
  assert.deepEqual(big.subarray(0, 4), new Uint8Array([0, 1, 2, 3]));
});

Deno.test("encodeFrame() accepts 1 and MAX_FRAME bytes and refuses 0 and MAX_FRAME + 1", () => {
  assert.equal(encodeFrame(new Uint8Array(1)).length, FRAME_HEADER + 1);
  assert.equal(encodeFrame(new Uint8Array(MAX_FRAME)).length, FRAME_HEADER + MAX_FRAME);
  assert.throws(() => encodeFrame(new Uint8Array(0)), RangeError);
  assert.throws(
    () => encodeFrame(new Uint8Array(MAX_FRAME + 1)),
    new RangeError("frame body of 1048577 bytes is outside 1..MAX_FRAME (1048576)"),
  );
});

Deno.test("encodeFrame() honours a lower limit but never one above MAX_FRAME", () => {
  assert.equal(encodeFrame(new Uint8Array(8192), MAX_HANDSHAKE_FRAME).length, 8196);
  assert.throws(
    () => encodeFrame(new Uint8Array(8193), MAX_HANDSHAKE_FRAME),
    new RangeError("frame body of 8193 bytes is outside 1..MAX_HANDSHAKE_FRAME (8192)"),
  );
  assert.throws(() => encodeFrame(new Uint8Array(MAX_FRAME + 1), 2 * MAX_FRAME), RangeError);
});

Deno.test("FrameDecoder reads a hand-built stream, and encodeFrame() rebuilds it byte for byte", () => {
  const stream = new Uint8Array([0, 0, 0, 1, 0x41, 0, 0, 0, 3, 0x61, 0x62, 0x63]);
  const frames = new FrameDecoder().push(stream);
  assert.deepEqual(frames, [new Uint8Array([0x41]), new Uint8Array([0x61, 0x62, 0x63])]);
  assert.deepEqual(concat(frames.map((f) => encodeFrame(f))), stream);
});

Deno.test("FrameDecoder returns every frame, in order, under seeded random splits", () => {
  for (const seed of [1, 2, 3, 0xc0ffee, 20240601]) {
    const prng = new Prng(seed);
    const bodies = Array.from({ length: 60 }, () => prng.bytes(randomSize(prng, 70_000)));
    const stream = concat(bodies.map((b) => encodeFrame(b)));
    for (const maxChunk of [1, 3, 7, 4096, 100_000]) {
      if (maxChunk === 1 && seed !== 1) continue; // byte-at-a-time once is enough
      const decoder = new FrameDecoder();
      const got: Uint8Array[] = [];
      for (const chunk of randomChunks(prng, stream, maxChunk)) {
        got.push(...decoder.push(chunk));
        assert.ok(decoder.bufferedBytes <= MAX_FRAME + FRAME_HEADER);
      }
      assert.equal(got.length, bodies.length, `seed ${seed}, chunks up to ${maxChunk}`);
      got.forEach((body, i) => assert.deepEqual(body, bodies[i], `seed ${seed} frame ${i}`));
      assert.equal(decoder.bufferedBytes, 0);
      assert.equal(decoder.reservedBytes, 0);
    }
  }
});

Deno.test("FrameDecoder returns many frames packed into one chunk", () => {
  const bodies = Array.from({ length: 1000 }, (_, i) => new Uint8Array([i & 0xff, i >> 8]));
  const frames = new FrameDecoder().push(concat(bodies.map((b) => encodeFrame(b))));
  assert.deepEqual(frames, bodies);
});

Deno.test("FrameDecoder returns copies that survive the caller reusing its buffer", () => {
  const buffer = encodeFrame(new Uint8Array([1, 2, 3]));
  const [frame] = new FrameDecoder().push(buffer);
  buffer.fill(9);
  assert.deepEqual(frame, new Uint8Array([1, 2, 3]));
});

Deno.test("FrameDecoder accepts lengths 1 and MAX_FRAME and refuses MAX_FRAME + 1", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(encodeFrame(new Uint8Array([7]))), [new Uint8Array([7])]);
  const full = new Uint8Array(MAX_FRAME).fill(0x5a);
  assert.deepEqual(decoder.push(encodeFrame(full)), [full]);
  expectViolation(
    () => decoder.push(new Uint8Array([0x00, 0x10, 0x00, 0x01])),
    "frame_too_large",
    "frame length 1048577 exceeds MAX_FRAME (1048576)",
  );
});

Deno.test("FrameDecoder before the handshake accepts 8192 bytes and refuses 8193", () => {
  const decoder = new FrameDecoder({ maxFrame: MAX_HANDSHAKE_FRAME });
  assert.equal(decoder.maxFrame, MAX_HANDSHAKE_FRAME);
  const hello = new Uint8Array(MAX_HANDSHAKE_FRAME).fill(1);
  assert.deepEqual(decoder.push(encodeFrame(hello)), [hello]);
  expectViolation(
    () => decoder.push(new Uint8Array([0, 0, 0x20, 0x01])),
    "frame_too_large",
    "frame length 8193 exceeds MAX_HANDSHAKE_FRAME (8192)",
  );
});

Deno.test("FrameDecoder takes MAX_FRAME frames once maxFrame is raised after the handshake", () => {
  const decoder = new FrameDecoder({ maxFrame: MAX_HANDSHAKE_FRAME });
  decoder.push(encodeFrame(new Uint8Array(100)));
  decoder.maxFrame = MAX_FRAME;
  const record = new Uint8Array(MAX_HANDSHAKE_FRAME + 1);
  assert.deepEqual(decoder.push(encodeFrame(record)), [record]);
});

Deno.test("FrameDecoder refuses a zero length as empty_frame", () => {
  expectViolation(
    () => new FrameDecoder().push(new Uint8Array([0, 0, 0, 0, 1, 2])),
    "empty_frame",
    "frame length 0 is below the minimum (1)",
  );
});

Deno.test("FrameDecoder refuses a 4 GiB length after its 4th byte, reserving nothing", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(new Uint8Array([0xff, 0xff, 0xff])), []);
  assert.equal(decoder.bufferedBytes, 3);
  assert.equal(decoder.reservedBytes, 0);
  expectViolation(
    () => decoder.push(new Uint8Array([0xff])),
    "frame_too_large",
    "frame length 4294967295 exceeds MAX_FRAME (1048576)",
  );
  assert.equal(decoder.reservedBytes, 0);
  assert.ok(decoder.bufferedBytes <= FRAME_HEADER);
});

Deno.test("FrameDecoder stays failed after a violation", () => {
  const decoder = new FrameDecoder();
  const first = expectViolation(
    () => decoder.push(new Uint8Array([0, 0, 0, 0])),
    "empty_frame",
    "frame length 0 is below the minimum (1)",
  );
  assert.equal(decoder.error, first);
  assert.throws(() => decoder.push(encodeFrame(new Uint8Array([1]))), (e) => e === first);
  assert.throws(() => decoder.push(new Uint8Array(0)), (e) => e === first);
});

Deno.test("FrameDecoder does not reserve a claimed length before the body arrives", () => {
  const decoder = new FrameDecoder();
  // A peer claims 1 MiB, then trickles: memory follows what arrived, not what was claimed.
  decoder.push(new Uint8Array([0x00, 0x10, 0x00, 0x00]));
  assert.ok(decoder.reservedBytes <= 16_384, `reserved ${decoder.reservedBytes}`);
  let received = 0;
  while (received < 100_000) {
    decoder.push(new Uint8Array(997));
    received += 997;
    assert.equal(decoder.bufferedBytes, received);
    assert.ok(decoder.reservedBytes <= Math.max(16_384, 2 * received));
  }
});

Deno.test("FrameDecoder assembles a MAX_FRAME body from tiny chunks with geometric growth", () => {
  const body = new Prng(7).bytes(MAX_FRAME);
  const stream = encodeFrame(body);
  const decoder = new FrameDecoder();
  let growths = 0;
  let lastReserved = 0;
  let frames: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += 13) {
    frames = decoder.push(stream.subarray(at, at + 13));
    if (decoder.reservedBytes > lastReserved) growths++;
    lastReserved = decoder.reservedBytes;
  }
  assert.deepEqual(frames, [body]);
  // Doubling from 16 KiB to 1 MiB: each byte is copied a bounded number of times, not O(n).
  assert.ok(growths <= 8, `${growths} reallocations`);
});

Deno.test("FrameDecoder.maxFrame refuses limits outside 1..MAX_FRAME", () => {
  for (const bad of [0, -1, 1.5, MAX_FRAME + 1, Number.NaN]) {
    assert.throws(() => new FrameDecoder({ maxFrame: bad }), RangeError);
    assert.throws(() => {
      new FrameDecoder().maxFrame = bad;
    }, RangeError);
  }
  assert.equal(new FrameDecoder({ maxFrame: 1 }).maxFrame, 1);
  assert.equal(new FrameDecoder().maxFrame, MAX_FRAME);
});

Deno.test("FrameDecoder survives random garbage: only ProtocolError, never over-reserving", () => {
  const prng = new Prng(0xbadf00d);
  let violations = 0;
  for (let round = 0; round < 300; round++) {
    const max = prng.pick([MAX_HANDSHAKE_FRAME, MAX_FRAME, prng.range(1, 300)]);
    const decoder = new FrameDecoder({ maxFrame: max });
    // Garbage, sometimes after valid frames; small lengths now and then so bodies complete.
    const parts: Uint8Array[] = [];
    for (let i = prng.int(3); i > 0; i--) parts.push(encodeFrame(prng.bytes(prng.range(1, max))));
    const garbage = prng.bytes(prng.range(0, 3000));
    if (prng.int(2) === 0 && garbage.length >= 4) garbage.set([0, 0, 0, prng.int(4)], 0);
    parts.push(garbage);
    try {
      for (const chunk of randomChunks(prng, concat(parts), 600)) {
        for (const frame of decoder.push(chunk)) {
          assert.ok(frame.length >= 1 && frame.length <= max);
        }
        assert.ok(decoder.bufferedBytes <= max + FRAME_HEADER);
        assert.ok(decoder.reservedBytes <= max);
      }
    } catch (e) {
      assert.ok(e instanceof ProtocolError, `round ${round}: ${e}`);
      assert.ok(e.code === "frame_too_large" || e.code === "empty_frame");
      assert.ok(decoder.reservedBytes <= max);
      violations++;
    }
  }
  assert.ok(violations > 100, `only ${violations} violations: the garbage is not hostile enough`);
});
