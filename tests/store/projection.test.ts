import assert from "node:assert/strict";
import { CID_MEMORY } from "../../protocol/limits.ts";
import {
  type Event,
  evolve,
  initialState,
  queuedFor,
  rememberedCid,
  replay,
  snapshot,
} from "../../store/mod.ts";
import { fakeHash, message, prng, randomHistory } from "./_helpers.ts";

Deno.test("replay() equals events.reduce(evolve, initialState())", () => {
  const events = randomHistory(prng(1), 3000);
  assert.deepEqual(snapshot(replay(events)), snapshot(events.reduce(evolve, initialState())));
});

Deno.test("a sign-up creates a user with its hash and time; a second sign-up of the name is ignored", () => {
  const state = replay([
    { type: "user_signed_up", ts: 10, user: "alice", passwordHash: "h1" },
    { type: "user_signed_up", ts: 20, user: "alice", passwordHash: "h2" },
  ]);
  assert.deepEqual([...state.users], [["alice", { passwordHash: "h1", createdTs: 10, keys: [] }]]);
  assert.equal(state.events, 2);
});

Deno.test("a successful login sets lastLoginTs; failures and logouts change nothing but the count", () => {
  const state = replay([
    { type: "user_signed_up", ts: 10, user: "alice", passwordHash: "h" },
    { type: "login_succeeded", ts: 11, user: "alice", addr: "a" },
    { type: "login_failed", ts: 12, user: "alice", addr: "a" },
    { type: "logged_out", ts: 13, user: "alice" },
    { type: "login_succeeded", ts: 14, user: "nobody", addr: "a" },
  ]);
  assert.deepEqual(state.users.get("alice"), {
    passwordHash: "h",
    createdTs: 10,
    lastLoginTs: 11,
    keys: [],
  });
  assert.equal(state.users.has("nobody"), false);
  assert.equal(state.events, 5);
});

Deno.test("a password change replaces the hash of a known user only", () => {
  const state = replay([
    { type: "user_signed_up", ts: 10, user: "alice", passwordHash: fakeHash("1") },
    { type: "password_changed", ts: 11, user: "alice", passwordHash: fakeHash("2") },
    { type: "password_changed", ts: 12, user: "bob", passwordHash: fakeHash("3") },
  ]);
  assert.equal(state.users.get("alice")?.passwordHash, fakeHash("2"));
  assert.equal(state.users.has("bob"), false);
});

Deno.test("messages queue per recipient, oldest first, with the fields of a DLV", () => {
  const state = replay([
    message(1, "alice", "bob"),
    message(2, "carol", "bob"),
    message(3, "bob", "alice"),
  ]);
  assert.deepEqual(queuedFor(state, "bob"), [
    { msg: "m1", from: "alice", to: "bob", text: "message 1", ts: 1_700_000_000_001, bytes: 9 },
    { msg: "m2", from: "carol", to: "bob", text: "message 2", ts: 1_700_000_000_002, bytes: 9 },
  ]);
  assert.deepEqual(queuedFor(state, "alice").map((m) => m.msg), ["m3"]);
  assert.deepEqual(queuedFor(state, "dave"), []);
});

Deno.test("a delivery removes that message, in any position, and an emptied queue disappears", () => {
  const state = replay([1, 2, 3, 4].map((n) => message(n)));
  evolve(state, { type: "message_delivered", ts: 1, msg: "m3", user: "bob" });
  assert.deepEqual(queuedFor(state, "bob").map((m) => m.msg), ["m1", "m2", "m4"]);
  evolve(state, { type: "message_delivered", ts: 2, msg: "m1", user: "bob" });
  evolve(state, { type: "message_delivered", ts: 3, msg: "m1", user: "bob" }); // twice: no effect
  evolve(state, { type: "message_delivered", ts: 4, msg: "m2", user: "alice" }); // not hers
  assert.deepEqual(queuedFor(state, "bob").map((m) => m.msg), ["m2", "m4"]);
  evolve(state, { type: "message_delivered", ts: 5, msg: "m4", user: "bob" });
  evolve(state, { type: "message_delivered", ts: 6, msg: "m2", user: "bob" });
  assert.equal(state.queues.has("bob"), false);
  assert.equal(state.events, 10);
});

Deno.test("a long queue delivered oldest first, then out of order, keeps the rest in order", () => {
  const state = replay(Array.from({ length: 5000 }, (_, n) => message(n)));
  for (let n = 0; n < 3000; n++) {
    evolve(state, { type: "message_delivered", ts: n, msg: `m${n}`, user: "bob" });
  }
  for (let n = 4999; n >= 4000; n -= 2) {
    evolve(state, { type: "message_delivered", ts: n, msg: `m${n}`, user: "bob" });
  }
  const expected = Array.from({ length: 2000 }, (_, i) => 3000 + i).filter((n) =>
    n < 4000 || n % 2 === 0
  );
  assert.deepEqual(queuedFor(state, "bob").map((m) => m.msg), expected.map((n) => `m${n}`));
  assert.equal(state.queues.get("bob")?.size, expected.length);
});

