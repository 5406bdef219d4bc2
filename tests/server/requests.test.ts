// The request table of PROTOCOL §4 against a real server over loopback.
import assert from "node:assert/strict";
import { fingerprint, fromBase64 } from "../../crypto/mod.ts";
import { INVALID_CREDENTIALS_MESSAGE } from "../../protocol/messages.ts";
import { testIdentity } from "../_vectors.ts";
import { loggedIn, startServer, TestClient, until } from "./_harness.ts";
import { readEventLog } from "../../store/mod.ts";

Deno.test("PNG and GSR answer before login; GSR gives the server key and its fingerprint", async () => {
  const t = await startServer();
  const c = await TestClient.connect(t.port);
  try {
    assert.deepEqual(await c.request({ code: "PNG" }), { code: "ACK", id: 1, request: "PNG" });
    const gsr = await c.request({ code: "GSR" });
    assert.equal(gsr.code, "ACK");
    if (gsr.code === "ACK" && gsr.request === "GSR") {
      assert.equal(gsr.fingerprint, testIdentity.fingerprint);
      assert.equal(fingerprint(fromBase64(gsr.key)), testIdentity.fingerprint);
    }
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("SNU signs up once; a second SNU of the name, a bad name or a weak password are refused", async () => {
  const t = await startServer();
  const c = await TestClient.connect(t.port);
  try {
    assert.deepEqual(await c.request({ code: "SNU", user: "alice", password: "correct horse" }), {
      code: "ACK",
      id: 1,
      request: "SNU",
      user: "alice",
    });
    const again = await c.request({ code: "SNU", user: "alice", password: "another one" });
    assert.equal(again.code === "ERR" && again.error, "user_exists");
    const badName = await c.request({ code: "SNU", user: "Alice!", password: "correct horse" });
    assert.equal(badName.code === "ERR" && badName.error, "invalid_username");
    const weak = await c.request({ code: "SNU", user: "bob", password: "short" });
    assert.equal(weak.code === "ERR" && weak.error, "weak_password");
    // SNU does not log in (§4.3).
    const gul = await c.request({ code: "GUL" });
    assert.equal(gul.code === "ERR" && gul.error, "not_authenticated");
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("LGN answers an unknown user and a wrong password alike", async () => {
  const t = await startServer();
  const c = await TestClient.connect(t.port);
  try {
    await c.request({ code: "SNU", user: "alice", password: "correct horse" });
    const wrong = await c.request({ code: "LGN", user: "alice", password: "wrong horse" });
    const unknown = await c.request({ code: "LGN", user: "nobody", password: "wrong horse" });
    assert.deepEqual(
      [wrong, unknown].map((m) => m.code === "ERR" && [m.error, m.message]),
      [["invalid_credentials", INVALID_CREDENTIALS_MESSAGE], [
        "invalid_credentials",
        INVALID_CREDENTIALS_MESSAGE,
      ]],
    );
    const ok = await c.request({ code: "LGN", user: "alice", password: "correct horse" });
    assert.deepEqual(ok, { code: "ACK", id: 4, request: "LGN", user: "alice", queued: 0 });
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("LGO, CPW, GUL and MSG need a login; DAK before login is ignored", async () => {
  const t = await startServer();
  const c = await TestClient.connect(t.port);
  try {
    c.dak("nothing");
    for (
      const body of [
        { code: "LGO" as const },
        { code: "CPW" as const, old: "12345678", new: "87654321" },
        { code: "GUL" as const },
        { code: "MSG" as const, to: "bob", text: "hi" },
      ]
    ) {
      const r = await c.request(body);
      assert.equal(r.code === "ERR" && r.error, "not_authenticated", body.code);
    }
    assert.equal(c.pushes.length, 0);
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("MSG to an online user is acknowledged and pushed; GUL shows who is online, sorted", async () => {
  const t = await startServer();
  const alice = await loggedIn(t.port, "alice");
  const bob = await loggedIn(t.port, "bob");
  const carol = await TestClient.connect(t.port);
  try {
    await carol.request({ code: "SNU", user: "carol", password: "password-carol" });
    const ack = await alice.request({ code: "MSG", to: "bob", text: "hello bob" });
    assert.equal(ack.code, "ACK");
    const dlv = await bob.push("DLV");
    assert.equal(ack.code === "ACK" && ack.request === "MSG" && ack.msg, dlv.msg);
    assert.deepEqual([dlv.from, dlv.to, dlv.text], ["alice", "bob", "hello bob"]);
    assert.ok(
      ack.code === "ACK" && ack.request === "MSG" && ack.ts === dlv.ts && dlv.msg.length <= 64,
    );
    const gul = await alice.request({ code: "GUL" });
    assert.deepEqual(gul.code === "ACK" && gul.request === "GUL" && gul.users, [
      { user: "alice", online: true },
      { user: "bob", online: true },
      { user: "carol", online: false },
    ]);
  } finally {
    await Promise.all([alice.close(), bob.close(), carol.close()]);
    await t.dispose();
  }
});

Deno.test("MSG refuses an unknown recipient, an empty text and a text over 16384 bytes", async () => {
  const t = await startServer();
  const alice = await loggedIn(t.port, "alice");
  try {
    const unknown = await alice.request({ code: "MSG", to: "nobody", text: "hi" });
    assert.equal(unknown.code === "ERR" && unknown.error, "unknown_user");
    const empty = await alice.request({ code: "MSG", to: "alice", text: "" });
    assert.equal(empty.code === "ERR" && empty.error, "invalid_message");
    const big = await alice.request({ code: "MSG", to: "alice", text: "x".repeat(16385) });
    assert.equal(big.code === "ERR" && big.error, "too_large");
    const max = await alice.request({ code: "MSG", to: "alice", text: "é".repeat(8192) });
    assert.equal(max.code, "ACK");
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("a message to an offline user waits and is pushed at login, oldest first", async () => {
  const t = await startServer();
  const alice = await loggedIn(t.port, "alice");
  const bob = await loggedIn(t.port, "bob");
  await bob.close();
  try {
    for (const text of ["one", "two", "three"]) {
      assert.equal((await alice.request({ code: "MSG", to: "bob", text })).code, "ACK");
    }
    const again = await TestClient.connect(t.port);
    const lgn = await again.request({ code: "LGN", user: "bob", password: "password-bob" });
    assert.equal(lgn.code === "ACK" && lgn.request === "LGN" && lgn.queued, 3);
    const texts = [];
    for (let i = 0; i < 3; i++) texts.push((await again.push("DLV")).text);
    assert.deepEqual(texts, ["one", "two", "three"]);
    await again.close();
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("a DLV never DAKed is pushed again at the next login; a DAKed one is not", async () => {
  const t = await startServer();
  const alice = await loggedIn(t.port, "alice");
  const bob = await loggedIn(t.port, "bob");
  try {
    await alice.request({ code: "MSG", to: "bob", text: "keep" });
    await alice.request({ code: "MSG", to: "bob", text: "acked" });
    await bob.push("DLV", (m) => m.text === "keep");
    const acked = await bob.push("DLV", (m) => m.text === "acked");
    bob.dak(acked.msg);
    // PNG after the DAK: records are handled in order, so the DAK has been taken in.
    await bob.request({ code: "PNG" });
    await bob.close();
    const again = await TestClient.connect(t.port);
    const lgn = await again.request({ code: "LGN", user: "bob", password: "password-bob" });
    assert.equal(lgn.code === "ACK" && lgn.request === "LGN" && lgn.queued, 1);
    assert.equal((await again.push("DLV")).text, "keep");
    await again.close();
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("a DAK sent twice before it is written is logged once", async () => {
  const t = await startServer();
  const alice = await loggedIn(t.port, "alice");
  const bob = await loggedIn(t.port, "bob");
  try {
    await alice.request({ code: "MSG", to: "bob", text: "once" });
    const dlv = await bob.push("DLV", (m) => m.text === "once");
    bob.dak(dlv.msg);
    bob.dak(dlv.msg);
    await bob.request({ code: "PNG" }); // both DAKs taken in
    await until(
      () => (t.server.core.state.log.queues.get("bob")?.size ?? 0) === 0,
      "the DAK to land",
    );
    bob.dak(dlv.msg); // after it landed: nothing queued, nothing written
    await bob.request({ code: "PNG" });
  } finally {
    await alice.close();
    await bob.close();
    await t.stop();
  }
  const delivered: string[] = [];
  await readEventLog(t.logPath, {
    onEvent: (e) => {
      if (e.type === "message_delivered") delivered.push(e.msg);
    },
  });
  assert.equal(delivered.length, 1);
  await t.dispose();
});

Deno.test("a MSG retried with the same cid is stored once and gets the first ACK again", async () => {
  const t = await startServer();
  const alice = await loggedIn(t.port, "alice");
  const bob = await loggedIn(t.port, "bob");
  try {
    // Two sends with one cid in flight together, then a third after both.
    const [a, b] = await Promise.all([
      alice.request({ code: "MSG", to: "bob", text: "once", cid: "c-1" }),
      alice.request({ code: "MSG", to: "bob", text: "once", cid: "c-1" }),
    ]);
    const c = await alice.request({ code: "MSG", to: "bob", text: "once", cid: "c-1" });
    const ids = [a, b, c].map((m) => m.code === "ACK" && m.request === "MSG" && [m.msg, m.ts]);
    assert.deepEqual(ids[1], ids[0]);
    assert.deepEqual(ids[2], ids[0]);
    const other = await alice.request({ code: "MSG", to: "bob", text: "twice", cid: "c-2" });
    assert.notDeepEqual(
      other.code === "ACK" && other.request === "MSG" && other.msg,
      ids[0] && ids[0][0],
    );
    await bob.push("DLV", (m) => m.text === "twice");
    assert.equal(bob.pushes.filter((m) => m.code === "DLV" && m.text === "once").length, 1);
    assert.equal(t.server.core.state.log.queues.get("bob")?.size, 2);
  } finally {
    await Promise.all([alice.close(), bob.close()]);
    await t.dispose();
  }
});

Deno.test("a second login of the same user ends the first session with BYE logged_in_elsewhere", async () => {
  const t = await startServer();
  const first = await loggedIn(t.port, "alice");
  try {
    const second = await loggedIn(t.port, "alice");
    assert.deepEqual(await first.push("BYE"), { code: "BYE", reason: "logged_in_elsewhere" });
    await first.waitClosed();
    assert.equal((await second.request({ code: "PNG" })).code, "ACK");
    assert.equal(t.server.core.state.online.get("alice") !== undefined, true);
    await second.close();
  } finally {
    await first.close();
    await t.dispose();
  }
});

Deno.test("LGO logs out: the user goes offline and requests need a login again", async () => {
  const t = await startServer();
  const alice = await loggedIn(t.port, "alice");
  try {
    assert.deepEqual(await alice.request({ code: "LGO" }), { code: "ACK", id: 3, request: "LGO" });
    assert.equal(t.server.core.state.online.has("alice"), false);
    const r = await alice.request({ code: "GUL" });
    assert.equal(r.code === "ERR" && r.error, "not_authenticated");
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("CPW refuses a wrong old password and then changes it", async () => {
  const t = await startServer();
  const alice = await loggedIn(t.port, "alice");
  try {
    const wrong = await alice.request({
      code: "CPW",
      old: "not the password",
      new: "brand new secret",
    });
    assert.equal(wrong.code === "ERR" && wrong.error, "invalid_credentials");
    const weak = await alice.request({ code: "CPW", old: "password-alice", new: "short" });
    assert.equal(weak.code === "ERR" && weak.error, "weak_password");
    assert.equal(
      (await alice.request({ code: "CPW", old: "password-alice", new: "brand new secret" })).code,
      "ACK",
    );
    const c = await TestClient.connect(t.port);
    const old = await c.request({ code: "LGN", user: "alice", password: "password-alice" });
    assert.equal(old.code === "ERR" && old.error, "invalid_credentials");
    assert.equal(
      (await c.request({ code: "LGN", user: "alice", password: "brand new secret" })).code,
      "ACK",
    );
    await c.close();
  } finally {
    await alice.close();
    await t.dispose();
  }
});

Deno.test("unknown codes and malformed JSON get ERR bad_request and the connection stays open", async () => {
  const t = await startServer();
  const c = await TestClient.connect(t.port);
  try {
    const unknown = await c.sendRaw('XYZ{"id":7}', { id: 7, code: "PNG" });
    assert.equal(unknown?.code === "ERR" && unknown.error, "bad_request");
    c.sendRaw("PNG{not json");
    await c.push("ERR", (m) => m.id === 0 && m.error === "bad_request");
    c.sendRaw(new Uint8Array([0xff, 0xfe, 0x00]));
    await c.push("ERR", (m) => m.id === 0);
    assert.equal((await c.request({ code: "PNG" })).code, "ACK");
  } finally {
    await c.close();
    await t.dispose();
  }
});
