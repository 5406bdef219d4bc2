// Password hashing: scrypt with stored parameters, constant-time verify, never blocking the loop.
import assert from "node:assert/strict";
import { scryptSync } from "node:crypto";
import {
  checkPassword,
  dummyHash,
  hashPassword,
  MAX_SCRYPT_MEMORY,
  needsRehash,
  parseStoredHash,
  PASSWORD_PARAMS,
  TEST_ONLY_WEAK_PARAMS,
  toBase64,
  verifyPassword,
} from "../../crypto/mod.ts";

Deno.test("a hash verifies its password and refuses any other", async () => {
  const stored = await hashPassword("correct horse battery", TEST_ONLY_WEAK_PARAMS);
  assert.equal(await verifyPassword("correct horse battery", stored), true);
  assert.equal(await verifyPassword("correct horse batterY", stored), false);
  assert.equal(await verifyPassword("", stored), false);
});

Deno.test("the stored form carries scheme, parameters and a 16-byte salt; salts differ", async () => {
  const a = await hashPassword("pässwörd-123", TEST_ONLY_WEAK_PARAMS);
  const b = await hashPassword("pässwörd-123", TEST_ONLY_WEAK_PARAMS);
  const parsed = parseStoredHash(a);
  assert.deepEqual(parsed.params, TEST_ONLY_WEAK_PARAMS);
  assert.equal(parsed.salt.length, 16);
  assert.equal(parsed.hash.length, 32);
  assert.notEqual(a, b);
  assert.equal(await verifyPassword("pässwörd-123", b), true);
});

Deno.test("the production setting is OWASP strength: N·r ≥ 2^15·8 and p ≥ 3 (or N=2^17, p=1)", () => {
  const { logN, r, p } = PASSWORD_PARAMS;
  assert.ok(logN >= 15 && r >= 8 && p >= 3 || logN >= 17 && r >= 8 && p >= 1);
  assert.equal(needsRehash(`scrypt$${logN}$${r}$${p}$AAAA$AAAA`), false);
  assert.equal(needsRehash("scrypt$10$8$1$AAAA$AAAA"), true);
});

Deno.test("parseStoredHash() refuses malformed and absurd parameters", () => {
  for (
    const bad of [
      "",
      "bcrypt$1$2$3$x$y",
      "scrypt$40$8$1$AAAA$AAAA",
      "scrypt$15$8$1$AAAA",
      "scrypt$x$8$1$A$A",
    ]
  ) {
    assert.throws(() => parseStoredHash(bad), TypeError, bad);
  }
});

Deno.test("the dummy hash never verifies and parses like a real one", async () => {
  const stored = dummyHash(TEST_ONLY_WEAK_PARAMS);
  assert.deepEqual(parseStoredHash(stored).params, TEST_ONLY_WEAK_PARAMS);
  assert.equal(await verifyPassword("anything at all", stored), false);
});

Deno.test("hashing at production strength does not block the event loop", async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    // ~300 ms of scrypt on a worker thread: timers on this thread keep firing meanwhile.
    // Were the hash computed on this thread, not one tick could fire before it resolved.
    const ticksWhenDone = await hashPassword("correct horse battery").then(() => ticks);
    assert.ok(ticksWhenDone >= 10, `only ${ticksWhenDone} timer ticks while hashing`);
  } finally {
    clearInterval(timer);
  }
});

Deno.test("a stored hash needing more than 256 MiB per verification is refused before any work", async () => {
  const salt = "AAAAAAAAAAAAAAAAAAAAAA==";
  // 128·N·r: 2^18·8 is 256 MiB (the cap), 2^19·8 and 2^20·32 (4 GiB) are beyond it.
  assert.equal(128 * 2 ** 18 * 8, MAX_SCRYPT_MEMORY);
  assert.deepEqual(parseStoredHash(`scrypt$18$8$1$${salt}$AAAA`).params, { logN: 18, r: 8, p: 1 });
  for (const params of ["19$8$1", "20$32$1", "17$32$16", "20$8$1"]) {
    const stored = `scrypt$${params}$${salt}$AAAA`;
    assert.throws(() => parseStoredHash(stored), /above MAX_SCRYPT_MEMORY/, params);
    await assert.rejects(verifyPassword("x", stored), /above MAX_SCRYPT_MEMORY/, params);
  }
  await assert.rejects(hashPassword("x", { logN: 19, r: 8, p: 1 }), RangeError);
});

// "é" composed (U+00E9, NFC) and decomposed (e + U+0301, NFD): the same password as typed on
// two systems whose input methods differ.
const COMPOSED = "caf\u00e9-crème-42".normalize("NFC");
const DECOMPOSED = COMPOSED.normalize("NFD");

Deno.test("a password hashed in one Unicode form verifies when typed in the other", async () => {
  assert.notEqual(COMPOSED, DECOMPOSED);
  const pairs: [string, string][] = [[COMPOSED, DECOMPOSED], [DECOMPOSED, COMPOSED]];
  for (const [typed, later] of pairs) {
    const stored = await hashPassword(typed, TEST_ONLY_WEAK_PARAMS);
    assert.equal(await verifyPassword(later, stored), true);
    assert.equal(await verifyPassword(typed, stored), true);
    assert.equal(await verifyPassword(later.replace("42", "43"), stored), false);
  }
});

Deno.test("a hash stored before normalisation from decomposed input still verifies that input, and asks to be rehashed", async () => {
  // What hashPassword wrote before passwords were normalised: scrypt over the raw UTF-8.
  const salt = new Uint8Array(16).fill(3);
  const { logN, r, p } = TEST_ONLY_WEAK_PARAMS;
  const raw = scryptSync(new TextEncoder().encode(DECOMPOSED), salt, 32, { N: 2 ** logN, r, p });
  const legacy = `scrypt$${logN}$${r}$${p}$${toBase64(salt)}$${toBase64(new Uint8Array(raw))}`;
  assert.deepEqual(await checkPassword(DECOMPOSED, legacy, TEST_ONLY_WEAK_PARAMS), {
    valid: true,
    rehash: true,
  });
  // Typed composed, it cannot be matched (the stored bytes are the decomposed ones): this is
  // the mismatch normalisation ends, once the hash is rehashed at a login that succeeds.
  assert.equal(await verifyPassword(COMPOSED, legacy), false);
  assert.equal(await verifyPassword(DECOMPOSED.replace("42", "43"), legacy), false);
  // A hash made now, at the current parameters, needs no rehash.
  const fresh = await hashPassword(DECOMPOSED, TEST_ONLY_WEAK_PARAMS);
  assert.deepEqual(await checkPassword(DECOMPOSED, fresh, TEST_ONLY_WEAK_PARAMS), {
    valid: true,
    rehash: false,
  });
});

Deno.test("checkPassword() asks for a rehash when the stored parameters are below the current ones", async () => {
  const weak = await hashPassword("correct horse battery", TEST_ONLY_WEAK_PARAMS);
  assert.deepEqual(await checkPassword("correct horse battery", weak), {
    valid: true,
    rehash: true,
  });
  assert.deepEqual(await checkPassword("correct horse batterY", weak), {
    valid: false,
    rehash: false,
  });
  assert.deepEqual(await checkPassword("correct horse battery", weak, TEST_ONLY_WEAK_PARAMS), {
    valid: true,
    rehash: false,
  });
});
