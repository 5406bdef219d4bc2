// The request logic of PROTOCOL §4 and the request limits of §5, decided purely: every row of
// §4.1, every rule of §4.3 and §5, given/when/then, with no sockets, no scrypt and no fsync.
import assert from "node:assert/strict";
import { HASH, outcome, Scenario } from "./_decider.ts";

// ─── §4.1 SNU ────────────────────────────────────────────────────────────────────────────────

Deno.test("SNU: hashes, then writes user_signed_up and ACKs once durable; it does not log in", () => {
  const s = new Scenario().open("1");
  const asked = s.send("1", { code: "SNU", id: 7, user: "alice", password: "password-a" });
  assert.deepEqual(asked.replies, []);
  assert.deepEqual(asked.events, []);
  assert.equal(s.work[0]?.kind, "hash");
  const done = s.finishWork({ kind: "hash", hash: HASH });
  assert.deepEqual(done.events.map((e) => e.type), ["user_signed_up"]);
  assert.deepEqual(s.to("1"), [{ code: "ACK", id: 7, request: "SNU", user: "alice" }]);
  assert.equal(s.state.sessions.get("1")!.user, undefined, "SNU logged in");
  assert.ok(s.state.log.users.has("alice"));
});

Deno.test("SNU: a name taken, or being signed up right now, is user_exists", () => {
  const s = new Scenario().given({ type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH })
    .open("1");
  s.send("1", { code: "SNU", id: 1, user: "bob", password: "password-b" });
  s.send("1", { code: "SNU", id: 2, user: "carol", password: "password-c" });
  s.send("1", { code: "SNU", id: 3, user: "carol", password: "password-c" });
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["user_exists", "user_exists"]);
  assert.equal(s.work.length, 1, "only the first carol is hashed");
});

Deno.test("SNU: a name another node signed up first is user_exists, and the name is free again on a failed write", () => {
  const s = new Scenario().open("1").hold();
  s.send("1", { code: "SNU", id: 1, user: "dave", password: "password-d" });
  s.finishWork({ kind: "hash", hash: HASH });
  s.commitHeld({ error: "conflict", conflict: "user_exists" });
  assert.deepEqual(s.to("1").map(outcome), ["user_exists"]);
  s.take();
  s.hold();
  s.send("1", { code: "SNU", id: 2, user: "erin", password: "password-e" });
  s.finishWork({ kind: "hash", hash: HASH });
  s.commitHeld({ error: "disk full" });
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["internal"]);
  assert.equal(s.state.pending.signups.size, 0);
  s.send("1", { code: "SNU", id: 3, user: "erin", password: "password-e" });
  assert.equal(s.work.length, 1, "erin may be tried again");
});

Deno.test("§5: sign-ups per address are limited, counted when admitted", () => {
  const s = new Scenario({ signups_per_address: 2 }).open("1");
  for (const [i, user] of ["a1", "a2", "a3"].entries()) {
    s.send("1", { code: "SNU", id: i + 1, user, password: "password-x" });
  }
  const refused = s.take();
  assert.equal(refused.length, 1);
  assert.equal(outcome(refused[0]!.message), "rate_limited");
  assert.ok((refused[0]!.message as { retry_after_ms: number }).retry_after_ms > 0);
});

Deno.test("§5: password jobs past hash_concurrency + hash_queue are refused rate_limited", () => {
  const s = new Scenario({ hash_concurrency: 1, hash_queue: 1 }).open("1");
  for (let i = 0; i < 3; i++) {
    s.send("1", { code: "LGN", id: i + 1, user: `u${i}`, password: "password-x" });
  }
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["rate_limited"]);
  assert.equal(s.work.length, 2);
});

// ─── §4.1 LGN, §4.3 ──────────────────────────────────────────────────────────────────────────

