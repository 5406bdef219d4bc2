// The client's sealed messaging (client/sealing.ts) against a scripted key directory standing
// in for the server's GPK and KEY: pins on first use, changed keys announced and their messages
// held until /trust, the replay memory across restarts, refusals to send, and a DLV whose `from`
// was swapped. The vector keys (alice, bob, carol) stand for the users' own.
import assert from "node:assert/strict";
import {
  type CryptoEngine,
  fingerprintOfKid,
  type RsaPrivateKey,
  toBase64,
} from "../../crypto/mod.ts";
import type { Deliver, Response } from "../../protocol/messages.ts";
import { kidOf, seal } from "../../protocol/sealed.ts";
import { ConnectionError } from "../../client/connection.ts";
import type { RequestBody } from "../../protocol/rpc.ts";
import type { ClientEvent } from "../../client/client_events.ts";
import { Keyring } from "../../client/keyring.ts";
import { SealedMessaging, SealingError } from "../../client/sealing.ts";
import { portableCrypto } from "../_engines.ts";
import { type TestUser, userTestKeyDer } from "../_vectors.ts";
import { tempDir } from "./_harness.ts";

const engine: CryptoEngine = portableCrypto;
const keyOf = (user: TestUser) => engine.parsePrivateKey(userTestKeyDer(user));
const fingerprintOf = (key: RsaPrivateKey) => fingerprintOfKid(kidOf(key.publicKey));
const PASSWORD = "bob's password";

/** The server's keys of §8.1, as GPK and KEY see them; `down` makes every request fail. */
class KeyDirectory {
  readonly published = new Map<string, RsaPrivateKey[]>();
  down = false;
  requests: RequestBody[] = [];
  /** A dishonest server's rewrite of its answers. */
  tamper = (_body: RequestBody, response: Response): Response => response;

  publish(user: string, key: RsaPrivateKey): void {
    this.published.set(user, [...(this.published.get(user) ?? []), key]);
  }

  request = async (body: RequestBody): Promise<Response> =>
    this.tamper(body, await this.#answer(body));

  #answer(body: RequestBody): Promise<Response> {
    this.requests.push(body);
    if (this.down) return Promise.reject(new ConnectionError("connection_lost", "gone"));
    const id = this.requests.length;
    switch (body.code) {
      case "GPK": {
        const keys = this.published.get(body.user) ?? [];
        const found = body.fingerprint === undefined
          ? keys.at(-1)
          : keys.findLast((k) => fingerprintOf(k) === body.fingerprint);
        if (found === undefined) {
          return Promise.resolve({ code: "ERR", id, error: "no_key", message: "no key" });
        }
        return Promise.resolve({
          code: "ACK",
          id,
          request: "GPK",
          user: body.user,
          key: toBase64(found.publicKey.spkiDer),
          fingerprint: fingerprintOf(found),
          current: found === keys.at(-1),
        });
      }
      case "KEY": {
        const key = engine.parsePublicKey(Uint8Array.from(atob(body.key), (c) => c.charCodeAt(0)));
        const fingerprint = fingerprintOfKid(kidOf(key));
        // Only the public half is known here; a stand-in private key carries it.
        this.publish("bob", { publicKey: key } as RsaPrivateKey);
        return Promise.resolve({ code: "ACK", id, request: "KEY", fingerprint });
      }
      default:
        throw new Error(`unexpected ${body.code}`);
    }
  }
}

/** bob's sealed messaging in `dir`, over `keys`, collecting its events. */
async function bobIn(dir: string, keys: KeyDirectory) {
  const events: ClientEvent[] = [];
  const messaging = await SealedMessaging.open({
    crypto: engine,
    user: "bob",
    password: PASSWORD,
    dir,
    request: keys.request,
    events: (e) => events.push(e),
    tracing: () => false,
  });
  await messaging.checkOwnKey(() => Promise.reject(new Error("no key should be made")));
  return { messaging, events };
}

