// The frame codec of PROTOCOL §1: `length (u32) || body`. Pure: bytes in, bytes out, no sockets.

import { ProtocolError } from "./errors.ts";
import { FRAME_HEADER, MAX_FRAME, MAX_HANDSHAKE_FRAME } from "./limits.ts";

/**
 * Smallest buffer reserved for a frame that arrives in pieces. A length prefix is only a claim:
 * reserving the whole claimed body up front would let a peer pin 1 MiB per connection with four
 * bytes, so the buffer grows by doubling (O(n) copying overall) as the body actually arrives.
 */
const FRAME_BUFFER_FLOOR = 16_384;

/** Options of a {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest body accepted, 1..MAX_FRAME; MAX_FRAME unless given (MAX_HANDSHAKE_FRAME before §2). */
  maxFrame?: number;
}

/**
 * Encodes one frame: u32 big-endian length, then a copy of `body` (§1). `maxFrame` lowers the
 * limit (MAX_HANDSHAKE_FRAME for a hello); it can never raise it above MAX_FRAME.
 */
export function encodeFrame(body: Uint8Array, maxFrame: number = MAX_FRAME): Uint8Array {
  const limit = Math.min(maxFrame, MAX_FRAME);
  if (body.length < 1 || body.length > limit) {
    throw new RangeError(
      `frame body of ${body.length} bytes is outside 1..${limitName(limit)} (${limit})`,
    );
  }
  const frame = new Uint8Array(FRAME_HEADER + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, FRAME_HEADER);
  return frame;
}

/**
 * Streaming decoder of §1 frames. `push` each chunk as it is read; it returns the bodies of all
 * frames the chunk completes, however frames are split across or packed within chunks. Returned
 * bodies are fresh copies the caller may keep; the caller may reuse its chunk buffer.
 *
 * A length of 0 or above `maxFrame` throws a {@link ProtocolError} (`empty_frame`,
 * `frame_too_large`) as soon as the four length bytes are in, before anything is reserved for
 * the body. The decoder then stays failed: every later `push` throws the same error. Frames the
 * failing chunk completed before the violation are dropped with the connection.
 */
export class FrameDecoder {
  #maxFrame: number = MAX_FRAME;
  #error: ProtocolError | undefined;
  /** Length bytes of a frame whose header arrived in pieces. */
  readonly #header = new Uint8Array(FRAME_HEADER);
  #headerFill = 0;
  /** Body of the frame in progress (capacity <= its length), once its header is checked. */
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  #bodyLength = 0;

  constructor(options: FrameDecoderOptions = {}) {
    if (options.maxFrame !== undefined) this.maxFrame = options.maxFrame;
  }

  /** Largest body accepted. Applies to every frame whose length bytes are not complete yet. */
  get maxFrame(): number {
    return this.#maxFrame;
  }

  set maxFrame(value: number) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_FRAME) {
      throw new RangeError(`maxFrame ${value} is outside 1..MAX_FRAME (${MAX_FRAME})`);
    }
    this.#maxFrame = value;
  }

  /** Bytes received but not yet returned as a frame (never more than maxFrame + FRAME_HEADER). */
  get bufferedBytes(): number {
    return this.#headerFill + this.#bodyFill;
  }

  /** Bytes currently reserved for the frame in progress: at most its length, about 2× received. */
  get reservedBytes(): number {
    return this.#body === undefined ? 0 : this.#body.length;
  }

  /** The violation that failed this decoder, if any. */
  get error(): ProtocolError | undefined {
    return this.#error;
  }

  /** Feeds one chunk; returns the bodies of every frame it completes, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#error !== undefined) throw this.#error;
    const frames: Uint8Array[] = [];
    const end = chunk.length;
    let at = 0;
    while (at < end) {
      if (this.#body !== undefined) {
        at = this.#fillBody(chunk, at);
        if (this.#bodyFill === this.#bodyLength) {
          // Capacity only ever grows up to the length, so the buffer is exactly the body.
          frames.push(this.#body);
          this.#body = undefined;
          this.#bodyFill = 0;
        }
        continue;
      }
      let length: number;
      if (this.#headerFill === 0 && end - at >= FRAME_HEADER) {
        length = readU32(chunk, at);
        at += FRAME_HEADER;
      } else {
        const take = Math.min(FRAME_HEADER - this.#headerFill, end - at);
        this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
        this.#headerFill += take;
        at += take;
        if (this.#headerFill < FRAME_HEADER) break;
        this.#headerFill = 0;
        length = readU32(this.#header, 0);
      }
      this.#check(length);
      const available = end - at;
      if (available >= length) {
        frames.push(chunk.slice(at, at + length));
        at += length;
        continue;
      }
      this.#body = new Uint8Array(Math.min(length, Math.max(FRAME_BUFFER_FLOOR, available)));
      this.#bodyLength = length;
      this.#bodyFill = 0;
    }
    return frames;
  }

  /** Copies as much of the pending body as `chunk` holds from `at`; returns the new offset. */
  #fillBody(chunk: Uint8Array, at: number): number {
    const body = this.#body as Uint8Array;
    const take = Math.min(this.#bodyLength - this.#bodyFill, chunk.length - at);
    const needed = this.#bodyFill + take;
    let target = body;
    if (needed > body.length) {
      target = new Uint8Array(Math.min(this.#bodyLength, Math.max(body.length * 2, needed)));
      target.set(body.subarray(0, this.#bodyFill));
      this.#body = target;
    }
    target.set(chunk.subarray(at, at + take), this.#bodyFill);
    this.#bodyFill = needed;
    return at + take;
  }

  /** §1: a length of 0 or above the maximum is a violation; fail for good. */
  #check(length: number): void {
    if (length === 0) {
      this.#fail("empty_frame", "frame length 0 is below the minimum (1)");
    } else if (length > this.#maxFrame) {
      const limit = `${limitName(this.#maxFrame)} (${this.#maxFrame})`;
      this.#fail("frame_too_large", `frame length ${length} exceeds ${limit}`);
    }
  }

  #fail(code: string, message: string): never {
    this.#error = new ProtocolError(code, message);
    this.#headerFill = 0;
    throw this.#error;
  }
}

function readU32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) << 24 |
      (bytes[at + 1] as number) << 16 |
      (bytes[at + 2] as number) << 8 |
      (bytes[at + 3] as number)) >>> 0
  );
}

function limitName(max: number): string {
  if (max === MAX_FRAME) return "MAX_FRAME";
  if (max === MAX_HANDSHAKE_FRAME) return "MAX_HANDSHAKE_FRAME";
  return "maxFrame";
}