Deno.test("LGN: ACK with the queued count, then every queued DLV oldest first", () => {
  const s = new Scenario().given(
    { type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH },
    { type: "message_sent", ts: 2, msg: "x1", from: "alice", to: "bob", text: "one" },
    { type: "message_sent", ts: 3, msg: "x2", from: "carol", to: "bob", text: "two" },
  ).open("1");
  s.send("1", { code: "LGN", id: 4, user: "bob", password: "password-b" });
  const d = s.finishWork({ kind: "verify", ok: true, rehashed: undefined });
  assert.deepEqual(d.events.map((e) => e.type), ["login_succeeded"]);
  assert.deepEqual(s.to("1"), [
    { code: "ACK", id: 4, request: "LGN", user: "bob", queued: 2 },
    { code: "DLV", msg: "x1", from: "alice", to: "bob", text: "one", ts: 2 },
    { code: "DLV", msg: "x2", from: "carol", to: "bob", text: "two", ts: 3 },
  ]);
  assert.equal(s.state.online.get("bob"), "1");
});

Deno.test("LGN: an unknown user is checked against the dummy hash and answered like a wrong password", () => {
  const s = new Scenario().given({ type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH })
    .open("1");
  s.send("1", { code: "LGN", id: 1, user: "nobody", password: "password-x" });
  s.send("1", { code: "LGN", id: 2, user: "bob", password: "wrong-password" });
  const [unknown, wrong] = s.work;
  assert.ok(unknown?.kind === "verify" && wrong?.kind === "verify");
  assert.deepEqual([unknown.stored, unknown.known], ["dummy", false]);
  assert.deepEqual([wrong.stored, wrong.known], [HASH, true]);
  // Even a "correct" verdict against the dummy hash is no login.
  const a = s.finishWork({ kind: "verify", ok: true, rehashed: undefined });
  const b = s.finishWork({ kind: "verify", ok: false, rehashed: undefined });
  assert.deepEqual(s.take().map((o) => o.message), [
    { code: "ERR", id: 1, error: "invalid_credentials", message: "invalid username or password" },
    { code: "ERR", id: 2, error: "invalid_credentials", message: "invalid username or password" },
  ]);
  assert.deepEqual([...a.deferred, ...b.deferred].map((e) => e.type), [
    "login_failed",
    "login_failed",
  ]);
});

Deno.test("LGN: a password changed while it was checked does not log in", () => {
  const s = new Scenario().given({ type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH })
    .open("1");
  s.send("1", { code: "LGN", id: 1, user: "bob", password: "password-b" });
  s.given({ type: "password_changed", ts: 2, user: "bob", passwordHash: HASH.replace("A", "B") });
  s.finishWork({ kind: "verify", ok: true, rehashed: undefined });
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["invalid_credentials"]);
});

Deno.test("LGN: a rehash made by the password job is written with the login", () => {
  const old = "scrypt$9$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  const s = new Scenario().given({ type: "user_signed_up", ts: 1, user: "bob", passwordHash: old })
    .open("1");
  s.send("1", { code: "LGN", id: 1, user: "bob", password: "password-b" });
  const d = s.finishWork({ kind: "verify", ok: true, rehashed: HASH });
  assert.deepEqual(d.events.map((e) => e.type), ["login_succeeded", "password_changed"]);
  assert.equal(s.state.log.users.get("bob")!.passwordHash, HASH);
});

Deno.test("§4.3: one session per user: a second login sends BYE logged_in_elsewhere to the first", () => {
  const s = new Scenario().loggedIn("1", "bob");
  s.open("2");
  s.send("2", { code: "LGN", id: 1, user: "bob", password: "password-b" });
  s.finishWork({ kind: "verify", ok: true, rehashed: undefined });
  assert.deepEqual(s.to("1"), [{ code: "BYE", reason: "logged_in_elsewhere" }]);
  assert.equal(outcome(s.to("2")[0]), "ACK");
  assert.equal(s.state.online.get("bob"), "2");
  assert.equal(s.state.sessions.get("1")!.user, undefined);
});

