// A secure session over a transport: the handshake exchange of §2 (for either side), then
// §3 records carrying §4 messages. The shells (server/, client/) add sockets, timeouts and
// the request logic; this file owns the order of bytes on the wire.
import { type CryptoEngine, toHex } from "../crypto/mod.ts";
import { IV_LENGTH, MAC_LENGTH } from "../crypto/record.ts";
import { type ClientMessage, messageText, type ServerMessage } from "./messages.ts";
import { FrameReader, FrameWriter, type Transport } from "./channel.ts";
import {
  ClientHandshake,
  type ClientHandshakeOptions,
  type ClientHandshakeResult,
  ServerHandshake,
  type ServerHandshakeOptions,
  type ServerHandshakeOutcome,
  type SessionKeys,
} from "./handshake.ts";
import { HandshakeError } from "./errors.ts";
import { MAX_FRAME, MAX_HANDSHAKE_FRAME } from "./limits.ts";
import { RecordLayer } from "./record_layer.ts";
import type { KexGroup } from "../crypto/mod.ts";

/** One record as the educational trace shows it: sizes, IV and seq, never keys or MACs' values. */
export interface RecordTrace {
  readonly direction: "send" | "receive";
  readonly seq: number;
  /** The 3-letter code at the start of the plaintext. */
  readonly code: string;
  readonly plaintextBytes: number;
  readonly iv: string;
  readonly ciphertextBytes: number;
  readonly macBytes: number;
  readonly recordBytes: number;
}

export type RecordTraceSink = (event: RecordTrace) => void;

const encoder = new TextEncoder();
/**
 * Where sendMessage() encodes a message before sealing it: shared, since JS runs one send at
 * a time and the seal copies it out at once, instead of a fresh array per message.
 */
const scratch = new Uint8Array(MAX_FRAME);

function traceOf(
  direction: "send" | "receive",
  seq: number,
  plaintext: Uint8Array,
  record: Uint8Array,
): RecordTrace {
  return {
    direction,
    seq,
    code: new TextDecoder().decode(plaintext.subarray(0, 3)).replace(/[^\x20-\x7e]/g, "?"),
    plaintextBytes: plaintext.length,
    iv: toHex(record.subarray(0, IV_LENGTH)),
    ciphertextBytes: record.length - IV_LENGTH - MAC_LENGTH,
    macBytes: MAC_LENGTH,
    recordBytes: record.length,
  };
}

/** Records in both directions over one transport, after a completed handshake. */
export class SecureSession {
  readonly #records: RecordLayer;
  #disposed = false;
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
  /** Set to receive a trace event per record; may be changed at any time. */
  trace: RecordTraceSink | undefined;

  constructor(
    reader: FrameReader,
    writer: FrameWriter,
    crypto: CryptoEngine,
    keys: SessionKeys,
    trace?: RecordTraceSink,
  ) {
    this.reader = reader;
    this.writer = writer;
    this.#records = new RecordLayer(crypto, keys);
    this.trace = trace;
    reader.decoder.maxFrame = MAX_FRAME;
  }

