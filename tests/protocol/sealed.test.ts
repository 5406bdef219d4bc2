// Sealed messages (PROTOCOL §8.3, §8.5) against vectors/sealed.json, on both engines: every case
// reproduced byte for byte (K and IV fixed, the OAEP and PSS outputs injected as §7 says), every
// case opened, every negative refused by the check it names, every bad user key refused.
import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  checkUserKey,
  type CryptoEngine,
  fromHex,
  KeyError,
  parseUserKey,
  type RsaPrivateKey,
  type RsaPublicKey,
  toBase64,
  toHex,
} from "../../crypto/mod.ts";
import {
  decodeSealed,
  EnvelopeError,
  isPaddedBase64,
  parseEnvelope,
} from "../../protocol/envelope.ts";
import {
  innerPlaintext,
  kidOf,
  open,
  OPEN_CHECKS,
  type OpenKeys,
  seal,
  SEALED_KEY_LABEL,
  SEALED_SIGNATURE_CONTEXT,
  sealedChars,
  SealedError,
  type SealedTrace,
  signedMessage,
} from "../../protocol/sealed.ts";
import {
  NATIVE_SKIPPED,
  nativeCrypto,
  portableCrypto,
  testEachEngine,
  withInjectedRsaOutputs,
} from "../_engines.ts";
import { sealedVectors, type TestUser, userTestKeyDer } from "../_vectors.ts";

const USERS: TestUser[] = ["alice", "bob", "carol"];

/** The three test users' private keys on `engine`. */
function keysOn(engine: CryptoEngine): Record<TestUser, RsaPrivateKey> {
  return Object.fromEntries(
    USERS.map((u) => [u, engine.parsePrivateKey(userTestKeyDer(u))]),
  ) as Record<TestUser, RsaPrivateKey>;
}

/** Lookups that know `recipient`'s own key and the key `sender` published, nothing else. */
function lookups(
  keys: Record<TestUser, RsaPrivateKey>,
  recipient: TestUser,
  sender: TestUser,
  opened: Set<string> = new Set(),
): OpenKeys {
  const byKid = (key: RsaPublicKey, kid: Uint8Array) =>
    toHex(kidOf(key)) === toHex(kid) ? key : undefined;
  return {
    recipientKey: (kid) => byKid(keys[recipient].publicKey, kid) && keys[recipient],
    senderKey: (kid) => byKid(keys[sender].publicKey, kid),
    openedBefore: (digest) => opened.has(toHex(digest)),
  };
}

const userOf = (name: string) => name as TestUser;

testEachEngine("the test users' keys have the vectors' SPKI, kid and fingerprint", (engine) => {
  const keys = keysOn(engine);
  for (const user of USERS) {
    const v = sealedVectors.keys[user];
    assert.equal(toHex(keys[user].publicKey.spkiDer), v.spki);
    assert.equal(toHex(kidOf(keys[user].publicKey)), v.kid);
    const checked = checkUserKey(engine, toBase64(fromHex(v.spki)));
    assert.ok(typeof checked !== "string", `${user}'s key passes §8.1: ${checked}`);
    assert.equal(checked.fingerprint, v.fingerprint);
  }
  assert.equal(toHex(SEALED_SIGNATURE_CONTEXT), sealedVectors.signature_context);
});

