// ML-KEM-768 of FIPS 203 (PROTOCOL §2.6): the post-quantum half of X25519MLKEM768. From
// @noble/post-quantum, the audited family our AES and hashes come from: the OpenSSL 3.0 this
// machine has knows no ML-KEM (3.5 does), and node:crypto offers none. What it costs per key
// generation, encapsulation and decapsulation is in docs/PERFORMANCE.md.
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";

/** FIPS 203 Table 3 sizes for ML-KEM-768, and the seed and message of §6 (Algorithms 16, 17). */
export const MLKEM768 = {
  encapsulationKeyBytes: 1184,
  decapsulationKeyBytes: 2400,
  ciphertextBytes: 1088,
  sharedSecretBytes: 32,
  /** d || z of ML-KEM.KeyGen_internal. */
  seedBytes: 64,
  /** m of ML-KEM.Encaps_internal. */
  messageBytes: 32,
} as const;

/** Why an encapsulation key or a ciphertext was refused. */
export class MlKemError extends Error {
  override name = "MlKemError";
}

/** An ML-KEM-768 key pair: ek to send, dk to keep. */
export interface MlKemKeyPair {
  readonly encapsulationKey: Uint8Array;
  readonly decapsulationKey: Uint8Array;
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function expectLength(what: string, bytes: Uint8Array, length: number): void {
  if (bytes.length !== length) {
    throw new MlKemError(`ML-KEM-768 ${what} of ${bytes.length} bytes; expected ${length}`);
  }
}

/** ML-KEM.KeyGen from a fresh seed; `seed` (d || z, 64 bytes) is injectable for tests only. */
export function mlkemKeyGen(seed: Uint8Array = randomBytes(MLKEM768.seedBytes)): MlKemKeyPair {
  if (seed.length !== MLKEM768.seedBytes) {
    throw new RangeError(`ML-KEM seed of ${seed.length} bytes; expected ${MLKEM768.seedBytes}`);
  }
  const { publicKey, secretKey } = ml_kem768.keygen(seed);
  return { encapsulationKey: publicKey, decapsulationKey: secretKey };
}

/**
 * ML-KEM.Encaps(ek): the ciphertext and the shared secret K. Refuses an ek of the wrong length
 * or one failing FIPS 203 §7.2's modulus check (a coefficient ≥ q = 3329): such a key is not one
 * any honest key generation makes. `message` (m, 32 bytes) is injectable for tests only.
 */
export function mlkemEncaps(
  encapsulationKey: Uint8Array,
  message: Uint8Array = randomBytes(MLKEM768.messageBytes),
): { ciphertext: Uint8Array; sharedSecret: Uint8Array } {
  expectLength("encapsulation key", encapsulationKey, MLKEM768.encapsulationKeyBytes);
  if (message.length !== MLKEM768.messageBytes) {
    throw new RangeError(`ML-KEM message of ${message.length} bytes; expected 32`);
  }
  let out;
  try {
    out = ml_kem768.encapsulate(encapsulationKey, message);
  } catch (cause) {
    throw new MlKemError("ML-KEM-768 encapsulation key fails the modulus check", { cause });
  }
  return { ciphertext: out.cipherText, sharedSecret: out.sharedSecret };
}

/**
 * ML-KEM.Decaps(dk, c): the shared secret. A ciphertext of the right length never fails: a
 * wrong one yields an unrelated secret (implicit rejection, FIPS 203 §6.3), so no error tells
 * an attacker anything; the handshake's first record then fails its MAC.
 */
export function mlkemDecaps(decapsulationKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  expectLength("decapsulation key", decapsulationKey, MLKEM768.decapsulationKeyBytes);
  expectLength("ciphertext", ciphertext, MLKEM768.ciphertextBytes);
  try {
    return ml_kem768.decapsulate(ciphertext, decapsulationKey);
  } catch (cause) {
    // Only a decapsulation key whose embedded H(ek) does not match (§7.3): ours never.
    throw new MlKemError("ML-KEM-768 decapsulation key fails its hash check", { cause });
  }
}
