// Server identity (PROTOCOL §2.2, §6): fingerprint, PSS signatures checked by node-forge as an
// independent implementation, key files with mode 0600.
import assert from "node:assert/strict";
import forge from "node-forge";
import {
  type CryptoEngine,
  fingerprint,
  fromHex,
  generateIdentity,
  identityFromPem,
  KeyError,
  loadIdentity,
  loadOrCreateIdentity,
  toHex,
  verifyServerSignature,
} from "../../crypto/mod.ts";
import { handshakeVectors, testIdentityOn, testKeyPem } from "../_vectors.ts";
import { testEachEngine } from "../_engines.ts";

const binary = (bytes: Uint8Array) => String.fromCharCode(...bytes);

/** Whether `signature` verifies over `message` under the test key, on `engine`. */
const verifies = (engine: CryptoEngine, message: Uint8Array, signature: Uint8Array) =>
  verifyServerSignature(engine, testIdentityOn(engine).spkiDer, message, signature).valid;

function forgeVerifies(spkiDer: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const publicKey = forge.pki.publicKeyFromAsn1(
    forge.asn1.fromDer(binary(spkiDer)),
  ) as forge.pki.rsa.PublicKey;
  const md = forge.md.sha256.create();
  md.update(binary(message));
  const pss = forge.pss.create({
    md: forge.md.sha256.create(),
    mgf: forge.mgf.mgf1.create(forge.md.sha256.create()),
    saltLength: 32,
  });
  return publicKey.verify(md.digest().bytes(), binary(signature), pss);
}

testEachEngine("the test key's SPKI DER and fingerprint match the vectors", (engine) => {
  const identity = testIdentityOn(engine);
  for (const v of handshakeVectors.handshakes) {
    assert.equal(toHex(identity.spkiDer), v.server_spki_der);
    assert.equal(identity.fingerprint, v.server_fingerprint);
    assert.equal(fingerprint(fromHex(v.server_spki_der)), v.server_fingerprint);
  }
  assert.ok(!identity.fingerprint.endsWith("="));
});

testEachEngine(
  "the vectors' example signatures verify, and so do fresh ones (here and in node-forge)",
  (engine) => {
    const identity = testIdentityOn(engine);
    for (const v of handshakeVectors.handshakes) {
      const message = fromHex(v.signed_message);
      assert.equal(verifies(engine, message, fromHex(v.example_signature)), true);
      const fresh = identity.sign(message);
      assert.equal(fresh.length, 256);
      assert.equal(verifies(engine, message, fresh), true);
      assert.equal(forgeVerifies(identity.spkiDer, message, fresh), true);
      assert.equal(
        forgeVerifies(identity.spkiDer, message, fromHex(v.example_signature)),
        true,
      );
    }
  },
);

testEachEngine("a signature one bit off, or over another message, does not verify", (engine) => {
  const v = handshakeVectors.handshakes[0]!;
  const message = fromHex(v.signed_message);
  const sig = fromHex(v.example_signature);
  sig[100]! ^= 0x10;
  assert.equal(verifies(engine, message, sig), false);
  message[message.length - 1]! ^= 1;
  assert.equal(verifies(engine, message, fromHex(v.example_signature)), false);
  assert.equal(verifies(engine, message, new Uint8Array(0)), false);
});

testEachEngine(
  "verifyServerSignature() refuses garbage DER and RSA keys below 2048 bits",
  (engine) => {
    assert.throws(
      () =>
        verifyServerSignature(
          engine,
          new Uint8Array([0x30, 0x03, 1, 2, 3]),
          new Uint8Array(1),
          new Uint8Array(1),
        ),
      KeyError,
    );
    const small = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
    const der = forge.asn1.toDer(forge.pki.publicKeyToAsn1(small.publicKey)).getBytes();
    const spki = Uint8Array.from(der, (c: string) => c.charCodeAt(0));
    assert.throws(
      () => verifyServerSignature(engine, spki, new Uint8Array(1), new Uint8Array(128)),
      /1024 bits/,
    );
  },
);

testEachEngine(
  "loadOrCreateIdentity() creates a 0600 PKCS#8 key once, then loads the same key",
  async (engine) => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/server_key.pem`;
      const first = await loadOrCreateIdentity(path, engine);
      assert.equal(first.created, true);
      assert.equal(first.identity.bits, 2048);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      assert.match(await Deno.readTextFile(path), /^-----BEGIN PRIVATE KEY-----/);
      const second = await loadOrCreateIdentity(path, engine);
      assert.equal(second.created, false);
      assert.equal(second.identity.fingerprint, first.identity.fingerprint);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testEachEngine("loadIdentity() names the file when it is not a key", async (engine) => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.pem`, "not a key");
    await assert.rejects(
      loadIdentity(`${dir}/bad.pem`, engine),
      (e) => e instanceof KeyError && e.message.includes("bad.pem"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

testEachEngine("identityFromPem() refuses an RSA key below 2048 bits", (engine) => {
  const identity = testIdentityOn(engine);
  const small = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
  assert.throws(
    () => identityFromPem(forge.pki.privateKeyToPem(small.privateKey), engine),
    /1024 bits/,
  );
  assert.equal(identityFromPem(testKeyPem, engine).fingerprint, identity.fingerprint);
});

testEachEngine("generateIdentity() refuses fewer than 2048 bits", (engine) => {
  assert.throws(() => generateIdentity(engine, 1024), RangeError);
});
