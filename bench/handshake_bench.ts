// Micro benchmark of the §2 handshake, per group (all five of §2.1 and §2.6), each side on its
// own: the server's respond() to a ClientHello, and the client's hello() + finish() of one
// ServerHello. Baseline: the public-key work of a TLS 1.3 handshake with an RSA-2048
// certificate on node:crypto (X25519 key share and agreement, plus the RSA-PSS signature or its
// verification). Two more groups split the server's ffdhe2048 cost and the hybrid's primitives
// into their parts. Each of ours runs on both engines (native: OpenSSL over FFI; portable:
// node:crypto), selected inside the timed function: they differ in RSA and finite-field DH.
//
//   deno bench --allow-all bench/handshake_bench.ts
import {
  constants,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import {
  type CryptoEngine,
  generateIdentity,
  generateKeyPair,
  GROUPS,
  identityFromPem,
  KEX_GROUPS,
  type KexGroup,
  type KexSecrets,
  keySchedule,
  mlkemDecaps,
  mlkemEncaps,
  mlkemKeyGen,
  randomExponent,
  selectCrypto,
  sharedSecret,
  x25519KeyPair,
  x25519SharedSecret,
} from "../crypto/mod.ts";
import { ClientHandshake, ServerHandshake, signedMessage } from "../protocol/handshake.ts";

const portable = selectCrypto("portable").engine;
const ENGINES: readonly { name: string; engine: CryptoEngine }[] = [
  { name: "native", engine: selectCrypto("native").engine },
  { name: "portable", engine: portable },
];
const pem = (await generateIdentity(portable)).toPem();
/** The same identity key on each engine. */
const identities = new Map(ENGINES.map(({ engine }) => [engine, identityFromPem(pem, engine)]));
const identity = identities.get(portable)!;
const message = signedMessage(crypto.getRandomValues(new Uint8Array(32)));

/** What a TLS 1.3 server does per handshake in public-key crypto: X25519 + one RSA-PSS sign. */
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
const signature = sign("sha256", message, { key: rsa.privateKey, ...pss });
function x25519(peer: KeyObject): KeyObject {
  const mine = generateKeyPairSync("x25519");
  diffieHellman({ privateKey: mine.privateKey, publicKey: peer });
  return mine.publicKey;
}
const peerX25519 = generateKeyPairSync("x25519").publicKey;

Deno.bench({
  name: "TLS 1.3 server public-key work: X25519 + RSA-2048 PSS sign (node:crypto)",
  group: "handshake, server side",
  baseline: true,
  fn: () => {
    x25519(peerX25519);
    sign("sha256", message, { key: rsa.privateKey, ...pss });
  },
});
Deno.bench({
  name: "TLS 1.3 client public-key work: X25519 + RSA-2048 PSS verify (node:crypto)",
  group: "handshake, client side",
  baseline: true,
  fn: () => {
    x25519(peerX25519);
    verify("sha256", message, { key: rsa.publicKey, ...pss }, signature);
  },
});

/** Fixed client secrets for `group`, so one ServerHello answers every iteration. */
function fixedClientSecrets(group: KexGroup): KexSecrets {
  const bytes = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  switch (group.kind) {
    case "ffdhe":
      return { privateExponent: randomExponent(group.dh) };
    case "x25519":
      return { x25519PrivateKey: bytes(32) };
    case "x25519mlkem768":
      return { x25519PrivateKey: bytes(32), mlkemSeed: bytes(64) };
  }
}

for (const group of KEX_GROUPS) {
  // The client's private values and random are fixed so one ServerHello (made here) answers
  // every iteration; the client still makes its key pairs, checks the signature and derives Z.
  const secrets = fixedClientSecrets(group);
  const random = crypto.getRandomValues(new Uint8Array(32));
  const hello = new ClientHandshake({ group, crypto: portable, ...secrets, random }).hello();
  const outcome = new ServerHandshake({ identity, crypto: portable }).respond(hello);
  if (!outcome.ok) throw outcome.error;
  const reply = outcome.reply;

  for (const { name, engine } of ENGINES) {
    const onEngine = identities.get(engine)!;
    Deno.bench({
      name: `ServerHandshake.respond ${group.name}, ${name}`,
      group: "handshake, server side",
      fn: () => {
        const result = new ServerHandshake({ identity: onEngine, crypto: engine }).respond(hello);
        if (!result.ok) throw result.error;
      },
    });
    Deno.bench({
      name: `ClientHandshake hello+finish ${group.name}, ${name}`,
      group: "handshake, client side",
      fn: () => {
        const client = new ClientHandshake({ group, crypto: engine, ...secrets, random });
        client.hello();
        client.finish(reply);
      },
    });
  }
}

// Where the server's ffdhe2048 milliseconds go.
const ffdhe2048 = GROUPS[0]!;
const clientPair = generateKeyPair(portable, ffdhe2048);
const serverPair = generateKeyPair(portable, ffdhe2048);
const z = sharedSecret(portable, serverPair, clientPair.share);
for (const { name, engine } of ENGINES) {
  const onEngine = identities.get(engine)!;
  Deno.bench({
    name: `RSA-2048 PSS sign (ServerIdentity.sign), ${name}`,
    group: "ffdhe2048 server parts",
    baseline: name === "portable",
    fn: () => {
      onEngine.sign(message);
    },
  });
  Deno.bench({
    name: `DH key pair: 2^x mod p, ${name}`,
    group: "ffdhe2048 server parts",
    fn: () => {
      generateKeyPair(engine, ffdhe2048);
    },
  });
  Deno.bench({
    name: `DH shared secret: validate Y, Y^x mod p, ${name}`,
    group: "ffdhe2048 server parts",
    fn: () => {
      sharedSecret(engine, serverPair, clientPair.share);
    },
  });
}
// The hybrid's primitives, each once per handshake on one side or the other.
const kem = mlkemKeyGen();
const encapsulated = mlkemEncaps(kem.encapsulationKey);
const xPeer = x25519KeyPair().publicKey;
const xMine = x25519KeyPair();
const parts: [string, () => unknown][] = [
  ["ML-KEM-768 keygen (client, @noble/post-quantum)", () => mlkemKeyGen()],
  ["ML-KEM-768 encaps (server)", () => mlkemEncaps(kem.encapsulationKey)],
  ["ML-KEM-768 decaps (client)", () => mlkemDecaps(kem.decapsulationKey, encapsulated.ciphertext)],
  ["X25519 key pair (node:crypto, each side)", () => x25519KeyPair()],
  ["X25519 shared secret (each side)", () => x25519SharedSecret(xMine.privateKey, xPeer)],
];
for (const [name, fn] of parts) {
  Deno.bench({
    name,
    group: "x25519mlkem768 parts",
    baseline: name.startsWith("X25519 k"),
    fn: () => void fn(),
  });
}

Deno.bench({
  name: "HKDF key schedule (noble)",
  group: "ffdhe2048 server parts",
  fn: () => {
    keySchedule(z, message.subarray(0, 32));
  },
});
