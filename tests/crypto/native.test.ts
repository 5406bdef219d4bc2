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
import {
  checkOpenSslVersion,
  checkSha256Ctx,
  LIBRARY_CANDIDATES,
  libraryCandidates,
} from "../../crypto/native.ts";
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
  const libc = loadNativeCrypto().path.replace(/libcrypto\.so\.3$/, "libc.so.6");
  if (Deno.build.os === "linux") {
    assert.throws(() => selectCrypto("native", libc), NativeCryptoError);
  }
  const auto = selectCrypto("auto", "/nonexistent/libcrypto.so.3");
  assert.equal(auto.engine, "portable");
  assert.match(auto.detail, /native unavailable: cannot load libcrypto/);
  assert.match(auto.fallback ?? "", /^cannot load libcrypto/);
});

Deno.test("a libcrypto named by a relative path or a bare name is refused, even under auto", () => {
  for (const name of ["libcrypto.so.3", "./libcrypto.so.3", "lib/libcrypto.so.3"]) {
    assert.throws(
      () => loadNativeCrypto(name),
      (err) => err instanceof NativeCryptoError && /is not absolute/.test(err.message),
      name,
    );
    const auto = selectCrypto("auto", name);
    assert.equal(auto.engine, "portable");
    assert.match(auto.fallback ?? "", /is not absolute/);
  }
});

Deno.test("the default candidates are absolute paths, this CPU's first, and the tasks permit exactly them", () => {
  const all = Object.values(LIBRARY_CANDIDATES).flat();
  assert.ok(all.every((path) => path.startsWith("/")), all.join(" "));
  const x86 = libraryCandidates("linux", "x86_64");
  const arm = libraryCandidates("linux", "aarch64");
  assert.ok(x86.every((p) => !p.includes("aarch64")) && x86.includes("/usr/lib64/libcrypto.so.3"));
  assert.ok(arm.every((p) => !p.includes("x86_64")) && arm.includes("/usr/lib64/libcrypto.so.3"));
  assert.deepEqual(libraryCandidates("windows", "x86_64"), []);
  const tasks = JSON.parse(
    Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)),
  ).tasks as Record<string, string>;
  for (const task of ["server", "client", "compile"]) {
    const granted = [...tasks[task]!.matchAll(/--allow-ffi=(\S+)/g)].map((m) => m[1]!);
    assert.ok(granted.length > 0, `${task} grants FFI`);
    for (const list of granted) assert.deepEqual(list.split(",").sort(), [...all].sort(), task);
  }
});

Deno.test("only OpenSSL 3.x is accepted: 1.1.1 and 4.0 are refused by version number", () => {
  for (const ok of [0x30000000n, 0x30000130n, 0x30500010n, 0x3fffffffn]) checkOpenSslVersion(ok);
  for (const bad of [0x1010117fn, 0x2fffffffn, 0x40000000n, 0x40100000n]) {
    assert.throws(
      () => checkOpenSslVersion(bad),
      (err) => err instanceof NativeCryptoError && /only OpenSSL 3\.x/.test(err.message),
      bad.toString(16),
    );
  }
});

Deno.test("SHA256_CTX is checked at load: a struct larger than 112 bytes or laid out otherwise is refused", () => {
  // Stand-ins for libcrypto's SHA256_* that clear and set a struct of `size` bytes, with
  // md_len as its last word: 112 is OpenSSL 3's.
  const fake = (size: number, mdLenAt = size - 4) => ({
    SHA256_Init: (ctx: AllowSharedBufferSource | null) => {
      const bytes = ctx as Uint8Array;
      bytes.fill(0, 0, size);
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab]
        .concat(0x5be0cd19).forEach((word, i) => view.setUint32(4 * i, word, true));
      view.setUint32(mdLenAt, 32, true);
      return 1;
    },
    SHA256_Update: () => 1,
    SHA256_Final: () => 1,
  });
  checkSha256Ctx(fake(112));
  for (const [size, at] of [[128, 124], [116, 112], [112, 104]] as const) {
    assert.throws(
      () => checkSha256Ctx(fake(size, at)),
      (err) => err instanceof NativeCryptoError && /SHA256_CTX/.test(err.message),
      `${size} bytes, md_len at ${at}`,
    );
  }
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
