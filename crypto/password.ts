// Password hashing: scrypt, memory-hard, with its parameters stored beside the hash so they
// can be raised later. node:crypto's asynchronous scrypt runs natively on a worker thread,
// so hashing never blocks the event loop (a test keeps timers firing while hashes run).
// Passwords are hashed in Unicode NFC, so that the same password typed on systems whose input
// methods compose differently (macOS often sends decomposed accents) is the same bytes.
import { randomBytes, scrypt } from "node:crypto";
import { constantTimeEqual, fromBase64, toBase64 } from "./bytes.ts";

/** scrypt cost parameters; N = 2^logN. */
export interface ScryptParams {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

/**
 * Production setting, one of OWASP's equivalent scrypt settings (N=2^15, r=8, p=3): 32 MiB
 * per hash instead of N=2^17's 128 MiB, at the same work and in less time here (figures in
 * docs/PERFORMANCE.md), which keeps the server's peak memory bounded while several logins hash
 * at once.
 */
export const PASSWORD_PARAMS: ScryptParams = { logN: 15, r: 8, p: 3 };
/** FOR TESTS ONLY: cheap enough for suites that create many users. Never use in production. */
export const TEST_ONLY_WEAK_PARAMS: ScryptParams = { logN: 10, r: 8, p: 1 };

export const SALT_LENGTH = 16;
export const HASH_LENGTH = 32;
/** Refuse stored parameters past these when verifying, so a corrupted record cannot exhaust memory. */
const MAX_LOG_N = 20;
const MAX_R = 32;
const MAX_P = 16;
/**
 * Most memory one hash may take (scrypt's V array, 128·N·r bytes): 8× the production setting's
 * 32 MiB. The bounds above alone would allow 128·2^20·32 = 4 GiB per verification.
 */
export const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

/** scrypt's memory for `params`: 128·N·r bytes. */
function scryptMemory(params: ScryptParams): number {
  return 128 * 2 ** params.logN * params.r;
}

/** The bytes hashed for `password`: its UTF-8 in Unicode NFC (canonically equivalent texts agree). */
function passwordBytes(password: string): Uint8Array {
  return new TextEncoder().encode(password.normalize("NFC"));
}

function scryptAsync(
  password: Uint8Array,
  salt: Uint8Array,
  params: ScryptParams,
): Promise<Uint8Array> {
  const N = 2 ** params.logN;
  // scrypt needs 128·N·r bytes; node's default maxmem (32 MiB) is raised to just above it.
  const maxmem = scryptMemory(params) + 4 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, HASH_LENGTH, { N, r: params.r, p: params.p, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(new Uint8Array(key));
    });
  });
}

/** Hashes `password` (in NFC) into "scrypt$logN$r$p$salt$hash" (salt and hash in base64). */
export async function hashPassword(
  password: string,
  params: ScryptParams = PASSWORD_PARAMS,
): Promise<string> {
  if (scryptMemory(params) > MAX_SCRYPT_MEMORY) {
    throw new RangeError(
      `scrypt logN=${params.logN} r=${params.r} needs ${scryptMemory(params)} bytes, above ` +
        `MAX_SCRYPT_MEMORY (${MAX_SCRYPT_MEMORY}): such a hash could not be verified`,
    );
  }
  const salt = new Uint8Array(randomBytes(SALT_LENGTH));
  const hash = await scryptAsync(passwordBytes(password), salt, params);
  return ["scrypt", params.logN, params.r, params.p, toBase64(salt), toBase64(hash)].join("$");
}

/** Parses a stored hash; TypeError if it is not one this module wrote. */
export function parseStoredHash(
  stored: string,
): { params: ScryptParams; salt: Uint8Array; hash: Uint8Array } {
  const parts = stored.split("$");
  const [scheme, logN, r, p, salt, hash] = parts;
  const ints = [logN, r, p].map((x) => (x !== undefined && /^[0-9]{1,2}$/.test(x) ? +x : NaN));
  const [n, rr, pp] = ints as [number, number, number];
  if (
    parts.length !== 6 || scheme !== "scrypt" || !(n >= 1 && n <= MAX_LOG_N) ||
    !(rr >= 1 && rr <= MAX_R) || !(pp >= 1 && pp <= MAX_P)
  ) {
    throw new TypeError("not a stored scrypt hash");
  }
  if (scryptMemory({ logN: n, r: rr, p: pp }) > MAX_SCRYPT_MEMORY) {
    throw new TypeError(
      `stored scrypt hash needs ${scryptMemory({ logN: n, r: rr, p: pp })} bytes per ` +
        `verification, above MAX_SCRYPT_MEMORY (${MAX_SCRYPT_MEMORY})`,
    );
  }
  return { params: { logN: n, r: rr, p: pp }, salt: fromBase64(salt!), hash: fromBase64(hash!) };
}

/** Checks `password` against a stored hash; the final comparison is constant-time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  return (await checkPassword(password, stored)).valid;
}

/**
 * verifyPassword() for a login: whether the password is valid, and whether the stored hash
 * should be replaced by hashPassword(password) now that the password is known (its parameters
 * are below `params`, or it was made before passwords were normalised, see below).
 *
 * Hashes stored before NFC normalisation were made over the password's raw UTF-8. For an
 * NFC password the two agree. For one typed decomposed (NFD), the raw form is tried second,
 * and only when it differs from NFC and NFC failed: the same person on the same system still
 * logs in, the accepted inputs are those canonically equivalent to the password or its exact
 * old bytes, and the hash is flagged for rehashing in NFC. The second try costs one more hash,
 * only for non-NFC input, and reveals nothing about the stored hash.
 */
export async function checkPassword(
  password: string,
  stored: string,
  params: ScryptParams = PASSWORD_PARAMS,
): Promise<{ valid: boolean; rehash: boolean }> {
  const parsed = parseStoredHash(stored);
  const matches = async (bytes: Uint8Array) =>
    constantTimeEqual(await scryptAsync(bytes, parsed.salt, parsed.params), parsed.hash);
  const below = isBelow(parsed.params, params);
  if (await matches(passwordBytes(password))) return { valid: true, rehash: below };
  if (password !== password.normalize("NFC")) {
    if (await matches(new TextEncoder().encode(password))) return { valid: true, rehash: true };
  }
  return { valid: false, rehash: false };
}

function isBelow(current: ScryptParams, wanted: ScryptParams): boolean {
  return current.logN < wanted.logN || current.r < wanted.r || current.p < wanted.p;
}

/** Whether a stored hash uses weaker parameters than `params` and should be rehashed at login. */
export function needsRehash(stored: string, params: ScryptParams = PASSWORD_PARAMS): boolean {
  return isBelow(parseStoredHash(stored).params, params);
}

/**
 * A fixed hash of an unguessable password, verified against when the user does not exist, so
 * that an unknown user costs the same time as a wrong password (§4.3: no user enumeration).
 */
export function dummyHash(params: ScryptParams = PASSWORD_PARAMS): string {
  const zeros = toBase64(new Uint8Array(SALT_LENGTH));
  return ["scrypt", params.logN, params.r, params.p, zeros, toBase64(new Uint8Array(32))].join(
    "$",
  );
}
