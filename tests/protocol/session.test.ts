// A full handshake and records between the two sides, over an in-memory pipe and over a real
// loopback socket.
import assert from "node:assert/strict";
import { encodeMessage } from "../_wire.ts";
import { type CryptoEngine, KEX_GROUPS } from "../../crypto/mod.ts";
import { FrameReader, FrameWriter, type Transport } from "../../protocol/channel.ts";
import { HandshakeError, ProtocolError, RecordError } from "../../protocol/errors.ts";
import { encodeHandshakeError } from "../../protocol/handshake.ts";
import { clientHandshake, type RecordTrace, serverHandshake } from "../../protocol/session.ts";
import { testIdentity, testIdentityOn } from "../_vectors.ts";
import { pipe } from "../_pipe.ts";
import { testEachEngine } from "../_engines.ts";

const text = (s: string) => new TextEncoder().encode(s);
const read = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

async function converse(
  engine: CryptoEngine,
  clientSide: Transport,
  serverSide: Transport,
  groupIndex: number,
) {
  const [client, server] = await Promise.all([
    clientHandshake(clientSide, { crypto: engine, group: KEX_GROUPS[groupIndex]! }),
    serverHandshake(serverSide, { identity: testIdentityOn(engine), crypto: engine }),
  ]);
  assert.ok(server);
  assert.equal(client.result.fingerprint, testIdentity.fingerprint);
  assert.deepEqual(client.result.transcriptHash, server.transcriptHash);
  for (let i = 0; i < 5; i++) client.session.send(text(`PNG{"id":${i + 1}}`));
  for (let i = 0; i < 5; i++) {
    assert.equal(read(await server.session.receive()), `PNG{"id":${i + 1}}`);
  }
  server.session.send(text('ACK{"id":1}'));
  assert.equal(read(await client.session.receive()), 'ACK{"id":1}');
  assert.deepEqual(client.session.counts, { sent: 5, received: 1 });
  await client.session.writer.drained();
  return { client, server };
}

testEachEngine(
  "a full handshake and records flow both ways over an in-memory pipe, in every group",
  async (engine) => {
    for (let g = 0; g < KEX_GROUPS.length; g++) {
      const [a, b] = pipe();
      await converse(engine, a, b, g);
      a.close();
    }
  },
);

testEachEngine(
  "a full handshake and records flow both ways over a loopback TCP socket",
  async (engine) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = listener.accept();
    const clientConn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const serverConn = await accepted;
    try {
      const { server } = await converse(engine, clientConn, serverConn, 0);
      clientConn.close();
      assert.equal(await server.session.receive(), null);
    } finally {
      serverConn.close();
      listener.close();
    }
  },
);

testEachEngine("a replayed record is refused by the receiver", async (engine) => {
  const [a, b] = pipe();
  // Capture the client's bytes by wrapping its transport.
  const written: Uint8Array[] = [];
  const tap: Transport = {
    read: (p) => a.read(p),
    write: (p) => {
      written.push(p.slice());
      return a.write(p);
    },
    close: () => a.close(),
  };
  const [client, server] = await Promise.all([
    clientHandshake(tap, { crypto: engine, group: KEX_GROUPS[0]! }),
    serverHandshake(b, { identity: testIdentityOn(engine), crypto: engine }),
  ]);
  client.session.send(text('PNG{"id":1}'));
  await client.session.writer.drained();
  assert.equal(read(await server!.session.receive()), 'PNG{"id":1}');
  await a.write(written.at(-1)!); // the same record frame again
  await assert.rejects(server!.session.receive(), RecordError);
  a.close();
});

testEachEngine(
  "the server answers a bad ClientHello with an ERR frame and a HandshakeError",
  async (engine) => {
    const [a, b] = pipe();
    const writer = new FrameWriter(a);
    const reader = new FrameReader(a);
    writer.send(text("CHL\x01\x01\x00too short"));
    await assert.rejects(
      serverHandshake(b, { identity: testIdentityOn(engine), crypto: engine }),
      HandshakeError,
    );
    assert.equal(read(await reader.next())?.slice(0, 23), 'ERR{"code":"bad_hello",');
    a.close();
  },
);

