// The engine interface itself (crypto/engine.ts): RSA keys made, parsed, exported and used on
// each engine and checked on the other, the §8.1 policy for users' keys, two engines side by
// side in one process, and the test-only injection of RSA outputs for known answers.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import {
  type CryptoEngine,
  fromHex,
  KeyError,
  OaepError,
  parseUserKey,
  RSA_KEY_BITS,
  toHex,
} from "../../crypto/mod.ts";
import { liveNativeHandles } from "../../crypto/native.ts";
import { clientHandshake, serverHandshake } from "../../protocol/session.ts";
import { KEX_GROUPS } from "../../crypto/mod.ts";
import {
  NATIVE_SKIPPED,
  nativeCrypto,
  portableCrypto,
  testEachEngine,
  withInjectedRsaOutputs,
} from "../_engines.ts";
import { pipe } from "../_pipe.ts";
import { testIdentityOn } from "../_vectors.ts";

const LABEL = new TextEncoder().encode("HSP/1 sealed key");
const text = (s: string) => new TextEncoder().encode(s);

/** The other engine than `engine` (itself when the native one is skipped here). */
const otherThan = (engine: CryptoEngine) =>
  NATIVE_SKIPPED ? engine : engine === portableCrypto ? nativeCrypto() : portableCrypto;

/** A Wycheproof key's SPKI DER (tests/vectors/wycheproof/), of `bits` with exponent 65537. */
function wycheproofSpki(bits: number): Uint8Array {
  const url = new URL(
    `../vectors/wycheproof/rsa_pss_${bits}_sha256_mgf1_32_test.json`,
    import.meta.url,
  );
  const groups = JSON.parse(Deno.readTextFileSync(url)).testGroups as { publicKeyDer: string }[];
  return fromHex(groups[0]!.publicKeyDer);
}

/** DER of `tag` around `body`, with a two-byte length (every length here is 256 to 65535). */
const tlv = (tag: number, body: Uint8Array) =>
  new Uint8Array([tag, 0x82, body.length >> 8, body.length & 0xff, ...body]);

/**
 * A 2048-bit SubjectPublicKeyInfo re-encoded with one more leading zero byte in the modulus
 * INTEGER: BER allows it, DER does not (X.690 §8.3.2).
 */
function padModulus(spki: Uint8Array): Uint8Array {
  // SEQUENCE { AlgorithmIdentifier (15 bytes), BIT STRING { 00, SEQUENCE { INTEGER n, e } } }
  const algorithm = spki.subarray(4, 19);
  const rsaKey = spki.subarray(24);
  const modulus = rsaKey.subarray(8, 8 + ((rsaKey[6]! << 8) | rsaKey[7]!));
  const exponent = rsaKey.subarray(8 + modulus.length);
  const key = tlv(
    0x30,
    new Uint8Array([...tlv(0x02, new Uint8Array([0, ...modulus])), ...exponent]),
  );
  return tlv(0x30, new Uint8Array([...algorithm, ...tlv(0x03, new Uint8Array([0, ...key]))]));
}

testEachEngine(
  "a generated 2048-bit key signs and decrypts here, and is checked on the other engine",
  async (engine) => {
    const other = otherThan(engine);
    const key = await engine.generateRsaKey(2048);
    try {
      assert.equal(key.publicKey.bits, 2048);
      assert.equal(key.publicKey.publicExponent, 65537n);
      // The same key through PKCS#8 on the other engine: same public key, and each engine's
      // signatures and ciphertexts work on the other.
      const der = key.exportPkcs8();
      const copy = other.parsePrivateKey(der);
      der.fill(0);
      try {
        assert.equal(toHex(copy.publicKey.spkiDer), toHex(key.publicKey.spkiDer));
        const message = text("signed message stand-in");
        const signature = key.signPss(message);
        assert.equal(signature.length, 256);
        assert.equal(copy.publicKey.verifyPss(message, signature), true);
        assert.equal(
          other.parsePublicKey(key.publicKey.spkiDer).verifyPss(message, signature),
          true,
        );
        assert.equal(key.publicKey.verifyPss(message, copy.signPss(message)), true);
        assert.equal(key.publicKey.verifyPss(text("another message"), signature), false);
        const k = crypto.getRandomValues(new Uint8Array(64));
        assert.equal(toHex(key.decryptOaep(copy.publicKey.encryptOaep(k, LABEL), LABEL)), toHex(k));
        assert.equal(toHex(copy.decryptOaep(key.publicKey.encryptOaep(k, LABEL), LABEL)), toHex(k));
      } finally {
        copy.dispose();
      }
    } finally {
      key.dispose();
    }
    assert.throws(() => key.signPss(text("x")), TypeError);
    assert.throws(() => key.exportPkcs8(), TypeError);
  },
);

