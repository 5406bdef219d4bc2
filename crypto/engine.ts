// The crypto engine: every primitive HSP/1 needs beyond hashing and HKDF, behind one interface
// with two implementations, "native" (OpenSSL's libcrypto over FFI, native.ts) and "portable"
// (@noble and node:crypto, portable.ts), which give the same bytes. A program chooses one at
// start-up (select.ts) and passes it down explicitly: to the handshake, the record layer and
// the server identity, as Noise implementations pass their crypto interface. Nothing reads a
// global, so a test can run the same code on both engines side by side.

/** AES-256-CBC in one direction under one key, over whole blocks, without padding (§3, §8.3). */
export interface BlockCipher {
  /**
   * CBC over whole blocks of `input` into `output`: the same length, and either the very same
   * bytes (in place) or apart. Any byte alignment. RangeError otherwise.
   */
  run(iv: Uint8Array, input: Uint8Array, output: Uint8Array): void;
  /** Wipes or frees the key schedule; the cipher is unusable afterwards. Idempotent. */
  dispose(): void;
}

/** HMAC-SHA-256 (RFC 2104) under one key, its pad states prepared once (§3, §8.3). */
export interface Mac {
  /** HMAC over `a` then `b` (e.g. seq, then IV || C), written into the 32 bytes of `out`. */
  macInto(out: Uint8Array, a: Uint8Array, b?: Uint8Array): void;
  /** Wipes or frees the key states; the MAC is unusable afterwards. Idempotent. */
  dispose(): void;
}

/** Modulus sizes a user key may have (§8.1), and those key generation makes. */
export type RsaKeyBits = 2048 | 3072 | 4096;
export const RSA_KEY_BITS: readonly RsaKeyBits[] = [2048, 3072, 4096];
/** PSS salt length, fixed by §2.2 and §8.3 (SHA-256, MGF1-SHA-256 throughout). */
export const PSS_SALT_LENGTH = 32;

/**
 * An RSA public key as one engine holds it, parsed once. Its native state, if any, is freed
 * when the key is collected.
 */
export interface RsaPublicKey {
  /** The key's DER SubjectPublicKeyInfo as the parser re-encodes it (canonical DER). */
  readonly spkiDer: Uint8Array;
  /** Modulus length in bits. */
  readonly bits: number;
  readonly publicExponent: bigint;
  /**
   * Whether `signature` is a valid RSASSA-PSS signature of `message` (SHA-256, MGF1-SHA-256,
   * salt 32). Malformed signatures are simply not valid.
   */
  verifyPss(message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * RSAES-OAEP (SHA-256, MGF1-SHA-256) of `plaintext` under `label`, with a fresh random seed:
   * modulus-length bytes.
   */
  encryptOaep(plaintext: Uint8Array, label: Uint8Array): Uint8Array;
}

/** An RSA private key as one engine holds it. */
export interface RsaPrivateKey {
  readonly publicKey: RsaPublicKey;
  /** RSASSA-PSS signature of `message` (SHA-256, MGF1-SHA-256, a fresh 32-byte salt). */
  signPss(message: Uint8Array): Uint8Array;
  /**
   * RSAES-OAEP decryption under `label`. Every failure (length, padding, label) is the same
   * OaepError, so that no oracle exists (Manger's attack).
   */
  decryptOaep(ciphertext: Uint8Array, label: Uint8Array): Uint8Array;
  /** The private key as PKCS#8 DER, for the caller to store (and wipe). */
  exportPkcs8(): Uint8Array;
  /** Frees native state and forgets the key; it is unusable afterwards. Idempotent. */
  dispose(): void;
}

/** The primitives of HSP/1 on one implementation. */
export interface CryptoEngine {
  /** "native" (OpenSSL over FFI) or "portable" (@noble and node:crypto). */
  readonly name: "native" | "portable";
  /** What it runs on, in a phrase for logs: the OpenSSL version, or the portable libraries. */
  readonly detail: string;
  /** AES-256-CBC under a 32-byte `key`, encrypting or decrypting. */
  cbc(key: Uint8Array, encrypt: boolean): BlockCipher;
  /** HMAC-SHA-256 under `key` (any length; longer than a block is hashed first). */
  hmac(key: Uint8Array): Mac;
  /**
   * base^exponent mod modulus as exactly len(modulus) bytes, the exponent being secret (the DH
   * private exponent of §2.5): native uses OpenSSL's constant-time exponentiation, portable
   * node:crypto's DiffieHellman (no such promise: see docs/SECURITY.md).
   */
  modExp(modulus: Uint8Array, base: Uint8Array, exponent: Uint8Array): Uint8Array;
  /**
   * Parses a DER SubjectPublicKeyInfo holding an RSA key; KeyError for bad DER or another
   * algorithm. Policies (sizes, exponent, exact encoding) are the callers' (rsa.ts).
   */
  parsePublicKey(spkiDer: Uint8Array): RsaPublicKey;
  /** Parses a PKCS#8 (or PKCS#1) DER RSA private key; KeyError if it is not one. */
  parsePrivateKey(der: Uint8Array): RsaPrivateKey;
  /** A fresh RSA key of `bits` with exponent 65537, made off the event loop. */
  generateRsaKey(bits: RsaKeyBits): Promise<RsaPrivateKey>;
}

/** Key-file or key-material problems, with the path or reason named. */
export class KeyError extends Error {
  override name = "KeyError";
}

/**
 * An RSA-OAEP ciphertext did not decrypt. Deliberately one vague message: whether the length,
 * the padding or the label was wrong is never revealed.
 */
export class OaepError extends Error {
  override name = "OaepError";
  readonly code = "bad_ciphertext";
  constructor() {
    super("decryption failed");
  }
}

/** Whether `bits` is one of the modulus sizes of RSA_KEY_BITS. */
export function isRsaKeyBits(bits: number): bits is RsaKeyBits {
  return (RSA_KEY_BITS as readonly number[]).includes(bits);
}

/** RangeError unless `bits` is one of RSA_KEY_BITS (for callers that got past the type). */
export function checkKeyBits(bits: number): asserts bits is RsaKeyBits {
  if (!isRsaKeyBits(bits)) {
    throw new RangeError(`RSA keys are ${RSA_KEY_BITS.join(", ")} bits, not ${bits}`);
  }
}