/** A world where bob holds his key (stored as his client stores it) and alice has hers. */
async function world(dir: string) {
  const keys = new KeyDirectory();
  const { keyring } = await Keyring.open(dir, PASSWORD, engine);
  await keyring.add(keyOf("bob"), PASSWORD);
  keyring.dispose();
  keys.publish("bob", keyOf("bob"));
  keys.publish("alice", keyOf("alice"));
  return keys;
}

let nextMsg = 0;
function dlv(from: string, sealed: string, msg = `m${++nextMsg}`): Deliver {
  return { code: "DLV", msg, from, to: "bob", ts: 1_800_000_000_000, sealed };
}

function sealedBy(sender: RsaPrivateKey, from: string, text: string, to = keyOf("bob")) {
  return seal(engine, { from, to: "bob", text }, { sender, recipient: to.publicKey }).sealed;
}

const shown = (events: ClientEvent[]) =>
  events.flatMap((e) =>
    e.type === "message"
      ? [`${e.sealed ? "sealed" : "plain"}: ${e.text}`]
      : e.type === "message_failed"
      ? [`failed ${e.check}`]
      : e.type === "message_held"
      ? [`held ${e.fingerprint}`]
      : e.type === "contact_key"
      ? [`key ${e.user} ${e.change}`]
      : []
  );

Deno.test("a sealed message opens and pins its sender; a duplicate is silent, a replay is named, across restarts", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging, events } = await bobIn(dir.path, keys);
  assert.equal(messaging.currentKey?.fingerprint, fingerprintOf(keyOf("bob")));
  const envelope = sealedBy(keyOf("alice"), "alice", "hello bob");
  const first = dlv("alice", envelope);
  assert.equal(await messaging.receive(first), true);
  assert.equal(await messaging.receive(first), true);
  assert.equal(await messaging.receive(dlv("alice", envelope)), true);
  assert.equal(await messaging.receive({ ...first, sealed: undefined, text: "plain" }), true);
  assert.deepEqual(shown(events), [
    "key alice first_use",
    "sealed: hello bob",
    "failed replay",
    "plain: plain",
  ]);

  // A new client process: the memory of opened envelopes is on disk.
  messaging.dispose();
  const again = await bobIn(dir.path, keys);
  await again.messaging.receive(first);
  await again.messaging.receive(dlv("alice", envelope));
  assert.deepEqual(shown(again.events), ["failed replay"]);
});

Deno.test("a DLV whose from was swapped to an account holding the same key fails signature", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  keys.publish("mallory", keyOf("alice"));
  const { messaging, events } = await bobIn(dir.path, keys);
  await messaging.receive(dlv("mallory", sealedBy(keyOf("alice"), "alice", "from alice")));
  // carol claims alice's envelope: her key is not the one it names.
  keys.publish("carol", keyOf("carol"));
  await messaging.receive(dlv("carol", sealedBy(keyOf("alice"), "alice", "from alice")));
  assert.deepEqual(shown(events), [
    "key mallory first_use",
    "failed signature",
    "failed sender_key",
  ]);
});

