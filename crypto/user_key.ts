// Users' own RSA keys (PROTOCOL §8.1): what a server accepts as a user's published key, and the
// kid and fingerprint that name it.
import { createPublicKey } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { constantTimeEqual, fromBase64, toBase64 } from "./bytes.ts";

/** Modulus sizes a user key may have (§8.1: the original client's "RSA key size"). */
export const USER_KEY_BITS: readonly number[] = [2048, 3072, 4096];
/** The one public exponent §8.1 allows. */
export const USER_KEY_EXPONENT = 65537n;

/** A key that passed §8.1's checks. */
export interface UserKey {
  /** The DER SubjectPublicKeyInfo, exactly as published. */
  readonly spkiDer: Uint8Array;
  /** SHA-256 of the DER (§8.1). */
  readonly kid: Uint8Array;
  readonly fingerprint: string;
  readonly bits: number;
}

/** "SHA256:" and the unpadded base64 of a kid: the fingerprint of §6 and §8.1. */
export function fingerprintOfKid(kid: Uint8Array): string {
  return "SHA256:" + toBase64(kid).replace(/=+$/, "");
}

/**
 * Checks a published `key` (base64 of DER) against §8.1: RSA (rsaEncryption), a modulus of 2048,
 * 3072 or 4096 bits, exponent 65537, and DER that reads back to exactly the same bytes (so no
 * trailing bytes and no second encoding of one key, which would give it a second kid). Returns
 * the key, or a sentence saying why it is refused.
 */
export function checkUserKey(key: string): UserKey | string {
  let der: Uint8Array;
  try {
    der = fromBase64(key);
  } catch {
    return "not base64";
  }
  let parsed;
  try {
    parsed = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
  } catch {
    return "not a DER SubjectPublicKeyInfo";
  }
  if (parsed.asymmetricKeyType !== "rsa") {
    return `not an RSA key (${parsed.asymmetricKeyType ?? "unknown"})`;
  }
  const bits = parsed.asymmetricKeyDetails?.modulusLength ?? 0;
  if (!USER_KEY_BITS.includes(bits)) {
    return `modulus of ${bits} bits; ${USER_KEY_BITS.join(", ")} are allowed`;
  }
  const exponent = parsed.asymmetricKeyDetails?.publicExponent;
  if (exponent !== USER_KEY_EXPONENT) return `public exponent ${exponent}; 65537 is required`;
  const canonical = new Uint8Array(parsed.export({ format: "der", type: "spki" }));
  if (canonical.length !== der.length || !constantTimeEqual(canonical, der)) {
    return "the DER has trailing bytes or is not in its one canonical form";
  }
  const kid = sha256(der);
  return { spkiDer: der, kid, fingerprint: fingerprintOfKid(kid), bits };
}
