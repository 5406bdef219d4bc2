// The server's side of sealed messages (PROTOCOL §8, §4.1's KEY and GPK rows), decided purely:
// keys published with SNU or KEY and kept, GPK by name or fingerprint, GUL's fingerprints, and
// §8.4's checks of a sealed MSG, against the vectors' keys and envelopes.
import assert from "node:assert/strict";
import { fromHex, toBase64 } from "../../crypto/mod.ts";
import type { Event } from "../../store/mod.ts";
import { HASH, outcome, Scenario } from "./_decider.ts";

interface SealedVectors {
  keys: Record<"alice" | "bob" | "carol", { spki: string; fingerprint: string }>;
  cases: { name: string; from: string; to: string; sealed_b64: string; envelope: string }[];
  negatives: { name: string; check: string; envelope: string }[];
  invalid_user_keys: { name: string; spki: string }[];
}

const vectors: SealedVectors = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/sealed.json", import.meta.url)),
);
const key = (who: "alice" | "bob" | "carol") => toBase64(fromHex(vectors.keys[who].spki));
const fp = (who: "alice" | "bob" | "carol") => vectors.keys[who].fingerprint;
const aliceToBob = vectors.cases.find((c) => c.from === "alice" && c.to === "bob")!;

/** `user` publishing `owner`'s vector key, said to be of `bits` bits, at `ts`. */
const published = (
  user: string,
  ts: number,
  owner: "alice" | "bob" | "carol",
  bits: number,
): Event => ({
  type: "user_key_published",
  ts,
  user,
  key: key(owner),
  fingerprint: fp(owner),
  bits,
});

/** alice and bob signed up with their vector keys; alice logged in on session "a". */
function withKeys(limits = {}): Scenario {
  const s = new Scenario(limits);
  for (const who of ["alice", "bob"] as const) {
    s.given(
      { type: "user_signed_up", ts: 1, user: who, passwordHash: HASH },
      published(who, 1, who, who === "bob" ? 3072 : 2048),
    );
  }
  return s.loggedIn("a", "alice");
}

Deno.test("SNU with a key publishes it with the sign-up, and the ACK names its fingerprint", () => {
  const s = new Scenario().open("1");
  s.send("1", { code: "SNU", id: 1, user: "alice", password: "password-a", key: key("alice") });
  const d = s.finishWork({ kind: "hash", hash: HASH });
  assert.deepEqual(d.events.map((e) => e.type), ["user_signed_up", "user_key_published"]);
  assert.deepEqual(s.to("1"), [
    { code: "ACK", id: 1, request: "SNU", user: "alice", fingerprint: fp("alice") },
  ]);
  assert.equal(s.state.log.users.get("alice")!.keys[0]!.bits, 2048);
});

Deno.test("SNU and KEY refuse every key of the vectors' invalid_user_keys with invalid_key", () => {
  const s = new Scenario().open("1").loggedIn("2", "bob");
  assert.ok(vectors.invalid_user_keys.length >= 4);
  for (const [i, bad] of vectors.invalid_user_keys.entries()) {
    const spki = toBase64(fromHex(bad.spki));
    s.send("1", { code: "SNU", id: i + 1, user: `u${i}`, password: "password-u", key: spki });
    s.send("2", { code: "KEY", id: i + 1, key: spki });
    assert.deepEqual(
      s.take().map((o) => outcome(o.message)),
      ["invalid_key", "invalid_key"],
      bad.name,
    );
  }
  assert.equal(s.work.length, 0, "a refused key's sign-up was hashed");
});

Deno.test("KEY replaces the current key, keeps the old one, and answers with the fingerprint", () => {
  const s = withKeys();
  s.send("a", { code: "KEY", id: 2, key: key("carol") });
  assert.deepEqual(s.take(), [
    { to: "a", message: { code: "ACK", id: 2, request: "KEY", fingerprint: fp("carol") } },
  ]);
  assert.deepEqual(s.state.log.users.get("alice")!.keys.map((k) => k.fingerprint), [
    fp("alice"),
    fp("carol"),
  ]);
});

Deno.test("KEY at most 5 times an hour per user, counting the sign-up's and those being written", () => {
  const s = withKeys().hold();
  // alice's sign-up published one key this hour: four more may follow.
  for (let i = 1; i <= 6; i++) {
    s.send("a", { code: "KEY", id: i, key: key(i % 2 ? "carol" : "alice") });
  }
  const refused = s.take().map((
    o,
  ) => [o.message.code === "ERR" && o.message.id, outcome(o.message)]);
  assert.deepEqual(refused, [[5, "rate_limited"], [6, "rate_limited"]]);
  s.commitHeld();
  s.take();
  s.send("a", { code: "KEY", id: 7, key: key("carol") });
  const later = s.take()[0]!.message;
  assert.equal(outcome(later), "rate_limited");
  assert.ok((later as { retry_after_ms: number }).retry_after_ms <= 3_600_000);
  s.now += 3_600_000;
  s.send("a", { code: "KEY", id: 8, key: key("carol") });
  assert.equal(outcome(s.take()[0]?.message), "ACK");
});

