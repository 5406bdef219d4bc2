// The limits and timeouts of PROTOCOL §5, each shown to bite and to spare others.
import assert from "node:assert/strict";
import { KEX_GROUPS, kexGroupByName } from "../../crypto/mod.ts";
import { HandshakeRefusedError } from "../../protocol/handshake.ts";
import { clientHandshake } from "../../protocol/session.ts";
import { portableCrypto } from "../_engines.ts";
import { loggedIn, readUntilClosed, startServer, TestClient, until } from "./_harness.ts";

Deno.test("MSG beyond the burst is refused with rate_limited and a retry_after_ms", async () => {
  // One token a minute: nothing refills while the test runs.
  const t = await startServer({ limits: { msg_burst: 5, msg_per_second: 1 } });
  const alice = await loggedIn(t.port, "alice");
  try {
    const replies = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) => alice.request({ code: "MSG", to: "alice", text: `m${i}` }),
      ),
    );
    const limited = replies.filter((r) => r.code === "ERR" && r.error === "rate_limited");
    assert.ok(replies.slice(0, 5).every((r) => r.code === "ACK"));
    assert.ok(limited.length >= 2, `${limited.length} refused`);
    assert.ok(limited.every((r) => r.code === "ERR" && r.retry_after_ms! > 0));
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("after 5 failed logins from one address a user is throttled there, even with the right password", async () => {
  const t = await startServer({ limits: { login_backoff_base_ms: 60_000 } });
  const owner = await loggedIn(t.port, "alice");
  await owner.close();
  const bob = await loggedIn(t.port, "bob");
  await bob.close();
  const guesser = await TestClient.connect(t.port, 0, "127.0.0.2");
  try {
    for (let i = 0; i < 5; i++) {
      const r = await guesser.request({ code: "LGN", user: "alice", password: `guess-${i}-guess` });
      assert.equal(r.code === "ERR" && r.error, "invalid_credentials");
    }
    const throttled = await guesser.request({
      code: "LGN",
      user: "alice",
      password: "password-alice",
    });
    assert.ok(throttled.code === "ERR" && throttled.error === "rate_limited");
    assert.ok(throttled.retry_after_ms! > 50_000 && throttled.retry_after_ms! <= 60_000);
    // Other users from the same address are not throttled.
    assert.equal(
      (await guesser.request({ code: "LGN", user: "bob", password: "password-bob" })).code,
      "ACK",
    );
    // The owner, from another address, still gets in.
    const again = await TestClient.connect(t.port, 0, "127.0.0.3");
    assert.equal(
      (await again.request({ code: "LGN", user: "alice", password: "password-alice" })).code,
      "ACK",
    );
    await again.close();
    assert.ok(t.lines.some((l) => l.includes("login failed") && l.includes("user=alice")));
    assert.ok(!t.lines.some((l) => l.includes("guess-")), "a password reached the log");
  } finally {
    await guesser.close();
    await t.dispose();
  }
});

Deno.test("failures for one user spread over many addresses throttle that user everywhere", async () => {
  const t = await startServer({
    limits: { login_failures_per_user_total: 6, login_backoff_base_ms: 60_000 },
  });
  try {
    for (let i = 0; i < 6; i++) {
      const c = await TestClient.connect(t.port, 0, `127.0.1.${i + 1}`);
      const r = await c.request({ code: "LGN", user: "alice", password: "wrong password" });
      assert.equal(r.code === "ERR" && r.error, "invalid_credentials");
      await c.close();
    }
    const fresh = await TestClient.connect(t.port, 0, "127.0.2.1");
    const r = await fresh.request({ code: "LGN", user: "alice", password: "wrong password" });
    assert.equal(r.code === "ERR" && r.error, "rate_limited");
    await fresh.close();
  } finally {
    await t.dispose();
  }
});