Deno.test("§4.3: a login written by another node ends this node's session of that user", () => {
  const s = new Scenario().loggedIn("1", "bob");
  s.given({ type: "login_succeeded", ts: 5, user: "bob", addr: "198.51.100.9" });
  assert.deepEqual(s.take(), [{
    to: "1",
    message: { code: "BYE", reason: "logged_in_elsewhere" },
  }]);
  assert.equal(s.state.online.has("bob"), false);
});

Deno.test("§4.3: logging in again on the same session is no takeover", () => {
  const s = new Scenario().loggedIn("1", "bob");
  s.send("1", { code: "LGN", id: 9, user: "bob", password: "password-b" });
  s.finishWork({ kind: "verify", ok: true, rehashed: undefined });
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["ACK"]);
});

Deno.test("a login whose session closed while the password was checked logs in nobody", () => {
  const s = new Scenario().given({ type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH })
    .open("1");
  s.send("1", { code: "LGN", id: 1, user: "bob", password: "password-b" });
  s.when({ type: "close", session: "1" });
  const d = s.finishWork({ kind: "verify", ok: true, rehashed: undefined });
  assert.deepEqual(d.events, []);
  assert.equal(s.state.online.size, 0);
  assert.equal(s.state.pending.jobs, 0);
});

// ─── §5 login throttles ──────────────────────────────────────────────────────────────────────

/** bob signed up, and `n` LGNs for him with a wrong password from session "1", checked. */
function afterFailedLogins(n: number): Scenario {
  const s = new Scenario().given({ type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH })
    .open("1");
  for (let i = 1; i <= n; i++) {
    s.send("1", { code: "LGN", id: i, user: "bob", password: "wrong-pass" });
  }
  for (let i = 0; i < n; i++) s.finishWork({ kind: "verify", ok: false, rehashed: undefined });
  return s;
}

Deno.test("§5: five LGNs in flight for one user reserve the five free failures; the sixth waits", () => {
  const s = new Scenario({ login_backoff_base_ms: 60_000 }).given(
    { type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH },
  ).open("1");
  for (let i = 1; i <= 8; i++) {
    s.send("1", { code: "LGN", id: i, user: "bob", password: "password-x" });
  }
  assert.equal(s.work.length, 5);
  const refused = s.take();
  assert.deepEqual(refused.map((o) => outcome(o.message)), [
    "rate_limited",
    "rate_limited",
    "rate_limited",
  ]);
  for (let i = 0; i < 5; i++) s.finishWork({ kind: "verify", ok: false, rehashed: undefined });
  assert.equal(s.take().filter((o) => outcome(o.message) === "invalid_credentials").length, 5);
  s.now += 30_000;
  s.send("1", { code: "LGN", id: 9, user: "bob", password: "password-b" });
  const wait = s.take()[0]!.message;
  assert.equal(outcome(wait), "rate_limited");
  assert.ok((wait as { retry_after_ms: number }).retry_after_ms <= 30_000);
});

Deno.test("§5: a success gives its reservation back and forgets that address's failures", () => {
  const s = afterFailedLogins(4);
  s.send("1", { code: "LGN", id: 5, user: "bob", password: "password-b" });
  s.finishWork({ kind: "verify", ok: true, rehashed: undefined });
  assert.equal(s.state.throttles.userAddr.failures.size, 0);
  assert.equal(s.state.throttles.userAddr.inFlight.size, 0);
  assert.equal(s.state.throttles.user.failures.get("bob")?.length, 4, "the total keeps them");
});

Deno.test("§5: failures from one address throttle every user there; others elsewhere go on", () => {
  const s = new Scenario({ login_failures_per_address: 3, login_backoff_base_ms: 60_000 })
    .open("1", "203.0.113.1").open("2", "203.0.113.2");
  for (let i = 1; i <= 4; i++) {
    s.send("1", { code: "LGN", id: i, user: `u${i}`, password: "wrong-pass" });
  }
  s.send("2", { code: "LGN", id: 1, user: "u9", password: "wrong-pass" });
  assert.deepEqual(s.take().map((o) => [o.to, outcome(o.message)]), [["1", "rate_limited"]]);
  assert.equal(s.work.length, 4);
});