testEachEngine(
  "seal() reproduces every vector byte for byte from K, IV and the injected OAEP and PSS outputs",
  (engine) => {
    const keys = keysOn(engine);
    for (const v of sealedVectors.cases) {
      const sender = keys[userOf(v.from)];
      const recipient = keys[userOf(v.to)];
      // §7: the parts the library can fix are compared on their own first.
      assert.equal(toHex(innerPlaintext(v.text)), v.inner_plaintext, v.name);
      assert.equal(v.k, v.enc_key + v.mac_key);
      const k = recipient.decryptOaep(fromHex(v.wrapped), SEALED_KEY_LABEL);
      assert.equal(toHex(k), v.k, `${v.name}: wrapped decrypts to K`);
      assert.ok(
        sender.publicKey.verifyPss(fromHex(v.signed_message), fromHex(v.signature)),
        `${v.name}: the signature verifies`,
      );

      const injected = withInjectedRsaOutputs(engine, {
        wrapped: fromHex(v.wrapped),
        signature: fromHex(v.signature),
      });
      const trace: SealedTrace[] = [];
      const sealed = seal(
        injected,
        { from: v.from, to: v.to, text: v.text },
        {
          sender: injected.parsePrivateKey(userTestKeyDer(userOf(v.from))),
          recipient: injected.parsePublicKey(recipient.publicKey.spkiDer),
        },
        { messageKey: fromHex(v.k), iv: fromHex(v.iv), trace: (s) => trace.push(s) },
      );
      const parts = parseEnvelope(sealed.envelope);
      assert.equal(toHex(parts.senderKid), v.sender_kid, v.name);
      assert.equal(toHex(parts.recipientKid), v.recipient_kid, v.name);
      assert.equal(toHex(parts.ct), v.ciphertext, `${v.name}: ciphertext`);
      assert.equal(toHex(parts.tag), v.tag, `${v.name}: tag`);
      assert.equal(
        toHex(signedMessage(v.from, v.to, parts.body, parts.tag)),
        v.signed_message,
        `${v.name}: signed message`,
      );
      assert.equal(toHex(sealed.envelope), v.envelope, `${v.name}: envelope`);
      assert.equal(sealed.sealed, v.sealed_b64, `${v.name}: base64`);
      assert.deepEqual(
        trace.map((s) => s.step),
        ["message_key", "wrap", "encrypt", "mac", "sign", "sealed"],
      );
      const text = JSON.stringify(trace);
      for (const secret of [v.k, v.enc_key, v.mac_key]) assert.ok(!text.includes(secret));
    }
  },
);

testEachEngine("open() opens every vector case, from base64 and from bytes", async (engine) => {
  const keys = keysOn(engine);
  for (const v of sealedVectors.cases) {
    const names = { from: v.from, to: v.to };
    const opened = await open(
      engine,
      v.sealed_b64,
      names,
      lookups(keys, userOf(v.to), userOf(v.from)),
    );
    assert.equal(opened.text, v.text, v.name);
    assert.equal(toHex(opened.digest), toHex(sha256(fromHex(v.envelope))));
    assert.equal(toHex(opened.senderKid), v.sender_kid);
    const again = await open(
      engine,
      fromHex(v.envelope),
      names,
      lookups(keys, userOf(v.to), userOf(v.from)),
    );
    assert.equal(again.text, v.text);
  }
});

testEachEngine("open() refuses every negative vector with the check it names", async (engine) => {
  const keys = keysOn(engine);
  const seen = new Set<string>();
  for (const v of sealedVectors.negatives) {
    assert.ok((OPEN_CHECKS as readonly string[]).includes(v.check), v.check);
    seen.add(v.check);
    await assert.rejects(
      open(
        engine,
        fromHex(v.envelope),
        { from: v.from, to: v.to },
        lookups(keys, userOf(v.recipient_key), userOf(v.sender_key)),
      ),
      (err) => {
        assert.ok(err instanceof SealedError, `${v.name}: ${err}`);
        assert.equal(err.check, v.check, `${v.name}: refused by ${err.check}: ${err.message}`);
        return true;
      },
    );
  }
  // Every check before replay has a vector (replay is the client's memory, tested below).
  assert.deepEqual([...seen].sort(), OPEN_CHECKS.filter((c) => c !== "replay").sort());
});

testEachEngine("every key of invalid_user_keys is refused (§8.1)", (engine) => {
  for (const v of sealedVectors.invalid_user_keys) {
    const checked = checkUserKey(engine, toBase64(fromHex(v.spki)));
    assert.equal(typeof checked, "string", `${v.name} is refused`);
    assert.throws(() => parseUserKey(engine, fromHex(v.spki)), KeyError, v.name);
  }
});