Deno.test("a changed sender key is announced and holds its messages until /trust, even across a /keygen and a restart", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const first = await bobIn(dir.path, keys);
  await first.messaging.receive(dlv("alice", sealedBy(keyOf("alice"), "alice", "one")));
  // alice's key changes (carol's key stands for her new one); her next message is held.
  keys.publish("alice", keyOf("carol"));
  const envelope = sealedBy(keyOf("carol"), "alice", "two, sealed to bob's first key");
  await first.messaging.receive(dlv("alice", envelope));
  await assert.rejects(
    first.messaging.outgoing("alice", "reply", false),
    (e) => e instanceof SealingError && e.code === "key_changed",
  );
  assert.deepEqual(shown(first.events), [
    "key alice first_use",
    "sealed: one",
    "key alice changed",
    `held ${fingerprintOf(keyOf("carol"))}`,
  ]);
  const changed = first.events.find((e) => e.type === "contact_key" && e.change === "changed");
  assert.deepEqual(changed?.type === "contact_key" && changed.pinned, [
    fingerprintOf(keyOf("alice")),
  ]);

  // bob makes a new key of his own (/keygen), 2048 bits to be quick.
  const fresh = await engine.generateRsaKey(2048);
  const published = await first.messaging.publish(fresh);
  assert.equal(published.code, "ACK");
  assert.equal(first.messaging.currentKey?.fingerprint, fingerprintOf(fresh));
  first.messaging.dispose();

  // A new process: the held message and both of bob's keys come back from disk.
  const second = await bobIn(dir.path, keys);
  assert.equal(second.messaging.currentKey?.fingerprint, fingerprintOf(fresh));
  // Her first key, verified now, is not her current one: bob is told sending is still stopped.
  await second.messaging.trust("alice", fingerprintOf(keyOf("alice")));
  const earlier = second.events.splice(0).find((e) => e.type === "warning");
  assert.match(earlier?.type === "warning" ? earlier.message : "", /an earlier key of alice's/);
  await second.messaging.trust("alice", fingerprintOf(keyOf("carol")));
  // Verifying her first key once her current one is accepted warns of nothing.
  await second.messaging.trust("alice", fingerprintOf(keyOf("alice")));
  assert.ok(!second.events.some((e) => e.type === "warning"));
  assert.deepEqual(shown(second.events), [
    "key alice verified",
    "sealed: two, sealed to bob's first key",
    "key alice verified",
  ]);
  const out = await second.messaging.outgoing("alice", "reply", true);
  assert.equal(out.sealed, true);
});

Deno.test("a message from yourself signed with a key this client does not hold is held, never pinned on first use", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging, events } = await bobIn(dir.path, keys);
  // The server says carol's key is bob's too: another device of his, or the server's forgery.
  keys.publish("bob", keyOf("carol"));
  const forged = dlv("bob", sealedBy(keyOf("carol"), "bob", "note to self: pay mallory"));
  assert.equal(await messaging.receive(forged), true);
  assert.deepEqual(shown(events), ["key bob changed", `held ${fingerprintOf(keyOf("carol"))}`]);
  const changed = events.find((e) => e.type === "contact_key" && e.change === "changed");
  assert.deepEqual(changed?.type === "contact_key" && changed.pinned, [
    fingerprintOf(keyOf("bob")),
  ]);
  // A message of his own, sealed on this client, opens as ever; /trust accepts the other key.
  await messaging.receive(dlv("bob", sealedBy(keyOf("bob"), "bob", "mine")));
  await messaging.trust("bob", fingerprintOf(keyOf("carol")));
  assert.deepEqual(shown(events).slice(2), [
    "sealed: mine",
    "key bob verified",
    "sealed: note to self: pay mallory",
  ]);
});

Deno.test("a new key whose KEY answer the lost connection took is kept: the server may have published it", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging } = await bobIn(dir.path, keys);
  // The server stores the key, then the connection drops before its ACK arrives.
  keys.tamper = (body, r) => {
    if (body.code === "KEY") throw new ConnectionError("connection_lost", "gone");
    return r;
  };
  const fresh = await engine.generateRsaKey(2048);
  await assert.rejects(messaging.publish(fresh), ConnectionError);
  messaging.dispose();

  // The next login finds the published key on this client, and what is sealed to it opens.
  keys.tamper = (_body, r) => r;
  const again = await bobIn(dir.path, keys);
  assert.equal(again.messaging.currentKey?.fingerprint, fingerprintOf(fresh));
  const message = dlv("alice", sealedBy(keyOf("alice"), "alice", "to your new key", fresh));
  assert.equal(await again.messaging.receive(message), true);
  assert.deepEqual(shown(again.events).at(-1), "sealed: to your new key");
});