testEachEngine(
  "key generation refuses sizes other than 2048, 3072 and 4096 bits",
  async (engine) => {
    assert.deepEqual(RSA_KEY_BITS, [2048, 3072, 4096]);
    for (const bits of [1024, 2047, 2049, 8192]) {
      // Past the type, as a caller with a number might get.
      await assert.rejects(engine.generateRsaKey(bits as 2048), RangeError, `${bits}`);
    }
  },
);

testEachEngine(
  "OAEP decryption fails the same way for a wrong label, a flipped byte or a wrong length",
  async (engine) => {
    const key = await engine.generateRsaKey(2048);
    try {
      const ct = key.publicKey.encryptOaep(new Uint8Array(64).fill(9), LABEL);
      const flipped = ct.slice();
      flipped[200]! ^= 1;
      // A ciphertext that starts with a zero byte is the same number without it: one byte short,
      // it must still be refused (RFC 8017 §7.1.2 step 1). About 1 in 256 starts so.
      let zeroFirst = ct;
      while (zeroFirst[0] !== 0) zeroFirst = key.publicKey.encryptOaep(new Uint8Array(64), LABEL);
      for (
        const [why, input, label] of [
          ["wrong label", ct, text("HSP/1 sealed kez")],
          ["empty label", ct, new Uint8Array(0)],
          ["flipped byte", flipped, LABEL],
          ["one byte short", ct.subarray(1), LABEL],
          ["one byte short, the byte dropped a zero", zeroFirst.subarray(1), LABEL],
          ["one byte long", new Uint8Array([0, ...ct]), LABEL],
          ["empty", new Uint8Array(0), LABEL],
        ] as const
      ) {
        assert.throws(
          () => key.decryptOaep(input, label),
          (err) => err instanceof OaepError && err.message === "decryption failed",
          why,
        );
      }
    } finally {
      key.dispose();
    }
  },
);

// §8.1: a user's key is RSA of 2048, 3072 or 4096 bits with exponent 65537, in exact DER.
testEachEngine(
  "parseUserKey() takes RSA keys of 2048, 3072 and 4096 bits with exponent 65537",
  (engine) => {
    for (const bits of [2048, 3072, 4096]) {
      const spki = wycheproofSpki(bits);
      const key = parseUserKey(engine, spki);
      assert.equal(key.bits, bits);
      assert.equal(toHex(key.spkiDer), toHex(spki));
    }
  },
);

