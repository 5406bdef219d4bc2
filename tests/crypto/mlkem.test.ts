// ML-KEM-768 (FIPS 203, PROTOCOL §2.6) against Wycheproof: key generation from seeds, encapsulation
// with a fixed m (including keys failing the modulus check of §7.2, which must be refused), and
// decapsulation (valid ciphertexts, implicit rejection of wrong ones, wrong lengths refused).
import assert from "node:assert/strict";
import {
  fromHex,
  MLKEM768,
  mlkemDecaps,
  mlkemEncaps,
  MlKemError,
  mlkemKeyGen,
  toHex,
} from "../../crypto/mod.ts";

interface Case {
  tcId: number;
  comment?: string;
  result: "valid" | "invalid" | "acceptable";
  seed?: string;
  ek?: string;
  dk?: string;
  m?: string;
  c?: string;
  K?: string;
}

function load(name: string): Case[] {
  const data = JSON.parse(
    Deno.readTextFileSync(new URL(`../vectors/wycheproof/${name}`, import.meta.url)),
  ) as { testGroups: { parameterSet: string; tests: Case[] }[] };
  return data.testGroups.flatMap((g) => {
    assert.equal(g.parameterSet, "ML-KEM-768");
    return g.tests;
  });
}

Deno.test("ML-KEM-768 key generation from d || z matches every Wycheproof seed case", () => {
  const cases = load("mlkem_768_keygen_seed_test.json");
  assert.equal(cases.length, 100);
  for (const c of cases) {
    const pair = mlkemKeyGen(fromHex(c.seed!));
    assert.equal(toHex(pair.encapsulationKey), c.ek, `case ${c.tcId}`);
    assert.equal(toHex(pair.decapsulationKey), c.dk, `case ${c.tcId}`);
  }
});

Deno.test("ML-KEM-768 encapsulation with a fixed m matches every valid Wycheproof case and refuses every invalid key", () => {
  const cases = load("mlkem_768_encaps_test.json");
  let valid = 0;
  let invalid = 0;
  for (const c of cases) {
    const ek = fromHex(c.ek!);
    if (c.result === "valid") {
      const out = mlkemEncaps(ek, fromHex(c.m!));
      assert.equal(toHex(out.ciphertext), c.c, `case ${c.tcId}`);
      assert.equal(toHex(out.sharedSecret), c.K, `case ${c.tcId}`);
      valid++;
    } else {
      assert.equal(c.result, "invalid");
      assert.throws(
        () => mlkemEncaps(ek, fromHex(c.m!)),
        MlKemError,
        `case ${c.tcId}: ${c.comment}`,
      );
      invalid++;
    }
  }
  assert.deepEqual([valid, invalid], [133, 132]);
});

Deno.test("ML-KEM-768 decapsulation matches every valid Wycheproof case and refuses every invalid one", () => {
  const cases = load("mlkem_768_test.json");
  let valid = 0;
  let invalid = 0;
  for (const c of cases) {
    const seed = fromHex(c.seed!);
    if (c.result === "valid") {
      // Valid includes random and bit-flipped ciphertexts: implicit rejection gives the K listed.
      const pair = mlkemKeyGen(seed);
      assert.equal(toHex(pair.encapsulationKey), c.ek, `case ${c.tcId}`);
      assert.equal(toHex(mlkemDecaps(pair.decapsulationKey, fromHex(c.c!))), c.K, `case ${c.tcId}`);
      valid++;
      continue;
    }
    assert.equal(c.result, "invalid");
    if (seed.length !== MLKEM768.seedBytes) {
      assert.throws(() => mlkemKeyGen(seed), RangeError, `case ${c.tcId}: ${c.comment}`);
    } else {
      const pair = mlkemKeyGen(seed);
      assert.throws(
        () => mlkemDecaps(pair.decapsulationKey, fromHex(c.c!)),
        MlKemError,
        `case ${c.tcId}: ${c.comment}`,
      );
    }
    invalid++;
  }
  assert.deepEqual([valid, invalid], [153, 40]);
});

Deno.test("ML-KEM-768 refuses a decapsulation key that does not hold its own H(ek)", () => {
  const pair = mlkemKeyGen();
  const { ciphertext } = mlkemEncaps(pair.encapsulationKey);
  const dk = pair.decapsulationKey.slice();
  dk[MLKEM768.decapsulationKeyBytes - 40]! ^= 1; // inside H(ek), FIPS 203 §7.3
  assert.throws(() => mlkemDecaps(dk, ciphertext), MlKemError);
});

Deno.test("fresh ML-KEM-768 key pairs encapsulate and decapsulate to the same secret", () => {
  const pair = mlkemKeyGen();
  const { ciphertext, sharedSecret } = mlkemEncaps(pair.encapsulationKey);
  assert.equal(ciphertext.length, MLKEM768.ciphertextBytes);
  assert.deepEqual(mlkemDecaps(pair.decapsulationKey, ciphertext), sharedSecret);
  assert.notDeepEqual(mlkemKeyGen().encapsulationKey, pair.encapsulationKey);
});
