// RSA in HSP/1: the server's long-term identity (PROTOCOL §2.2, §6: generation, PKCS#8 PEM
// storage, SPKI DER export, fingerprint, RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32), the
// check of a server's key and signature by a client (§2.4), and the policy for users' keys
// (§8.1). The RSA operations run on the engine passed in (engine.ts).
import { createPrivateKey, type KeyObject } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { pkcs8Of } from "./_rsa_keys.ts";
import { toBase64, toHex } from "./bytes.ts";
import {
  checkKeyBits,
  type CryptoEngine,
  isRsaKeyBits,
  KeyError,
  type RsaKeyBits,
  type RsaPrivateKey,
  type RsaPublicKey,
} from "./engine.ts";

/** Smallest RSA modulus either side accepts for a server's key (§2.2). */
export const MIN_RSA_BITS = 2048;
/** Modulus of a newly generated identity: matches ffdhe2048's strength. */
export const DEFAULT_RSA_BITS: RsaKeyBits = 2048;
/** The only public exponent a user's key may have (§8.1). */
export const USER_KEY_EXPONENT = 65537n;

/** The server's identity: a private key that can sign, and its public key as SPKI DER. */
export interface ServerIdentity {
  readonly spkiDer: Uint8Array;
  readonly fingerprint: string;
  readonly bits: number;
  /** RSASSA-PSS signature of `message` (§2.2), on the engine the identity was made with. */
  sign(message: Uint8Array): Uint8Array;
  /** The private key as PKCS#8 PEM, for the 0600 key file. */
  toPem(): string;
}

/** §6 fingerprint: "SHA256:" + unpadded base64 of SHA-256(SPKI DER). */
export function fingerprint(spkiDer: Uint8Array): string {
  return "SHA256:" + toBase64(sha256(spkiDer)).replace(/=+$/, "");
}

function identityFrom(key: RsaPrivateKey): ServerIdentity {
  const { spkiDer, bits } = key.publicKey;
  return {
    spkiDer,
    fingerprint: fingerprint(spkiDer),
    bits,
    sign: (message) => key.signPss(message),
    toPem: () => {
      const der = key.exportPkcs8();
      try {
        return createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" })
          .export({ format: "pem", type: "pkcs8" }) as string;
      } finally {
        der.fill(0);
      }
    },
  };
}

/** Generates a fresh identity key on `crypto`, off the event loop. */
export function generateIdentity(
  crypto: CryptoEngine,
  bits: number = DEFAULT_RSA_BITS,
): Promise<ServerIdentity> {
  if (bits < MIN_RSA_BITS) throw new RangeError(`RSA key of ${bits} bits is below ${MIN_RSA_BITS}`);
  checkKeyBits(bits);
  return crypto.generateRsaKey(bits).then(identityFrom);
}

/** Parses a PKCS#8 (or PKCS#1) PEM private key into an identity on `crypto`. */
export function identityFromPem(pem: string, crypto: CryptoEngine): ServerIdentity {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: "pem" });
  } catch (cause) {
    throw new KeyError("not a PEM private key", { cause });
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new KeyError(`identity key is ${key.asymmetricKeyType}, not RSA`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new KeyError(`identity key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  }
  const der = pkcs8Of(key);
  try {
    return identityFrom(crypto.parsePrivateKey(der));
  } finally {
    der.fill(0);
  }
}

/** Writes the identity as PKCS#8 PEM with mode 0600; refuses to overwrite an existing file. */
export async function saveIdentity(path: string, identity: ServerIdentity): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  try {
    await file.write(new TextEncoder().encode(identity.toPem()));
    await file.syncData();
  } finally {
    file.close();
  }
}

/** Reads the identity from a PEM file onto `crypto`, naming the path in any error. */
export async function loadIdentity(path: string, crypto: CryptoEngine): Promise<ServerIdentity> {
  let pem: string;
  try {
    pem = await Deno.readTextFile(path);
  } catch (cause) {
    throw new KeyError(`cannot read key file ${path}`, { cause });
  }
  try {
    return identityFromPem(pem, crypto);
  } catch (cause) {
    throw new KeyError(`key file ${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Loads the identity at `path`, or creates one there (mode 0600) if the file does not exist,
 * on `crypto`. Returns whether it was created so the shell can say so.
 */
export async function loadOrCreateIdentity(
  path: string,
  crypto: CryptoEngine,
  bits: number = DEFAULT_RSA_BITS,
): Promise<{ identity: ServerIdentity; created: boolean }> {
  try {
    return { identity: await loadIdentity(path, crypto), created: false };
  } catch (err) {
    if (!(err instanceof KeyError && err.cause instanceof Deno.errors.NotFound)) throw err;
  }
  const identity = await generateIdentity(crypto, bits);
  await saveIdentity(path, identity);
  return { identity, created: true };
}

/** Facts about a peer's public key, or why it is unacceptable. */
export interface PublicKeyInfo {
  readonly bits: number;
}

/** Parses a server's key (§2.4): RSA in DER SubjectPublicKeyInfo, at least 2048 bits. */
function parseServerKey(crypto: CryptoEngine, spkiDer: Uint8Array): RsaPublicKey {
  let key: RsaPublicKey;
  try {
    key = crypto.parsePublicKey(spkiDer);
  } catch (cause) {
    const why = cause instanceof KeyError ? cause.message.replace(/^key /, "") : "unreadable";
    throw new KeyError(`server key ${why}`, { cause });
  }
  if (key.bits < MIN_RSA_BITS) {
    throw new KeyError(`server key has ${key.bits} bits; at least ${MIN_RSA_BITS} are required`);
  }
  return key;
}

/**
 * Checks that `spkiDer` is an RSA key of at least 2048 bits and that `signature` is a valid
 * RSASSA-PSS signature of `message` under it (§2.4), on `crypto`. Throws KeyError for an
 * unacceptable key; returns false for a bad signature.
 */
export function verifyServerSignature(
  crypto: CryptoEngine,
  spkiDer: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): { valid: boolean; key: PublicKeyInfo } {
  const key = parseServerKey(crypto, spkiDer);
  return { valid: key.verifyPss(message, signature), key: { bits: key.bits } };
}

/**
 * Parses a user's published key with every check of §8.1: RSA in DER SubjectPublicKeyInfo,
 * encoded exactly as DER re-encodes it (no trailing bytes, no alternative length forms), a
 * modulus of 2048, 3072 or 4096 bits and public exponent 65537. KeyError names the failure.
 */
export function parseUserKey(crypto: CryptoEngine, spkiDer: Uint8Array): RsaPublicKey {
  const key = crypto.parsePublicKey(spkiDer);
  if (toHex(key.spkiDer) !== toHex(spkiDer)) {
    throw new KeyError("user key is not in canonical DER (trailing or re-encoded bytes)");
  }
  if (!isRsaKeyBits(key.bits)) {
    throw new KeyError(`user key has ${key.bits} bits; 2048, 3072 or 4096 are allowed`);
  }
  if (key.publicExponent !== USER_KEY_EXPONENT) {
    throw new KeyError(`user key has public exponent ${key.publicExponent}; 65537 is required`);
  }
  return key;
}