Deno.test("a cid remembers the first ACK; a retry with the same cid keeps it", () => {
  const first: Event = {
    type: "message_sent",
    ts: 100,
    msg: "m1",
    from: "alice",
    to: "bob",
    text: "t",
    cid: "k",
  };
  const state = replay([first]);
  assert.deepEqual(rememberedCid(state, "alice", "k"), { msg: "m1", ts: 100 });
  evolve(state, { ...first, ts: 200, msg: "m2" }); // the server never writes this; evolve keeps the first
  assert.deepEqual(rememberedCid(state, "alice", "k"), { msg: "m1", ts: 100 });
  assert.equal(rememberedCid(state, "bob", "k"), undefined);
  assert.equal(rememberedCid(state, "alice", "other"), undefined);
});

Deno.test("cids are remembered per sender for the last CID_MEMORY sends, then forgotten oldest first", () => {
  const sends = CID_MEMORY + 10;
  const state = replay(Array.from({ length: sends }, (_, n) => message(n, "alice")));
  for (let n = 0; n < 10; n++) assert.equal(rememberedCid(state, "alice", `c${n}`), undefined);
  for (let n = 10; n < sends; n++) {
    assert.deepEqual(rememberedCid(state, "alice", `c${n}`), {
      msg: `m${n}`,
      ts: 1_700_000_000_000 + n,
    });
  }
  // Lookups built an index; later sends must keep it right.
  for (let n = sends; n < sends + 5; n++) evolve(state, message(n, "alice"));
  assert.equal(rememberedCid(state, "alice", "c14"), undefined);
  assert.deepEqual(rememberedCid(state, "alice", `c${sends + 4}`)?.msg, `m${sends + 4}`);
  assert.equal(state.cids.get("alice")?.size, CID_MEMORY);
});

Deno.test("cid_remembered restores a cid's ACK without queueing a message", () => {
  const state = replay([{ type: "cid_remembered", ts: 5, from: "alice", cid: "k", msg: "m9" }]);
  assert.deepEqual(rememberedCid(state, "alice", "k"), { msg: "m9", ts: 5 });
  assert.equal(state.queues.size, 0);
});

Deno.test("log_compacted sets the event count, and later events count on from it", () => {
  const state = replay([message(1), { type: "log_compacted", ts: 2, events: 500 }, message(3)]);
  assert.equal(state.events, 501);
});

Deno.test("lookups between events never change the state (indexes are caches)", () => {
  const events = randomHistory(prng(3), 6000);
  const looked = initialState();
  for (const [i, event] of events.entries()) {
    evolve(looked, event);
    if (i % 97 === 0) {
      for (const [from, memory] of looked.cids) memory.get(`cid-${from}-${i}`);
      for (const queue of looked.queues.values()) queue.get(`m${i}`);
    }
  }
  assert.deepEqual(snapshot(looked), snapshot(replay(events)));
});

Deno.test("a cid sent twice before any lookup answers with its first ACK, also after eviction", () => {
  const state = initialState();
  evolve(state, { type: "cid_remembered", ts: 1, from: "a", cid: "dup", msg: "first" });
  evolve(state, { type: "cid_remembered", ts: 2, from: "a", cid: "dup", msg: "second" });
  assert.deepEqual(rememberedCid(state, "a", "dup"), { msg: "first", ts: 1 });
  for (let n = 0; n < CID_MEMORY - 1; n++) {
    evolve(state, { type: "cid_remembered", ts: 10 + n, from: "a", cid: `x${n}`, msg: "x" });
  }
  // The first "dup" fell out of the ring; the second is still remembered.
  assert.deepEqual(rememberedCid(state, "a", "dup"), { msg: "second", ts: 2 });
});

Deno.test("snapshot() tells apart states that differ only in queue order", () => {
  const a = replay([message(1), message(2)]);
  const b = replay([message(2), message(1)]);
  assert.notDeepEqual(snapshot(a), snapshot(b));
});

Deno.test("published keys are kept, oldest first, for known users only; the last is the current one", () => {
  const key = (ts: number, user = "alice") => ({
    type: "user_key_published" as const,
    ts,
    user,
    key: `K${ts}`,
    fingerprint: `SHA256:${ts}`,
    bits: 2048,
  });
  const state = replay([
    { type: "user_signed_up", ts: 10, user: "alice", passwordHash: "h" },
    key(11),
    key(12),
    key(13, "nobody"),
  ]);
  assert.deepEqual(state.users.get("alice")!.keys.map((k) => k.fingerprint), [
    "SHA256:11",
    "SHA256:12",
  ]);
  assert.equal(state.users.has("nobody"), false);
});

Deno.test("sealed messages queue like texts, counted by their envelope's length, and keep their cid", () => {
  const state = replay([
    { type: "sealed_message_sent", ts: 1, msg: "s1", from: "alice", to: "bob", sealed: "SFNFAQ==" },
    {
      type: "sealed_message_sent",
      ts: 2,
      msg: "s2",
      from: "alice",
      to: "bob",
      sealed: "AAAA",
      cid: "c",
    },
  ]);
  assert.deepEqual(queuedFor(state, "bob"), [
    { msg: "s1", from: "alice", to: "bob", sealed: "SFNFAQ==", ts: 1, bytes: 8 },
    { msg: "s2", from: "alice", to: "bob", sealed: "AAAA", ts: 2, bytes: 4 },
  ]);
  assert.equal(state.queuedBytes, 12);
  assert.equal(state.outstanding.get("alice"), 12);
  assert.deepEqual(rememberedCid(state, "alice", "c"), { msg: "s2", ts: 2 });
  evolve(state, { type: "message_delivered", ts: 3, msg: "s1", user: "bob" });
  assert.equal(state.queuedBytes, 4);
});
