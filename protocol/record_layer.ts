// Per-connection record state of PROTOCOL §3: the implicit sequence numbers, one per
// direction, that make a replayed, dropped or reordered record fail its MAC.
// Each direction's keys are prepared once (RecordCipher: AES key schedule and HMAC pads), not
// per record, which made small records several times cheaper (bench/record_bench.ts).
import { type CryptoEngine, RecordCipher, sealedLength } from "../crypto/mod.ts";
import { MAX_RECORDS } from "./limits.ts";
import type { SessionKeys } from "./handshake.ts";
import { ProtocolError } from "./errors.ts";

/** Seals outgoing and opens incoming records in order, counting each direction. */
export class RecordLayer {
  #sendSeq = 0;
  #receiveSeq = 0;
  readonly #sealer: RecordCipher;
  readonly #opener: RecordCipher;

  constructor(crypto: CryptoEngine, keys: SessionKeys) {
    this.#sealer = new RecordCipher(crypto, keys.send);
    this.#opener = new RecordCipher(crypto, keys.receive);
  }

  /** Records sealed so far (the next send's seq). */
  get sent(): number {
    return this.#sendSeq;
  }

  /** Records opened so far (the next receive's seq). */
  get received(): number {
    return this.#receiveSeq;
  }

  /**
   * Seals the next outgoing record into the place `into.reserve(length)` gives for it (the
   * frame writer's buffer, so the record has no array of its own); ProtocolError once 2^32
   * records were sent (§3, no rekeying: the connection must close), checked before anything is
   * reserved.
   */
  sealInto(plaintext: Uint8Array, into: { reserve(length: number): Uint8Array }): Uint8Array {
    if (this.#sendSeq >= MAX_RECORDS) {
      throw new ProtocolError("records_exhausted", `${MAX_RECORDS} records sent: must close`);
    }
    const record = into.reserve(sealedLength(plaintext.length));
    this.#sealer.sealInto(this.#sendSeq, plaintext, record);
    this.#sendSeq++;
    return record;
  }

  /**
   * Opens the next incoming record inside `record` (a frame body the caller owns) and returns
   * the plaintext as a view of it; RecordError (one vague failure) if it does not verify. The
   * sequence number advances only on success: the connection must close on failure.
   */
  openInPlace(record: Uint8Array): Uint8Array {
    if (this.#receiveSeq >= MAX_RECORDS) {
      throw new ProtocolError("records_exhausted", `${MAX_RECORDS} records received: must close`);
    }
    const plaintext = this.#opener.openInPlace(this.#receiveSeq, record);
    this.#receiveSeq++;
    return plaintext;
  }

  /** Wipes both directions' keys and frees native state; the layer is unusable afterwards. */
  dispose(): void {
    this.#sealer.dispose();
    this.#opener.dispose();
  }
}
