// Micro benchmark of the §2 handshake, per group, each side on its own: the server's respond()
// to a ClientHello, and the client's hello() + finish() of one ServerHello. Baseline: the
// public-key work of a TLS 1.3 handshake with an RSA-2048 certificate on node:crypto
// (X25519 key share and agreement, plus the RSA-PSS signature or its verification).
// A third group splits the server's ffdhe2048 cost into its parts. Each of ours runs on both
// engines (native: OpenSSL over FFI; portable: node:crypto), selected inside the timed function.
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
  keySchedule,
  randomExponent,
  selectCrypto,
  sharedSecret,
} from "../crypto/mod.ts";
import { ClientHandshake, ServerHandshake, signedMessage } from "../protocol/handshake.ts";

const identity = await generateIdentity();
const ENGINES = ["native", "portable"] as const;
type Engine = typeof ENGINES[number];
/** `fn` run with `engine` selected (selection is a map lookup once the library is loaded). */
const on = (engine: Engine, fn: () => void) => () => {
  selectCrypto(engine);
  fn();
};
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
  const hello = new ClientHandshake({ group, privateExponent, random }).hello();
  const outcome = new ServerHandshake({ identity }).respond(hello);
  if (!outcome.ok) throw outcome.error;
  const reply = outcome.reply;

  for (const engine of ENGINES) {
    Deno.bench({
      name: `ServerHandshake.respond ${group.name}, ${engine}`,
      group: "handshake, server side",
      fn: on(engine, () => {
        const result = new ServerHandshake({ identity }).respond(hello);
        if (!result.ok) throw result.error;
      }),
    });
    Deno.bench({
      name: `ClientHandshake hello+finish ${group.name}, ${engine}`,
      group: "handshake, client side",
      fn: on(engine, () => {
        const client = new ClientHandshake({ group, privateExponent, random });
        client.hello();
        client.finish(reply);
      }),
    });
  }
}

// Where the server's ffdhe2048 milliseconds go.
const ffdhe2048 = GROUPS[0]!;
const clientPair = generateKeyPair(ffdhe2048);
const serverPair = generateKeyPair(ffdhe2048);
const z = sharedSecret(serverPair, clientPair.share);
for (const engine of ENGINES) {
  Deno.bench({
    name: `RSA-2048 PSS sign (ServerIdentity.sign), ${engine}`,
    group: "ffdhe2048 server parts",
    baseline: engine === "portable",
    fn: on(engine, () => {
      identity.sign(message);
    }),
  });
  Deno.bench({
    name: `DH key pair: 2^x mod p, ${engine}`,
    group: "ffdhe2048 server parts",
    fn: on(engine, () => {
      generateKeyPair(ffdhe2048);
    }),
  });
  Deno.bench({
    name: `DH shared secret: validate Y, Y^x mod p, ${engine}`,
    group: "ffdhe2048 server parts",
    fn: on(engine, () => {
      sharedSecret(serverPair, clientPair.share);
    }),
  });
}
Deno.bench({
  name: "HKDF key schedule (noble)",
  group: "ffdhe2048 server parts",
  fn: () => {
    keySchedule(z, message.subarray(0, 32));
  },
});
