// Frames over a byte stream: a reader that yields frame bodies and a writer that sends frames
// in order, coalescing those queued while a write is in flight into one write. Transport-
// agnostic (a Deno.Conn fits the interface), so the library stays free of sockets.
import { FrameDecoder } from "./frame.ts";
import { FRAME_HEADER, MAX_FRAME } from "./limits.ts";
import { ProtocolError } from "./errors.ts";

/** The slice of a Deno.Conn that framing needs. */
export interface Transport {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Bytes read from the transport per call. */
export const READ_CHUNK = 64 * 1024;
/**
 * Bytes a peer may leave unread in our send queue before we give up on it: a client that
 * never reads cannot make the server buffer without bound (§5's bounded memory).
 */
export const MAX_PENDING_WRITE = 4 * MAX_FRAME;

/** Reads frames off a transport; `next()` resolves to a body, or null at a clean end of stream. */
export class FrameReader {
  readonly decoder: FrameDecoder;
  readonly #transport: Transport;
  readonly #chunk = new Uint8Array(READ_CHUNK);
  #queue: Uint8Array[] = [];
  #head = 0;
  /** Bytes read so far, for traces and accounting. */
  bytesRead = 0;

  constructor(transport: Transport, maxFrame = MAX_FRAME) {
    this.#transport = transport;
    this.decoder = new FrameDecoder({ maxFrame });
  }

  /**
   * The next frame body, or null when the peer closed between frames. ProtocolError for a
   * framing violation or for a stream that ends inside a frame.
   */
  async next(): Promise<Uint8Array | null> {
    while (this.#head >= this.#queue.length) {
      const n = await this.#transport.read(this.#chunk);
      if (n === null) {
        if (this.decoder.bufferedBytes > 0) {
          throw new ProtocolError(
            "truncated_frame",
            `stream ended inside a frame (${this.decoder.bufferedBytes} bytes buffered)`,
          );
        }
        return null;
      }
      this.bytesRead += n;
      this.#queue = this.decoder.push(this.#chunk.subarray(0, n));
      this.#head = 0;
    }
    return this.#queue[this.#head++]!;
  }
}

/**
 * Sends frames in order. `send()` never waits: frames queued while a write is in flight go
 * out together in the next write (fewer syscalls under load). `drained()` resolves once all
 * queued bytes are written. A peer that lets MAX_PENDING_WRITE bytes pile up is cut off.
 */
export class FrameWriter {
  readonly #transport: Transport;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #writing: Promise<void> | undefined;
  #error: unknown;
  bytesWritten = 0;

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Bytes waiting to be written. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** The write error that stopped this writer, if any. */
  get error(): unknown {
    return this.#error;
  }

  /** Queues one frame (body behind its u32 length); throws if the writer has failed. */
  send(body: Uint8Array): void {
    if (this.#error !== undefined) throw this.#error;
    if (body.length < 1 || body.length > MAX_FRAME) {
      throw new RangeError(
        `frame body of ${body.length} bytes is outside 1..MAX_FRAME (${MAX_FRAME})`,
      );
    }
    const header = new Uint8Array(FRAME_HEADER);
    new DataView(header.buffer).setUint32(0, body.length);
    this.#pending.push(header, body);
    this.#pendingBytes += FRAME_HEADER + body.length;
    if (this.#pendingBytes > MAX_PENDING_WRITE) {
      this.#error = new ProtocolError(
        "slow_reader",
        `peer left ${this.#pendingBytes} bytes unread (limit ${MAX_PENDING_WRITE})`,
      );
      throw this.#error;
    }
    this.#writing ??= this.#flush();
  }

  /** Resolves when every queued frame has been written; rejects with the write error. */
  async drained(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#error !== undefined) throw this.#error;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const parts = this.#pending;
        this.#pending = [];
        let bytes: Uint8Array;
        if (parts.length === 1) {
          bytes = parts[0]!;
        } else {
          let length = 0;
          for (const p of parts) length += p.length;
          bytes = new Uint8Array(length);
          let at = 0;
          for (const p of parts) {
            bytes.set(p, at);
            at += p.length;
          }
        }
        let at = 0;
        while (at < bytes.length) at += await this.#transport.write(bytes.subarray(at));
        this.#pendingBytes -= bytes.length;
        this.bytesWritten += bytes.length;
      }
    } catch (err) {
      this.#error ??= err;
      this.#pending = [];
      this.#pendingBytes = 0;
    } finally {
      this.#writing = undefined;
    }
  }
}
