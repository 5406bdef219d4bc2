// X25519 of RFC 7748 (PROTOCOL §2.6): the x25519 group, and the classical half of
// X25519MLKEM768. Through node:crypto on both engines: Deno runs it in native code, synchronously
// and fast enough that OpenSSL over FFI (the native engine) would save too little to be worth a
// second code path (the figures are in docs/PERFORMANCE.md).
import { Buffer } from "node:buffer";
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";

/** Bytes of an X25519 private key, public key (u-coordinate) and shared secret (RFC 7748 §5). */
export const X25519_BYTES = 32;

/** RFC 8410 §3's AlgorithmIdentifier of X25519: SEQUENCE { OID 1.3.101.110 }, no parameters. */
const ALGORITHM_ID = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e];
/** RFC 8410 DER prefixes that wrap a raw 32-byte X25519 key: PKCS #8 (§7) and SPKI (§4). */
const PKCS8_PREFIX = Uint8Array.from([
  ...[0x30, 0x2e, 0x02, 0x01, 0x00], // SEQUENCE, version 0
  ...ALGORITHM_ID,
  ...[0x04, 0x22, 0x04, 0x20], // OCTET STRING { OCTET STRING of 32 bytes }
]);
const SPKI_PREFIX = Uint8Array.from([
  ...[0x30, 0x2a], // SEQUENCE
  ...ALGORITHM_ID,
  ...[0x03, 0x21, 0x00], // BIT STRING of 32 bytes, no unused bits
]);

/** Why a peer's X25519 public key or the shared secret was refused. */
export class X25519Error extends Error {
  override name = "X25519Error";
}

/** A fresh X25519 key pair: the private key stays in a KeyObject, the public key is raw. */
export interface X25519KeyPair {
  readonly privateKey: KeyObject;
  /** X25519(a, 9), 32 bytes. */
  readonly publicKey: Uint8Array;
}

function wrap(prefix: Uint8Array, raw: Uint8Array): Buffer {
  const der = Buffer.alloc(prefix.length + raw.length);
  der.set(prefix);
  der.set(raw, prefix.length);
  return der;
}

/**
 * Makes a key pair from the CSPRNG; `privateKey` (32 raw bytes) is injectable for known-answer
 * tests only. RFC 7748 §5's clamping is the library's, applied to whatever bytes come in.
 */
export function x25519KeyPair(privateKey?: Uint8Array): X25519KeyPair {
  let key: KeyObject;
  if (privateKey === undefined) {
    key = generateKeyPairSync("x25519").privateKey;
  } else {
    if (privateKey.length !== X25519_BYTES) {
      throw new RangeError(`X25519 private key of ${privateKey.length} bytes; expected 32`);
    }
    const der = wrap(PKCS8_PREFIX, privateKey);
    key = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    der.fill(0);
  }
  const spki = createPublicKey(key).export({ format: "der", type: "spki" });
  return { privateKey: key, publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)) };
}

/**
 * X25519(a, peer) as 32 bytes. Refuses a peer key that is not 32 bytes, and an all-zero result:
 * a small-order peer point forces it, and RFC 7748 §6.1 asks to abort then, so that a peer cannot
 * pin the shared secret to a value it knows.
 */
export function x25519SharedSecret(privateKey: KeyObject, peerPublicKey: Uint8Array): Uint8Array {
  if (peerPublicKey.length !== X25519_BYTES) {
    throw new X25519Error(
      `X25519 public key of ${peerPublicKey.length} bytes; expected ${X25519_BYTES}`,
    );
  }
  let z: Uint8Array;
  try {
    const publicKey = createPublicKey({
      key: wrap(SPKI_PREFIX, peerPublicKey),
      format: "der",
      type: "spki",
    });
    z = new Uint8Array(diffieHellman({ privateKey, publicKey }));
  } catch (cause) {
    // The library refuses the all-zero result itself (OpenSSL's X25519 does): same refusal.
    throw new X25519Error("X25519 shared secret refused (small-order public key)", { cause });
  }
  let acc = 0;
  for (const b of z) acc |= b; // every byte, whatever they hold: no early exit on a secret
  if (acc === 0 || z.length !== X25519_BYTES) {
    z.fill(0);
    throw new X25519Error("X25519 shared secret refused (small-order public key)");
  }
  return z;
}