Deno.test("§5: throttles forget failures once their window has passed", () => {
  const s = afterFailedLogins(5);
  s.take();
  s.now += 15 * 60_000 + 1;
  s.when({ type: "sweep" });
  assert.equal(s.state.throttles.user.failures.size, 0);
  s.send("1", { code: "LGN", id: 9, user: "bob", password: "password-b" });
  assert.equal(s.work.length, 1);
});

// ─── §4.1 LGO, CPW, GSR, GUL, PNG ────────────────────────────────────────────────────────────

Deno.test("LGO: detaches at once, writes logged_out, ACKs once durable", () => {
  const s = new Scenario().loggedIn("1", "bob");
  const d = s.send("1", { code: "LGO", id: 3 });
  assert.deepEqual(d.events.map((e) => e.type), ["logged_out"]);
  assert.deepEqual(s.to("1"), [{ code: "ACK", id: 3, request: "LGO" }]);
  assert.equal(s.state.online.has("bob"), false);
});

Deno.test("§4.1: requests that need a login are not_authenticated before one; DAK is silent", () => {
  const s = new Scenario().open("1");
  s.send("1", { code: "LGO", id: 1 });
  s.send("1", { code: "CPW", id: 2, old: "password-a", new: "password-b" });
  s.send("1", { code: "GUL", id: 3 });
  s.send("1", { code: "MSG", id: 4, to: "bob", text: "hi" });
  s.send("1", { code: "DAK", msg: "x1" });
  s.sendRaw("1", 'MSG{"id":5,"to":"bob","text":""}'); // well-formed enough to need a login
  s.sendRaw("1", 'MSG{"id":6,"to":5}'); // malformed: bad_request first
  assert.deepEqual(
    s.take().map((o) => [o.message.code === "ERR" && o.message.id, outcome(o.message)]),
    [
      [1, "not_authenticated"],
      [2, "not_authenticated"],
      [3, "not_authenticated"],
      [4, "not_authenticated"],
      [5, "not_authenticated"],
      [6, "bad_request"],
    ],
  );
});

Deno.test("§4: unknown codes and bad JSON are bad_request with the id when readable, else 0", () => {
  const s = new Scenario().loggedIn("1", "bob");
  s.sendRaw("1", 'XYZ{"id":4}');
  s.sendRaw("1", "PNG{not json");
  assert.deepEqual(
    s.take().map((o) => o.message.code === "ERR" && [o.message.id, o.message.error]),
    [
      [4, "bad_request"],
      [0, "bad_request"],
    ],
  );
});

Deno.test("CPW: checks the old password, writes password_changed, ACKs; a wrong one is invalid_credentials", () => {
  const s = new Scenario().loggedIn("1", "bob");
  s.send("1", { code: "CPW", id: 2, old: "password-b", new: "password-new" });
  const work = s.work[0];
  assert.ok(work?.kind === "change" && work.stored === HASH);
  const ok = s.finishWork({ kind: "change", ok: true, hash: HASH.replace("A", "C") });
  assert.deepEqual(ok.events.map((e) => e.type), ["password_changed"]);
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["ACK"]);
  s.send("1", { code: "CPW", id: 3, old: "wrong-pass", new: "password-new" });
  const bad = s.finishWork({ kind: "change", ok: false, hash: undefined });
  assert.deepEqual(bad.deferred.map((e) => e.type), ["login_failed"]);
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["invalid_credentials"]);
});

Deno.test("GSR and PNG answer at once, before a login too", () => {
  const s = new Scenario().open("1");
  s.send("1", { code: "GSR", id: 1 });
  s.send("1", { code: "PNG", id: 2 });
  assert.deepEqual(s.take().map((o) => o.message), [
    { code: "ACK", id: 1, request: "GSR", key: "AAAA", fingerprint: "SHA256:test" },
    { code: "ACK", id: 2, request: "PNG" },
  ]);
});

