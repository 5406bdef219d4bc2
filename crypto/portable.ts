// The portable engine: AES-256-CBC and HMAC-SHA-256 in JS on @noble (audited, no permission
// needed), RSA and the DH exponentiation on node:crypto (Deno implements those in Rust). The
// reference and the fallback for the native engine (native.ts), with the same contract.
import {
  constants,
  createDiffieHellman,
  generateKeyPair,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  sign,
  verify,
} from "node:crypto";
import { unsafe } from "@noble/ciphers/aes.js";
import { type _HMAC, hmac } from "@noble/hashes/hmac.js";
import { type _SHA256, sha256 } from "@noble/hashes/sha2.js";
import { checkCbcBuffers } from "./_contract.ts";
import { type ParsedPublicKey, parsePrivateDer, parseSpki, pkcs8Of } from "./_rsa_keys.ts";
import { leftPad } from "./bytes.ts";
import {
  type BlockCipher,
  checkKeyBits,
  type CryptoEngine,
  type Mac,
  OaepError,
  PSS_SALT_LENGTH,
  type RsaKeyBits,
  type RsaPrivateKey,
  type RsaPublicKey,
} from "./engine.ts";

const EMPTY = new Uint8Array(0);

/**
 * AES-256-CBC in one direction under one key, without padding. noble's `cbc()` expands the key
 * on every call; its `unsafe` block functions let the schedule be kept (an internal API: the
 * version is pinned in deno.lock, and the NIST, Wycheproof and record vectors catch a change).
 */
class PortableCbc implements BlockCipher {
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
class PortableHmac implements Mac {
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

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH };
const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" };

/** An RSA public key on node:crypto. */
class PortablePublicKey implements RsaPublicKey {
  readonly spkiDer: Uint8Array;
  readonly bits: number;
  readonly publicExponent: bigint;
  readonly #key: KeyObject;

  constructor(parsed: ParsedPublicKey) {
    this.#key = parsed.key;
    this.spkiDer = parsed.spkiDer;
    this.bits = parsed.bits;
    this.publicExponent = parsed.publicExponent;
  }

  verifyPss(message: Uint8Array, signature: Uint8Array): boolean {
    try {
      return verify("sha256", message, { key: this.#key, ...PSS }, signature);
    } catch {
      return false; // malformed input is simply not valid
    }
  }

  encryptOaep(plaintext: Uint8Array, label: Uint8Array): Uint8Array {
    return new Uint8Array(publicEncrypt({ key: this.#key, ...OAEP, oaepLabel: label }, plaintext));
  }
}

/** An RSA private key on node:crypto (Deno's Rust implementation: see select.ts on its cost). */
class PortablePrivateKey implements RsaPrivateKey {
  readonly publicKey: RsaPublicKey;
  #key: KeyObject | undefined;

  constructor(key: KeyObject, publicKey: ParsedPublicKey) {
    this.#key = key;
    this.publicKey = new PortablePublicKey(publicKey);
  }

  #live(): KeyObject {
    if (this.#key === undefined) throw new TypeError("private key used after dispose()");
    return this.#key;
  }

  signPss(message: Uint8Array): Uint8Array {
    return new Uint8Array(sign("sha256", message, { key: this.#live(), ...PSS }));
  }

  decryptOaep(ciphertext: Uint8Array, label: Uint8Array): Uint8Array {
    const key = this.#live();
    // RFC 8017 §7.1.2 step 1, checked here as on the native engine (see there).
    if (ciphertext.length !== Math.ceil(this.publicKey.bits / 8)) throw new OaepError();
    try {
      return new Uint8Array(privateDecrypt({ key, ...OAEP, oaepLabel: label }, ciphertext));
    } catch {
      throw new OaepError();
    }
  }

  exportPkcs8(): Uint8Array {
    return pkcs8Of(this.#live());
  }

  dispose(): void {
    this.#key = undefined;
  }
}

/** The portable engine: no permission, no native library. */
export const portableCrypto: CryptoEngine = {
  name: "portable",
  detail: "@noble AES/HMAC, node:crypto RSA and DH",
  cbc: (key, encrypt) => new PortableCbc(key, encrypt),
  hmac: (key) => new PortableHmac(key),
  modExp: (modulus, base, exponent) => {
    // node:crypto's DiffieHellman exponentiates a peer's value by the private key; its own
    // generator must be small, so the base always goes in as the peer's value.
    const dh = createDiffieHellman(modulus, 2);
    dh.setPrivateKey(exponent);
    return leftPad(new Uint8Array(dh.computeSecret(base)), modulus.length);
  },
  parsePublicKey: (spkiDer) => new PortablePublicKey(parseSpki(spkiDer)),
  parsePrivateKey: (der) => {
    const parsed = parsePrivateDer(der);
    return new PortablePrivateKey(parsed.key, parsed.publicKey);
  },
  generateRsaKey: async (bits: RsaKeyBits) => {
    checkKeyBits(bits);
    const key = await new Promise<KeyObject>((resolve, reject) => {
      // Deno runs this on a worker thread: the event loop keeps going meanwhile.
      generateKeyPair("rsa", { modulusLength: bits, publicExponent: 65537 }, (err, _, key) => {
        if (err) reject(err);
        else resolve(key);
      });
    });
    const der = pkcs8Of(key);
    try {
      return portableCrypto.parsePrivateKey(der);
    } finally {
      der.fill(0);
    }
  },
};
