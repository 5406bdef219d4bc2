// The native engine (OpenSSL over FFI) against the portable one: records sealed by one open in
// the other, modular exponentiation against BigInt, signatures across engines, the same CBC
// contract on both, and selection refusing what it cannot load. The vector tests run on both
// engines through testEachEngine.
import assert from "node:assert/strict";
import {
  bytesToBigInt,
  type CryptoEngine,
  GROUPS,
  identityFromPem,
  NativeCryptoError,
  RecordCipher,
  RecordError,
  sealedLength,
  selectCrypto,
  toHex,
  verifyServerSignature,
} from "../../crypto/mod.ts";
import {
  checkOpenSslVersion,
  checkSha256Ctx,
  LIBRARY_CANDIDATES,
  libraryCandidates,
  liveNativeHandles,
  loadNativeCrypto,
} from "../../crypto/native.ts";
import { recordKeys, testIdentityOn, testKeyPem } from "../_vectors.ts";
import { NATIVE_SKIPPED, nativeCrypto, portableCrypto, testEachEngine } from "../_engines.ts";
import { modPow } from "./_reference.ts";

const test = (name: string, fn: () => void | Promise<void>) =>
  Deno.test({ name, ignore: NATIVE_SKIPPED, fn });

test("auto selects OpenSSL 3 here, and portable selects the portable engine", () => {
  const auto = selectCrypto("auto");
  assert.equal(auto.engine.name, "native", auto.detail);
  assert.match(auto.detail, /^OpenSSL 3\.\d+\.\d+/);
  assert.equal(auto.fallback, undefined);
  assert.equal(auto.engine, selectCrypto("native").engine, "one library, loaded once");
  assert.equal(selectCrypto("portable").engine.name, "portable");
});

