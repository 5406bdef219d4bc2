// The key exchange of every HSP/1 group behind one interface (PROTOCOL §2.1, §2.4, §2.6): the
// client starts and sends its share; the server answers that share with its own and the secret
// Z; the client finishes with the server's share and gets the same Z. A KEM needs exactly this
// shape: the server's share (the ciphertext) is made from the client's (the encapsulation key).
import { concat } from "./bytes.ts";
import { DhError, generateKeyPair, sharedSecret } from "./dh.ts";
import type { CryptoEngine } from "./engine.ts";
import { type DhGroup, groupByName as dhGroupByName } from "./groups.ts";
import { MLKEM768, mlkemDecaps, mlkemEncaps, MlKemError, mlkemKeyGen } from "./mlkem.ts";
import { X25519_BYTES, X25519Error, x25519KeyPair, x25519SharedSecret } from "./x25519.ts";

/** The names `--group` and `--groups` take. */
export type KexGroupName = "ffdhe2048" | "ffdhe3072" | "ffdhe4096" | "x25519" | "x25519mlkem768";

/** One named part of a share or of Z, in wire order: what the trace shows of a hybrid. */
export interface KexPart {
  readonly name: string;
  readonly bytes: number;
}

interface KexGroupCommon {
  /** TLS NamedGroup value: the u16 on the wire. */
  readonly id: number;
  readonly name: KexGroupName;
  /** The name TLS's registry gives it. */
  readonly title: string;
  readonly clientShare: readonly KexPart[];
  readonly serverShare: readonly KexPart[];
  readonly secret: readonly KexPart[];
  readonly clientShareBytes: number;
  readonly serverShareBytes: number;
  readonly secretBytes: number;
  /** Classical security in bits (RFC 7919 §8 estimates; RFC 7748 §1). */
  readonly classicalBits: number;
  /** Whether Z stays secret from an attacker with a large quantum computer. */
  readonly postQuantum: boolean;
}

/** A group of §2.1: finite-field DH, X25519, or the hybrid. */
export type KexGroup =
  | (KexGroupCommon & { readonly kind: "ffdhe"; readonly dh: DhGroup })
  | (KexGroupCommon & { readonly kind: "x25519" })
  | (KexGroupCommon & { readonly kind: "x25519mlkem768" });

const part = (name: string, bytes: number): KexPart => ({ name, bytes });
const total = (parts: readonly KexPart[]) => parts.reduce((n, p) => n + p.bytes, 0);

function common(
  id: number,
  name: KexGroupName,
  title: string,
  clientShare: KexPart[],
  serverShare: KexPart[],
  secret: KexPart[],
  classicalBits: number,
  postQuantum: boolean,
): KexGroupCommon {
  return {
    id,
    name,
    title,
    clientShare,
    serverShare,
    secret,
    clientShareBytes: total(clientShare),
    serverShareBytes: total(serverShare),
    secretBytes: total(secret),
    classicalBits,
    postQuantum,
  };
}

function ffdhe(name: "ffdhe2048" | "ffdhe3072" | "ffdhe4096", bits: number): KexGroup {
  const dh = dhGroupByName(name)!;
  const n = dh.byteLength;
  return {
    kind: "ffdhe",
    dh,
    ...common(
      dh.id,
      name,
      name,
      [part("2^x mod p", n)],
      [part("2^y mod p", n)],
      [
        part("Z", n),
      ],
      bits,
      false,
    ),
  };
}

const X = X25519_BYTES;

