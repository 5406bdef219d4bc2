// The record layer of PROTOCOL §3: AES-256-CBC with a fresh random IV, then HMAC-SHA-256
// over seq (u64) || IV || C — encrypt-then-MAC over an implicit sequence number.
// Two engines do the AES and HMAC work (crypto/engine.ts chooses): OpenSSL over FFI when a
// program selects it, 2.2 µs per seal+open of 64 B and 3.9 µs at 1 KiB here, and @noble in
// pure JS (audited, no permission needed), 8.9 µs and 58 µs. node:crypto was slower than
// both for chat-sized records (44 µs at 64 B: per-call object setup); bench/record_bench.ts.
//
// Performance (issue #6): a connection seals and opens thousands of records with the same
// keys, so RecordCipher prepares them once per direction and seals in place into the record
// buffer. Record crypto was 47% of the server's busy time under bench/load.ts; preparing keys
// once took seal+open of 64 B from 43.0 µs to 10.3 µs and server CPU per delivered message
// from 145 µs to 83 µs (bench/load.ts A/B, two runs each).
import { unsafe } from "@noble/ciphers/aes.js";
import { type _HMAC, hmac } from "@noble/hashes/hmac.js";
import { type _SHA256, sha256 } from "@noble/hashes/sha2.js";
import { constantTimeEqual } from "./bytes.ts";
import { activeNative } from "./engine.ts";
import type { NativeCbc, NativeCrypto, NativeHmac } from "./native.ts";

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

/** HMAC-SHA-256 (RFC 2104) over the concatenation of `parts`. */
export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = hmac.create(sha256, key);
  for (const part of parts) h.update(part);
  return h.digest();
}

/** 32-bit words over `bytes`, which must start at a 4-byte boundary (noble's AES works on words). */
function words(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
}

/**
 * The cipher and MAC work of one direction, with its keys prepared once. The record shape
 * around it (padding, layout, MAC comparison, one failure) is RecordCipher's, for both engines.
 */
interface DirectionEngine {
  /** CBC-encrypts record[16, end) in place, record[0, 16) being the IV. */
  encrypt(record: Uint8Array, end: number): void;
  /** CBC-decrypts record[16, end) in place, record[0, 16) being the IV (left as it is). */
  decrypt(record: Uint8Array, end: number): void;
  /** HMAC(mac, seq || ivAndC) into the 32 bytes of `out`. */
  mac(seq: Uint8Array, ivAndC: Uint8Array, out: Uint8Array): void;
  dispose(): void;
}

/**
 * Portable engine, @noble in JS. AES key schedules are expanded once (`cbc()` expands the key
 * on every call; noble's `unsafe` block functions are an internal API, so the version is
 * pinned in deno.lock and the record vectors in tests/ catch any change), and the HMAC inner
 * and outer pad states are cloned per record instead of hashing both pads again.
 */
class PortableEngine implements DirectionEngine {
  readonly #encKey: Uint8Array;
  #encSchedule: Uint32Array | undefined;
  #decSchedule: Uint32Array | undefined;
  /** HMAC after absorbing the key pads; each record's MAC starts from a copy of it. */
  readonly #macBase: _HMAC<_SHA256>;
  #macWork: _HMAC<_SHA256> | undefined;

  constructor(keys: DirectionKeys) {
    this.#encKey = keys.enc.slice();
    this.#macBase = hmac.create(sha256, keys.mac);
  }

  mac(seq: Uint8Array, ivAndC: Uint8Array, out: Uint8Array): void {
    const h = this.#macWork = this.#macBase._cloneInto(this.#macWork);
    h.update(seq);
    h.update(ivAndC);
    h.digestInto(out);
  }

  encrypt(record: Uint8Array, end: number): void {
    // Each block is XORed with the previous ciphertext block (the IV first).
    const xk = this.#encSchedule ??= unsafe.expandKeyLE(this.#encKey);
    const w = words(record);
    let s0 = w[0]!, s1 = w[1]!, s2 = w[2]!, s3 = w[3]!;
    for (let i = IV_LENGTH >>> 2; i < end >>> 2; i += 4) {
      ({ s0, s1, s2, s3 } = unsafe.encrypt(
        xk,
        s0 ^ w[i]!,
        s1 ^ w[i + 1]!,
        s2 ^ w[i + 2]!,
        s3 ^ w[i + 3]!,
      ));
      w[i] = s0;
      w[i + 1] = s1;
      w[i + 2] = s2;
      w[i + 3] = s3;
    }
  }

