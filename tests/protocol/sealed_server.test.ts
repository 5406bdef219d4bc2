// Sealed messages (§8) through a real server over loopback, with protocol/sealed.ts on raw
// links: keys published at sign-up and with KEY, sealed MSG and DLV opened end to end, the
// server's refusals (§8.4), a key rotation, and the event log, which must never hold a text.
import assert from "node:assert/strict";
import {
  checkUserKey,
  type CryptoEngine,
  fingerprintOfKid,
  fromBase64,
  type RsaPrivateKey,
  toBase64,
} from "../../crypto/mod.ts";
import { kidOf, open, seal, SealedError } from "../../protocol/sealed.ts";
import type { ServerMessage } from "../../protocol/messages.ts";
import { startServer, TestClient } from "../server/_harness.ts";
import { portableCrypto } from "../_engines.ts";
import { type TestUser, userTestKeyDer } from "../_vectors.ts";

const engine: CryptoEngine = portableCrypto;
const keyOf = (user: TestUser) => engine.parsePrivateKey(userTestKeyDer(user));
const b64 = (key: RsaPrivateKey) => toBase64(key.publicKey.spkiDer);

function ack<C extends string>(m: ServerMessage, request: C) {
  assert.equal(m.code, "ACK", JSON.stringify(m));
  assert.ok(m.code === "ACK" && m.request === request);
  return m as Extract<ServerMessage, { code: "ACK"; request: C }>;
}

function err(m: ServerMessage, code: string): void {
  assert.ok(m.code === "ERR" && m.error === code, `expected ERR ${code}, got ${JSON.stringify(m)}`);
}

/** Signs `user` up with `key` (when given) and logs in. */
async function account(port: number, user: string, key?: RsaPrivateKey): Promise<TestClient> {
  const c = await TestClient.connect(port);
  const password = `password-${user}`;
  const snu = ack(
    await c.request({ code: "SNU", user, password, ...(key ? { key: b64(key) } : {}) }),
    "SNU",
  );
  if (key) assert.equal(snu.fingerprint, fingerprintOfKid(kidOf(key.publicKey)), "SNU ACK");
  ack(await c.request({ code: "LGN", user, password }), "LGN");
  return c;
}

/** The key `user` publishes now, as a client would fetch it to seal to. */
async function currentKey(c: TestClient, user: string) {
  const gpk = ack(await c.request({ code: "GPK", user }), "GPK");
  assert.equal(gpk.current, true);
  const checked = checkUserKey(engine, gpk.key);
  assert.ok(typeof checked !== "string");
  assert.equal(checked.fingerprint, gpk.fingerprint);
  return engine.parsePublicKey(fromBase64(gpk.key));
}

Deno.test("a key given at sign-up is published: the ACK names it and GPK returns it", async () => {
  const t = await startServer();
  try {
    const alice = await account(t.port, "alice", keyOf("alice"));
    const gpk = ack(await alice.request({ code: "GPK", user: "alice" }), "GPK");
    assert.equal(gpk.key, b64(keyOf("alice")));
    const gul = ack(await alice.request({ code: "GUL" }), "GUL");
    assert.equal(gul.users[0]?.fingerprint, gpk.fingerprint);
    await alice.close();
  } finally {
    await t.dispose();
  }
});

