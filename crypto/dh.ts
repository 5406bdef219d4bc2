// Ephemeral finite-field Diffie–Hellman in the RFC 7919 groups (PROTOCOL §2.1, §2.4, §2.5).
// Modular exponentiation never hands a secret exponent to JS BigInt arithmetic (variable
// time); it runs on the engine passed in (engine.ts: OpenSSL's constant-time
// BN_mod_exp_mont_consttime, or node:crypto's DiffieHellman). Validation uses BigInt
// comparisons of public values.
import { bytesToBigInt } from "./bytes.ts";
import type { CryptoEngine } from "./engine.ts";
import type { DhGroup } from "./groups.ts";

const GENERATOR = new Uint8Array([2]);

/** A DH key pair: the secret exponent and the public share 2^x mod p as len(p) bytes. */
export interface DhKeyPair {
  readonly group: DhGroup;
  readonly privateExponent: Uint8Array;
  readonly share: Uint8Array;
}

/** Why a peer's share or the shared secret was refused. */
export class DhError extends Error {
  override name = "DhError";
  constructor(message: string) {
    super(message);
  }
}

/**
 * Draws a fresh private exponent of exactly `group.exponentBits` bits from the CSPRNG
 * (top bit forced on, so it is never shorter than the protocol's minimum).
 */
export function randomExponent(group: DhGroup): Uint8Array {
  const x = crypto.getRandomValues(new Uint8Array(group.exponentBits / 8));
  x[0]! |= 0x80;
  return x;
}

/** Makes a key pair on `crypto`; `privateExponent` is injectable for known-answer tests only. */
export function generateKeyPair(
  crypto: CryptoEngine,
  group: DhGroup,
  privateExponent: Uint8Array = randomExponent(group),
): DhKeyPair {
  const x = bytesToBigInt(privateExponent);
  if (x < 2n || x >= group.p - 1n) throw new RangeError("private exponent out of range");
  const share = crypto.modExp(group.pBytes, GENERATOR, privateExponent);
  // A copy: the handshake wipes it after use, and must not wipe the caller's array.
  return { group, privateExponent: privateExponent.slice(), share };
}

/**
 * Checks a peer's share (§2.4): exactly len(p) bytes and 1 < Y < p − 1. Refusing 0, 1 and
 * p − 1 (and anything ≥ p) stops small-subgroup confinement of the shared secret.
 */
export function validateShare(group: DhGroup, share: Uint8Array): void {
  if (share.length !== group.byteLength) {
    throw new DhError(
      `share of ${share.length} bytes; ${group.name} shares are exactly ${group.byteLength}`,
    );
  }
  const y = bytesToBigInt(share);
  if (y <= 1n || y >= group.p - 1n) {
    throw new DhError(`share outside 1 < Y < p - 1 for ${group.name}`);
  }
}

/**
 * Computes Z = Y^x mod p on `crypto` after validating Y, refuses a degenerate Z (0, 1, p − 1),
 * and returns Z as exactly len(p) bytes, left-padded (§2.5: never strip leading zeros).
 */
export function sharedSecret(
  crypto: CryptoEngine,
  keyPair: DhKeyPair,
  peerShare: Uint8Array,
): Uint8Array {
  const { group } = keyPair;
  validateShare(group, peerShare);
  const z = crypto.modExp(group.pBytes, peerShare, keyPair.privateExponent);
  const zInt = bytesToBigInt(z);
  if (zInt <= 1n || zInt === group.p - 1n) throw new DhError("degenerate shared secret");
  return z;
}