  decrypt(record: Uint8Array, end: number): void {
    // Frame bodies are fresh arrays (aligned); anything else is decrypted in an aligned copy.
    if (record.byteOffset % 4 !== 0) {
      const aligned = record.slice(0, end);
      this.decrypt(aligned, end);
      record.set(aligned.subarray(IV_LENGTH), IV_LENGTH);
      return;
    }
    const w = words(record.subarray(0, end));
    const xk = this.#decSchedule ??= unsafe.expandKeyDecLE(this.#encKey);
    let p0 = w[0]!, p1 = w[1]!, p2 = w[2]!, p3 = w[3]!;
    for (let i = IV_LENGTH >>> 2; i < w.length; i += 4) {
      // Each ciphertext block is read before its place is overwritten with the plaintext.
      const c0 = w[i]!, c1 = w[i + 1]!, c2 = w[i + 2]!, c3 = w[i + 3]!;
      const d = unsafe.decrypt(xk, c0, c1, c2, c3);
      w[i] = d.s0 ^ p0;
      w[i + 1] = d.s1 ^ p1;
      w[i + 2] = d.s2 ^ p2;
      w[i + 3] = d.s3 ^ p3;
      p0 = c0;
      p1 = c1;
      p2 = c2;
      p3 = c3;
    }
  }

  dispose(): void {
    this.#encKey.fill(0);
    this.#encSchedule?.fill(0);
    this.#decSchedule?.fill(0);
  }
}

/**
 * Native engine, OpenSSL over FFI (see native.ts for the figures): an EVP cipher context per
 * use (sealing, opening), made when first needed and freed by dispose(), and the HMAC's pad
 * states on OpenSSL's SHA-256.
 */
class NativeEngine implements DirectionEngine {
  readonly #native: NativeCrypto;
  readonly #encKey: Uint8Array;
  #encryptor: NativeCbc | undefined;
  #decryptor: NativeCbc | undefined;
  readonly #hmac: NativeHmac;

  constructor(native: NativeCrypto, keys: DirectionKeys) {
    this.#native = native;
    this.#encKey = keys.enc.slice();
    this.#hmac = native.hmac(keys.mac);
  }

  mac(seq: Uint8Array, ivAndC: Uint8Array, out: Uint8Array): void {
    this.#hmac.macInto(out, seq, ivAndC);
  }

  encrypt(record: Uint8Array, end: number): void {
    const body = record.subarray(IV_LENGTH, end);
    this.#encryptor ??= this.#native.cbc(this.#encKey, true);
    this.#encryptor.run(record.subarray(0, IV_LENGTH), body, body);
  }

  decrypt(record: Uint8Array, end: number): void {
    const body = record.subarray(IV_LENGTH, end);
    this.#decryptor ??= this.#native.cbc(this.#encKey, false);
    this.#decryptor.run(record.subarray(0, IV_LENGTH), body, body);
  }

  dispose(): void {
    this.#encKey.fill(0);
    this.#encryptor?.dispose();
    this.#decryptor?.dispose();
    this.#hmac.dispose();
  }
}

/**
 * One direction's keys prepared for many records: seal() and open() of §3 without redoing
 * the key setup per record, on the engine selected when it was made (engine.ts). Not safe
 * to share between concurrent users, which JS never has; the caller supplies the sequence
 * numbers (see RecordLayer). dispose() wipes the keys and frees native state.
 */
export class RecordCipher {
  readonly #engine: DirectionEngine;
  #disposed = false;
  readonly #seq = new Uint8Array(SEQ_LENGTH);
  readonly #seqView = new DataView(this.#seq.buffer);
  readonly #tag = new Uint8Array(MAC_LENGTH);

  constructor(keys: DirectionKeys) {
    checkKeys(keys);
    const native = activeNative();
    this.#engine = native ? new NativeEngine(native, keys) : new PortableEngine(keys);
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
   * buffer (a fresh array costs 0.4–1 µs in Deno, several per message).
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

/**
 * seal (§3): IV || AES-256-CBC(enc, IV, PKCS#7(plaintext)) || HMAC(mac, seq || IV || C).
 * `iv` is injectable for known-answer tests only; by default it is 16 fresh CSPRNG bytes.
 * For many records under the same keys, a RecordCipher skips the per-call key setup.
 */
export function seal(
  keys: DirectionKeys,
  seq: number,
  plaintext: Uint8Array,
  iv?: Uint8Array,
): Uint8Array {
  const cipher = new RecordCipher(keys);
  try {
    return cipher.seal(seq, plaintext, iv);
  } finally {
    cipher.dispose();
  }
}

/**
 * open (§3), checks in the spec's order: length shape, then the MAC in constant time, and
 * only then decryption and padding removal. Every failure is the same RecordError, so a
 * peer learns nothing about which check failed (no padding or timing oracle).
 */
export function open(keys: DirectionKeys, seq: number, record: Uint8Array): Uint8Array {
  const cipher = new RecordCipher(keys);
  try {
    return cipher.open(seq, record);
  } finally {
    cipher.dispose();
  }
}
