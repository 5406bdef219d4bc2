// Project Wycheproof's vectors (tests/vectors/wycheproof/) for every primitive HSP/1 uses, on
// each engine: every `valid` case gives the exact result, every `invalid` one is refused.
// `acceptable` cases are listed where a file has them, with what we do.
import assert from "node:assert/strict";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  concat,
  constantTimeEqual,
  fromHex,
  OaepError,
  RecordCipher,
  RecordError,
  toHex,
  verifyServerSignature,
} from "../../crypto/mod.ts";
import { NATIVE_SKIPPED, nativeCrypto, portableCrypto, testEachEngine } from "../_engines.ts";

interface WycheproofCase {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly result: "valid" | "invalid" | "acceptable";
  readonly [field: string]: unknown;
}

interface WycheproofGroup {
  readonly tests: readonly WycheproofCase[];
  readonly [field: string]: unknown;
}

function load(name: string): readonly WycheproofGroup[] {
  const url = new URL(`../vectors/wycheproof/${name}`, import.meta.url);
  return (JSON.parse(Deno.readTextFileSync(url)) as { testGroups: WycheproofGroup[] }).testGroups;
}

const hex = (c: WycheproofCase, field: string) => fromHex(c[field] as string);
const label = (file: string, c: WycheproofCase) => `${file} #${c.tcId} ${c.comment} (${c.result})`;

/** Every case of `file` in the groups `select` keeps, with its group; fails if none are kept. */
function casesOf(
  file: string,
  select: (group: WycheproofGroup) => boolean = () => true,
): [WycheproofGroup, WycheproofCase][] {
  const cases = load(file).filter(select).flatMap((g) =>
    g.tests.map((c) => [g, c] as [WycheproofGroup, WycheproofCase])
  );
  assert.ok(cases.length > 0, `${file}: no cases selected`);
  return cases;
}

// AES-256-CBC with PKCS#7, through the record layer itself (§3): the engine's CBC and our
// padding on sealing, and on opening our padding check after a MAC the test computes (records
// carry one; the MAC key here is the test's own), so that each case reaches the padding check.
const AES_FILE = "aes_cbc_pkcs5_test.json";
const TEST_MAC_KEY = new Uint8Array(32).fill(7);
const SEQ = 5;

testEachEngine(
  "Wycheproof AES-256-CBC-PKCS5: valid cases seal and open exactly, bad paddings are refused",
  (engine) => {
    let valid = 0;
    let invalid = 0;
    for (const [, c] of casesOf(AES_FILE, (g) => g.keySize === 256)) {
      const keys = { enc: hex(c, "key"), mac: TEST_MAC_KEY };
      const iv = hex(c, "iv");
      const ct = hex(c, "ct");
      const cipher = new RecordCipher(engine, keys);
      try {
        const seq = new Uint8Array(8);
        new DataView(seq.buffer).setUint32(4, SEQ);
        const tag = hmac.create(sha256, TEST_MAC_KEY).update(seq).update(iv).update(ct).digest();
        const record = concat(iv, ct, tag);
        if (c.result === "valid") {
          valid++;
          assert.equal(toHex(cipher.open(SEQ, record)), c.msg, label(AES_FILE, c));
          const sealed = cipher.seal(SEQ, hex(c, "msg"), iv);
          assert.equal(toHex(sealed.subarray(16, 16 + ct.length)), c.ct, label(AES_FILE, c));
          assert.equal(sealed.length, 16 + ct.length + 32, label(AES_FILE, c));
        } else {
          invalid++;
          assert.equal(c.result, "invalid", label(AES_FILE, c));
          assert.throws(() => cipher.open(SEQ, record), RecordError, label(AES_FILE, c));
        }
      } finally {
        cipher.dispose();
      }
    }
    assert.deepEqual([valid, invalid], [24, 48]);
  },
);

const HMAC_FILE = "hmac_sha256_test.json";

testEachEngine(
  "Wycheproof HMAC-SHA-256: full and truncated tags match exactly when valid, never when modified",
  (engine) => {
    const out = new Uint8Array(32);
    let checked = 0;
    for (const [group, c] of casesOf(HMAC_FILE)) {
      const tagBytes = (group.tagSize as number) / 8;
      const msg = hex(c, "msg");
      const mac = engine.hmac(hex(c, "key"));
      try {
        // Over one part, and split in two as the record layer calls it (seq, then IV || C).
        for (const cut of [msg.length, msg.length >> 1]) {
          mac.macInto(out, msg.subarray(0, cut), msg.subarray(cut));
          const matches = constantTimeEqual(out.subarray(0, tagBytes), hex(c, "tag"));
          assert.equal(matches, c.result === "valid", label(HMAC_FILE, c));
          assert.notEqual(c.result, "acceptable", label(HMAC_FILE, c));
        }
      } finally {
        mac.dispose();
      }
      checked++;
    }
    assert.equal(checked, 174);
  },
);