Deno.test("GUL: users sorted by name with who is online, paged with next/after and a prefix", () => {
  const s = new Scenario({ gul_page: 2 });
  for (const user of ["dave", "bob", "carol", "alice"]) {
    s.given({ type: "user_signed_up", ts: 1, user, passwordHash: HASH });
  }
  s.loggedIn("1", "carol");
  s.send("1", { code: "GUL", id: 1 });
  s.send("1", { code: "GUL", id: 2, after: "bob" });
  s.send("1", { code: "GUL", id: 3, prefix: "d" });
  assert.deepEqual(s.take().map((o) => o.message), [
    {
      code: "ACK",
      id: 1,
      request: "GUL",
      users: [{ user: "alice", online: false }, { user: "bob", online: false }],
      next: "bob",
    },
    {
      code: "ACK",
      id: 2,
      request: "GUL",
      users: [{ user: "carol", online: true }, { user: "dave", online: false }],
    },
    { code: "ACK", id: 3, request: "GUL", users: [{ user: "dave", online: false }] },
  ]);
});

Deno.test("§5 (ours): GUL per session is a token bucket", () => {
  const s = new Scenario({ gul_burst: 2, gul_per_second: 1 }).loggedIn("1", "bob");
  for (let i = 1; i <= 3; i++) s.send("1", { code: "GUL", id: i });
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["ACK", "ACK", "rate_limited"]);
  s.now += 1000;
  s.send("1", { code: "GUL", id: 4 });
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["ACK"]);
});

// ─── §4.1 MSG, §4.3 delivery ─────────────────────────────────────────────────────────────────

Deno.test("MSG: ACK only once durable; pushed at once to an online recipient", () => {
  const s = new Scenario().loggedIn("1", "alice").loggedIn("2", "bob").hold();
  const d = s.send("1", { code: "MSG", id: 5, to: "bob", text: "hello" });
  assert.deepEqual(s.take(), [], "something was said before the write was durable");
  assert.deepEqual(d.events, [{
    type: "message_sent",
    ts: s.now,
    msg: "m1",
    from: "alice",
    to: "bob",
    text: "hello",
  }]);
  s.commitHeld();
  assert.deepEqual(s.take(), [
    { to: "1", message: { code: "ACK", id: 5, request: "MSG", msg: "m1", ts: s.now } },
    {
      to: "2",
      message: { code: "DLV", msg: "m1", from: "alice", to: "bob", text: "hello", ts: s.now },
    },
  ]);
});

Deno.test("MSG: to an offline user it waits in the queue; to nobody it is unknown_user", () => {
  const s = new Scenario().loggedIn("1", "alice").given(
    { type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH },
  );
  s.send("1", { code: "MSG", id: 1, to: "bob", text: "later" });
  s.send("1", { code: "MSG", id: 2, to: "nobody", text: "hi" });
  assert.deepEqual(s.take().map((o) => [o.to, outcome(o.message)]), [
    ["1", "ACK"],
    ["1", "unknown_user"],
  ]);
  assert.equal(s.state.log.queues.get("bob")?.size, 1);
});

Deno.test("§4.3: messages of one sender to one recipient are written in the order acknowledged", () => {
  const s = new Scenario().loggedIn("1", "alice").loggedIn("2", "bob");
  for (let i = 1; i <= 5; i++) s.send("1", { code: "MSG", id: i, to: "bob", text: `t${i}` });
  const dlvs = s.take().filter((o) => o.to === "2").map((o) =>
    o.message.code === "DLV" ? o.message.text : ""
  );
  assert.deepEqual(dlvs, ["t1", "t2", "t3", "t4", "t5"]);
});

