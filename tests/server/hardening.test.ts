// The attacks of the outside review, each against a real server over loopback: pipelined
// guesses, free-running pre-login sessions, floods of unauthenticated connections, queues
// filled to exhaust memory, user lists too long to answer, and hashes under old parameters.
import assert from "node:assert/strict";
import type { ServerMessage } from "../../protocol/messages.ts";
import { readEventLog } from "../../store/mod.ts";
import { loggedIn, startServer, TestClient, until } from "./_harness.ts";

/** The codes of `replies`, in order, as "invalid_credentials" / "rate_limited" / "ACK". */
function outcomes(replies: ServerMessage[]): string[] {
  return replies.map((r) => r.code === "ERR" ? r.error : r.code);
}

/** How many `invalid_credentials` came before the first `rate_limited` (all of them if none did). */
function guessesBeforeThrottle(replies: ServerMessage[]): number {
  const codes = outcomes(replies);
  const first = codes.indexOf("rate_limited");
  return codes.slice(0, first < 0 ? codes.length : first).filter((c) => c === "invalid_credentials")
    .length;
}

Deno.test("40 wrong LGNs for one user, pipelined on one connection, get at most 5 invalid_credentials", async () => {
  const t = await startServer({ limits: { login_backoff_base_ms: 60_000 } });
  const owner = await loggedIn(t.port, "alice");
  await owner.close();
  const guesser = await TestClient.connect(t.port, 0, "127.0.0.2");
  try {
    const replies = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) => guesser.request({ code: "LGN", user: "alice", password: `guess-${i}-wrong` }),
      ),
    );
    const codes = outcomes(replies);
    assert.ok(guessesBeforeThrottle(replies) <= 5, codes.join(" "));
    // Not only before the first refusal: in all, 5 guesses were checked.
    assert.equal(codes.filter((c) => c === "invalid_credentials").length, 5, codes.join(" "));
    assert.equal(codes.filter((c) => c === "rate_limited").length, 35);
  } finally {
    await guesser.close();
    await t.dispose();
  }
});

