// Users' own RSA keys (PROTOCOL §8.1): a published key as the server checks and names it.
import { sha256 } from "@noble/hashes/sha2.js";
import { fromBase64 } from "./bytes.ts";
import { type CryptoEngine, KeyError } from "./engine.ts";
import { parseUserKey } from "./rsa.ts";

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
  // The platform's encoder: the server names two kids per sealed message it accepts (§8.4).
  return "SHA256:" + kid.toBase64({ omitPadding: true });
}

/**
 * Checks a published `key` (base64 of DER) against §8.1 (RSA, 2048, 3072 or 4096 bits, exponent
 * 65537, canonical DER with nothing after it: see `parseUserKey`). Returns the key, or a
 * sentence saying why it is refused.
 */
export function checkUserKey(crypto: CryptoEngine, key: string): UserKey | string {
  let der: Uint8Array;
  try {
    der = fromBase64(key);
  } catch {
    return "not base64";
  }
  try {
    const { bits } = parseUserKey(crypto, der);
    const kid = sha256(der);
    return { spkiDer: der, kid, fingerprint: fingerprintOfKid(kid), bits };
  } catch (err) {
    if (err instanceof KeyError) return err.message;
    throw err;
  }
}