Deno.test("GPK: the current key, a past one by fingerprint with current false, or no_key / unknown_user", () => {
  const s = withKeys();
  s.send("a", { code: "KEY", id: 1, key: key("carol") });
  s.given({ type: "user_signed_up", ts: 2, user: "dave", passwordHash: HASH });
  s.take();
  s.send("a", { code: "GPK", id: 2, user: "alice" });
  s.send("a", { code: "GPK", id: 3, user: "alice", fingerprint: fp("alice") });
  s.send("a", { code: "GPK", id: 4, user: "alice", fingerprint: fp("bob") });
  s.send("a", { code: "GPK", id: 5, user: "dave" });
  s.send("a", { code: "GPK", id: 6, user: "nobody" });
  const [current, past, ...refused] = s.take().map((o) => o.message);
  assert.deepEqual(current, {
    code: "ACK",
    id: 2,
    request: "GPK",
    user: "alice",
    key: key("carol"),
    fingerprint: fp("carol"),
    current: true,
  });
  assert.ok(past?.code === "ACK" && past.request === "GPK" && past.current === false);
  assert.equal(past.key, key("alice"));
  assert.deepEqual(refused.map(outcome), ["no_key", "no_key", "unknown_user"]);
});

Deno.test("GUL gives the fingerprint of each user's current key", () => {
  const s = withKeys();
  s.given({ type: "user_signed_up", ts: 2, user: "carol", passwordHash: HASH });
  s.send("a", { code: "GUL", id: 1 });
  const gul = s.take()[0]!.message;
  assert.ok(gul.code === "ACK" && gul.request === "GUL");
  assert.deepEqual(gul.users, [
    { user: "alice", online: true, fingerprint: fp("alice") },
    { user: "bob", online: false, fingerprint: fp("bob") },
    { user: "carol", online: false },
  ]);
});

Deno.test("a sealed MSG that passes §8.4 is written as given and delivered unchanged, at once or at login", () => {
  const s = withKeys();
  const d = s.send("a", { code: "MSG", id: 1, to: "bob", sealed: aliceToBob.sealed_b64, cid: "c" });
  assert.deepEqual(d.events.map((e) => e.type), ["sealed_message_sent"]);
  assert.equal(outcome(s.take()[0]?.message), "ACK");
  assert.equal(s.state.log.queues.get("bob")!.bytes, aliceToBob.sealed_b64.length);
  s.loggedIn("b", "bob"); // takes the login's ACK and DLV
  s.send("a", { code: "MSG", id: 2, to: "bob", sealed: aliceToBob.sealed_b64 });
  const dlv = s.take().find((o) => o.to === "b")!.message;
  assert.ok(dlv.code === "DLV" && dlv.sealed === aliceToBob.sealed_b64 && dlv.text === undefined);
});

Deno.test("§8.4: an envelope whose layout does not parse is invalid_message, naming why", () => {
  const s = withKeys();
  for (const bad of vectors.negatives.filter((n) => n.check === "layout")) {
    const sealed = toBase64(fromHex(bad.envelope));
    s.send("a", { code: "MSG", id: 1, to: "bob", sealed });
    const [reply] = s.take();
    assert.equal(outcome(reply?.message), "invalid_message", bad.name);
  }
});

Deno.test("§8.4: not sealed to the recipient's current key, or not from the sender's, is stale_key", () => {
  const s = withKeys();
  // bob moves to a new key: the envelope names his old one.
  s.given(published("bob", 5, "carol", 2048));
  s.send("a", { code: "MSG", id: 1, to: "bob", sealed: aliceToBob.sealed_b64 });
  const toStale = s.take()[0]!.message;
  assert.equal(outcome(toStale), "stale_key");
  assert.match(toStale.code === "ERR" ? toStale.message : "", /bob's current key/);
  // Back to bob's key; alice moves to another: the envelope names her old one.
  s.given(published("bob", 6, "bob", 3072));
  s.given(published("alice", 7, "carol", 2048));
  s.send("a", { code: "MSG", id: 2, to: "bob", sealed: aliceToBob.sealed_b64 });
  assert.equal(outcome(s.take()[0]?.message), "stale_key");
});

Deno.test("§8.4: wrapped or sig of another length than the keys' moduli is invalid_message", () => {
  const s = withKeys();
  // The server believes bob's key is 2048 bits: the 3072-bit wrap no longer fits it.
  s.given(published("bob", 5, "bob", 2048));
  s.send("a", { code: "MSG", id: 1, to: "bob", sealed: aliceToBob.sealed_b64 });
  const reply = s.take()[0]!.message;
  assert.equal(outcome(reply), "invalid_message");
  assert.match(reply.code === "ERR" ? reply.message : "", /wrong length/);
});

Deno.test("a sealed MSG to a user without a key is stale_key: fetch the key first (GPK answers no_key)", () => {
  const s = withKeys();
  s.given({ type: "user_signed_up", ts: 2, user: "dave", passwordHash: HASH });
  s.send("a", { code: "MSG", id: 1, to: "dave", sealed: aliceToBob.sealed_b64 });
  assert.equal(outcome(s.take()[0]?.message), "stale_key");
});