Deno.test("wrong CPWs pipelined on one session are throttled after 5 like logins", async () => {
  const t = await startServer({ limits: { login_backoff_base_ms: 60_000 } });
  const alice = await loggedIn(t.port, "alice");
  try {
    const replies = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => alice.request({ code: "CPW", old: `wrong-old-${i}`, new: "new password 1" }),
      ),
    );
    const codes = outcomes(replies);
    assert.equal(codes.filter((c) => c === "invalid_credentials").length, 5, codes.join(" "));
    assert.equal(codes.filter((c) => c === "rate_limited").length, 15);
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("the per-address and per-user-total throttles hold under pipelining too", async () => {
  const t = await startServer({
    limits: {
      login_failures_per_address: 3,
      login_failures_per_user_total: 4,
      login_backoff_base_ms: 60_000,
    },
  });
  const c = await TestClient.connect(t.port);
  try {
    // Different users from one address: the address's 3 free failures, no more.
    const spread = await Promise.all(
      Array.from(
        { length: 12 },
        (_, i) => c.request({ code: "LGN", user: `u${i}`, password: "wrong password" }),
      ),
    );
    assert.equal(outcomes(spread).filter((x) => x === "invalid_credentials").length, 3);
    // One user from many addresses at once: 4 in all.
    const clients = await Promise.all(
      Array.from({ length: 8 }, (_, i) => TestClient.connect(t.port, 0, `127.0.4.${i + 1}`)),
    );
    const total = await Promise.all(
      clients.map((x) => x.request({ code: "LGN", user: "bob", password: "wrong password" })),
    );
    assert.equal(outcomes(total).filter((x) => x === "invalid_credentials").length, 4);
    await Promise.all(clients.map((x) => x.close()));
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("a session that never logs in is closed at the login deadline, PNGs or not", async () => {
  const t = await startServer({ limits: { login_timeout_ms: 400 } });
  const idler = await TestClient.connect(t.port);
  const member = await loggedIn(t.port, "alice");
  try {
    const started = Date.now();
    while (!idler.closed && Date.now() - started < 5000) {
      await idler.request({ code: "PNG" }).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(idler.closed, "the pre-login session is still open");
    assert.ok(idler.pushes.some((m) => m.code === "BYE" && m.reason === "idle"));
    // A logged-in session is not touched by the login deadline.
    assert.equal((await member.request({ code: "PNG" })).code, "ACK");
  } finally {
    await Promise.all([idler.close(), member.close()]);
    await t.dispose();
  }
});

Deno.test("LGO starts the login deadline again", async () => {
  const t = await startServer({ limits: { login_timeout_ms: 400 } });
  const alice = await loggedIn(t.port, "alice");
  try {
    await new Promise((r) => setTimeout(r, 600)); // past the deadline, but logged in
    assert.equal((await alice.request({ code: "PNG" })).code, "ACK");
    assert.equal((await alice.request({ code: "LGO" })).code, "ACK");
    await until(() => alice.closed, "the login deadline to close the session", 5000);
    assert.ok(alice.pushes.some((m) => m.code === "BYE" && m.reason === "idle"));
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("connections without a login have their own cap; a login makes room", async () => {
  const t = await startServer({ limits: { max_unauthenticated: 2 } });
  const a = await TestClient.connect(t.port);
  const b = await TestClient.connect(t.port, 0, "127.0.0.2");
  try {
    await assert.rejects(TestClient.connect(t.port, 0, "127.0.0.3"), /closed the connection/);
    await a.request({ code: "SNU", user: "alice", password: "password-alice" });
    assert.equal(
      (await a.request({ code: "LGN", user: "alice", password: "password-alice" })).code,
      "ACK",
    );
    const c = await TestClient.connect(t.port, 0, "127.0.0.4");
    assert.equal((await c.request({ code: "PNG" })).code, "ACK");
    await c.close();
    assert.ok(
      t.lines.some((l) => l.includes("connection refused") && l.includes("unauthenticated")),
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
    await t.dispose();
  }
});

Deno.test("handshakes per address are rate-limited; other addresses are not", async () => {
  const t = await startServer({
    limits: { handshakes_per_address_burst: 3, handshakes_per_address_per_second: 0.001 },
  });
  try {
    for (let i = 0; i < 3; i++) {
      const c = await TestClient.connect(t.port, 0, "127.0.5.1");
      await c.close();
    }
    // The fourth, from the same address, is closed before any handshake.
    await assert.rejects(TestClient.connect(t.port, 0, "127.0.5.1"), /closed the connection/);
    const other = await TestClient.connect(t.port, 0, "127.0.5.2");
    assert.equal((await other.request({ code: "PNG" })).code, "ACK");
    await other.close();
    assert.ok(
      t.lines.some((l) => l.includes("connection refused") && l.includes("handshake rate")),
    );
  } finally {
    await t.dispose();
  }
});

Deno.test("byte quotas: per recipient, per sender and in all, each answered rate_limited", async () => {
  const text = "x".repeat(1000);
  const t = await startServer({
    limits: {
      msg_burst: 1000,
      max_queued_bytes_per_recipient: 5000,
      max_queued_bytes_per_sender: 8000,
      max_queued_bytes_total: 12_000,
    },
  });
  const s1 = await loggedIn(t.port, "s1");
  const s2 = await loggedIn(t.port, "s2");
  for (const user of ["r1", "r2", "r3", "r4"]) await (await loggedIn(t.port, user)).close();
  try {
    const send = (from: TestClient, to: string) => from.request({ code: "MSG", to, text });
    // r1 holds 5 messages of 1000 bytes: the sixth is over its quota.
    for (let i = 0; i < 5; i++) assert.equal((await send(s1, "r1")).code, "ACK");
    const r1Full = await send(s1, "r1");
    assert.ok(r1Full.code === "ERR" && r1Full.error === "rate_limited", JSON.stringify(r1Full));
    assert.match(r1Full.code === "ERR" ? r1Full.message : "", /r1 has too many undelivered bytes/);
    // s1 has 5000 bytes waiting; 3 more reach its 8000.
    for (let i = 0; i < 3; i++) assert.equal((await send(s1, "r2")).code, "ACK");
    const s1Full = await send(s1, "r3");
    assert.ok(s1Full.code === "ERR" && s1Full.error === "rate_limited");
    assert.match(s1Full.code === "ERR" ? s1Full.message : "", /your undelivered messages/);
    // 8000 in all; s2 adds 4000 to reach 12,000, then the server is full for everyone.
    for (let i = 0; i < 4; i++) assert.equal((await send(s2, "r3")).code, "ACK");
    const allFull = await send(s2, "r4");
    assert.ok(allFull.code === "ERR" && allFull.error === "rate_limited");
    assert.ok(allFull.retry_after_ms! > 0);
    assert.match(allFull.code === "ERR" ? allFull.message : "", /server holds too many/);
    // Delivery gives the room back.
    const r1 = await TestClient.connect(t.port);
    await r1.request({ code: "LGN", user: "r1", password: "password-r1" });
    for (let i = 0; i < 5; i++) r1.dak((await r1.push("DLV")).msg);
    await until(() => t.server.core.state.log.queuedBytes === 7000, "the DAKs to land");
    assert.equal((await send(s2, "r4")).code, "ACK");
    await r1.close();
  } finally {
    await Promise.all([s1.close(), s2.close()]);
    await t.dispose();
  }
});

Deno.test("quotas count messages still being written: pipelined sends cannot overshoot", async () => {
  const t = await startServer({
    limits: { msg_burst: 1000, max_queued_bytes_per_recipient: 10_000 },
  });
  const s = await loggedIn(t.port, "s");
  await (await loggedIn(t.port, "r")).close();
  try {
    const replies = await Promise.all(
      Array.from({ length: 30 }, () => s.request({ code: "MSG", to: "r", text: "y".repeat(1000) })),
    );
    assert.equal(outcomes(replies).filter((c) => c === "ACK").length, 10);
    assert.equal(t.server.core.state.log.queues.get("r")?.bytes, 10_000);
  } finally {
    await s.close();
    await t.dispose();
  }
});

Deno.test("GUL is rate-limited per session", async () => {
  const t = await startServer({ limits: { gul_burst: 3, gul_per_second: 0.001 } });
  const alice = await loggedIn(t.port, "alice");
  try {
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => alice.request({ code: "GUL" })),
    );
    assert.deepEqual(outcomes(replies), ["ACK", "ACK", "ACK", "rate_limited", "rate_limited"]);
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("GUL answers in bounded pages, with `next`, `after` and `prefix`", async () => {
  const t = await startServer({ limits: { gul_page: 25, signups_per_address: 1000 } });
  const alice = await loggedIn(t.port, "alice");
  try {
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        alice.request({
          code: "SNU",
          user: `u${String(i).padStart(2, "0")}`,
          password: "password-x",
        })),
    );
    const names: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await alice.request({ code: "GUL", ...(after ? { after } : {}) });
      assert.ok(page.code === "ACK" && page.request === "GUL");
      assert.ok(page.users.length <= 25);
      names.push(...page.users.map((u) => u.user));
      pages++;
      if (page.next === undefined) break;
      after = page.next;
    }
    assert.equal(pages, 3);
    assert.equal(names.length, 61);
    assert.deepEqual(names, [...names].sort());
    assert.equal(names[0], "alice");
    const some = await alice.request({ code: "GUL", prefix: "u1" });
    assert.ok(some.code === "ACK" && some.request === "GUL");
    assert.deepEqual(some.users.map((u) => u.user), Array.from({ length: 10 }, (_, i) => `u1${i}`));
    assert.equal(some.next, undefined);
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("a login under weaker scrypt parameters than the server's rehashes the password", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-rehash-" });
  try {
    const weak = await startServer({ dir, hashParams: { logN: 10, r: 8, p: 1 } });
    await (await loggedIn(weak.port, "alice")).close();
    await weak.stop();
    const strong = await startServer({ dir, hashParams: { logN: 11, r: 8, p: 1 } });
    const again = await TestClient.connect(strong.port);
    const lgn = await again.request({ code: "LGN", user: "alice", password: "password-alice" });
    assert.equal(lgn.code, "ACK");
    await again.close();
    await until(
      () => strong.server.core.state.log.users.get("alice")!.passwordHash.startsWith("scrypt$11$"),
      "the rehash to land",
    );
    await strong.stop();
    const changes: string[] = [];
    await readEventLog(`${dir}/events.log`, {
      onEvent: (e) => {
        if (e.type === "password_changed") changes.push(e.passwordHash.split("$")[1]!);
      },
    });
    assert.deepEqual(changes, ["11"]);
    // The rehashed password still opens the account.
    const third = await startServer({ dir, hashParams: { logN: 11, r: 8, p: 1 } });
    const c = await TestClient.connect(third.port);
    assert.equal(
      (await c.request({ code: "LGN", user: "alice", password: "password-alice" })).code,
      "ACK",
    );
    await c.close();
    await third.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
