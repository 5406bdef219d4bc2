// X25519 (RFC 7748, PROTOCOL §2.6) against Wycheproof's x25519_test.json: every case with a
// non-zero result must match byte for byte; every case whose result is all zeros (a small-order
// public key) must be refused, as §2.6 and RFC 7748 §6.1 ask.
import assert from "node:assert/strict";
import {
  fromHex,
  toHex,
  X25519Error,
  x25519KeyPair,
  x25519SharedSecret,
} from "../../crypto/mod.ts";

interface XdhCase {
  tcId: number;
  comment: string;
  flags: string[];
  public: string;
  private: string;
  shared: string;
  result: "valid" | "invalid" | "acceptable";
}

const cases = (JSON.parse(
  Deno.readTextFileSync(new URL("../vectors/wycheproof/x25519_test.json", import.meta.url)),
) as { testGroups: { curve: string; tests: XdhCase[] }[] }).testGroups.flatMap((g) => {
  assert.equal(g.curve, "curve25519");
  return g.tests;
});
const ZERO = "00".repeat(32);

Deno.test("X25519 matches every Wycheproof case with a non-zero shared secret", () => {
  const computed = cases.filter((c) => c.shared !== ZERO);
  assert.ok(computed.length > 450, `only ${computed.length} cases`);
  for (const c of computed) {
    assert.notEqual(c.result, "invalid", `case ${c.tcId}`);
    const { privateKey } = x25519KeyPair(fromHex(c.private));
    assert.equal(
      toHex(x25519SharedSecret(privateKey, fromHex(c.public))),
      c.shared,
      `case ${c.tcId}`,
    );
  }
});

Deno.test("X25519 refuses every Wycheproof public key that forces an all-zero secret", () => {
  const zero = cases.filter((c) => c.shared === ZERO);
  assert.ok(zero.length >= 20, `only ${zero.length} cases`);
  for (const c of zero) {
    assert.ok(c.flags.includes("ZeroSharedSecret"), `case ${c.tcId}`);
    const { privateKey } = x25519KeyPair(fromHex(c.private));
    assert.throws(
      () => x25519SharedSecret(privateKey, fromHex(c.public)),
      X25519Error,
      `case ${c.tcId}`,
    );
  }
});

Deno.test("X25519 refuses public keys of 31 and 33 bytes, and private keys of other lengths", () => {
  const { privateKey } = x25519KeyPair();
  for (const n of [0, 31, 33]) {
    assert.throws(() => x25519SharedSecret(privateKey, new Uint8Array(n).fill(9)), X25519Error);
  }
  assert.throws(() => x25519KeyPair(new Uint8Array(31)), RangeError);
});

Deno.test("RFC 7748 §6.1: Alice's and Bob's public keys and their shared secret", () => {
  const alice = x25519KeyPair(
    fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
  );
  const bob = x25519KeyPair(
    fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
  );
  assert.equal(
    toHex(alice.publicKey),
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
  );
  assert.equal(
    toHex(bob.publicKey),
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
  );
  const k = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  assert.equal(toHex(x25519SharedSecret(alice.privateKey, bob.publicKey)), k);
  assert.equal(toHex(x25519SharedSecret(bob.privateKey, alice.publicKey)), k);
});

Deno.test("fresh X25519 key pairs differ and agree", () => {
  const a = x25519KeyPair();
  const b = x25519KeyPair();
  assert.notEqual(toHex(a.publicKey), toHex(b.publicKey));
  assert.deepEqual(
    x25519SharedSecret(a.privateKey, b.publicKey),
    x25519SharedSecret(b.privateKey, a.publicKey),
  );
});