/** Every group of §2.1, the finite-field ones first, in the order `--help` lists them. */
export const KEX_GROUPS: readonly KexGroup[] = [
  // RFC 7919 §8 puts ffdhe2048 at about 103 bits against the best known attack; NIST SP 800-57
  // rates 2048-bit finite-field DH at 112 bits, 3072 at 128, and 4096 at about 150.
  ffdhe("ffdhe2048", 112),
  ffdhe("ffdhe3072", 128),
  ffdhe("ffdhe4096", 150),
  {
    kind: "x25519",
    ...common(
      0x001d,
      "x25519",
      "x25519",
      [part("X25519(a, 9)", X)],
      [part("X25519(b, 9)", X)],
      [
        part("X25519 shared secret", X),
      ],
      128,
      false,
    ),
  },
  {
    kind: "x25519mlkem768",
    // TLS's X25519MLKEM768 (ML-KEM part first); ML-KEM-768 is FIPS 203's category 3.
    ...common(
      0x11ec,
      "x25519mlkem768",
      "X25519MLKEM768",
      [part("ML-KEM-768 ek", MLKEM768.encapsulationKeyBytes), part("X25519(a, 9)", X)],
      [part("ML-KEM-768 ciphertext", MLKEM768.ciphertextBytes), part("X25519(b, 9)", X)],
      [part("ML-KEM shared secret K", MLKEM768.sharedSecretBytes), part("X25519 shared secret", X)],
      128,
      true,
    ),
  },
];

/** The group with TLS NamedGroup id `id`, or undefined. */
export function kexGroupById(id: number): KexGroup | undefined {
  return KEX_GROUPS.find((g) => g.id === id);
}

/** The group called `name` (any case: the TLS spelling works too), or undefined. */
export function kexGroupByName(name: string): KexGroup | undefined {
  const lower = name.toLowerCase();
  return KEX_GROUPS.find((g) => g.name === lower);
}

/** A peer's share or the resulting secret was refused; the message says which check failed. */
export class KexError extends Error {
  override name = "KexError";
}

/**
 * Fixed private values, for known-answer tests only (PROTOCOL §7 vectors): left out, each is
 * drawn fresh from the CSPRNG for every handshake.
 */
export interface KexSecrets {
  /** Finite-field groups: x (client) or y (server). */
  readonly privateExponent?: Uint8Array;
  /** x25519 and the hybrid: a (client) or b (server), 32 bytes. */
  readonly x25519PrivateKey?: Uint8Array;
  /** Hybrid, client: d || z of ML-KEM.KeyGen_internal, 64 bytes. */
  readonly mlkemSeed?: Uint8Array;
  /** Hybrid, server: m of ML-KEM.Encaps_internal, 32 bytes. */
  readonly mlkemMessage?: Uint8Array;
}

/** The client's half of one key exchange: its share, then `finish` with the server's. */
export interface KexClient {
  readonly group: KexGroup;
  readonly share: Uint8Array;
  /** Z from the server's share (KexError if refused); the private values are wiped either way. */
  finish(serverShare: Uint8Array): Uint8Array;
  /** Wipes the private values without finishing (the handshake failed before Z). */
  dispose(): void;
}

/** The server's answer: its share and Z. */
export interface KexResponse {
  readonly share: Uint8Array;
  readonly secret: Uint8Array;
}

function expectLength(group: KexGroup, side: "client" | "server", share: Uint8Array): void {
  const want = side === "client" ? group.clientShareBytes : group.serverShareBytes;
  if (share.length !== want) {
    throw new KexError(
      `${side} share of ${share.length} bytes; ${group.title} ${side} shares are exactly ${want}`,
    );
  }
}

/** Runs `fn`, turning the primitives' refusals into KexError (one error type for the handshake). */
function refusing<T>(fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    if (cause instanceof DhError || cause instanceof X25519Error || cause instanceof MlKemError) {
      throw new KexError(cause.message, { cause });
    }
    throw cause;
  }
}