Deno.test("§4.3: a DLV stays queued until its DAK; a repeated DAK is written once", () => {
  const s = new Scenario().loggedIn("1", "alice").given(
    { type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH },
  );
  s.send("1", { code: "MSG", id: 1, to: "bob", text: "kept" });
  s.loggedIn("2", "bob");
  assert.equal(s.state.log.queues.get("bob")?.size, 1, "a delivery is no receipt");
  s.hold();
  const first = s.send("2", { code: "DAK", msg: "m1" });
  const again = s.send("2", { code: "DAK", msg: "m1" });
  assert.deepEqual(first.deferred.map((e) => e.type), ["message_delivered"]);
  assert.deepEqual(again.deferred, []);
  s.commitHeld();
  assert.equal(s.state.log.queues.has("bob"), false);
  assert.deepEqual(s.take(), [], "DAK got an answer");
});

Deno.test("§4.3: a DAK for another user's message, or an unknown one, does nothing", () => {
  const s = new Scenario().loggedIn("1", "alice").given(
    { type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH },
    { type: "message_sent", ts: 2, msg: "x1", from: "carol", to: "bob", text: "b's" },
  );
  assert.deepEqual(s.send("1", { code: "DAK", msg: "x1" }).deferred, []);
  assert.deepEqual(s.send("1", { code: "DAK", msg: "nope" }).deferred, []);
});

Deno.test("§4.3: a cid used before gets the first ACK again and is not stored twice", () => {
  const s = new Scenario().loggedIn("1", "alice");
  s.send("1", { code: "MSG", id: 1, to: "alice", text: "once", cid: "c-1" });
  const again = s.send("1", { code: "MSG", id: 2, to: "alice", text: "once", cid: "c-1" });
  assert.deepEqual(again.events, []);
  const acks = s.take().filter((o) => o.message.code === "ACK").map((o) => o.message);
  assert.deepEqual(acks, [
    { code: "ACK", id: 1, request: "MSG", msg: "m1", ts: s.now },
    { code: "ACK", id: 2, request: "MSG", msg: "m1", ts: s.now },
  ]);
});

Deno.test("§4.3: a retry while the first send is still being written waits for its ACK", () => {
  const s = new Scenario().loggedIn("1", "alice").hold();
  s.send("1", { code: "MSG", id: 1, to: "alice", text: "once", cid: "c-2" });
  s.send("1", { code: "MSG", id: 2, to: "alice", text: "once", cid: "c-2" });
  assert.deepEqual(s.take(), []);
  s.commitHeld();
  const acks = s.take().filter((o) => o.message.code === "ACK").map((o) => o.message);
  assert.deepEqual(acks.map((a) => a.code === "ACK" && a.request === "MSG" && [a.id, a.msg]), [
    [1, "m1"],
    [2, "m1"],
  ]);
  assert.equal(s.log.filter((e) => e.type === "message_sent").length, 1);
});

Deno.test("§4.3: a retry whose first send failed to be written hears so, and may send again", () => {
  const s = new Scenario().loggedIn("1", "alice").hold();
  s.send("1", { code: "MSG", id: 1, to: "alice", text: "once", cid: "c-3" });
  s.send("1", { code: "MSG", id: 2, to: "alice", text: "once", cid: "c-3" });
  s.commitHeld({ error: "disk full" });
  assert.deepEqual(
    s.take().map((o) => [o.message.code === "ERR" && o.message.id, outcome(o.message)]),
    [
      [2, "internal"],
      [1, "internal"],
    ],
  );
  s.send("1", { code: "MSG", id: 3, to: "alice", text: "once", cid: "c-3" });
  assert.equal(outcome(s.take()[0]?.message), "ACK");
});

Deno.test("§4.3 across nodes: a cid another node wrote first is answered with that node's ACK", () => {
  const s = new Scenario().loggedIn("1", "alice").hold();
  s.send("1", { code: "MSG", id: 1, to: "alice", text: "once", cid: "c-4" });
  s.commitHeld({ error: "conflict", conflict: "cid_used" });
  assert.deepEqual(s.take(), [], "answered before the first send was known here");
  s.given({
    type: "message_sent",
    ts: 42,
    msg: "other-node",
    from: "alice",
    to: "alice",
    text: "once",
    cid: "c-4",
  });
  const acks = s.take().filter((o) => o.message.code === "ACK").map((o) => o.message);
  assert.deepEqual(acks, [{ code: "ACK", id: 1, request: "MSG", msg: "other-node", ts: 42 }]);
});

