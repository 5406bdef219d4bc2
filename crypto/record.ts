// The record layer of PROTOCOL §3: AES-256-CBC with a fresh random IV, then HMAC-SHA-256
// over seq (u64) || IV || C — encrypt-then-MAC over an implicit sequence number. The AES and
// HMAC work runs on the engine passed in (engine.ts); the record's shape (padding, layout, MAC
// comparison, one failure) is this file's, the same for both engines.
//
// A connection seals and opens thousands of records with the same keys, so RecordCipher
// prepares them once per direction and seals in place into the record buffer
// (docs/PERFORMANCE.md has the figures).
import { constantTimeEqual } from "./bytes.ts";
import type { BlockCipher, CryptoEngine, Mac } from "./engine.ts";

/**
 * A record failed to open (§3). Deliberately one vague message: which check failed
 * (length, MAC, padding) is never revealed, so that no oracle exists.
 */
export class RecordError extends Error {
  override name = "RecordError";
  readonly code = "bad_record";
  constructor() {
    super("record rejected");
  }
}

export const IV_LENGTH = 16;
export const MAC_LENGTH = 32;
export const BLOCK = 16;
/** IV + one block + MAC: the shortest well-formed record (§3). */
export const MIN_RECORD = IV_LENGTH + BLOCK + MAC_LENGTH;
/** Bytes of the implicit sequence number the MAC covers (§3: u64). */
const SEQ_LENGTH = 8;

/** Keys for one direction of traffic. */
export interface DirectionKeys {
  readonly enc: Uint8Array;
  readonly mac: Uint8Array;
}

function checkKeys(keys: DirectionKeys): void {
  if (keys.enc.length !== 32 || keys.mac.length !== 32) {
    throw new RangeError(
      `record keys must be 32 bytes each, got ${keys.enc.length} and ${keys.mac.length}`,
    );
  }
}

/** Bytes of the record that seals `plaintextLength` bytes: IV, padded ciphertext, MAC (§3). */
export function sealedLength(plaintextLength: number): number {
  return IV_LENGTH + (plaintextLength & ~(BLOCK - 1)) + BLOCK + MAC_LENGTH;
}

/**
 * The cipher and MAC work of one direction, with its keys prepared once: the HMAC's pad states
 * at once, each CBC context when first used (a connection may never open, or never seal).
 */
class DirectionCrypto {
  readonly #encKey: Uint8Array;
  #encryptor: BlockCipher | undefined;
  #decryptor: BlockCipher | undefined;
  readonly #mac: Mac;
  readonly #crypto: CryptoEngine;

  constructor(crypto: CryptoEngine, keys: DirectionKeys) {
    this.#crypto = crypto;
    this.#encKey = keys.enc.slice();
    this.#mac = crypto.hmac(keys.mac);
  }

  /** HMAC(mac, seq || ivAndC) into the 32 bytes of `out`. */
  mac(seq: Uint8Array, ivAndC: Uint8Array, out: Uint8Array): void {
    this.#mac.macInto(out, seq, ivAndC);
  }

  /** CBC-encrypts record[16, end) in place, record[0, 16) being the IV. */
  encrypt(record: Uint8Array, end: number): void {
    const body = record.subarray(IV_LENGTH, end);
    this.#encryptor ??= this.#crypto.cbc(this.#encKey, true);
    this.#encryptor.run(record.subarray(0, IV_LENGTH), body, body);
  }

  /** CBC-decrypts record[16, end) in place, record[0, 16) being the IV (left as it is). */
  decrypt(record: Uint8Array, end: number): void {
    const body = record.subarray(IV_LENGTH, end);
    this.#decryptor ??= this.#crypto.cbc(this.#encKey, false);
    this.#decryptor.run(record.subarray(0, IV_LENGTH), body, body);
  }

  dispose(): void {
    this.#encKey.fill(0);
    this.#encryptor?.dispose();
    this.#decryptor?.dispose();
    this.#mac.dispose();
  }
}

/**
 * One direction's keys prepared for many records: seal() and open() of §3 without redoing
 * the key setup per record, on the engine it is given. Not safe to share between concurrent
 * users, which JS never has; the caller supplies the sequence numbers (see RecordLayer).
 * dispose() wipes the keys and frees native state.
 */
