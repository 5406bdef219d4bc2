// The native engine (OpenSSL over FFI) against the portable one: records sealed by one open in
// the other, modular exponentiation against BigInt, signatures across engines, and selection
// refusing what it cannot load. The vector tests run on both engines through testEachEngine.
import assert from "node:assert/strict";
import {
  bytesToBigInt,
  GROUPS,
  identityFromPem,
  liveNativeHandles,
  loadNativeCrypto,
  modPow,
  NativeCryptoError,
  RecordCipher,
  RecordError,
  selectCrypto,
  toHex,
  verifyServerSignature,
} from "../../crypto/mod.ts";
import { recordKeys, testIdentity, testKeyPem } from "../_vectors.ts";
import { NATIVE_SKIPPED, testEachEngine } from "../_engines.ts";

const test = (name: string, fn: () => void | Promise<void>) =>
  Deno.test({ name, ignore: NATIVE_SKIPPED, fn });

/** A RecordCipher made under `engine`; the engine is reset to portable afterwards. */
function cipherOn(engine: "native" | "portable"): RecordCipher {
  selectCrypto(engine);
  try {
    return new RecordCipher(recordKeys);
  } finally {
    selectCrypto("portable");
  }
}

test("auto selects OpenSSL 3 here, and portable selects the portable engine", () => {
  try {
    const auto = selectCrypto("auto");
    assert.equal(auto.engine, "native", auto.detail);
    assert.match(auto.detail, /^OpenSSL 3\.\d+\.\d+/);
  } finally {
    assert.equal(selectCrypto("portable").engine, "portable");
  }
});

test("records sealed on either engine open on the other, at every length to 100 and 1 and 16 KiB", () => {
  const native = cipherOn("native");
  const portable = cipherOn("portable");
  try {
    for (const n of [...Array(101).keys(), 1024, 16384]) {
      const plaintext = crypto.getRandomValues(new Uint8Array(n));
      const iv = crypto.getRandomValues(new Uint8Array(16));
      const fromNative = native.seal(n, plaintext, iv);
      assert.equal(toHex(fromNative), toHex(portable.seal(n, plaintext, iv)), `length ${n}`);
      assert.equal(toHex(portable.open(n, fromNative)), toHex(plaintext));
      assert.equal(toHex(native.open(n, portable.seal(n, plaintext))), toHex(plaintext));
      // The same record under the next sequence number, or with its last byte changed, fails.
      assert.throws(() => native.open(n + 1, fromNative), RecordError);
      const bad = fromNative.slice();
      bad[bad.length - 1]! ^= 1;
      assert.throws(() => native.open(n, bad), RecordError);
    }
  } finally {
    native.dispose();
    portable.dispose();
  }
});

test("the native engine opens a record that is not 4-byte aligned inside a larger buffer", () => {
  const native = cipherOn("native");
  try {
    const plaintext = new TextEncoder().encode('MSG{"id":1,"to":"bob","text":"hi"}');
    const record = native.seal(7, plaintext);
    const buffer = new Uint8Array(record.length + 3);
    buffer.set(record, 3);
    assert.equal(toHex(native.open(7, buffer.subarray(3))), toHex(plaintext));
  } finally {
    native.dispose();
  }
});

testEachEngine("a disposed record cipher refuses to seal or open", () => {
  const native = new RecordCipher(recordKeys);
  const record = native.seal(0, new Uint8Array(5));
  native.dispose();
  native.dispose(); // idempotent
  assert.throws(() => native.seal(1, new Uint8Array(5)), TypeError);
  assert.throws(() => native.open(0, record), TypeError);
});

test("native modExp() agrees with BigInt in every group, for the generator and random bases", () => {
  const native = loadNativeCrypto();
  for (const group of GROUPS) {
    for (let i = 0; i < 3; i++) {
      const x = crypto.getRandomValues(new Uint8Array(group.exponentBits / 8));
      const base = i === 0 ? new Uint8Array([2]) : crypto.getRandomValues(new Uint8Array(64));
      const got = native.modExp(group.pBytes, base, x);
      assert.equal(got.length, group.byteLength);
      assert.equal(bytesToBigInt(got), modPow(bytesToBigInt(base), bytesToBigInt(x), group.p));
    }
  }
});

test("native signatures verify on node:crypto, and node:crypto's on the native engine", () => {
  const message = new TextEncoder().encode("transcript hash stand-in");
  selectCrypto("native");
  let nativeSignature: Uint8Array;
  try {
    nativeSignature = testIdentity.sign(message);
  } finally {
    selectCrypto("portable");
  }
  const portableSignature = testIdentity.sign(message);
  // PSS salts are random, so the two never match; each verifies under the other engine.
  assert.notEqual(toHex(nativeSignature), toHex(portableSignature));
  assert.equal(verifyServerSignature(testIdentity.spkiDer, message, nativeSignature).valid, true);
  selectCrypto("native");
  try {
    const check = (signature: Uint8Array) =>
      verifyServerSignature(testIdentity.spkiDer, message, signature).valid;
    assert.equal(check(portableSignature), true);
    const flipped = portableSignature.slice();
    flipped[100]! ^= 0x10;
    assert.equal(check(flipped), false);
    assert.equal(check(portableSignature.subarray(1)), false);
    assert.equal(check(new Uint8Array(0)), false);
  } finally {
    selectCrypto("portable");
  }
});

test("native refuses a library that is missing or is not libcrypto; auto falls back and says why", () => {
  assert.throws(
    () => selectCrypto("native", "/nonexistent/libcrypto.so.3"),
    (err) =>
      err instanceof NativeCryptoError && err.message.includes("/nonexistent/libcrypto.so.3"),
  );
  // libc loads, but lacks OpenSSL's symbols.
  assert.throws(() => selectCrypto("native", "libc.so.6"), NativeCryptoError);
  const auto = selectCrypto("auto", "/nonexistent/libcrypto.so.3");
  assert.equal(auto.engine, "portable");
  assert.match(auto.detail, /native unavailable: cannot load libcrypto/);
});

test("native CBC refuses input and output that overlap without being the same bytes", () => {
  const cbc = loadNativeCrypto().cbc(new Uint8Array(32), true);
  try {
    const buffer = new Uint8Array(64);
    const iv = new Uint8Array(16);
    assert.throws(() => cbc.run(iv, buffer.subarray(0, 32), buffer.subarray(16, 48)), RangeError);
    cbc.run(iv, buffer.subarray(0, 32), buffer.subarray(0, 32)); // in place
    cbc.run(iv, buffer.subarray(0, 32), buffer.subarray(32, 64)); // apart
    assert.throws(() => cbc.run(iv, buffer.subarray(0, 24), buffer.subarray(24, 48)), RangeError);
  } finally {
    cbc.dispose();
  }
});

test("an identity signs through OpenSSL once the native engine is selected", () => {
  const identity = identityFromPem(testKeyPem);
  const before = liveNativeHandles();
  identity.sign(new Uint8Array(1)); // portable: nothing made in OpenSSL
  assert.equal(liveNativeHandles(), before);
  selectCrypto("native");
  try {
    const signature = identity.sign(new Uint8Array(1));
    // The identity's key now lives in OpenSSL, and what it signed verifies elsewhere.
    assert.equal(liveNativeHandles(), before + 1);
    assert.equal(verifyServerSignature(identity.spkiDer, new Uint8Array(1), signature).valid, true);
  } finally {
    selectCrypto("portable");
  }
});