testEachEngine(
  "the server refuses a ClientHello frame above 8192 bytes before reading it",
  async (engine) => {
    const [a, b] = pipe();
    const header = new Uint8Array([0, 0, 0x20, 0x01]); // 8193
    await a.write(header);
    await assert.rejects(
      serverHandshake(b, { identity: testIdentityOn(engine), crypto: engine }),
      (e) => e instanceof ProtocolError && e.code === "frame_too_large",
    );
    a.close();
  },
);

testEachEngine("the client surfaces a server's ERR and a server that hangs up", async (engine) => {
  const [a, b] = pipe();
  const serving = (async () => {
    const reader = new FrameReader(b);
    await reader.next();
    new FrameWriter(b).send(encodeHandshakeError("unsupported_group", "only ffdhe4096"));
  })();
  await assert.rejects(
    clientHandshake(a, { crypto: engine, group: KEX_GROUPS[0]! }),
    (e) => e instanceof HandshakeError && e.code === "unsupported_group",
  );
  await serving;
  const [c, d] = pipe();
  const hangup = (async () => {
    await new FrameReader(d).next();
    d.close();
  })();
  await assert.rejects(
    clientHandshake(c, { crypto: engine, group: KEX_GROUPS[0]! }),
    HandshakeError,
  );
  await hangup;
});

testEachEngine("checkPin can refuse the server before any record is sent", async (engine) => {
  const [a, b] = pipe();
  const serving = serverHandshake(b, { identity: testIdentityOn(engine), crypto: engine });
  await assert.rejects(
    clientHandshake(a, {
      crypto: engine,
      group: KEX_GROUPS[0]!,
      checkPin: (r) => {
        throw new Error(`pin mismatch ${r.fingerprint}`);
      },
    }),
    /pin mismatch SHA256:/,
  );
  const server = await serving;
  a.close();
  assert.equal(await server!.session.receive(), null);
});

testEachEngine("record traces name code, sizes, IV and seq in both directions", async (engine) => {
  const [a, b] = pipe();
  const events: RecordTrace[] = [];
  const [client, server] = await Promise.all([
    clientHandshake(a, {
      crypto: engine,
      group: KEX_GROUPS[0]!,
      recordTrace: (e) => events.push(e),
    }),
    serverHandshake(b, { identity: testIdentityOn(engine), crypto: engine }),
  ]);
  client.session.send(text('PNG{"id":7}'));
  await server!.session.receive();
  server!.session.send(text('ACK{"id":7}'));
  await client.session.receive();
  assert.deepEqual(
    events.map((e) => [e.direction, e.seq, e.code, e.plaintextBytes, e.ciphertextBytes]),
    [
      ["send", 0, "PNG", 11, 16],
      ["receive", 0, "ACK", 11, 16],
    ],
  );
  assert.equal(events[0]!.iv.length, 32);
  a.close();
});

testEachEngine(
  "sendMessage() sends what encodeMessage() encodes, short or too long for the shared scratch",
  async (engine) => {
    const [a, b] = pipe();
    const [client, server] = await Promise.all([
      clientHandshake(a, { crypto: engine, group: KEX_GROUPS[0]! }),
      serverHandshake(b, { identity: testIdentityOn(engine), crypto: engine }),
    ]);
    assert.ok(server);
    // 22,000 UTF-16 units could need 66,000 bytes: more than the scratch, so the slow path.
    for (const t of ["hi ✓", "é".repeat(10), "x".repeat(22_000)]) {
      const message = { code: "MSG" as const, id: 7, to: "bob", text: t };
      client.session.sendMessage(message);
      assert.deepEqual(await server.session.receive(), encodeMessage(message));
    }
    a.close();
  },
);
