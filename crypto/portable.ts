// The portable engine's record primitives, in JS on @noble (audited, no permission needed):
// AES-256-CBC over whole blocks with the key schedule expanded once, and HMAC-SHA-256 with its
// pad states absorbed once. The same contract as the native engine's (native.ts).
import { unsafe } from "@noble/ciphers/aes.js";
import { type _HMAC, hmac } from "@noble/hashes/hmac.js";
import { type _SHA256, sha256 } from "@noble/hashes/sha2.js";

import { checkCbcBuffers } from "./_contract.ts";

const EMPTY = new Uint8Array(0);

/**
 * AES-256-CBC in one direction under one key, without padding. noble's `cbc()` expands the key
 * on every call; its `unsafe` block functions let the schedule be kept (an internal API: the
 * version is pinned in deno.lock, and the NIST, Wycheproof and record vectors catch a change).
 */
export class PortableCbc {
  readonly #encrypt: boolean;
  #schedule: Uint32Array | undefined;
  /** The IV as words (noble works on little-endian 32-bit words). */
  readonly #iv = new Uint32Array(4);

  constructor(key: Uint8Array, encrypt: boolean) {
    if (key.length !== 32) throw new RangeError(`AES-256 key must be 32 bytes, got ${key.length}`);
    this.#encrypt = encrypt;
    this.#schedule = encrypt ? unsafe.expandKeyLE(key) : unsafe.expandKeyDecLE(key);
  }

  /** CBC over whole blocks of `input` into `output` (same length; may be the same bytes). */
  run(iv: Uint8Array, input: Uint8Array, output: Uint8Array): void {
    const xk = this.#schedule;
    if (xk === undefined) throw new TypeError("cipher used after dispose()");
    checkCbcBuffers(iv, input, output);
    if (input.byteOffset % 4 !== 0 || output.byteOffset % 4 !== 0) {
      // noble works on 32-bit words, which need 4-byte alignment: work in an aligned copy.
      const copy = input.slice();
      this.run(iv, copy, copy);
      output.set(copy);
      copy.fill(0);
      return;
    }
    const w = this.#iv;
    new Uint8Array(w.buffer).set(iv);
    const src = new Uint32Array(input.buffer, input.byteOffset, input.length >>> 2);
    const dst = new Uint32Array(output.buffer, output.byteOffset, output.length >>> 2);
    let s0 = w[0]!, s1 = w[1]!, s2 = w[2]!, s3 = w[3]!;
    if (this.#encrypt) {
      // Each block is XORed with the previous ciphertext block (the IV first).
      for (let i = 0; i < src.length; i += 4) {
        ({ s0, s1, s2, s3 } = unsafe.encrypt(
          xk,
          s0 ^ src[i]!,
          s1 ^ src[i + 1]!,
          s2 ^ src[i + 2]!,
          s3 ^ src[i + 3]!,
        ));
        dst[i] = s0;
        dst[i + 1] = s1;
        dst[i + 2] = s2;
        dst[i + 3] = s3;
      }
      return;
    }
    for (let i = 0; i < src.length; i += 4) {
      // Each ciphertext block is read before its place may be overwritten (in place).
      const c0 = src[i]!, c1 = src[i + 1]!, c2 = src[i + 2]!, c3 = src[i + 3]!;
      const d = unsafe.decrypt(xk, c0, c1, c2, c3);
      dst[i] = d.s0 ^ s0;
      dst[i + 1] = d.s1 ^ s1;
      dst[i + 2] = d.s2 ^ s2;
      dst[i + 3] = d.s3 ^ s3;
      s0 = c0;
      s1 = c1;
      s2 = c2;
      s3 = c3;
    }
  }

  /** Wipes the key schedule; the cipher is unusable afterwards. Idempotent. */
  dispose(): void {
    this.#schedule?.fill(0);
    this.#schedule = undefined;
    this.#iv.fill(0);
  }
}

/**
 * HMAC-SHA-256 (RFC 2104) under one key: the state after absorbing the key pads is kept and
 * cloned per MAC, instead of hashing both pads again.
 */
export class PortableHmac {
  #base: _HMAC<_SHA256> | undefined;
  #work: _HMAC<_SHA256> | undefined;

  constructor(key: Uint8Array) {
    this.#base = hmac.create(sha256, key);
  }

  /** HMAC over `a` then `b`, written into the 32 bytes of `out`. */
  macInto(out: Uint8Array, a: Uint8Array, b: Uint8Array = EMPTY): void {
    if (this.#base === undefined) throw new TypeError("HMAC used after dispose()");
    if (out.length !== 32) {
      throw new RangeError(`HMAC-SHA-256 output is 32 bytes, not ${out.length}`);
    }
    const h = this.#work = this.#base._cloneInto(this.#work);
    h.update(a);
    h.update(b);
    h.digestInto(out);
  }

  /** Wipes the key states; the HMAC is unusable afterwards. Idempotent. */
  dispose(): void {
    this.#base?.destroy();
    this.#work?.destroy();
    this.#base = undefined;
    this.#work = undefined;
  }
}
