// The client's side of the key-exchange groups (PROTOCOL §2.6): a server refusing the group gets
// a message saying what to try; the trace explains the hybrid; /key and /status name the group.
import assert from "node:assert/strict";
import { Connection, ConnectionError } from "../../client/connection.ts";
import { renderEvent } from "../../client/display.ts";
import { makeStyle } from "../../client/style.ts";
import { formatHandshakeTrace, handshakeView } from "../../client/trace.ts";
import { kexGroupByName, toHex } from "../../crypto/mod.ts";
import type { HandshakeTrace } from "../../protocol/handshake.ts";
import { clientHandshake, serverHandshake } from "../../protocol/session.ts";
import { HandshakeError } from "../../protocol/errors.ts";
import { pipe } from "../_pipe.ts";
import { testIdentity, testIdentityOn } from "../_vectors.ts";
import { portableCrypto } from "../_engines.ts";

const style = makeStyle(false);
const HYBRID = kexGroupByName("x25519mlkem768")!;

Deno.test("a server that refuses the group gets a message naming its groups and what to try", async () => {
  const refusals: Promise<unknown>[] = [];
  const connection = new Connection({
    servers: [{ host: "test", port: 1 }],
    group: HYBRID,
    crypto: portableCrypto,
    events: () => {},
    pin: () => Promise.resolve({ pin: "match", previous: [], knownHosts: "" }),
    dial: () => {
      const [client, server] = pipe();
      const groups = [kexGroupByName("ffdhe2048")!, kexGroupByName("x25519")!];
      refusals.push(
        serverHandshake(server, {
          identity: testIdentityOn(portableCrypto),
          crypto: portableCrypto,
          groups,
        }).catch((e) => e),
      );
      return Promise.resolve(client);
    },
  });
  const err = await connection.open().then(() => undefined, (e) => e);
  await connection.close("test over");
  assert.ok(err instanceof ConnectionError, String(err));
  assert.equal(err.code, "handshake");
  // Named, as a list of servers may hold several.
  assert.match(err.message, /^test:1 does not offer the X25519MLKEM768 key exchange/);
  assert.match(err.message, /this server offers ffdhe2048, x25519/);
  assert.match(err.message, /try --group ffdhe2048, .*--group x25519$/);
  const refused = await refusals[0];
  assert.ok(refused instanceof HandshakeError && refused.code === "unsupported_group");
});

Deno.test("the hybrid's trace shows ek, ciphertext, both secrets and why both, never a key", async () => {
  const events: HandshakeTrace[] = [];
  const [a, b] = pipe();
  const [client] = await Promise.all([
    clientHandshake(a, { crypto: portableCrypto, group: HYBRID, trace: (e) => events.push(e) }),
    serverHandshake(b, { identity: testIdentityOn(portableCrypto), crypto: portableCrypto }),
  ]);
  a.close();
  const text = events.flatMap((e) => formatHandshakeTrace(handshakeView(e), style, "h:1")).join(
    "\n",
  );
  assert.match(text, /ClientHello +1254 bytes · group X25519MLKEM768 \(0x11ec\)/);
  assert.match(text, /client_share +1216 bytes {2}= ek \|\| X25519\(a, 9\)/);
  assert.match(
    text,
    /ek +1184 bytes {2}[0-9a-f]{2}( [0-9a-f]{2}){7} … {2}ML-KEM-768 encapsulation key/,
  );
  assert.match(text, /X25519 part +32 bytes {2}[0-9a-f]{2}( [0-9a-f]{2}){7} …/);
  assert.match(text, /server_share +1120 bytes {2}= ct \|\| X25519\(b, 9\)/);
  assert.match(text, /ciphertext +1088 bytes .*ML-KEM\.Encaps\(ek\)/);
  assert.match(text, /shared secret Z +64 bytes = K \|\| X25519 secret \(never shown\)/);
  assert.match(text, /K +32 bytes = ML-KEM\.Decaps\(dk, ct\)/);
  assert.match(text, /why both +Z stays secret while either holds/);
  const keys = client.result.keys;
  for (const key of [keys.send.enc, keys.send.mac, keys.receive.enc, keys.receive.mac]) {
    assert.ok(!text.includes(toHex(key).slice(0, 16)), "no key appears, not even in part");
  }
  const json = JSON.stringify(events.map(handshakeView));
  assert.match(
    json,
    /"share_parts":\[\{"name":"ML-KEM-768 ek","bytes":1184,"head":"[0-9a-f]{16}"\}/,
  );
});

Deno.test("the x25519 trace says what its share and Z are", async () => {
  const events: HandshakeTrace[] = [];
  const [a, b] = pipe();
  await Promise.all([
    clientHandshake(a, {
      crypto: portableCrypto,
      group: kexGroupByName("x25519")!,
      trace: (e) => events.push(e),
    }),
    serverHandshake(b, { identity: testIdentityOn(portableCrypto), crypto: portableCrypto }),
  ]);
  a.close();
  const text = events.flatMap((e) => formatHandshakeTrace(handshakeView(e), style, "h:1")).join(
    "\n",
  );
  assert.match(text, /client_share +32 bytes {2}[0-9a-f ]{23} … {2}= X25519\(a, 9\)/);
  assert.match(text, /shared secret Z +32 bytes = X25519\(a, server_share\)/);
});

Deno.test("/key and /status name the key exchange", () => {
  const context = { style, me: "alice", now: 0 };
  const key = renderEvent({
    type: "ack",
    request: "GSR",
    id: 1,
    fingerprint: testIdentity.fingerprint,
    handshake_fingerprint: testIdentity.fingerprint,
    handshake_group: "x25519mlkem768",
    pinned: [testIdentity.fingerprint],
    matches_pin: true,
  }, context).join("\n");
  assert.match(key, /key exchange x25519mlkem768/);
  const status = renderEvent({
    type: "status",
    state: "open",
    host: "127.0.0.1",
    port: 5002,
    servers: ["127.0.0.1:5002"],
    group: "x25519mlkem768",
    fingerprint: null,
    user: null,
    trace: false,
    known_hosts: "/tmp/kh",
    records: null,
    messages_received: 0,
    user_key: null,
    require_sealed: false,
  }, context).join("\n");
  assert.match(status, /server +127\.0\.0\.1:5002 · open · x25519mlkem768/);
});