export class RecordCipher {
  readonly #engine: DirectionCrypto;
  #disposed = false;
  readonly #seq = new Uint8Array(SEQ_LENGTH);
  readonly #seqView = new DataView(this.#seq.buffer);
  readonly #tag = new Uint8Array(MAC_LENGTH);

  constructor(crypto: CryptoEngine, keys: DirectionKeys) {
    checkKeys(keys);
    this.#engine = new DirectionCrypto(crypto, keys);
  }

  /** HMAC(mac, seq || IV || C) into `out`; `ivAndC` is IV || C, contiguous in a record. */
  #mac(seq: number, ivAndC: Uint8Array, out: Uint8Array): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`bad sequence number ${seq}`);
    this.#seqView.setUint32(0, Math.floor(seq / 2 ** 32));
    this.#seqView.setUint32(4, seq >>> 0);
    this.#engine.mac(this.#seq, ivAndC, out);
  }

  /**
   * seal (§3): IV || AES-256-CBC(enc, IV, PKCS#7(plaintext)) || HMAC(mac, seq || IV || C).
   * `iv` is injectable for known-answer tests only; by default it is 16 fresh CSPRNG bytes.
   */
  seal(seq: number, plaintext: Uint8Array, iv?: Uint8Array): Uint8Array {
    const record = new Uint8Array(sealedLength(plaintext.length));
    this.sealInto(seq, plaintext, record, iv);
    return record;
  }

  /**
   * seal() into `record`, which must be exactly sealedLength(plaintext.length) bytes and
   * must not overlap `plaintext`: the record layer seals straight into the frame writer's
   * buffer (a fresh array is not free in Deno, and a message would need several).
   */
  sealInto(seq: number, plaintext: Uint8Array, record: Uint8Array, iv?: Uint8Array): void {
    if (this.#disposed) throw new TypeError("record cipher used after dispose()");
    if (iv !== undefined && iv.length !== IV_LENGTH) {
      throw new RangeError(`IV must be ${IV_LENGTH} bytes`);
    }
    if (record.length !== sealedLength(plaintext.length)) {
      throw new RangeError(
        `a record of ${plaintext.length} plaintext bytes is ${
          sealedLength(plaintext.length)
        } bytes, not ${record.length}`,
      );
    }
    const end = record.length - MAC_LENGTH;
    const padded = end - IV_LENGTH;
    if (iv === undefined) crypto.getRandomValues(record.subarray(0, IV_LENGTH));
    else record.set(iv, 0);
    // PKCS#7: 1 to 16 bytes, each holding the count.
    record.set(plaintext, IV_LENGTH);
    record.fill(padded - plaintext.length, IV_LENGTH + plaintext.length, end);
    this.#engine.encrypt(record, end);
    this.#mac(seq, record.subarray(0, end), record.subarray(end));
  }

  /**
   * open (§3), checks in the spec's order: length shape, then the MAC in constant time, and
   * only then decryption and padding removal. Every failure is the same RecordError, so a
   * peer learns nothing about which check failed (no padding or timing oracle).
   * `record` is left as it was; the plaintext is a view of a copy of it, the caller's own.
   */
  open(seq: number, record: Uint8Array): Uint8Array {
    return this.openInPlace(seq, record.slice());
  }

  /**
   * open() that decrypts inside `record` and returns the plaintext as a view of it (after the
   * IV). For buffers the caller owns and consumes, as the record layer does with frame
   * bodies. A record that fails its MAC is left untouched.
   */
  openInPlace(seq: number, record: Uint8Array): Uint8Array {
    if (this.#disposed) throw new TypeError("record cipher used after dispose()");
    if (record.length < MIN_RECORD || (record.length - IV_LENGTH - MAC_LENGTH) % BLOCK !== 0) {
      throw new RecordError();
    }
    const end = record.length - MAC_LENGTH;
    this.#mac(seq, record.subarray(0, end), this.#tag);
    if (!constantTimeEqual(record.subarray(end), this.#tag)) throw new RecordError();
    this.#engine.decrypt(record, end);
    // PKCS#7 removal; the MAC already held, so this check is no padding oracle.
    const pad = record[end - 1]!;
    let bad = pad === 0 || pad > BLOCK ? 1 : 0;
    for (let i = end - pad; i < end && !bad; i++) bad |= record[i]! ^ pad;
    if (bad) throw new RecordError();
    return record.subarray(IV_LENGTH, end - pad);
  }

  /** Wipes the keys and frees any native state; the cipher must not be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#engine.dispose();
  }
}
