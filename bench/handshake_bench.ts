// Micro benchmark of the §2 handshake, per group, each side on its own: the server's respond()
// to a ClientHello, and the client's hello() + finish() of one ServerHello. Baseline: the
// public-key work of a TLS 1.3 handshake with an RSA-2048 certificate on node:crypto
// (X25519 key share and agreement, plus the RSA-PSS signature or its verification).
// A third group splits the server's ffdhe2048 cost into its parts. Each of ours runs on both
// engines (native: OpenSSL over FFI; portable: node:crypto), with the same identity key.
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
  generateIdentity,
  generateKeyPair,
  GROUPS,
  identityFromPem,
  keySchedule,
  randomExponent,
  selectCrypto,
  sharedSecret,
} from "../crypto/mod.ts";
import { ClientHandshake, ServerHandshake, signedMessage } from "../protocol/handshake.ts";

const portable = selectCrypto("portable").engine;
const ENGINES = [
  { name: "native", engine: selectCrypto("native").engine },
  { name: "portable", engine: portable },
];
const pem = (await generateIdentity(portable)).toPem();
/** The same identity key on each engine. */
const identities = new Map(ENGINES.map(({ engine }) => [engine, identityFromPem(pem, engine)]));
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

for (const group of GROUPS) {
  // The client's exponent and random are fixed so one ServerHello (made here) answers every
  // iteration; the client still computes its share, checks the signature and derives Z.
  const privateExponent = randomExponent(group);
  const random = crypto.getRandomValues(new Uint8Array(32));
  const hello = new ClientHandshake({ group, crypto: portable, privateExponent, random }).hello();
  const identity = identities.get(portable)!;
  const outcome = new ServerHandshake({ identity, crypto: portable }).respond(hello);
  if (!outcome.ok) throw outcome.error;
  const reply = outcome.reply;

  for (const { name, engine } of ENGINES) {
    const identity = identities.get(engine)!;
    Deno.bench({
      name: `ServerHandshake.respond ${group.name}, ${name}`,
      group: "handshake, server side",
      fn: () => {
        const result = new ServerHandshake({ identity, crypto: engine }).respond(hello);
        if (!result.ok) throw result.error;
      },
    });
    Deno.bench({
      name: `ClientHandshake hello+finish ${group.name}, ${name}`,
      group: "handshake, client side",
      fn: () => {
        const client = new ClientHandshake({ group, crypto: engine, privateExponent, random });
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
  const identity = identities.get(engine)!;
  Deno.bench({
    name: `RSA-2048 PSS sign (ServerIdentity.sign), ${name}`,
    group: "ffdhe2048 server parts",
    baseline: name === "portable",
    fn: () => {
      identity.sign(message);
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
Deno.bench({
  name: "HKDF key schedule (noble)",
  group: "ffdhe2048 server parts",
  fn: () => {
    keySchedule(z, message.subarray(0, 32));
  },
});