Deno.test("§5: MSG per session is a token bucket (burst, then the rate)", () => {
  const s = new Scenario({ msg_burst: 3, msg_per_second: 10 }).loggedIn("1", "alice");
  for (let i = 1; i <= 4; i++) s.send("1", { code: "MSG", id: i, to: "alice", text: `t${i}` });
  const codes = s.take().filter((o) => o.message.code !== "DLV").map((o) => outcome(o.message));
  assert.deepEqual(codes, ["ACK", "ACK", "ACK", "rate_limited"]);
  s.now += 100;
  s.send("1", { code: "MSG", id: 5, to: "alice", text: "t5" });
  assert.equal(outcome(s.take()[0]?.message), "ACK");
});

Deno.test("§5 (ours): queue quotas count messages being written, by count and by bytes", () => {
  const s = new Scenario({
    msg_burst: 100,
    max_queued_per_recipient: 3,
    max_queued_bytes_per_recipient: 10,
    max_queued_bytes_per_sender: 12,
    max_queued_bytes_total: 14,
  }).loggedIn("1", "alice").given(
    { type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH },
    { type: "user_signed_up", ts: 1, user: "carol", passwordHash: HASH },
    { type: "user_signed_up", ts: 1, user: "dave", passwordHash: HASH },
  ).loggedIn("2", "erin").hold();
  const send = (from: string, to: string, text: string) =>
    outcome(s.send(from, { code: "MSG", id: 1, to, text }).replies[0]?.message);
  assert.equal(send("1", "bob", "aaaa"), "nothing"); // 4 bytes to bob, being written
  assert.equal(send("1", "bob", "aaaa"), "nothing"); // 8
  assert.equal(send("1", "bob", "aaa"), "rate_limited"); // 11 > 10 for bob
  assert.equal(send("1", "carol", "aaaa"), "nothing"); // alice has 12 waiting
  assert.equal(send("1", "carol", "a"), "rate_limited"); // 13 > 12 from alice
  assert.equal(send("2", "dave", "aa"), "nothing"); // 14 in all
  assert.equal(send("2", "dave", "a"), "rate_limited"); // 15 > 14
  s.commitHeld();
  s.take();
  assert.equal(s.state.log.queuedBytes, 14);
  assert.equal(s.state.pending.bytes, 0);
  // By count: bob may have 3.
  s.send("1", { code: "MSG", id: 2, to: "bob", text: "é" }); // 2 bytes: 10 for bob
  assert.equal(outcome(s.take()[0]?.message), "rate_limited", "alice is over her bytes");
});

// ─── §5 login deadline ───────────────────────────────────────────────────────────────────────

Deno.test("a session without a login gets BYE idle at the login deadline, unless it logs in", () => {
  const s = new Scenario({ login_timeout_ms: 60_000 }).open("1").loggedIn("2", "bob");
  s.now += 59_000;
  s.when({ type: "tick" });
  assert.deepEqual(s.take(), []);
  s.now += 2000;
  s.when({ type: "tick" });
  assert.deepEqual(s.take(), [{ to: "1", message: { code: "BYE", reason: "idle" } }]);
  s.when({ type: "tick" });
  assert.deepEqual(s.take(), [], "a closing session is told once");
});

Deno.test("the login deadline waits for a login being checked", () => {
  const s = new Scenario({ login_timeout_ms: 1000 }).given(
    { type: "user_signed_up", ts: 1, user: "bob", passwordHash: HASH },
  ).open("1");
  s.send("1", { code: "LGN", id: 1, user: "bob", password: "password-b" });
  s.now += 5000;
  s.when({ type: "tick" });
  assert.deepEqual(s.take(), []);
  s.finishWork({ kind: "verify", ok: true, rehashed: undefined });
  s.when({ type: "tick" });
  assert.deepEqual(s.take().map((o) => outcome(o.message)), ["ACK"]);
});
