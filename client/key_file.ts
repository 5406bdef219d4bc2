// A user's private key on disk (§8.1: it never leaves the client): PKCS#8 encrypted PEM
// (RFC 5958 EncryptedPrivateKeyInfo) under PBES2 (RFC 8018) with scrypt (RFC 7914) and
// AES-256-CBC, keyed by the user's password, so that `openssl pkey` reads it as any encrypted
// key. node:crypto's own export would use PBKDF2 with 2048 iterations, which a stolen file
// gives up to a GPU quickly; scrypt makes each guess cost memory as well as time.
import { createCipheriv, createPrivateKey, randomBytes, scrypt } from "node:crypto";
import { concat, toBase64 } from "../crypto/mod.ts";

/**
 * scrypt cost of a key file: N = 2^14, r = 8, p = 1 (16 MiB, tens of milliseconds here), the
 * most OpenSSL 3 reads without being told to allow more memory (its scrypt limit is 32 MiB, and
 * N = 2^15 needs just over it).
 */
export const KEY_FILE_SCRYPT = { logN: 14, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const AES_KEY_BYTES = 32;
const IV_BYTES = 16;

// Object identifiers, DER-encoded (tag, length, value).
const OID_PBES2 = oid([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]); // 1.2.840.113549.1.5.13
const OID_SCRYPT = oid([0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b]); // 1.3.6.1.4.1.11591.4.11
const OID_AES256_CBC = oid([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a]); // 2.16.840.1.101.3.4.1.42

function oid(body: number[]): Uint8Array {
  return tlv(0x06, new Uint8Array(body));
}

/** One DER element: tag, definite length, content. */
function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const length = n < 0x80
    ? [n]
    : n < 0x100
    ? [0x81, n]
    : n < 0x10000
    ? [0x82, n >> 8, n & 0xff]
    : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return concat(new Uint8Array([tag, ...length]), content);
}

const sequence = (...parts: Uint8Array[]) => tlv(0x30, concat(...parts));
const octets = (bytes: Uint8Array) => tlv(0x04, bytes);

/** A small non-negative INTEGER in DER (minimal, with a leading 0 if the top bit is set). */
function integer(value: number): Uint8Array {
  const bytes: number[] = [];
  let v = value;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, new Uint8Array(bytes));
}

/** The password as the key file's passphrase: its UTF-8 in NFC, as the server compares it. */
function passphrase(password: string): Uint8Array {
  return new TextEncoder().encode(password.normalize("NFC"));
}

function deriveKey(password: string, salt: Uint8Array): Promise<Uint8Array> {
  const { logN, r, p } = KEY_FILE_SCRYPT;
  const N = 2 ** logN;
  return new Promise((resolve, reject) => {
    // Off the event loop (node:crypto's scrypt runs on a worker thread).
    scrypt(
      passphrase(password),
      salt,
      AES_KEY_BYTES,
      { N, r, p, maxmem: 256 * N * r },
      (err, key) => {
        if (err) reject(err);
        else resolve(new Uint8Array(key));
      },
    );
  });
}

/** PKCS#8 DER → encrypted PEM under `password` (a fresh salt and IV each time). */
export async function encryptKeyPem(pkcs8Der: Uint8Array, password: string): Promise<string> {
  const salt = new Uint8Array(randomBytes(SALT_BYTES));
  const iv = new Uint8Array(randomBytes(IV_BYTES));
  const key = await deriveKey(password, salt);
  let encrypted: Uint8Array;
  try {
    const cipher = createCipheriv("aes-256-cbc", key, iv);
    encrypted = concat(new Uint8Array(cipher.update(pkcs8Der)), new Uint8Array(cipher.final()));
  } finally {
    key.fill(0);
  }
  const { logN, r, p } = KEY_FILE_SCRYPT;
  const der = sequence(
    sequence(
      OID_PBES2,
      sequence(
        sequence(OID_SCRYPT, sequence(octets(salt), integer(2 ** logN), integer(r), integer(p))),
        sequence(OID_AES256_CBC, octets(iv)),
      ),
    ),
    octets(encrypted),
  );
  const lines = toBase64(der).match(/.{1,64}/g)!;
  return [
    "-----BEGIN ENCRYPTED PRIVATE KEY-----",
    ...lines,
    "-----END ENCRYPTED PRIVATE KEY-----",
    "",
  ]
    .join("\n");
}

/**
 * The PKCS#8 DER inside an encrypted PEM, or undefined when `password` does not open it (or
 * the file is not such a key): the two cannot be told apart, and a wrong password never yields
 * a key (the padding and the DER inside must both check out). The caller wipes the result.
 */
export function decryptKeyPem(pem: string, password: string): Uint8Array | undefined {
  if (!pem.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----")) return undefined;
  try {
    const key = createPrivateKey({
      key: pem,
      format: "pem",
      passphrase: Buffer.from(passphrase(password)),
    });
    if (key.asymmetricKeyType !== "rsa") return undefined;
    return new Uint8Array(key.export({ format: "der", type: "pkcs8" }));
  } catch {
    return undefined;
  }
}
