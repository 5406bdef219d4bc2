// Frames over a byte stream: a reader that yields frame bodies and a writer that sends frames
// in order, coalescing those queued while a write is in flight into one write. Transport-
// agnostic (a Deno.Conn fits the interface), so the library stays free of sockets.
import { FrameDecoder } from "./frame.ts";
import { FRAME_HEADER, MAX_FRAME } from "./limits.ts";
import { ProtocolError } from "./errors.ts";

/**
 * The slice of a Deno.Conn that framing needs. `write` must be done with `p` once its promise
 * resolves (the writer reuses the buffer), as a socket write is.
 */
export interface Transport {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Most bytes read from the transport per call. */
export const READ_CHUNK = 64 * 1024;
/**
 * Bytes of a reader's first read buffer. An idle connection holds its buffer for as long as its
 * read is pending, so a 64 KiB buffer per connection was most of a server's memory per idle
 * session (docs/PERFORMANCE.md has the before and after). A reader starts small and doubles up
 * to READ_CHUNK whenever a read fills it, so a busy connection still reads big chunks.
 */
export const FIRST_READ_CHUNK = 2 * 1024;
/**
 * Bytes a peer may leave unread in our send queue before we give up on it: a client that
 * never reads cannot make the server buffer without bound (§5's bounded memory).
 */
export const MAX_PENDING_WRITE = 4 * MAX_FRAME;
/** Smallest write buffer a writer allocates; most batches of chat-sized frames fit. */
export const FIRST_WRITE_BUFFER = 1024;
/**
 * A written buffer up to this size is kept for the next batch, so a busy connection does not
 * allocate per write (a fresh Uint8Array is not free in Deno); larger ones are let go.
 */
export const MAX_KEPT_WRITE_BUFFER = 16 * 1024;

/** Reads frames off a transport; `next()` resolves to a body, or null at a clean end of stream. */
export class FrameReader {
  readonly decoder: FrameDecoder;
  readonly #transport: Transport;
  #chunk = new Uint8Array(FIRST_READ_CHUNK);
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
      if (n === this.#chunk.length && n < READ_CHUNK) {
        this.#chunk = new Uint8Array(Math.min(2 * n, READ_CHUNK));
      }
    }
    return this.#queue[this.#head++]!;
  }
}

/**
 * Sends frames in order. `send()` and `reserve()` never wait: frames queued while a write is in
 * flight go out together in the next write (fewer syscalls under load). `drained()` resolves
 * once all queued bytes are written. A peer that lets MAX_PENDING_WRITE bytes pile up is cut
 * off. Frames are laid out, headers included, in one buffer per write as they are queued.
 */
export class FrameWriter {
  readonly #transport: Transport;
  /** Frames queued for the next write, headers included, in #buffer[0, #fill). */
  #buffer: Uint8Array | undefined;
  #fill = 0;
  /** The last written buffer, reused for the next batch. */
  #spare: Uint8Array | undefined;
  /** Bytes queued or being written. */
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
    this.reserve(body.length).set(body);
  }

  /**
   * Queues a frame of `length` bytes and returns the place of its body in the write buffer,
   * for the caller to fill at once (the record layer seals straight into it): before its next
   * `reserve()` or `send()`, and before awaiting anything. Throws like `send()`.
   */
  reserve(length: number): Uint8Array {
    if (this.#error !== undefined) throw this.#error;
    if (!Number.isInteger(length) || length < 1 || length > MAX_FRAME) {
      throw new RangeError(`frame body of ${length} bytes is outside 1..MAX_FRAME (${MAX_FRAME})`);
    }
    const size = FRAME_HEADER + length;
    if (this.#pendingBytes + size > MAX_PENDING_WRITE) {
      this.#error = new ProtocolError(
        "slow_reader",
        `peer left ${this.#pendingBytes + size} bytes unread (limit ${MAX_PENDING_WRITE})`,
      );
      throw this.#error;
    }
    const buffer = this.#room(size);
    const at = this.#fill;
    buffer[at] = length >>> 24;
    buffer[at + 1] = (length >>> 16) & 0xff;
    buffer[at + 2] = (length >>> 8) & 0xff;
    buffer[at + 3] = length & 0xff;
    this.#fill = at + size;
    this.#pendingBytes += size;
    this.#writing ??= this.#flush();
    return buffer.subarray(at + FRAME_HEADER, at + size);
  }

  /** The write buffer with room for `size` more bytes: the current one, the spare, or a bigger one. */
  #room(size: number): Uint8Array {
    const need = this.#fill + size;
    if (this.#buffer !== undefined && this.#buffer.length >= need) return this.#buffer;
    if (this.#buffer === undefined && this.#spare !== undefined && this.#spare.length >= need) {
      this.#buffer = this.#spare;
      this.#spare = undefined;
      return this.#buffer;
    }
    const grown = new Uint8Array(
      Math.max(need, FIRST_WRITE_BUFFER, 2 * (this.#buffer?.length ?? 0)),
    );
    if (this.#buffer !== undefined) grown.set(this.#buffer.subarray(0, this.#fill));
    this.#buffer = grown;
    return grown;
  }

  /** Resolves when every queued frame has been written; rejects with the write error. */
  async drained(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#error !== undefined) throw this.#error;
  }

  /**
   * Writes everything queued as one buffer per write, until nothing is left. The first write
   * waits one microtask so that every frame sent in the same turn of the event loop joins it:
   * a group commit that resolves many MSGs at once sends each connection its ACKs and DLVs in
   * one write instead of one write and then the rest, which saves server CPU per delivered
   * message under load (docs/PERFORMANCE.md).
   */
  async #flush(): Promise<void> {
    try {
      await undefined;
      while (this.#fill > 0) {
        const buffer = this.#buffer!;
        const length = this.#fill;
        this.#buffer = undefined;
        this.#fill = 0;
        let done = 0;
        while (done < length) done += await this.#transport.write(buffer.subarray(done, length));
        this.#pendingBytes -= length;
        this.bytesWritten += length;
        if (buffer.length <= MAX_KEPT_WRITE_BUFFER) this.#spare = buffer;
      }
    } catch (err) {
      this.#error ??= err;
      this.#buffer = undefined;
      this.#fill = 0;
      this.#pendingBytes = 0;
    } finally {
      this.#writing = undefined;
    }
  }
}