Deno.test("an address with too many failed logins is throttled for every user", async () => {
  const t = await startServer({
    limits: { login_failures_per_address: 3, login_backoff_base_ms: 60_000 },
  });
  const c = await TestClient.connect(t.port);
  try {
    for (const user of ["u1", "u2", "u3"]) {
      const r = await c.request({ code: "LGN", user, password: "wrong password" });
      assert.equal(r.code === "ERR" && r.error, "invalid_credentials");
    }
    const r = await c.request({ code: "LGN", user: "u4", password: "wrong password" });
    assert.equal(r.code === "ERR" && r.error, "rate_limited");
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("sign-ups per address are limited", async () => {
  const t = await startServer({ limits: { signups_per_address: 2 } });
  const c = await TestClient.connect(t.port);
  try {
    assert.equal(
      (await c.request({ code: "SNU", user: "a1", password: "password-1" })).code,
      "ACK",
    );
    assert.equal(
      (await c.request({ code: "SNU", user: "a2", password: "password-2" })).code,
      "ACK",
    );
    const third = await c.request({ code: "SNU", user: "a3", password: "password-3" });
    assert.ok(third.code === "ERR" && third.error === "rate_limited" && third.retry_after_ms! > 0);
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("connections past the per-address cap are closed at once; earlier ones keep working", async () => {
  const t = await startServer({ limits: { max_connections_per_address: 2 } });
  const a = await TestClient.connect(t.port);
  const b = await TestClient.connect(t.port);
  try {
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    assert.equal((await readUntilClosed(extra)).length, 0);
    assert.equal((await a.request({ code: "PNG" })).code, "ACK");
    await b.close();
    await until(() => t.server.connectionCount === 1, "the closed connection to be counted out");
    const c = await TestClient.connect(t.port);
    assert.equal((await c.request({ code: "PNG" })).code, "ACK");
    await c.close();
  } finally {
    await a.close();
    await t.dispose();
  }
});

Deno.test("the total connection cap holds", async () => {
  const t = await startServer({ limits: { max_connections: 1 } });
  const a = await TestClient.connect(t.port);
  try {
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    assert.equal((await readUntilClosed(extra)).length, 0);
  } finally {
    await a.close();
    await t.dispose();
  }
});

Deno.test("a connection that does not finish the handshake in time is dropped without a word", async () => {
  const t = await startServer({ limits: { handshake_timeout_ms: 200 } });
  try {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    assert.equal((await readUntilClosed(silent)).length, 0);
    const half = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    await half.write(new Uint8Array([0, 0, 1, 0x26, 0x43, 0x48])); // a ClientHello's first bytes
    assert.equal((await readUntilClosed(half)).length, 0);
    assert.ok(t.lines.some((l) => l.includes("handshake timeout")));
  } finally {
    await t.dispose();
  }
});

Deno.test("an idle session gets BYE idle and is closed", async () => {
  const t = await startServer({ limits: { idle_timeout_ms: 300 } });
  const c = await TestClient.connect(t.port);
  try {
    assert.deepEqual(await c.push("BYE"), { code: "BYE", reason: "idle" });
    await c.waitClosed();
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("clients may use any of the five groups", async () => {
  const t = await startServer();
  try {
    for (let g = 0; g < KEX_GROUPS.length; g++) {
      const c = await TestClient.connect(t.port, g);
      assert.equal((await c.request({ code: "PNG" })).code, "ACK");
      await c.close();
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    const { result } = await clientHandshake(conn, {
      group: KEX_GROUPS[2]!,
      crypto: portableCrypto,
    });
    assert.equal(result.group.name, "ffdhe4096");
    conn.close();
  } finally {
    await t.dispose();
  }
});

Deno.test("a server narrowed with groups refuses the others with unsupported_group and its list", async () => {
  const t = await startServer({ groups: [kexGroupByName("x25519")!] });
  try {
    const c = await TestClient.connect(t.port, 3); // KEX_GROUPS[3]: x25519
    assert.equal((await c.request({ code: "PNG" })).code, "ACK");
    await c.close();
    for (const group of KEX_GROUPS.filter((g) => g.name !== "x25519")) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
      try {
        await assert.rejects(
          clientHandshake(conn, { group, crypto: portableCrypto }),
          (e) =>
            e instanceof HandshakeRefusedError && e.code === "unsupported_group" &&
            e.serverMessage === `group ${group.name} is not offered; this server offers x25519`,
        );
      } finally {
        conn.close();
      }
    }
  } finally {
    await t.dispose();
  }
});

Deno.test("while 50 logins are being hashed, messages between logged-in users keep flowing", async () => {
  // Real scrypt work (N=2^14) so the hash queue stays busy for a while.
  const t = await startServer({
    hashParams: { logN: 14, r: 8, p: 1 },
    limits: { hash_queue: 100 },
  });
  const alice = await loggedIn(t.port, "alice");
  const bob = await loggedIn(t.port, "bob");
  // Each from its own address: 10 failures stay under the per-address throttle (20).
  const crowd = await Promise.all(
    Array.from({ length: 5 }, (_, i) => TestClient.connect(t.port, 0, `127.0.3.${i + 1}`)),
  );
  try {
    const logins = crowd.flatMap((c, i) =>
      Array.from(
        { length: 10 },
        (_, j) => c.request({ code: "LGN", user: `nobody${i}${j}`, password: "12345678" }),
      )
    );
    await until(() => t.server.core.hashLoad.queued > 10, "logins to queue up");
    for (let i = 0; i < 20; i++) {
      const ack = await alice.request({ code: "MSG", to: "bob", text: `during hashing ${i}` });
      assert.equal(ack.code, "ACK");
      await bob.push("DLV", (m) => m.text === `during hashing ${i}`);
    }
    // All 20 round trips completed while logins were still waiting for the hasher.
    assert.ok(t.server.core.hashLoad.queued > 0, "the logins finished before the messages");
    const results = await Promise.all(logins);
    assert.ok(results.every((r) => r.code === "ERR" && r.error === "invalid_credentials"));
  } finally {
    await Promise.all([alice.close(), bob.close(), ...crowd.map((c) => c.close())]);
    await t.dispose();
  }
});

Deno.test("past the hash queue's cap a login is answered rate_limited at once", async () => {
  // Hashes slow enough (N=2^16, ~200 ms each) that all six requests are in before the first ends.
  const t = await startServer({
    hashParams: { logN: 16, r: 8, p: 1 },
    limits: { hash_concurrency: 1, hash_queue: 2 },
  });
  const c = await TestClient.connect(t.port);
  try {
    const replies = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) => c.request({ code: "LGN", user: `u${i}`, password: "12345678" }),
      ),
    );
    const codes = replies.map((r) => r.code === "ERR" && r.error);
    assert.deepEqual(codes.slice(0, 3), [
      "invalid_credentials",
      "invalid_credentials",
      "invalid_credentials",
    ]);
    assert.deepEqual(codes.slice(3), ["rate_limited", "rate_limited", "rate_limited"]);
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("MSG to a recipient whose queue is full is refused rate_limited until they collect", async () => {
  const t = await startServer({ limits: { max_queued_per_recipient: 3 } });
  const alice = await loggedIn(t.port, "alice");
  const bob = await loggedIn(t.port, "bob");
  await bob.close();
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal((await alice.request({ code: "MSG", to: "bob", text: `m${i}` })).code, "ACK");
    }
    const full = await alice.request({ code: "MSG", to: "bob", text: "one too many" });
    assert.ok(full.code === "ERR" && full.error === "rate_limited" && full.retry_after_ms! > 0);
    const again = await TestClient.connect(t.port);
    await again.request({ code: "LGN", user: "bob", password: "password-bob" });
    const first = await again.push("DLV");
    again.dak(first.msg);
    await again.request({ code: "PNG" }); // the DAK is taken in before the PNG is answered
    await until(
      () => (t.server.core.state.log.queues.get("bob")?.size ?? 0) < 3,
      "the DAK to land",
    );
    assert.equal((await alice.request({ code: "MSG", to: "bob", text: "fits again" })).code, "ACK");
    await again.close();
  } finally {
    await alice.close();
    await t.dispose();
  }
});