for (const bits of [2048, 3072, 4096]) {
  const file = `rsa_pss_${bits}_sha256_mgf1_32_test.json`;
  testEachEngine(
    `Wycheproof RSASSA-PSS ${bits} SHA-256 MGF1 salt 32: valid signatures verify, invalid ones never`,
    (engine) => {
      let checked = 0;
      for (const [group, c] of casesOf(file)) {
        assert.deepEqual(
          [group.sha, group.mgf, group.mgfSha, group.sLen, group.keySize],
          ["SHA-256", "MGF1", "SHA-256", 32, bits],
        );
        // No case of these files is `acceptable`; should one appear, this stops to have it decided.
        assert.notEqual(c.result, "acceptable", label(file, c));
        const verdict = verifyServerSignature(
          engine,
          fromHex(group.publicKeyDer as string),
          hex(c, "msg"),
          hex(c, "sig"),
        );
        assert.equal(verdict.valid, c.result === "valid", label(file, c));
        assert.equal(verdict.key.bits, bits);
        checked++;
      }
      assert.equal(checked, 108);
    },
  );
}

// RSAES-OAEP decryption (§8.3's key wrap) with the vectors' private keys: valid ciphertexts give
// the message under the label, every invalid one (bad padding, wrong length, c >= n, …) the
// same vague OaepError, so that no oracle tells them apart.
for (const bits of [2048, 3072, 4096]) {
  const file = `rsa_oaep_${bits}_sha256_mgf1sha256_test.json`;
  testEachEngine(
    `Wycheproof RSAES-OAEP ${bits} SHA-256 MGF1-SHA-256: valid cases decrypt under their label, invalid ones fail alike`,
    (engine) => {
      let checked = 0;
      for (const group of load(file)) {
        assert.deepEqual([group.sha, group.mgf, group.mgfSha, group.keySize], [
          "SHA-256",
          "MGF1",
          "SHA-256",
          bits,
        ]);
        const key = engine.parsePrivateKey(fromHex(group.privateKeyPkcs8 as string));
        try {
          assert.equal(key.publicKey.bits, bits);
          for (const c of group.tests) {
            assert.notEqual(c.result, "acceptable", label(file, c));
            const decrypt = () => key.decryptOaep(hex(c, "ct"), hex(c, "label"));
            if (c.result === "valid") {
              assert.equal(toHex(decrypt()), c.msg, label(file, c));
            } else {
              assert.throws(
                decrypt,
                (err) => err instanceof OaepError && err.message === "decryption failed",
                label(file, c),
              );
            }
            checked++;
          }
        } finally {
          key.dispose();
        }
      }
      assert.equal(checked, 37);
    },
  );
}

Deno.test({
  name:
    "RSA-OAEP: what either engine encrypts under a label the other decrypts, and only under that label",
  ignore: NATIVE_SKIPPED,
  fn: () => {
    const pkcs8 = fromHex(
      load("rsa_oaep_2048_sha256_mgf1sha256_test.json")[0]!.privateKeyPkcs8 as string,
    );
    const engines = [portableCrypto, nativeCrypto()];
    const keys = engines.map((engine) => engine.parsePrivateKey(pkcs8));
    const label = new TextEncoder().encode("HSP/1 sealed key");
    try {
      for (const [from, to] of [[0, 1], [1, 0], [0, 0], [1, 1]] as const) {
        for (const length of [0, 1, 64, 190]) {
          const message = crypto.getRandomValues(new Uint8Array(length));
          const ct = keys[from]!.publicKey.encryptOaep(message, label);
          assert.equal(ct.length, 256);
          assert.equal(toHex(keys[to]!.decryptOaep(ct, label)), toHex(message));
          assert.throws(() => keys[to]!.decryptOaep(ct, new Uint8Array(0)), OaepError);
          // A fresh seed every time: the same message never encrypts the same way twice.
          assert.notEqual(toHex(keys[from]!.publicKey.encryptOaep(message, label)), toHex(ct));
        }
      }
    } finally {
      for (const key of keys) key.dispose();
    }
  },
});
