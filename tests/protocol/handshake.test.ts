// The handshake state machines (PROTOCOL §2) against handshake.json, both directions,
// and every check of §2.4 refusing what it must.
import assert from "node:assert/strict";
import { type CryptoEngine, fromHex, KEX_GROUPS, kexGroupById, toHex } from "../../crypto/mod.ts";
import {
  ClientHandshake,
  decodeClientHello,
  decodeHandshakeError,
  encodeHandshakeError,
  type HandshakeTrace,
} from "../../protocol/handshake.ts";
import { HandshakeError } from "../../protocol/errors.ts";
import { type HandshakeVector, handshakeVectors } from "../_vectors.ts";
import { testEachEngine } from "../_engines.ts";
import {
  assertServerRefusesShare,
  assertTraceHidesSecrets,
  assertVectorKeys,
  serverOn,
} from "./_handshake.ts";

function vectorClient(
  engine: CryptoEngine,
  v: HandshakeVector,
  trace?: (e: HandshakeTrace) => void,
) {
  return new ClientHandshake({
    crypto: engine,
    group: kexGroupById(v.group)!,
    random: fromHex(v.client_random),
    privateExponent: fromHex(v.client_private_hex),
    trace,
  });
}

function vectorServer(engine: CryptoEngine, v: HandshakeVector) {
  return serverOn(engine, {
    random: fromHex(v.server_random),
    privateExponent: fromHex(v.server_private_hex),
  });
}

testEachEngine("the client's ClientHello equals every vector's byte for byte", (engine) => {
  for (const v of handshakeVectors.handshakes) {
    assert.equal(toHex(vectorClient(engine, v).hello()), v.client_hello);
  }
});

testEachEngine(
  "the server answers every vector's ClientHello with its unsigned ServerHello and keys",
  (engine) => {
    for (const v of handshakeVectors.handshakes) {
      const out = vectorServer(engine, v).respond(fromHex(v.client_hello));
      assert.ok(out.ok);
      const reply = toHex(out.reply);
      assert.ok(reply.startsWith(v.server_hello_unsigned), v.group_name);
      // The rest is sig_len (u16) || a fresh PSS signature of the modulus' size.
      assert.equal(
        reply.slice(v.server_hello_unsigned.length, v.server_hello_unsigned.length + 4),
        "0100",
      );
      assert.equal(reply.length, v.server_hello_unsigned.length + 4 + 512);
      assertVectorKeys(out, v, "server");
    }
  },
);

testEachEngine(
  "the client accepts every vector's ServerHello and derives the vector's keys",
  (engine) => {
    for (const v of handshakeVectors.handshakes) {
      const client = vectorClient(engine, v);
      client.hello();
      const result = client.finish(fromHex(v.server_hello));
      assertVectorKeys(result, v, "client");
      assert.equal(result.fingerprint, v.server_fingerprint);
      assert.equal(toHex(result.serverKey), v.server_spki_der);
      assert.equal(client.state, "done");
    }
  },
);

testEachEngine("fresh handshakes in all five groups agree on the keys", (engine) => {
  for (const group of KEX_GROUPS) {
    const client = new ClientHandshake({ crypto: engine, group });
    const out = serverOn(engine).respond(client.hello());
    assert.ok(out.ok);
    const result = client.finish(out.reply);
    assert.deepEqual(result.keys.send, out.keys.receive);
    assert.deepEqual(result.keys.receive, out.keys.send);
  }
});

testEachEngine("the server answers each invalid share vector with ERR bad_hello", (engine) => {
  for (const v of handshakeVectors.invalid_shares) {
    assertServerRefusesShare(engine, kexGroupById(v.group)!.id, v.share, v.why);
  }
});

testEachEngine("the client refuses a ServerHello carrying each invalid share", (engine) => {
  const v = handshakeVectors.handshakes[0]!;
  const shareAt = 6 + 32;
  for (const bad of handshakeVectors.invalid_shares) {
    if (fromHex(bad.share).length !== 256) continue; // length changes are covered by the framing test below
    const body = fromHex(v.server_hello);
    body.set(fromHex(bad.share), shareAt);
    const client = vectorClient(engine, v);
    client.hello();
    assert.throws(() => client.finish(body), HandshakeError, bad.why);
  }
});