  /**
   * Seals `plaintext` as the next record and queues it (never waits; see FrameWriter). The
   * record is sealed straight into the writer's buffer, with no array of its own.
   */
  send(plaintext: Uint8Array): void {
    if (this.#disposed) throw new TypeError("session used after dispose()");
    const seq = this.#records.sent;
    const record = this.#records.sealInto(plaintext, this.writer);
    this.trace?.(traceOf("send", seq, plaintext, record));
  }

  /** Sends a §4 message: its UTF-8 text is encoded into a shared scratch buffer, then sealed. */
  sendMessage(message: ClientMessage | ServerMessage): void {
    const text = messageText(message);
    // A UTF-8 encoding is at most 3 bytes per UTF-16 unit; longer texts take the slow path.
    if (text.length * 3 > scratch.length) {
      this.send(encoder.encode(text));
      return;
    }
    const { written } = encoder.encodeInto(text, scratch);
    this.send(scratch.subarray(0, written));
  }

  /**
   * The next record's plaintext, or null when the peer closed between frames. Throws
   * RecordError (one vague failure) for a record that does not open, ProtocolError for a
   * framing violation: the caller closes the connection, sending nothing back (§3).
   */
  async receive(): Promise<Uint8Array | null> {
    const record = await this.reader.next();
    if (record === null) return null;
    const seq = this.#records.received;
    // The frame body is ours alone: it is decrypted where it lies, and the plaintext is a view.
    const plaintext = this.#records.openInPlace(record);
    this.trace?.(traceOf("receive", seq, plaintext, record));
    return plaintext;
  }

  /**
   * Wipes the record keys and frees their native state once the connection is over; later
   * sends and receives throw. Sessions never disposed are freed when collected.
   */
  dispose(): void {
    this.#disposed = true;
    this.#records.dispose();
  }

  /** Records sealed and opened so far. */
  get counts(): { sent: number; received: number } {
    return { sent: this.#records.sent, received: this.#records.received };
  }
}

/**
 * Client side of §2 over `transport`: sends the ClientHello, reads the reply and checks it.
 * `checkPin` sees the server's fingerprint before any record is sent and may throw to refuse.
 */
export async function clientHandshake(
  transport: Transport,
  options: ClientHandshakeOptions & {
    checkPin?: (result: ClientHandshakeResult) => void | Promise<void>;
    recordTrace?: RecordTraceSink;
  },
): Promise<{ session: SecureSession; result: ClientHandshakeResult }> {
  const handshake = new ClientHandshake(options);
  const reader = new FrameReader(transport, MAX_FRAME);
  const writer = new FrameWriter(transport);
  writer.send(handshake.hello());
  await writer.drained();
  const reply = await reader.next();
  if (reply === null) {
    throw new HandshakeError("closed", "the server closed the connection during the handshake");
  }
  const result = handshake.finish(reply);
  await options.checkPin?.(result);
  const { crypto, recordTrace } = options;
  return { session: new SecureSession(reader, writer, crypto, result.keys, recordTrace), result };
}

/** What the server learns from a completed handshake. */
export interface ServerHandshakeResult {
  readonly session: SecureSession;
  readonly group: KexGroup;
  readonly transcriptHash: Uint8Array;
}

/** Computes the answer to a ClientHello elsewhere (a worker); undefined when it cannot take more. */
export type HandshakeResponder = (
  hello: Uint8Array,
) => Promise<ServerHandshakeOutcome> | undefined;

/**
 * Server side of §2 over `transport`: reads one ClientHello (at most MAX_HANDSHAKE_FRAME bytes),
 * answers with a ServerHello or an §2.3 ERR frame. On ERR it throws HandshakeError once the
 * frame is written; the caller closes. A failure of the server's own, or a `respond` that is
 * full (code `busy`), throws HandshakeError with nothing written. Null if the client left
 * before saying anything. `respond` computes the answer elsewhere; by default it is computed
 * here, from `options`.
 */
export async function serverHandshake(
  transport: Transport,
  options: ServerHandshakeOptions & { recordTrace?: RecordTraceSink; respond?: HandshakeResponder },
): Promise<ServerHandshakeResult | null> {
  const reader = new FrameReader(transport, MAX_HANDSHAKE_FRAME);
  const writer = new FrameWriter(transport);
  const hello = await reader.next();
  if (hello === null) return null;
  const answering = options.respond
    ? options.respond(hello)
    : Promise.resolve(new ServerHandshake(options).respond(hello));
  if (answering === undefined) throw new HandshakeError("busy", "too many handshakes in flight");
  const outcome = await answering;
  if (!outcome.ok) {
    if (outcome.reply === undefined) throw outcome.error;
    writer.send(outcome.reply);
    await writer.drained();
    throw outcome.error;
  }
  writer.send(outcome.reply);
  return {
    session: new SecureSession(reader, writer, options.crypto, outcome.keys, options.recordTrace),
    group: outcome.group,
    transcriptHash: outcome.transcriptHash,
  };
}
