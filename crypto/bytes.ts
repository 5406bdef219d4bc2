// Byte helpers for crypto/ and protocol/: hex, base64, concatenation, constant-time equality.

/** Concatenates byte arrays into one new array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Parses hex (even length, 0-9a-f in either case) into bytes. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`not a hex string of even length: ${hex.slice(0, 16)}…`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Compares two byte arrays in time that depends only on their lengths, so that a
 * MAC or hash check leaks nothing about where the first difference lies.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Reads an unsigned big-endian integer of any length. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt("0x" + toHex(bytes));
}

/** Left-pads `bytes` with zeros to exactly `length` (never strips: a longer input is an error). */
export function leftPad(bytes: Uint8Array, length: number): Uint8Array {
  if (bytes.length > length) {
    throw new RangeError(`${bytes.length} bytes do not fit in ${length}`);
  }
  if (bytes.length === length) return bytes;
  const out = new Uint8Array(length);
  out.set(bytes, length - bytes.length);
  return out;
}

/** Standard base64 of `bytes`, padded. */
export function toBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/**
 * Decodes standard base64 as `atob` does (WHATWG forgiving-base64: ASCII white space skipped,
 * padding optional, bits after the last byte ignored); TypeError on anything else. The
 * platform's decoder with its default "loose" last chunk accepts and refuses the same strings
 * (tests/crypto/bytes.test.ts) without a string of bytes in between.
 */
export function fromBase64(b64: string): Uint8Array {
  try {
    return Uint8Array.fromBase64(b64);
  } catch (cause) {
    throw new TypeError("invalid base64", { cause });
  }
}
