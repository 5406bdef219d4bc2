// The server's long-term RSA identity (PROTOCOL §2.2, §6): generation, PKCS#8 PEM storage,
// SPKI DER export, fingerprint, and RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32).
// The server signs once per handshake: with the native engine (OpenSSL over FFI, engine.ts)
// an RSA-2048 PSS signature takes 0.31 ms here, through node:crypto 1.6–1.8 ms (Deno
// implements it in Rust big-integer code), in node-forge ~18 ms. Key parsing, checks and
// export stay on node:crypto for both engines. node-forge is an independent verifier in tests.
import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPair as nodeGenerateKeyPair,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { toBase64 } from "./bytes.ts";
import { activeNative } from "./engine.ts";
import type { NativeCrypto, NativeRsaSigner } from "./native.ts";
import { sha256 } from "@noble/hashes/sha2.js";

/** Smallest RSA modulus either side accepts (§2.2). */
export const MIN_RSA_BITS = 2048;
/** Modulus of a newly generated identity: matches ffdhe2048's strength and keeps signing ~1.6 ms. */
export const DEFAULT_RSA_BITS = 2048;
/** PSS salt length fixed by §2.2. */
export const PSS_SALT_LENGTH = 32;

/** The server's identity: a private key that can sign, and its public key as SPKI DER. */
export interface ServerIdentity {
  readonly spkiDer: Uint8Array;
  readonly fingerprint: string;
  readonly bits: number;
  /** RSASSA-PSS signature of `message` (§2.2). */
  sign(message: Uint8Array): Uint8Array;
  /** The private key as PKCS#8 PEM, for the 0600 key file. */
  toPem(): string;
}

/** Key-file or key-material problems, with the path or reason named. */
export class KeyError extends Error {
  override name = "KeyError";
}

/** §6 fingerprint: "SHA256:" + unpadded base64 of SHA-256(SPKI DER). */
export function fingerprint(spkiDer: Uint8Array): string {
  return "SHA256:" + toBase64(sha256(spkiDer)).replace(/=+$/, "");
}

function identityFrom(privateKey: KeyObject): ServerIdentity {
  if (privateKey.asymmetricKeyType !== "rsa") {
    throw new KeyError(`identity key is ${privateKey.asymmetricKeyType}, not RSA`);
  }
  const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new KeyError(`identity key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  }
  const spkiDer = new Uint8Array(
    createPublicKey(privateKey).export({ format: "der", type: "spki" }),
  );
  // The native key is made on the first signature under the native engine and kept for the
  // identity's life (freed when it is collected).
  let nativeSigner: NativeRsaSigner | undefined;
  return {
    spkiDer,
    fingerprint: fingerprint(spkiDer),
    bits,
    sign: (message) => {
      const native = activeNative();
      if (native) {
        nativeSigner ??= nativeSignerFor(native, privateKey, spkiDer);
        return nativeSigner.signDigest(sha256(message));
      }
      return new Uint8Array(
        sign("sha256", message, {
          key: privateKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: PSS_SALT_LENGTH,
        }),
      );
    },
    toPem: () => privateKey.export({ format: "pem", type: "pkcs8" }) as string,
  };
}

/**
 * Hands the private key to OpenSSL (the DER copy in JS is wiped) and checks one signature
 * with node:crypto before trusting it, so a mismatched libcrypto cannot sign garbage.
 */
function nativeSignerFor(
  native: NativeCrypto,
  privateKey: KeyObject,
  spkiDer: Uint8Array,
): NativeRsaSigner {
  const der = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
  let signer: NativeRsaSigner;
  try {
    signer = native.rsaSigner(der, PSS_SALT_LENGTH);
  } finally {
    der.fill(0);
  }
  const probe = new TextEncoder().encode("HSP/1 native signer check");
  if (!nodeVerify(importServerKey(spkiDer).key, probe, signer.signDigest(sha256(probe)))) {
    signer.dispose();
    throw new KeyError("the native engine's RSA-PSS signature did not verify");
  }
  return signer;
}

/** Generates a fresh identity key off the event loop (native keygen on a worker thread). */
export function generateIdentity(bits = DEFAULT_RSA_BITS): Promise<ServerIdentity> {
  if (bits < MIN_RSA_BITS) throw new RangeError(`RSA key of ${bits} bits is below ${MIN_RSA_BITS}`);
  return new Promise((resolve, reject) => {
    nodeGenerateKeyPair("rsa", { modulusLength: bits }, (err, _publicKey, privateKey) => {
      if (err) reject(err);
      else resolve(identityFrom(privateKey));
    });
  });
}

/** Parses a PKCS#8 (or PKCS#1) PEM private key into an identity. */
export function identityFromPem(pem: string): ServerIdentity {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: "pem" });
  } catch (cause) {
    throw new KeyError("not a PEM private key", { cause });
  }
  return identityFrom(key);
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

/** Reads the identity from a PEM file, naming the path in any error. */
export async function loadIdentity(path: string): Promise<ServerIdentity> {
  let pem: string;
  try {
    pem = await Deno.readTextFile(path);
  } catch (cause) {
    throw new KeyError(`cannot read key file ${path}`, { cause });
  }
  try {
    return identityFromPem(pem);
  } catch (cause) {
    throw new KeyError(`key file ${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Loads the identity at `path`, or creates one there (mode 0600) if the file does not exist.
 * Returns whether it was created so the shell can say so.
 */
export async function loadOrCreateIdentity(
  path: string,
  bits = DEFAULT_RSA_BITS,
): Promise<{ identity: ServerIdentity; created: boolean }> {
  try {
    return { identity: await loadIdentity(path), created: false };
  } catch (err) {
    if (!(err instanceof KeyError && err.cause instanceof Deno.errors.NotFound)) throw err;
  }
  const identity = await generateIdentity(bits);
  await saveIdentity(path, identity);
  return { identity, created: true };
}

/** Facts about a peer's public key, or why it is unacceptable. */
export interface PublicKeyInfo {
  readonly bits: number;
}

function importServerKey(spkiDer: Uint8Array): { key: KeyObject; bits: number } {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  } catch (cause) {
    throw new KeyError("server key is not a DER SubjectPublicKeyInfo", { cause });
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new KeyError(`server key is ${key.asymmetricKeyType}, not RSA`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new KeyError(`server key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  }
  return { key, bits };
}

/**
 * Checks that `spkiDer` is an RSA key of at least 2048 bits and that `signature` is a valid
 * RSASSA-PSS signature of `message` under it (§2.4). Throws KeyError for an unacceptable
 * key; returns false for a bad signature.
 */
export function verifyServerSignature(
  spkiDer: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): { valid: boolean; key: PublicKeyInfo } {
  const { key, bits } = importServerKey(spkiDer);
  const native = activeNative();
  if (native) {
    const valid = native.rsaVerifyDigest(spkiDer, sha256(message), signature, PSS_SALT_LENGTH);
    return { valid, key: { bits } };
  }
  return { valid: nodeVerify(key, message, signature), key: { bits } };
}

/** node:crypto's RSASSA-PSS verification; malformed input is simply not valid. */
function nodeVerify(key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify("sha256", message, {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: PSS_SALT_LENGTH,
    }, signature);
  } catch {
    return false;
  }
}
