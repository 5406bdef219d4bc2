// Finite-field DH (PROTOCOL §2.1, §2.4, §2.5) against the handshake vectors and a BigInt reference.
import assert from "node:assert/strict";
import {
  bytesToBigInt,
  DhError,
  fromHex,
  generateKeyPair,
  groupById,
  GROUPS,
  randomExponent,
  sharedSecret,
  toHex,
  validateShare,
} from "../../crypto/mod.ts";
import { handshakeVectors } from "../_vectors.ts";
import { encodeShare, modPow } from "./_reference.ts";
import { testEachEngine } from "../_engines.ts";

testEachEngine("generateKeyPair() reproduces both shares of every handshake vector", (engine) => {
  for (const v of handshakeVectors.handshakes) {
    const group = groupById(v.group)!;
    assert.equal(
      toHex(generateKeyPair(engine, group, fromHex(v.client_private_hex)).share),
      v.client_share,
    );
    assert.equal(
      toHex(generateKeyPair(engine, group, fromHex(v.server_private_hex)).share),
      v.server_share,
    );
  }
});

testEachEngine(
  "sharedSecret() gives the vector's Z from either side, at len(p) bytes",
  (engine) => {
    for (const v of handshakeVectors.handshakes) {
      const group = groupById(v.group)!;
      const client = generateKeyPair(engine, group, fromHex(v.client_private_hex));
      const server = generateKeyPair(engine, group, fromHex(v.server_private_hex));
      assert.equal(toHex(sharedSecret(engine, client, fromHex(v.server_share))), v.shared_secret);
      assert.equal(toHex(sharedSecret(engine, server, fromHex(v.client_share))), v.shared_secret);
    }
  },
);

testEachEngine(
  "fresh key pairs agree in all three groups and match BigInt exponentiation",
  (engine) => {
    for (const group of GROUPS) {
      const a = generateKeyPair(engine, group);
      const b = generateKeyPair(engine, group);
      assert.equal(a.share.length, group.byteLength);
      assert.equal(
        toHex(sharedSecret(engine, a, b.share)),
        toHex(sharedSecret(engine, b, a.share)),
      );
      const reference = modPow(group.g, bytesToBigInt(a.privateExponent), group.p);
      assert.equal(toHex(a.share), toHex(encodeShare(group, reference)));
    }
  },
);

testEachEngine(
  "randomExponent() has exactly the protocol's minimum bit length per group",
  () => {
    for (const group of GROUPS) {
      for (let i = 0; i < 20; i++) {
        assert.equal(bytesToBigInt(randomExponent(group)).toString(2).length, group.exponentBits);
      }
    }
    assert.deepEqual(GROUPS.map((g) => g.exponentBits >= (g.bits === 2048 ? 256 : 320)), [
      true,
      true,
      true,
    ]);
  },
);

testEachEngine(
  "every invalid share vector is refused by validateShare() and sharedSecret()",
  (engine) => {
    for (const v of handshakeVectors.invalid_shares) {
      const group = groupById(v.group)!;
      assert.throws(() => validateShare(group, fromHex(v.share)), DhError, v.why);
      assert.throws(
        () => sharedSecret(engine, generateKeyPair(engine, group), fromHex(v.share)),
        DhError,
        v.why,
      );
    }
  },
);

testEachEngine("validateShare() accepts 2 and p - 2, the edges of 1 < Y < p - 1", () => {
  for (const group of GROUPS) {
    validateShare(group, encodeShare(group, 2n));
    validateShare(group, encodeShare(group, group.p - 2n));
  }
});

testEachEngine(
  "sharedSecret() refuses the order-2 share p - 1, which would force Z to 1",
  (engine) => {
    // For a safe prime p, Y = p - 1 is the only element of order 2; it is refused before
    // exponentiation. An even exponent maps p - 1 to 1, which the Z check would refuse too.
    const group = GROUPS[0]!;
    const even = new Uint8Array(32).fill(0x02);
    even[0] = 0x80;
    assert.throws(
      () =>
        sharedSecret(
          engine,
          generateKeyPair(engine, group, even),
          encodeShare(group, group.p - 1n),
        ),
      DhError,
    );
  },
);

testEachEngine("generateKeyPair() refuses an exponent outside 2 <= x < p - 1", (engine) => {
  const group = GROUPS[0]!;
  assert.throws(() => generateKeyPair(engine, group, new Uint8Array([1])), RangeError);
  assert.throws(() => generateKeyPair(engine, group, encodeShare(group, group.p - 1n)), RangeError);
});