Deno.test("sealed messages go end to end; the log holds neither text, and a swapped from fails signature", async () => {
  const t = await startServer();
  const secret = "the password of the vault is 'swordfish' é🌍";
  try {
    const alice = await account(t.port, "alice", keyOf("alice"));
    const bob = await account(t.port, "bob", keyOf("bob"));
    // Mallory publishes alice's public key as his own: the server lets two accounts share one.
    const mallory = await account(t.port, "mallory");
    ack(await mallory.request({ code: "KEY", key: b64(keyOf("alice")) }), "KEY");

    const { sealed } = seal(engine, { from: "alice", to: "bob", text: secret }, {
      sender: keyOf("alice"),
      recipient: await currentKey(alice, "bob"),
    });
    ack(await alice.request({ code: "MSG", to: "bob", sealed }), "MSG");
    const dlv = await bob.push("DLV");
    assert.equal(dlv.sealed, sealed, "the DLV carries the envelope unchanged");
    const keys = {
      recipientKey: () => keyOf("bob"),
      senderKey: () => keyOf("alice").publicKey,
    };
    const opened = await open(engine, dlv.sealed!, { from: dlv.from, to: "bob" }, keys);
    assert.equal(opened.text, secret);

    // The server re-attributes alice's envelope to mallory, who holds the same key.
    ack(await mallory.request({ code: "MSG", to: "bob", sealed }), "MSG");
    const forged = await bob.push("DLV");
    assert.equal(forged.from, "mallory");
    await assert.rejects(
      open(engine, forged.sealed!, { from: forged.from, to: "bob" }, keys),
      (e) => e instanceof SealedError && e.check === "signature",
    );
    for (const c of [alice, bob, mallory]) await c.close();
    await t.stop();
    const raw = await Deno.readFile(t.logPath);
    const latin1 = new TextDecoder("latin1").decode(raw);
    for (const fragment of ["swordfish", "vault", "the password of"]) {
      assert.ok(!latin1.includes(fragment), `the log holds "${fragment}"`);
    }
    assert.ok(latin1.includes(sealed.slice(0, 64)), "the log holds the envelope");
  } finally {
    await t.dispose();
  }
});

Deno.test("the server refuses bad keys and envelopes (§8.1, §8.4); a rotation needs a new GPK", async () => {
  const t = await startServer();
  try {
    const alice = await account(t.port, "alice", keyOf("alice"));
    const bob = await account(t.port, "bob", keyOf("bob"));
    const dave = await account(t.port, "dave");
    err(await dave.request({ code: "GPK", user: "dave" }), "no_key");
    err(await dave.request({ code: "GPK", user: "nobody" }), "unknown_user");
    err(await dave.request({ code: "KEY", key: "AAAA" }), "invalid_key");

    const toBob = (text: string, recipient = keyOf("bob").publicKey) =>
      seal(engine, { from: "alice", to: "bob", text }, { sender: keyOf("alice"), recipient })
        .sealed;
    // A key dave does not have: stale_key; not an envelope: invalid_message.
    err(await alice.request({ code: "MSG", to: "dave", sealed: toBob("x") }), "stale_key");
    err(await alice.request({ code: "MSG", to: "bob", sealed: "SFNF" }), "invalid_message");
    const envelope = fromBase64(toBob("x"));
    const trailing = toBase64(new Uint8Array([...envelope, 0]));
    err(await alice.request({ code: "MSG", to: "bob", sealed: trailing }), "invalid_message");

    // Queued for bob under his first key, then bob rotates to carol's key.
    await bob.close();
    ack(await alice.request({ code: "MSG", to: "bob", sealed: toBob("before") }), "MSG");
    const bob2 = await TestClient.connect(t.port);
    ack(await bob2.request({ code: "LGN", user: "bob", password: "password-bob" }), "LGN");
    const queued = await bob2.push("DLV");
    ack(await bob2.request({ code: "KEY", key: b64(keyOf("carol")) }), "KEY");
    err(await alice.request({ code: "MSG", to: "bob", sealed: toBob("stale") }), "stale_key");
    const old = ack(
      await alice.request({
        code: "GPK",
        user: "bob",
        fingerprint: fingerprintOfKid(kidOf(keyOf("bob").publicKey)),
      }),
      "GPK",
    );
    assert.equal(old.current, false);
    const sealed = toBob("after", await currentKey(alice, "bob"));
    ack(await alice.request({ code: "MSG", to: "bob", sealed }), "MSG");
    const after = await bob2.push("DLV");
    // bob keeps both private keys: the message sealed before the rotation opens too.
    const bobKeys = {
      recipientKey: (kid: Uint8Array) =>
        [keyOf("bob"), keyOf("carol")].find((k) =>
          fingerprintOfKid(kidOf(k.publicKey)) === fingerprintOfKid(kid)
        ),
      senderKey: () => keyOf("alice").publicKey,
    };
    const names = { from: "alice", to: "bob" };
    assert.equal((await open(engine, queued.sealed!, names, bobKeys)).text, "before");
    assert.equal((await open(engine, after.sealed!, names, bobKeys)).text, "after");
    for (const c of [alice, bob2, dave]) await c.close();
  } finally {
    await t.dispose();
  }
});