test("records sealed on either engine open on the other, at every length to 100 and 1 and 16 KiB", () => {
  const native = new RecordCipher(nativeCrypto(), recordKeys);
  const portable = new RecordCipher(portableCrypto, recordKeys);
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

testEachEngine("records are sealed into and opened in place at any byte alignment", (engine) => {
  const cipher = new RecordCipher(engine, recordKeys);
  try {
    const plaintext = new TextEncoder().encode('MSG{"id":1,"to":"bob","text":"hi"}');
    const iv = crypto.getRandomValues(new Uint8Array(16));
    const aligned = cipher.seal(7, plaintext, iv);
    for (const offset of [1, 2, 3, 5]) {
      // A frame writer's buffer or a frame body may start anywhere in a larger buffer.
      const buffer = new Uint8Array(sealedLength(plaintext.length) + offset + 3);
      const record = buffer.subarray(offset, offset + sealedLength(plaintext.length));
      cipher.sealInto(7, plaintext, record, iv);
      assert.equal(toHex(record), toHex(aligned), `sealed at offset ${offset}`);
      const opened = cipher.openInPlace(7, record);
      assert.equal(opened.byteOffset, offset + 16);
      assert.equal(toHex(opened), toHex(plaintext), `opened at offset ${offset}`);
    }
  } finally {
    cipher.dispose();
  }
});

testEachEngine(
  "CBC takes input and output at any alignment, in place or apart, and refuses partial overlap",
  (engine) => {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const iv = crypto.getRandomValues(new Uint8Array(16));
    const plain = crypto.getRandomValues(new Uint8Array(64));
    const encryptor = engine.cbc(key, true);
    const decryptor = engine.cbc(key, false);
    try {
      const reference = new Uint8Array(64);
      encryptor.run(iv, plain, reference);
      const buffer = new Uint8Array(64 * 3 + 8);
      for (const [inAt, outAt] of [[1, 1], [2, 2], [3, 3], [1, 70], [70, 3], [0, 66], [66, 131]]) {
        const input = buffer.subarray(inAt!, inAt! + 64);
        const output = buffer.subarray(outAt!, outAt! + 64);
        input.set(plain);
        encryptor.run(iv.slice(), input, output);
        assert.equal(toHex(output), toHex(reference), `encrypt ${inAt} -> ${outAt}`);
        decryptor.run(iv, output, input);
        assert.equal(toHex(input), toHex(plain), `decrypt ${outAt} -> ${inAt}`);
      }
      // Each engine refuses input and output that overlap without being the same bytes.
      const overlap = new Uint8Array(64);
      assert.throws(
        () => encryptor.run(iv, overlap.subarray(0, 32), overlap.subarray(16, 48)),
        RangeError,
      );
      assert.throws(
        () => encryptor.run(iv, overlap.subarray(0, 24), overlap.subarray(24, 48)),
        RangeError,
      );
      assert.throws(
        () => encryptor.run(iv, overlap.subarray(0, 17), overlap.subarray(32, 49)),
        RangeError,
      );
      assert.throws(
        () => encryptor.run(iv.subarray(1), overlap.subarray(0, 16), overlap.subarray(16, 32)),
        RangeError,
      );
    } finally {
      encryptor.dispose();
      decryptor.dispose();
    }
    assert.throws(() => encryptor.run(iv, plain, plain), TypeError);
  },
);

testEachEngine("a disposed record cipher refuses to seal or open", (engine) => {
  const native = new RecordCipher(engine, recordKeys);
  const record = native.seal(0, new Uint8Array(5));
  native.dispose();
  native.dispose(); // idempotent
  assert.throws(() => native.seal(1, new Uint8Array(5)), TypeError);
  assert.throws(() => native.open(0, record), TypeError);
});

testEachEngine(
  "modExp() agrees with BigInt in every group, for the generator and random bases",
  (engine) => {
    for (const group of GROUPS) {
      for (let i = 0; i < 3; i++) {
        const x = crypto.getRandomValues(new Uint8Array(group.exponentBits / 8));
        const base = i === 0 ? new Uint8Array([2]) : crypto.getRandomValues(new Uint8Array(64));
        const got = engine.modExp(group.pBytes, base, x);
        assert.equal(got.length, group.byteLength);
        assert.equal(bytesToBigInt(got), modPow(bytesToBigInt(base), bytesToBigInt(x), group.p));
      }
    }
  },
);

test("native signatures verify on node:crypto, and node:crypto's on the native engine", () => {
  const message = new TextEncoder().encode("transcript hash stand-in");
  const native = nativeCrypto();
  const identity = testIdentityOn(native);
  const nativeSignature = identity.sign(message);
  const portableSignature = testIdentityOn(portableCrypto).sign(message);
  // PSS salts are random, so the two never match; each verifies under the other engine.
  assert.notEqual(toHex(nativeSignature), toHex(portableSignature));
  const verifies = (engine: CryptoEngine, signature: Uint8Array) =>
    verifyServerSignature(engine, identity.spkiDer, message, signature).valid;
  assert.equal(verifies(portableCrypto, nativeSignature), true);
  assert.equal(verifies(native, portableSignature), true);
  const flipped = portableSignature.slice();
  flipped[100]! ^= 0x10;
  assert.equal(verifies(native, flipped), false);
  assert.equal(verifies(native, portableSignature.subarray(1)), false);
  assert.equal(verifies(native, new Uint8Array(0)), false);
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
  assert.equal(auto.engine.name, "portable");
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
    assert.equal(auto.engine.name, "portable");
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

test("an identity made on the native engine signs through OpenSSL", () => {
  const before = liveNativeHandles();
  const portable = identityFromPem(testKeyPem, portableCrypto);
  portable.sign(new Uint8Array(1)); // portable: nothing made in OpenSSL
  assert.equal(liveNativeHandles(), before);
  const identity = identityFromPem(testKeyPem, nativeCrypto());
  const signature = identity.sign(new Uint8Array(1));
  // The identity's key now lives in OpenSSL, and what it signed verifies elsewhere.
  assert.equal(liveNativeHandles(), before + 1);
  assert.equal(
    verifyServerSignature(portableCrypto, identity.spkiDer, new Uint8Array(1), signature).valid,
    true,
  );
});