Deno.test("sending: sealed to a pinned key, text to a user without one, refused when it must be", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging, events } = await bobIn(dir.path, keys);
  const sealed = await messaging.outgoing("alice", "hi", false);
  assert.equal(sealed.sealed, true);
  assert.ok("sealed" in sealed.content && sealed.content.sealed !== undefined);

  // dave has no key: text, said once; or refused under --require-sealed.
  const plain = await messaging.outgoing("dave", "hi dave", false);
  assert.deepEqual(plain, { content: { text: "hi dave" }, sealed: false });
  await assert.rejects(
    messaging.outgoing("dave", "hi dave", true),
    (e) => e instanceof SealingError && e.code === "not_sealed",
  );
  assert.ok(
    events.some((e) =>
      e.type === "info" && /not sealed: dave has published no key/.test(e.message)
    ),
  );

  // A server that says alice's key is gone, after she had one: no downgrade to text.
  keys.published.delete("alice");
  await messaging.stale("alice");
  await assert.rejects(
    messaging.outgoing("alice", "hi", false),
    (e) => e instanceof SealingError && e.code === "key_withdrawn",
  );
});

Deno.test("a text within the limit that would seal too large is refused, never sent as text", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging } = await bobIn(dir.path, keys);
  // 16384 bytes, the most a text may be; JSON doubles each quote in the inner plaintext.
  for (const requireSealed of [false, true]) {
    await assert.rejects(
      messaging.outgoing("alice", '"'.repeat(16384), requireSealed),
      (e) => e instanceof SealingError && e.code === "too_large" && /shorten it/.test(e.message),
    );
  }
  const longest = await messaging.outgoing("alice", "a".repeat(16384), true);
  assert.equal(longest.sealed, true);
});

Deno.test("a stale_key after which your published key is not on this client stops the send, never unsealed", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging } = await bobIn(dir.path, keys);
  assert.equal((await messaging.outgoing("alice", "hi", false)).sealed, true);
  // The server now says bob's key is one this client does not hold, and answers stale_key.
  keys.publish("bob", keyOf("carol"));
  await assert.rejects(
    messaging.stale("alice"),
    (e) =>
      e instanceof SealingError && e.code === "key_changed" &&
      e.message.includes(fingerprintOf(keyOf("carol"))),
  );
});

Deno.test("a server answering GPK with another key than the fingerprint says is not believed", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging } = await bobIn(dir.path, keys);
  keys.tamper = (body, r) =>
    r.code === "ACK" && r.request === "GPK" && body.code === "GPK" && body.user === "alice"
      ? { ...r, key: toBase64(keyOf("carol").publicKey.spkiDer) }
      : r;
  await assert.rejects(
    messaging.outgoing("alice", "hi", false),
    (e) => e instanceof SealingError && e.code === "bad_key",
  );
});

Deno.test("a DLV whose sender's key cannot be fetched (connection gone) is neither shown nor acknowledged", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging, events } = await bobIn(dir.path, keys);
  keys.down = true;
  const message = dlv("alice", sealedBy(keyOf("alice"), "alice", "later"));
  assert.equal(await messaging.receive(message), false);
  assert.deepEqual(shown(events), []);
  keys.down = false;
  assert.equal(await messaging.receive(message), true);
  assert.deepEqual(shown(events), ["key alice first_use", "sealed: later"]);
});

Deno.test("a DLV still opening when the keys go (a logout) is neither shown as failed nor acknowledged", async () => {
  await using dir = await tempDir();
  const keys = await world(dir.path);
  const { messaging, events } = await bobIn(dir.path, keys);
  // The user logs out while the sender's key is being fetched: the keys are freed mid-open.
  keys.tamper = (body, r) => {
    if (body.code === "GPK" && body.user === "alice") messaging.dispose();
    return r;
  };
  const message = dlv("alice", sealedBy(keyOf("alice"), "alice", "in flight"));
  assert.equal(await messaging.receive(message), false);
  // And one that reaches the keys only after they went.
  assert.equal(
    await messaging.receive(dlv("alice", sealedBy(keyOf("alice"), "alice", "x"))),
    false,
  );
  assert.deepEqual(shown(events).filter((e) => !e.startsWith("key ")), []);
  // It comes again at the next login, and opens there.
  keys.tamper = (_body, r) => r;
  const again = await bobIn(dir.path, keys);
  assert.equal(await again.messaging.receive(message), true);
  assert.deepEqual(shown(again.events).at(-1), "sealed: in flight");
});