testEachEngine(
  "the server answers a wrong version with unsupported_version and an unknown group with unsupported_group",
  (engine) => {
    const v = handshakeVectors.handshakes[0]!;
    const wrongVersion = fromHex(v.client_hello);
    wrongVersion[3] = 2;
    const out1 = serverOn(engine).respond(wrongVersion);
    assert.equal(decodeHandshakeError(out1.reply!)?.code, "unsupported_version");
    const wrongGroup = fromHex(v.client_hello);
    wrongGroup[5] = 0x03; // 0x0103 is ffdhe6144, not offered
    const out2 = serverOn(engine).respond(wrongGroup);
    assert.equal(decodeHandshakeError(out2.reply!)?.code, "unsupported_group");
    const limited = serverOn(engine, { groups: [KEX_GROUPS[1]!] });
    assert.equal(
      decodeHandshakeError(limited.respond(fromHex(v.client_hello)).reply!)?.code,
      "unsupported_group",
    );
  },
);

testEachEngine(
  "the server answers every truncation and extension of a ClientHello with ERR, never a throw",
  (engine) => {
    const hello = fromHex(handshakeVectors.handshakes[0]!.client_hello);
    for (let n = 0; n < hello.length; n++) {
      const out = serverOn(engine).respond(hello.subarray(0, n));
      assert.equal(out.ok, false);
      assert.ok(decodeHandshakeError(out.reply!), `truncated at ${n}`);
    }
    const longer = new Uint8Array(hello.length + 1);
    longer.set(hello);
    assert.equal(
      decodeHandshakeError(serverOn(engine).respond(longer).reply!)
        ?.code,
      "bad_hello",
    );
    assert.equal(decodeClientHello(hello).share.length, 256);
  },
);

testEachEngine("the client refuses a ServerHello cut or extended at any length", (engine) => {
  const v = handshakeVectors.handshakes[0]!;
  const body = fromHex(v.server_hello);
  const lengths = [
    0,
    3,
    5,
    6,
    37,
    38 + 255,
    38 + 256,
    38 + 257,
    38 + 258 + 293,
    body.length - 1,
    body.length + 1,
  ];
  for (const n of lengths) {
    const cut = new Uint8Array(n);
    cut.set(body.subarray(0, Math.min(n, body.length)));
    const client = vectorClient(engine, v);
    client.hello();
    assert.throws(() => client.finish(cut), HandshakeError, `length ${n}`);
  }
});

testEachEngine(
  "the client refuses a ServerHello with any single bit flipped in its signed part or signature",
  (engine) => {
    const v = handshakeVectors.handshakes[0]!;
    const body = fromHex(v.server_hello);
    // Version, group, random, share, key and signature bytes; every one is covered by a check.
    for (const at of [3, 5, 6, 40, 300, 320, 400, body.length - 1]) {
      const bad = body.slice();
      bad[at]! ^= 0x01;
      const client = vectorClient(engine, v);
      client.hello();
      assert.throws(() => client.finish(bad), HandshakeError, `byte ${at}`);
    }
  },
);

testEachEngine(
  "the client reports a server's ERR frame as a HandshakeError with its code",
  (engine) => {
    const client = new ClientHandshake({ crypto: engine, group: KEX_GROUPS[0]! });
    client.hello();
    assert.throws(
      () => client.finish(encodeHandshakeError("unsupported_group", "nope")),
      (e) => e instanceof HandshakeError && e.code === "unsupported_group",
    );
    assert.deepEqual(decodeHandshakeError(new TextEncoder().encode("ERR{not json")), {
      code: "unknown",
      message: "unreadable ERR frame",
    });
  },
);

testEachEngine("each side refuses to run out of order", (engine) => {
  const client = new ClientHandshake({ crypto: engine, group: KEX_GROUPS[0]! });
  assert.throws(() => client.finish(new Uint8Array(1)), TypeError);
  client.hello();
  assert.throws(() => client.hello(), TypeError);
  const server = serverOn(engine);
  server.respond(new Uint8Array(1));
  assert.throws(() => server.respond(new Uint8Array(1)), TypeError);
});

testEachEngine("the trace shows each step and short key ids, never a key", (engine) => {
  const v = handshakeVectors.handshakes[0]!;
  const events: HandshakeTrace[] = [];
  const client = vectorClient(engine, v, (e) => events.push(e));
  client.hello();
  client.finish(fromHex(v.server_hello));
  assertTraceHidesSecrets(events, [
    v.c2s_enc,
    v.c2s_mac,
    v.s2c_enc,
    v.s2c_mac,
    v.shared_secret,
    v.prk,
  ]);
});
