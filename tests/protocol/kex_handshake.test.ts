// The x25519 and X25519MLKEM768 handshakes (PROTOCOL §2.6) against kex.json, both directions and
// byte for byte, with every private value injected; and every invalid share refused by the side
// the vectors name. On both engines: they share X25519 and ML-KEM but differ in RSA and hashing.
import assert from "node:assert/strict";
import {
  concat,
  type CryptoEngine,
  fromHex,
  type KexGroup,
  kexGroupById,
  toHex,
} from "../../crypto/mod.ts";
import {
  ClientHandshake,
  encodeServerHello,
  encodeServerHelloUnsigned,
  type HandshakeTrace,
  signedMessage,
  transcriptHash,
} from "../../protocol/handshake.ts";
import { HandshakeError } from "../../protocol/errors.ts";
import { type KexHandshakeVector, kexVectors, testIdentity } from "../_vectors.ts";
import { testEachEngine } from "../_engines.ts";
import {
  assertServerRefusesShare,
  assertTraceHidesSecrets,
  assertVectorKeys,
  serverOn,
} from "./_handshake.ts";

const X25519 = kexGroupById(0x001d)!;
const HYBRID = kexGroupById(0x11ec)!;

function vectorClient(
  v: KexHandshakeVector,
  engine: CryptoEngine,
  trace?: (e: HandshakeTrace) => void,
) {
  return new ClientHandshake({
    crypto: engine,
    group: kexGroupById(v.group)!,
    random: fromHex(v.client_random),
    x25519PrivateKey: fromHex(v.client_x25519_private),
    mlkemSeed: v.mlkem_d === undefined ? undefined : fromHex(v.mlkem_d + v.mlkem_z),
    trace,
  });
}

function vectorServer(v: KexHandshakeVector, engine: CryptoEngine) {
  return serverOn(engine, {
    random: fromHex(v.server_random),
    x25519PrivateKey: fromHex(v.server_x25519_private),
    mlkemMessage: v.mlkem_m === undefined ? undefined : fromHex(v.mlkem_m),
  });
}

/** A ServerHello carrying `share`, signed with the test key: only the share can be refused. */
function signedServerHello(clientHello: Uint8Array, group: KexGroup, share: Uint8Array) {
  const unsigned = encodeServerHelloUnsigned({
    version: 1,
    groupId: group.id,
    random: new Uint8Array(32),
    share,
    serverKey: testIdentity.spkiDer,
  });
  const hash = transcriptHash(clientHello, unsigned);
  return encodeServerHello(unsigned, testIdentity.sign(signedMessage(hash)));
}

Deno.test("the vectors hold one handshake in each new group, with the sizes of §2.6", () => {
  assert.deepEqual(kexVectors.handshakes.map((v) => v.group_name), ["x25519", "X25519MLKEM768"]);
  assert.deepEqual(
    [X25519, HYBRID].map((g) => [g.clientShareBytes, g.serverShareBytes, g.secretBytes]),
    [[32, 32, 32], [1216, 1120, 64]],
  );
  // §2.6: the hybrid's ClientHello (1254 bytes) fits the pre-handshake frame limit.
  assert.equal(fromHex(kexVectors.handshakes[1]!.client_hello).length, 1254);
});

testEachEngine("the client's ClientHello equals each kex vector's byte for byte", (engine) => {
  for (const v of kexVectors.handshakes) {
    assert.equal(toHex(vectorClient(v, engine).hello()), v.client_hello, v.group_name);
  }
});

testEachEngine(
  "the server answers each kex vector's ClientHello with its unsigned ServerHello and keys",
  (engine) => {
    for (const v of kexVectors.handshakes) {
      const out = vectorServer(v, engine).respond(fromHex(v.client_hello));
      assert.ok(out.ok, v.group_name);
      const reply = toHex(out.reply);
      assert.ok(reply.startsWith(v.server_hello_unsigned), v.group_name);
      assert.equal(reply.length, v.server_hello_unsigned.length + 4 + 512);
      assertVectorKeys(out, v, "server");
      // The fresh signature verifies on the client, like the vector's example one below.
      const client = vectorClient(v, engine);
      client.hello();
      assert.equal(toHex(client.finish(out.reply).keys.send.enc), v.c2s_enc);
    }
  },
);

testEachEngine(
  "the client accepts each kex vector's ServerHello (example signature) and derives its keys",
  (engine) => {
    for (const v of kexVectors.handshakes) {
      const client = vectorClient(v, engine);
      client.hello();
      const result = client.finish(fromHex(v.server_hello));
      assertVectorKeys(result, v, "client");
      assert.equal(result.group.name, v.group_name.toLowerCase());
      assert.equal(client.state, "done");
    }
  },
);

testEachEngine(
  "the server answers every client share the vectors refuse with ERR bad_hello",
  (engine) => {
    const refused = kexVectors.invalid_shares.filter((s) => s.side !== "server");
    assert.equal(refused.length, 10);
    for (const bad of refused) assertServerRefusesShare(engine, bad.group, bad.share, bad.why);
  },
);

testEachEngine(
  "the client aborts on every server share the vectors refuse, even under a valid signature",
  (engine) => {
    const refused = kexVectors.invalid_shares.filter((s) => s.side !== "client");
    assert.equal(refused.length, 6);
    for (const bad of refused) {
      const v = kexVectors.handshakes.find((h) => h.group === bad.group)!;
      const group = kexGroupById(bad.group)!;
      const client = vectorClient(v, engine);
      const hello = client.hello();
      const reply = signedServerHello(hello, group, fromHex(bad.share));
      assert.throws(
        () => client.finish(reply),
        (e) => e instanceof HandshakeError && e.code === "bad_server_hello",
        bad.why,
      );
    }
  },
);

testEachEngine(
  "the client aborts on a hybrid server share whose X25519 part is a small-order point",
  (engine) => {
    // The vectors' small-order points are client shares of the hybrid; here they come from the
    // server behind a valid ML-KEM ciphertext and a valid signature.
    const v = kexVectors.handshakes[1]!;
    const ct = fromHex(v.mlkem_ciphertext!);
    const points = kexVectors.invalid_shares.filter((s) =>
      s.group === 0x001d && s.share.length === 64
    );
    assert.equal(points.length, 3);
    for (const point of points) {
      const client = vectorClient(v, engine);
      const reply = signedServerHello(client.hello(), HYBRID, concat(ct, fromHex(point.share)));
      assert.throws(
        () => client.finish(reply),
        (e) => e instanceof HandshakeError && e.code === "bad_server_hello",
        point.why,
      );
    }
  },
);

testEachEngine(
  "a wrong ML-KEM ciphertext yields other keys, not an error (implicit rejection)",
  (engine) => {
    const v = kexVectors.handshakes[1]!;
    const share = fromHex(v.server_share);
    share[0]! ^= 1;
    const client = vectorClient(v, engine);
    const reply = signedServerHello(client.hello(), HYBRID, share);
    const result = client.finish(reply);
    assert.notEqual(toHex(result.keys.send.enc), v.c2s_enc);
  },
);

testEachEngine("the hybrid's trace shows each step and never a secret", (engine) => {
  const v = kexVectors.handshakes[1]!;
  const events: HandshakeTrace[] = [];
  const client = vectorClient(v, engine, (e) => events.push(e));
  client.hello();
  client.finish(fromHex(v.server_hello));
  assertTraceHidesSecrets(events, [
    v.mlkem_shared_secret!,
    v.x25519_shared_secret!,
    v.mlkem_decapsulation_key!.slice(0, 64),
    v.prk,
    v.c2s_enc,
    v.s2c_mac,
  ]);
});