/** Starts the client's side of `group`: its key pair(s) and the share to send (§2.1, §2.6). */
export function startKex(
  crypto: CryptoEngine,
  group: KexGroup,
  secrets: KexSecrets = {},
): KexClient {
  switch (group.kind) {
    case "ffdhe": {
      const pair = generateKeyPair(crypto, group.dh, secrets.privateExponent);
      const dispose = () => pair.privateExponent.fill(0);
      return {
        group,
        share: pair.share,
        finish(serverShare) {
          try {
            expectLength(group, "server", serverShare);
            return refusing(() => sharedSecret(crypto, pair, serverShare));
          } finally {
            dispose();
          }
        },
        dispose,
      };
    }
    case "x25519": {
      const pair = x25519KeyPair(secrets.x25519PrivateKey);
      return {
        group,
        share: pair.publicKey,
        finish(serverShare) {
          expectLength(group, "server", serverShare);
          return refusing(() => x25519SharedSecret(pair.privateKey, serverShare));
        },
        dispose() {},
      };
    }
    case "x25519mlkem768": {
      const kem = mlkemKeyGen(secrets.mlkemSeed);
      const pair = x25519KeyPair(secrets.x25519PrivateKey);
      const dispose = () => kem.decapsulationKey.fill(0);
      return {
        group,
        share: concat(kem.encapsulationKey, pair.publicKey),
        finish(serverShare) {
          try {
            expectLength(group, "server", serverShare);
            const ct = serverShare.subarray(0, MLKEM768.ciphertextBytes);
            const k = refusing(() => mlkemDecaps(kem.decapsulationKey, ct));
            const x = refusing(() =>
              x25519SharedSecret(pair.privateKey, serverShare.subarray(MLKEM768.ciphertextBytes))
            );
            return joinSecrets(k, x);
          } finally {
            dispose();
          }
        },
        dispose,
      };
    }
    default:
      return unreachable(group);
  }
}

/**
 * The server's side of `group` for `clientShare`: checks it (§2.4, §2.6), makes the server's
 * share and Z. KexError when the share is refused; the server answers ERR bad_hello.
 */
export function respondKex(
  crypto: CryptoEngine,
  group: KexGroup,
  clientShare: Uint8Array,
  secrets: KexSecrets = {},
): KexResponse {
  expectLength(group, "client", clientShare);
  switch (group.kind) {
    case "ffdhe": {
      const pair = generateKeyPair(crypto, group.dh, secrets.privateExponent);
      try {
        return {
          share: pair.share,
          secret: refusing(() => sharedSecret(crypto, pair, clientShare)),
        };
      } finally {
        pair.privateExponent.fill(0);
      }
    }
    case "x25519": {
      const pair = x25519KeyPair(secrets.x25519PrivateKey);
      return {
        share: pair.publicKey,
        secret: refusing(() => x25519SharedSecret(pair.privateKey, clientShare)),
      };
    }
    case "x25519mlkem768": {
      // The X25519 part first: it is the cheaper refusal, and both are checked before anything
      // is sent, so the order reveals nothing a peer did not already choose.
      const pair = x25519KeyPair(secrets.x25519PrivateKey);
      const x = refusing(() =>
        x25519SharedSecret(pair.privateKey, clientShare.subarray(MLKEM768.encapsulationKeyBytes))
      );
      let kem;
      try {
        const ek = clientShare.subarray(0, MLKEM768.encapsulationKeyBytes);
        kem = refusing(() => mlkemEncaps(ek, secrets.mlkemMessage));
      } catch (err) {
        x.fill(0);
        throw err;
      }
      return {
        share: concat(kem.ciphertext, pair.publicKey),
        secret: joinSecrets(kem.sharedSecret, x),
      };
    }
    default:
      return unreachable(group);
  }
}

/** §2.6: Z = K || X25519 secret (ML-KEM part first, as TLS's X25519MLKEM768); wipes both parts. */
function joinSecrets(k: Uint8Array, x: Uint8Array): Uint8Array {
  const z = concat(k, x);
  k.fill(0);
  x.fill(0);
  return z;
}

function unreachable(group: never): never {
  throw new TypeError(`unhandled key-exchange group ${JSON.stringify(group)}`);
}
