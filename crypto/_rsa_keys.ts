// RSA key parsing and export shared by both engines, on node:crypto. It handles the keys' DER
// structure only, never a private-key operation, so its speed and timing do not matter; each
// engine does the signing and decryption its own way.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { KeyError } from "./engine.ts";

/** A public key as node:crypto parsed it, with what the engines and policies need. */
export interface ParsedPublicKey {
  readonly key: KeyObject;
  /** The key re-encoded as DER SubjectPublicKeyInfo (canonical). */
  readonly spkiDer: Uint8Array;
  readonly bits: number;
  readonly publicExponent: bigint;
}

/** A private key as node:crypto parsed it, with its public half. */
export interface ParsedPrivateKey {
  readonly key: KeyObject;
  readonly publicKey: ParsedPublicKey;
}

function describe(key: KeyObject, what: string): ParsedPublicKey {
  if (key.asymmetricKeyType !== "rsa") {
    throw new KeyError(`${what} is ${key.asymmetricKeyType}, not RSA`);
  }
  const publicKey = key.type === "public" ? key : createPublicKey(key);
  return {
    key: publicKey,
    spkiDer: new Uint8Array(publicKey.export({ format: "der", type: "spki" })),
    bits: key.asymmetricKeyDetails?.modulusLength ?? 0,
    publicExponent: key.asymmetricKeyDetails?.publicExponent ?? 0n,
  };
}

/** Parses a DER SubjectPublicKeyInfo holding an RSA key; KeyError otherwise. */
export function parseSpki(der: Uint8Array): ParsedPublicKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
  } catch (cause) {
    throw new KeyError("key is not a DER SubjectPublicKeyInfo", { cause });
  }
  return describe(key, "key");
}

/** Parses a PKCS#8 or PKCS#1 DER RSA private key; KeyError otherwise. */
export function parsePrivateDer(der: Uint8Array): ParsedPrivateKey {
  let key: KeyObject | undefined;
  for (const type of ["pkcs8", "pkcs1"] as const) {
    try {
      key = createPrivateKey({ key: Buffer.from(der), format: "der", type });
      break;
    } catch {
      // Try the next encoding.
    }
  }
  if (key === undefined) throw new KeyError("not a DER private key (PKCS#8 or PKCS#1)");
  return { key, publicKey: describe(key, "private key") };
}

/** The private key as PKCS#8 DER. */
export function pkcs8Of(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ format: "der", type: "pkcs8" }));
}
