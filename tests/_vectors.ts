// Loads the protocol's vector files (tests/vectors/, copied from shared/protocol/vectors/).
import {
  type CryptoEngine,
  fromBase64,
  fromHex,
  identityFromPem,
  type ServerIdentity,
} from "../crypto/mod.ts";
import { portableCrypto } from "../crypto/portable.ts";

const dir = new URL("./vectors/", import.meta.url);

/** What a handshake vector of either file holds about the transcript and the keys (§2). */
export interface HandshakeVectorCommon {
  group: number;
  group_name: string;
  client_random: string;
  server_random: string;
  client_share: string;
  server_share: string;
  client_hello: string;
  server_hello_unsigned: string;
  transcript_hash: string;
  signed_message: string;
  example_signature: string;
  server_hello: string;
  shared_secret: string;
  prk: string;
  c2s_enc: string;
  c2s_mac: string;
  s2c_enc: string;
  s2c_mac: string;
}

/** A handshake of handshake.json, in a finite-field group. */
export interface HandshakeVector extends HandshakeVectorCommon {
  client_private_hex: string;
  server_private_hex: string;
  server_spki_der: string;
  server_fingerprint: string;
}

export interface InvalidShareVector {
  group: number;
  why: string;
  share: string;
}

export interface RecordVector {
  seq: number;
  iv: string;
  plaintext: string;
  record: string;
  frame: string;
}

export interface NegativeRecordVector {
  why: string;
  seq: number;
  record: string;
}

export const handshakeVectors = JSON.parse(
  Deno.readTextFileSync(new URL("handshake.json", dir)),
) as { handshakes: HandshakeVector[]; invalid_shares: InvalidShareVector[] };

/** A handshake of kex.json (§2.6): every private value fixed, so every byte is reproducible. */
export interface KexHandshakeVector extends HandshakeVectorCommon {
  client_x25519_private: string;
  server_x25519_private: string;
  /** X25519MLKEM768 only: the client's ML-KEM seed d || z and the server's message m. */
  mlkem_d?: string;
  mlkem_z?: string;
  mlkem_m?: string;
  mlkem_encapsulation_key?: string;
  mlkem_decapsulation_key?: string;
  mlkem_ciphertext?: string;
  mlkem_shared_secret?: string;
  x25519_shared_secret?: string;
}

/**
 * A share of kex.json that must be refused. `side` says whose share it is: "client" (the server
 * refuses it with ERR bad_hello), "server" (the client aborts), "either" (both refuse it).
 */
export interface KexInvalidShareVector {
  group: number;
  side: "client" | "server" | "either";
  why: string;
  share: string;
}

export const kexVectors = JSON.parse(Deno.readTextFileSync(new URL("kex.json", dir))) as {
  handshakes: KexHandshakeVector[];
  invalid_shares: KexInvalidShareVector[];
};

export const recordVectors = JSON.parse(
  Deno.readTextFileSync(new URL("records.json", dir)),
) as {
  enc_key: string;
  mac_key: string;
  records: RecordVector[];
  negative: NegativeRecordVector[];
};

export const testKeyPem = Deno.readTextFileSync(new URL("server_test_key.pem", dir));

const testIdentities = new Map<CryptoEngine, ServerIdentity>();

/** The RSA test key behind the vectors (never deployed), signing on `engine`. */
export function testIdentityOn(engine: CryptoEngine): ServerIdentity {
  let identity = testIdentities.get(engine);
  if (identity === undefined) {
    identity = identityFromPem(testKeyPem, engine);
    testIdentities.set(engine, identity);
  }
  return identity;
}

/** The RSA test key behind the vectors, on the portable engine. */
export const testIdentity: ServerIdentity = testIdentityOn(portableCrypto);

export const recordKeys = {
  enc: fromHex(recordVectors.enc_key),
  mac: fromHex(recordVectors.mac_key),
};

/** A sealed message of sealed.json (§8): every byte reproducible from K, IV and the keys. */
export interface SealedCaseVector {
  name: string;
  from: string;
  to: string;
  text: string;
  inner_plaintext: string;
  k: string;
  enc_key: string;
  mac_key: string;
  iv: string;
  oaep_seed: string;
  pss_salt: string;
  sender_kid: string;
  recipient_kid: string;
  wrapped: string;
  ciphertext: string;
  tag: string;
  signed_message: string;
  signature: string;
  envelope: string;
  sealed_b64: string;
}

/** An envelope the recipient must refuse, and the §8.5 check that refuses it. */
export interface SealedNegativeVector {
  name: string;
  check: string;
  envelope: string;
  from: string;
  to: string;
  /** Whose key the DLV's `from` published (the sender lookup), and the recipient's own key. */
  sender_key: string;
  recipient_key: string;
  refused_because: string;
}

export type TestUser = "alice" | "bob" | "carol";

export const sealedVectors = JSON.parse(
  Deno.readTextFileSync(new URL("sealed.json", dir)),
) as {
  signature_context: string;
  keys: Record<TestUser, { spki: string; kid: string; fingerprint: string }>;
  cases: SealedCaseVector[];
  negatives: SealedNegativeVector[];
  invalid_user_keys: { name: string; spki: string; refused_because: string }[];
};

/** The PKCS#8 DER of a test user's key (alice 2048, bob 3072, carol 2048 bits): never deploy. */
export function userTestKeyDer(user: TestUser): Uint8Array {
  const pem = Deno.readTextFileSync(new URL(`${user}_test_key.pem`, dir));
  return fromBase64(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""));
}