/** Keys §8.1 refuses, each with why and the reason the KeyError must give (made once). */
const badUserKeys = (() => {
  let cases: [string, Uint8Array, RegExp][] | undefined;
  return () => {
    if (cases !== undefined) return cases;
    const spki = (key: { export(o: { type: "spki"; format: "der" }): Uint8Array }) =>
      new Uint8Array(key.export({ type: "spki", format: "der" }));
    const rsa = (modulusLength: number, publicExponent = 65537) =>
      spki(generateKeyPairSync("rsa", { modulusLength, publicExponent }).publicKey);
    const good = wycheproofSpki(2048);
    // The outer SEQUENCE's length (0x82 0x01 0x22) in a longer form: valid BER, not DER.
    const longForm = new Uint8Array([0x30, 0x83, 0x00, ...good.subarray(2)]);
    // The modulus with one more leading zero byte: node:crypto takes it and re-encodes it.
    const paddedModulus = padModulus(good);
    cases = [
      ["1024 bits", rsa(1024), /1024 bits; 2048, 3072 or 4096/],
      ["2056 bits", rsa(2056), /2056 bits/],
      ["exponent 3", rsa(2048, 3), /public exponent 3; 65537/],
      ["P-256", spki(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey), /not RSA/],
      [
        "RSA-PSS key",
        spki(generateKeyPairSync("rsa-pss", { modulusLength: 2048 }).publicKey),
        /not RSA/,
      ],
      ["not DER", new Uint8Array([0x30, 0x03, 1, 2]), /not a DER SubjectPublicKeyInfo/],
      ["empty", new Uint8Array(0), /not a DER SubjectPublicKeyInfo/],
      ["a trailing byte", new Uint8Array([...good, 0]), /DER/],
      ["a long-form length", longForm, /DER/],
      ["a modulus with a needless zero byte", paddedModulus, /not in canonical DER/],
    ];
    return cases;
  };
})();

testEachEngine(
  "parseUserKey() refuses other sizes and exponents, other algorithms, bad DER and trailing or re-encoded bytes",
  (engine) => {
    for (const [why, der, reason] of badUserKeys()) {
      assert.throws(
        () => parseUserKey(engine, der),
        (err) => err instanceof KeyError && reason.test(err.message),
        why,
      );
    }
  },
);

Deno.test({
  name:
    "a client on one engine and a server on the other talk in the same process, each on its own",
  ignore: NATIVE_SKIPPED,
  fn: async () => {
    const native = nativeCrypto();
    for (
      const [clientEngine, serverEngine] of [[portableCrypto, native], [native, portableCrypto]]
    ) {
      const [a, b] = pipe();
      const [client, server] = await Promise.all([
        clientHandshake(a, { group: KEX_GROUPS[0]!, crypto: clientEngine! }),
        serverHandshake(b, { identity: testIdentityOn(serverEngine!), crypto: serverEngine! }),
      ]);
      const before = liveNativeHandles();
      client.session.send(text('PNG{"id":1}'));
      assert.equal(new TextDecoder().decode((await server!.session.receive())!), 'PNG{"id":1}');
      server!.session.send(text('ACK{"id":1}'));
      assert.equal(new TextDecoder().decode((await client.session.receive())!), 'ACK{"id":1}');
      // Only the native side made cipher contexts: one to seal, one to open.
      assert.equal(liveNativeHandles(), before + 2);
      client.session.dispose();
      server!.session.dispose();
      assert.equal(liveNativeHandles(), before);
      a.close();
    }
  },
});

testEachEngine(
  "injected RSA outputs stand in for a fixed OAEP seed and PSS salt, and a wrong signature is refused",
  async (engine) => {
    const real = await engine.generateRsaKey(2048);
    const message = text("what the vector signs");
    const signature = real.signPss(message);
    const wrapped = real.publicKey.encryptOaep(new Uint8Array(64).fill(1), LABEL);
    const der = real.exportPkcs8();
    const injecting = withInjectedRsaOutputs(engine, { wrapped, signature });
    const key = injecting.parsePrivateKey(der);
    der.fill(0);
    try {
      assert.equal(toHex(key.signPss(message)), toHex(signature));
      assert.equal(toHex(key.publicKey.encryptOaep(new Uint8Array(64), LABEL)), toHex(wrapped));
      assert.equal(toHex(key.decryptOaep(wrapped, LABEL)), toHex(new Uint8Array(64).fill(1)));
      assert.throws(() => key.signPss(text("another message")), /does not verify/);
      const small = withInjectedRsaOutputs(engine, { wrapped: wrapped.subarray(1) });
      assert.throws(
        () => small.parsePublicKey(real.publicKey.spkiDer).encryptOaep(message, LABEL),
        RangeError,
      );
    } finally {
      key.dispose();
      real.dispose();
    }
  },
);
