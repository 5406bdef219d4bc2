// Reference arithmetic for tests, in plain BigInt (variable time: never for secrets outside
// tests), to cross-check the engines' modular exponentiation and to write shares.
import type { DhGroup } from "../../crypto/mod.ts";

/** base^exponent mod modulus by square-and-multiply. */
export function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}

/** `y` as a share of `group`: exactly len(p) big-endian bytes. */
export function encodeShare(group: DhGroup, y: bigint): Uint8Array {
  if (y < 0n) throw new RangeError(`negative integer cannot be encoded: ${y}`);
  const hex = y.toString(16).padStart(group.byteLength * 2, "0");
  if (hex.length > group.byteLength * 2) throw new RangeError(`${y} does not fit ${group.name}`);
  return Uint8Array.from(hex.match(/../g)!, (byte) => parseInt(byte, 16));
}
