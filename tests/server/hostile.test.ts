// Hostile input: nothing a client sends crashes the server or hurts other clients.
import assert from "node:assert/strict";
import { decodeHandshakeError } from "../../protocol/handshake.ts";
import { helloFrameWithShare, holdingSession } from "../../tools/raw_conn.ts";
import { handshakeVectors, kexVectors } from "../_vectors.ts";
import { portableCrypto } from "../_engines.ts";
import { Prng } from "../../tools/prng.ts";
import {
  loggedIn,
  readUntilClosed,
  startServer,
  TestClient,
  type TestServer,
  until,
} from "./_harness.ts";

/** A healthy client still gets through: the server is up and serving others. */
async function stillServes(t: TestServer, from = "127.0.0.1"): Promise<void> {
  const c = await TestClient.connect(t.port, 0, from);
  assert.equal((await c.request({ code: "PNG" })).code, "ACK");
  await c.close();
}

Deno.test("random garbage before the handshake closes that connection only", async () => {
  const t = await startServer();
  const random = new Prng(7);
  try {
    for (let i = 0; i < 20; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
      const junk = random.bytes(random.range(1, 3000));
      await conn.write(junk).catch(() => {});
      const reply = await readUntilClosed(conn);
      // Either dropped silently (bad frame) or told ERR bad_hello (a frame that is no ClientHello).
      assert.ok(reply.length === 0 || decodeHandshakeError(reply.subarray(4)) !== undefined);
    }
    await stillServes(t);
  } finally {
    await t.dispose();
  }
});

Deno.test("a huge length prefix is refused after four bytes", async () => {
  const t = await startServer();
  try {
    for (const header of [[0xff, 0xff, 0xff, 0xff], [0, 0, 0, 0], [0, 0x10, 0, 1]]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
      await conn.write(new Uint8Array(header));
      assert.equal((await readUntilClosed(conn)).length, 0);
    }
    await stillServes(t);
  } finally {
    await t.dispose();
  }
});

Deno.test("every invalid share vector gets ERR bad_hello and a close", async () => {
  const t = await startServer();
  try {
    // kex.json's "server" shares are the client's to refuse (tests/protocol/kex_handshake.test.ts).
    const kex = kexVectors.invalid_shares.filter((v) => v.side !== "server");
    for (const v of [...handshakeVectors.invalid_shares, ...kex]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
      await conn.write(helloFrameWithShare(v.group, v.share));
      const reply = await readUntilClosed(conn);
      assert.equal(decodeHandshakeError(reply.subarray(4))?.code, "bad_hello", v.why);
    }
    await stillServes(t);
  } finally {
    await t.dispose();
  }
});

const png = (id: number) => new TextEncoder().encode(`PNG{"id":${id}}`);

/** Handshakes over a transport that can hold back the client's records instead of sending them. */
async function holding(t: TestServer) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  return { conn, ...(await holdingSession(conn, portableCrypto)) };
}

Deno.test("a record with one bit flipped closes the connection with nothing sent back", async () => {
  const t = await startServer();
  try {
    for (const at of [4 + 3, 4 + 20, 4 + 40]) { // in the IV, the ciphertext, the MAC
      const { conn, held, session } = await holding(t);
      session.send(png(1));
      await session.writer.drained();
      const frame = held[0]!;
      frame[at]! ^= 0x04;
      await conn.write(frame);
      assert.equal((await readUntilClosed(conn)).length, 0, `bit flipped at ${at}`);
    }
    assert.ok(t.lines.some((l) => l.includes('reason="bad record"')));
    await stillServes(t);
  } finally {
    await t.dispose();
  }
});

Deno.test("a replayed record closes the connection with nothing sent back", async () => {
  const t = await startServer();
  try {
    const { conn, held, session } = await holding(t);
    session.send(png(1));
    await session.writer.drained();
    await conn.write(held[0]!);
    assert.ok((await session.receive()) !== null); // the ACK
    await conn.write(held[0]!); // the same record again: seq 1 expected, MAC made for 0
    assert.equal((await readUntilClosed(conn)).length, 0);
    await stillServes(t);
  } finally {
    await t.dispose();
  }
});

Deno.test("reordered records close the connection", async () => {
  const t = await startServer();
  try {
    const { conn, held, session } = await holding(t);
    session.send(png(1));
    await session.writer.drained();
    session.send(png(2));
    await session.writer.drained();
    await conn.write(held[1]!);
    await conn.write(held[0]!);
    assert.equal((await readUntilClosed(conn)).length, 0);
    await stillServes(t);
  } finally {
    await t.dispose();
  }
});

Deno.test("records flooded after the handshake are all answered, in any order, and the server stays up", async () => {
  const t = await startServer();
  const c = await TestClient.connect(t.port);
  try {
    const replies = await Promise.all(
      Array.from({ length: 2000 }, () => c.request({ code: "PNG" })),
    );
    assert.ok(replies.every((r) => r.code === "ACK"));
    const alice = await loggedIn(t.port, "alice");
    const flood = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) => alice.request({ code: "MSG", to: "alice", text: `flood ${i}` }),
      ),
    );
    assert.ok(flood.some((r) => r.code === "ERR" && r.error === "rate_limited"));
    await alice.close();
    await stillServes(t);
  } finally {
    await c.close();
    await t.dispose();
  }
});

Deno.test("a connection flood from one address is capped and the server keeps serving", async () => {
  const t = await startServer({ limits: { max_connections_per_address: 64 } });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: t.port }));
    }
    // 64 stay in handshake; the rest are closed by the server at once.
    const extra = conns.slice(64);
    const closed = await Promise.all(extra.map((c) => readUntilClosed(c).then(() => true)));
    assert.equal(closed.length, 36);
    assert.ok(t.server.connectionCount <= 64);
    for (const c of conns.slice(0, 64)) c.close();
    await until(() => t.server.connectionCount === 0, "the flood's connections to be counted out");
    // The flood spent its address's handshake budget (§5 rate); others are served at once.
    await stillServes(t, "127.0.0.2");
  } finally {
    await t.dispose();
  }
});
