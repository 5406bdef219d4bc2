// Micro benchmark of the RSA operations §2 and §8 use, per modulus size (2048, 3072, 4096) and
// per engine (native: OpenSSL over FFI; portable: node:crypto): RSASSA-PSS sign and verify,
// RSAES-OAEP encryption and decryption of a 64-byte key under a label, and key generation
// (a few runs each: it takes up to seconds). The same keys on both engines.
//
//   deno bench --allow-all bench/rsa_bench.ts
//   deno bench --allow-all --filter keygen bench/rsa_bench.ts
import { type CryptoEngine, RSA_KEY_BITS, selectCrypto } from "../crypto/mod.ts";

const ENGINES: [string, CryptoEngine][] = [
  ["native", selectCrypto("native").engine],
  ["portable", selectCrypto("portable").engine],
];
const LABEL = new TextEncoder().encode("HSP/1 sealed key");
const message = crypto.getRandomValues(new Uint8Array(100));
const k = crypto.getRandomValues(new Uint8Array(64));

for (const bits of RSA_KEY_BITS) {
  // One key per size, made once and loaded into each engine.
  const pkcs8 = (await ENGINES[0]![1].generateRsaKey(bits)).exportPkcs8();
  for (const [name, engine] of ENGINES) {
    const key = engine.parsePrivateKey(pkcs8);
    const signature = key.signPss(message);
    const wrapped = key.publicKey.encryptOaep(k, LABEL);
    if (
      !key.publicKey.verifyPss(message, signature) || key.decryptOaep(wrapped, LABEL).length !== 64
    ) {
      throw new Error(`${name} RSA-${bits} does not round-trip`);
    }
    const group = (op: string) => `${op} RSA-${bits}`;
    Deno.bench({
      name: `PSS sign RSA-${bits}, ${name}`,
      group: group("PSS sign"),
      fn: () => {
        key.signPss(message);
      },
    });
    Deno.bench({
      name: `PSS verify RSA-${bits}, ${name}`,
      group: group("PSS verify"),
      fn: () => {
        key.publicKey.verifyPss(message, signature);
      },
    });
    Deno.bench({
      name: `OAEP encrypt RSA-${bits}, ${name}`,
      group: group("OAEP encrypt"),
      fn: () => {
        key.publicKey.encryptOaep(k, LABEL);
      },
    });
    Deno.bench({
      name: `OAEP decrypt RSA-${bits}, ${name}`,
      group: group("OAEP decrypt"),
      fn: () => {
        key.decryptOaep(wrapped, LABEL);
      },
    });
    Deno.bench({
      name: `keygen RSA-${bits}, ${name}`,
      group: group("keygen"),
      n: bits === 4096 ? 5 : 10,
      warmup: 1,
      fn: async () => {
        (await engine.generateRsaKey(bits)).dispose();
      },
    });
  }
}
