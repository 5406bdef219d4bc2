// Known-answer tests from the standards: NIST SP 800-38A (AES-256-CBC), RFC 4231
// (HMAC-SHA256), RFC 5869 (HKDF-SHA256); the first two on each engine.
import assert from "node:assert/strict";
import { fromHex, hkdfExpand, hkdfExtract, toHex } from "../../crypto/mod.ts";
import { testEachEngine } from "../_engines.ts";
import { seal } from "./_record.ts";

const ascii = (s: string) => new TextEncoder().encode(s);
const fill = (n: number, b: number) => new Uint8Array(n).fill(b);

// SP 800-38A F.2.5 / F.2.6, CBC-AES256.
const NIST_KEY = fromHex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
const NIST_IV = fromHex("000102030405060708090a0b0c0d0e0f");
const NIST_PLAIN = fromHex(
  "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51" +
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
);
const NIST_CIPHER = "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d" +
  "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";

testEachEngine("AES-256-CBC matches NIST SP 800-38A F.2.5 and F.2.6", (engine) => {
  const out = new Uint8Array(NIST_PLAIN.length);
  const encryptor = engine.cbc(NIST_KEY, true);
  encryptor.run(NIST_IV, NIST_PLAIN, out);
  assert.equal(toHex(out), NIST_CIPHER);
  const decryptor = engine.cbc(NIST_KEY, false);
  decryptor.run(NIST_IV, fromHex(NIST_CIPHER), out);
  assert.equal(toHex(out), toHex(NIST_PLAIN));
  encryptor.dispose();
  decryptor.dispose();
});

testEachEngine(
  "seal() encrypts the NIST plaintext to the NIST ciphertext plus one padding block",
  (engine) => {
    const record = seal(engine, { enc: NIST_KEY, mac: fill(32, 1) }, 0, NIST_PLAIN, NIST_IV);
    // IV (16) || 4 NIST blocks || 1 block of PKCS#7 padding || MAC (32).
    assert.equal(record.length, 16 + 64 + 16 + 32);
    assert.equal(toHex(record.subarray(0, 16)), toHex(NIST_IV));
    assert.equal(toHex(record.subarray(16, 80)), NIST_CIPHER);
  },
);

const RFC4231: { key: Uint8Array; data: Uint8Array; mac: string }[] = [
  {
    key: fill(20, 0x0b),
    data: ascii("Hi There"),
    mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  },
  {
    key: ascii("Jefe"),
    data: ascii("what do ya want for nothing?"),
    mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  },
  {
    key: fill(20, 0xaa),
    data: fill(50, 0xdd),
    mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
  },
  {
    key: fromHex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
    data: fill(50, 0xcd),
    mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
  },
  {
    key: fill(131, 0xaa),
    data: ascii("Test Using Larger Than Block-Size Key - Hash Key First"),
    mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  },
  {
    key: fill(131, 0xaa),
    data: ascii(
      "This is a test using a larger than block-size key and a larger than block-size data. " +
        "The key needs to be hashed before being used by the HMAC algorithm.",
    ),
    mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
  },
];

testEachEngine(
  "HMAC-SHA-256 matches RFC 4231 test cases 1-4, 6 and 7, over one part and over two",
  (engine) => {
    for (const { key, data, mac } of RFC4231) {
      const hmac = engine.hmac(key);
      const out = new Uint8Array(32);
      hmac.macInto(out, data);
      assert.equal(toHex(out), mac);
      hmac.macInto(out, data.subarray(0, 5), data.subarray(5));
      assert.equal(toHex(out), mac);
      hmac.dispose();
      assert.throws(() => hmac.macInto(out, data), TypeError);
    }
  },
);

Deno.test("HKDF matches RFC 5869 test cases 1 and 3", () => {
  const ikm = fill(22, 0x0b);
  const prk1 = hkdfExtract(fromHex("000102030405060708090a0b0c"), ikm);
  assert.equal(toHex(prk1), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  assert.equal(
    toHex(hkdfExpand(prk1, fromHex("f0f1f2f3f4f5f6f7f8f9"), 42)),
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  );
  const prk3 = hkdfExtract(new Uint8Array(0), ikm);
  assert.equal(toHex(prk3), "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
  assert.equal(
    toHex(hkdfExpand(prk3, new Uint8Array(0), 42)),
    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
  );
});
