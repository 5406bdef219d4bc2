// One key-exchange interface for every group (crypto/kex.ts): the group table of §2.1/§2.6, the
// hybrid's parts against kex.json, agreement in every group, and refusals as KexError.
import assert from "node:assert/strict";
import {
  fromHex,
  KEX_GROUPS,
  KexError,
  kexGroupById,
  kexGroupByName,
  respondKex,
  startKex,
  toHex,
} from "../../crypto/mod.ts";
import { kexVectors } from "../_vectors.ts";
import { testEachEngine } from "../_engines.ts";

Deno.test("the five groups of §2.1 with their TLS ids and share sizes", () => {
  assert.deepEqual(
    KEX_GROUPS.map((g) => [g.name, g.id, g.clientShareBytes, g.serverShareBytes, g.secretBytes]),
    [
      ["ffdhe2048", 0x0100, 256, 256, 256],
      ["ffdhe3072", 0x0101, 384, 384, 384],
      ["ffdhe4096", 0x0102, 512, 512, 512],
      ["x25519", 0x001d, 32, 32, 32],
      ["x25519mlkem768", 0x11ec, 1216, 1120, 64],
    ],
  );
  assert.equal(kexGroupByName("X25519MLKEM768"), kexGroupById(0x11ec));
  assert.equal(kexGroupByName("ffdhe6144"), undefined);
  assert.equal(kexGroupById(0x0017), undefined); // secp256r1: not an HSP/1 group
});

testEachEngine(
  "the hybrid's shares and Z are made of kex.json's parts, ML-KEM part first",
  (engine) => {
    const v = kexVectors.handshakes[1]!;
    const group = kexGroupById(v.group)!;
    const client = startKex(engine, group, {
      mlkemSeed: fromHex(v.mlkem_d! + v.mlkem_z!),
      x25519PrivateKey: fromHex(v.client_x25519_private),
    });
    assert.equal(toHex(client.share), v.client_share);
    assert.ok(v.client_share.startsWith(v.mlkem_encapsulation_key!));
    const server = respondKex(engine, group, client.share, {
      mlkemMessage: fromHex(v.mlkem_m!),
      x25519PrivateKey: fromHex(v.server_x25519_private),
    });
    assert.equal(toHex(server.share), v.server_share);
    assert.ok(v.server_share.startsWith(v.mlkem_ciphertext!));
    assert.equal(toHex(server.secret), v.shared_secret);
    assert.equal(v.shared_secret, v.mlkem_shared_secret! + v.x25519_shared_secret!);
    assert.equal(toHex(client.finish(server.share)), v.shared_secret);
  },
);

testEachEngine("x25519's Z matches kex.json from both sides", (engine) => {
  const v = kexVectors.handshakes[0]!;
  const group = kexGroupById(v.group)!;
  const client = startKex(engine, group, { x25519PrivateKey: fromHex(v.client_x25519_private) });
  assert.equal(toHex(client.share), v.client_share);
  const server = respondKex(engine, group, client.share, {
    x25519PrivateKey: fromHex(v.server_x25519_private),
  });
  assert.equal(toHex(server.share), v.server_share);
  assert.equal(toHex(server.secret), v.shared_secret);
  assert.equal(toHex(client.finish(server.share)), v.shared_secret);
});

testEachEngine("client and server agree on Z in every group", (engine) => {
  for (const group of KEX_GROUPS) {
    const client = startKex(engine, group);
    assert.equal(client.share.length, group.clientShareBytes, group.name);
    const server = respondKex(engine, group, client.share);
    assert.equal(server.share.length, group.serverShareBytes, group.name);
    assert.equal(server.secret.length, group.secretBytes, group.name);
    assert.deepEqual(client.finish(server.share), server.secret, group.name);
  }
});

testEachEngine(
  "a share one byte short or long is refused as KexError in every group, on each side",
  (engine) => {
    for (const group of KEX_GROUPS) {
      const client = startKex(engine, group);
      for (const delta of [-1, 1]) {
        const share = new Uint8Array(group.clientShareBytes + delta).fill(9);
        assert.throws(
          () => respondKex(engine, group, share),
          KexError,
          `${group.name} client ${delta}`,
        );
        const reply = new Uint8Array(group.serverShareBytes + delta).fill(9);
        assert.throws(
          () => startKex(engine, group).finish(reply),
          KexError,
          `${group.name} server ${delta}`,
        );
      }
      client.dispose();
    }
  },
);

testEachEngine(
  "the ML-KEM decapsulation key is wiped once the client finishes, even on refusal",
  (engine) => {
    const group = kexGroupByName("x25519mlkem768")!;
    const fixed = new Uint8Array(64).fill(7);
    const client = startKex(engine, group, { mlkemSeed: fixed });
    assert.throws(() => client.finish(new Uint8Array(group.serverShareBytes)), KexError);
    // Finishing again with a good share: a wiped dk fails its hash check, so nothing is derived.
    const server = respondKex(engine, group, client.share);
    assert.throws(() => client.finish(server.share), KexError);
  },
);
