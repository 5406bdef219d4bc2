// HKDF-SHA256 key schedule of PROTOCOL §2.5 (RFC 5869), via @noble/hashes: small and
// audited, and it runs once per handshake, so native speed buys nothing here.
import { expand, extract } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

const INFO = new TextEncoder().encode("HSP/1 keys");
/** Output of HKDF-Expand: four 32-byte keys (§2.5). */
export const OKM_LENGTH = 128;
export const KEY_LENGTH = 32;

/** The four traffic keys of §2.5, named by direction. */
export interface TrafficKeys {
  readonly c2sEnc: Uint8Array;
  readonly c2sMac: Uint8Array;
  readonly s2cEnc: Uint8Array;
  readonly s2cMac: Uint8Array;
}

/** HKDF-Extract(salt, IKM) with HMAC-SHA-256 (RFC 5869 §2.2). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return extract(sha256, ikm, salt);
}

/** HKDF-Expand(PRK, info, L) with HMAC-SHA-256 (RFC 5869 §2.3). */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return expand(sha256, prk, info, length);
}

/** §2.5: PRK = Extract(transcript_hash, Z); OKM = Expand(PRK, "HSP/1 keys", 128), split in four. */
export function keySchedule(
  sharedSecret: Uint8Array,
  transcriptHash: Uint8Array,
): { prk: Uint8Array; keys: TrafficKeys } {
  const prk = hkdfExtract(transcriptHash, sharedSecret);
  const okm = hkdfExpand(prk, INFO, OKM_LENGTH);
  const keys = {
    c2sEnc: okm.slice(0, 32),
    c2sMac: okm.slice(32, 64),
    s2cEnc: okm.slice(64, 96),
    s2cMac: okm.slice(96, 128),
  };
  okm.fill(0);
  return { prk, keys };
}