testEachEngine("an envelope opened before is refused as a replay", async (engine) => {
  const keys = keysOn(engine);
  const v = sealedVectors.cases[0]!;
  const opened = new Set<string>();
  const first = await open(engine, v.sealed_b64, v, lookups(keys, "bob", "alice", opened));
  opened.add(toHex(first.digest));
  await assert.rejects(
    open(engine, v.sealed_b64, v, lookups(keys, "bob", "alice", opened)),
    (err) => err instanceof SealedError && err.check === "replay",
  );
});

testEachEngine("the signature is checked before any decryption", async (engine) => {
  const keys = keysOn(engine);
  const flipped = sealedVectors.negatives.find((n) => n.name === "flipped ciphertext byte")!;
  let decryptions = 0;
  const bob = keys.bob;
  const counting: RsaPrivateKey = {
    publicKey: bob.publicKey,
    signPss: (m) => bob.signPss(m),
    decryptOaep: (c, l) => {
      decryptions++;
      return bob.decryptOaep(c, l);
    },
    exportPkcs8: () => bob.exportPkcs8(),
    dispose: () => bob.dispose(),
  };
  await assert.rejects(
    open(engine, fromHex(flipped.envelope), flipped, {
      recipientKey: () => counting,
      senderKey: () => keys.alice.publicKey,
    }),
    (err) => err instanceof SealedError && err.check === "signature",
  );
  assert.equal(decryptions, 0);
});

testEachEngine("the first failing check is the one named, in §8.5's order", async (engine) => {
  const keys = keysOn(engine);
  const v = sealedVectors.cases[0]!;
  const trailing = sealedVectors.negatives.find((n) => n.name === "trailing byte")!;
  const nothing: OpenKeys = { recipientKey: () => undefined, senderKey: () => undefined };
  const checkOf = (p: Promise<unknown>) =>
    p.then(() => "opened", (err) => (err as SealedError).check);
  // A bad layout is named before the unknown keys, an unknown recipient key before the sender.
  assert.equal(await checkOf(open(engine, fromHex(trailing.envelope), v, nothing)), "layout");
  assert.equal(await checkOf(open(engine, v.sealed_b64, v, nothing)), "recipient_key");
  assert.equal(
    await checkOf(open(engine, v.sealed_b64, v, lookups(keys, "bob", "alice"))),
    "opened",
  );
  // A lookup that answers with another key than the kid's is no answer.
  assert.equal(
    await checkOf(
      open(engine, v.sealed_b64, v, {
        recipientKey: () => keys.bob,
        senderKey: () => keys.carol.publicKey,
      }),
    ),
    "sender_key",
  );
  assert.equal(
    await checkOf(
      open(engine, v.sealed_b64, v, {
        recipientKey: () => keys.carol,
        senderKey: () => keys.alice.publicKey,
      }),
    ),
    "recipient_key",
  );
});

testEachEngine("a fresh seal opens, and two seals of one text differ", async (engine) => {
  const keys = keysOn(engine);
  const message = { from: "carol", to: "bob", text: 'line one\nline two \u2028 "quoted" é' };
  const a = seal(engine, message, { sender: keys.carol, recipient: keys.bob.publicKey });
  const b = seal(engine, message, { sender: keys.carol, recipient: keys.bob.publicKey });
  assert.notEqual(a.sealed, b.sealed);
  const opened = await open(engine, a.sealed, message, lookups(keys, "bob", "carol"));
  assert.equal(opened.text, message.text);
  const trace: SealedTrace[] = [];
  await open(engine, b.sealed, message, lookups(keys, "bob", "carol"), (s) => trace.push(s));
  assert.deepEqual(
    trace.map((s) => s.step === "check" && s.ok ? s.check : "?"),
    OPEN_CHECKS,
  );
});

