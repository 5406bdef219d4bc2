// Password hashing: scrypt with stored parameters, constant-time verify, never blocking the loop.
import assert from "node:assert/strict";
import {
  dummyHash,
  hashPassword,
  needsRehash,
  parseStoredHash,
  PASSWORD_PARAMS,
  TEST_ONLY_WEAK_PARAMS,
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