Deno.test({
  name: "an envelope sealed on one engine opens on the other",
  ignore: NATIVE_SKIPPED,
}, async () => {
  const engines = [nativeCrypto(), portableCrypto];
  for (const [from, to] of [engines, [...engines].reverse()] as const) {
    const sender = keysOn(from!);
    const recipient = keysOn(to!);
    const message = { from: "alice", to: "bob", text: `from ${from!.name} to ${to!.name}` };
    const { sealed } = seal(from!, message, {
      sender: sender.alice,
      recipient: sender.bob.publicKey,
    });
    const opened = await open(to!, sealed, message, lookups(recipient, "bob", "alice"));
    assert.equal(opened.text, message.text);
  }
});

testEachEngine("seal() refuses an empty, an oversized or an ill-formed text", (engine) => {
  const keys = keysOn(engine);
  const parties = { sender: keys.alice, recipient: keys.bob.publicKey };
  for (const text of ["", "x".repeat(16385), "lone \ud800 surrogate"]) {
    assert.throws(() => seal(engine, { from: "alice", to: "bob", text }, parties), RangeError);
  }
  assert.throws(() => seal(engine, { from: "Alice", to: "bob", text: "x" }, parties), TypeError);
  const longest = seal(engine, { from: "alice", to: "bob", text: "é".repeat(8192) }, parties);
  assert.ok(longest.sealed.length <= 32768);
});

testEachEngine(
  "sealedChars() is the length seal() makes, and seal() refuses too long before any RSA work",
  (engine) => {
    const keys = keysOn(engine);
    for (const text of ["x", "a".repeat(16384), '"\\\n'.repeat(100), "\u0001".repeat(50)]) {
      const { sealed } = seal(engine, { from: "alice", to: "bob", text }, {
        sender: keys.alice,
        recipient: keys.bob.publicKey,
      });
      assert.equal(sealedChars(text, keys.alice.publicKey, keys.bob.publicKey), sealed.length);
    }
    let rsaCalls = 0;
    const recipient = {
      ...keys.bob.publicKey,
      bits: keys.bob.publicKey.bits,
      spkiDer: keys.bob.publicKey.spkiDer,
      encryptOaep: (k: Uint8Array, label: Uint8Array) => {
        rsaCalls++;
        return keys.bob.publicKey.encryptOaep(k, label);
      },
    } as RsaPublicKey;
    // 16384 bytes of text, 32768 once JSON has escaped every quote: past 32768 characters sealed.
    const quotes = '"'.repeat(16384);
    assert.ok(sealedChars(quotes, keys.alice.publicKey, recipient) > 32768);
    assert.throws(
      () =>
        seal(engine, { from: "alice", to: "bob", text: quotes }, { sender: keys.alice, recipient }),
      RangeError,
    );
    assert.equal(rsaCalls, 0);
  },
);

Deno.test("decodeSealed() takes padded standard base64 only (§8.4's first check)", () => {
  const v = sealedVectors.cases[0]!;
  assert.equal(toHex(decodeSealed(v.sealed_b64)), v.envelope);
  assert.equal(toHex(decodeSealed("AAE=")), "0001");
  assert.equal(toHex(decodeSealed("AA==")), "00");
  for (
    const bad of [
      "",
      "AAE",
      "AA=",
      "AA==AAAA",
      "AA=A",
      "A===",
      "AAAA====",
      "AB C",
      " ABC",
      "ABC\n",
      "AB-_",
      "ABé=",
    ]
  ) {
    assert.throws(() => decodeSealed(bad), EnvelopeError, JSON.stringify(bad.slice(0, 12)));
    assert.equal(isPaddedBase64(bad), bad === "", JSON.stringify(bad.slice(0, 12)));
  }
  assert.throws(() => decodeSealed("A".repeat(32772)), EnvelopeError, "above MAX_SEALED_CHARS");
});
