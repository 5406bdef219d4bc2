// What the handshake tests of every group family share (handshake.test.ts for the finite-field
// groups, kex_handshake.test.ts for x25519 and X25519MLKEM768): the same checks on other vectors.
import assert from "node:assert/strict";
import { type CryptoEngine, fromHex, toHex } from "../../crypto/mod.ts";
import {
  decodeHandshakeError,
  encodeClientHello,
  type HandshakeTrace,
  ServerHandshake,
  type ServerHandshakeOptions,
  type SessionKeys,
} from "../../protocol/handshake.ts";
import { type HandshakeVectorCommon, testIdentityOn } from "../_vectors.ts";

/** A server on `engine` with the vectors' identity. */
export function serverOn(
  engine: CryptoEngine,
  options: Partial<ServerHandshakeOptions> = {},
): ServerHandshake {
  return new ServerHandshake({ identity: testIdentityOn(engine), crypto: engine, ...options });
}

/** Asserts that a server answers a ClientHello in `groupId` carrying `share` with ERR bad_hello. */
export function assertServerRefusesShare(
  engine: CryptoEngine,
  groupId: number,
  share: string,
  why: string,
): void {
  const hello = encodeClientHello({
    version: 1,
    groupId,
    random: new Uint8Array(32),
    share: fromHex(share),
  });
  const out = serverOn(engine).respond(hello);
  assert.equal(out.ok, false, why);
  assert.equal(decodeHandshakeError(out.reply!)?.code, "bad_hello", why);
}

/**
 * Asserts that a client's trace of a whole handshake shows each step in order, and none of
 * `secrets` (hex; their first 8 bytes are looked for).
 */
export function assertTraceHidesSecrets(events: HandshakeTrace[], secrets: string[]): void {
  assert.deepEqual(events.map((e) => e.step), [
    "client_hello",
    "server_hello",
    "server_key",
    "signature",
    "shared_secret",
    "transcript_hash",
    "keys",
  ]);
  const text = JSON.stringify(events, (_k, x) => (x instanceof Uint8Array ? toHex(x) : x));
  for (const secret of secrets) {
    assert.ok(!text.includes(secret.slice(0, 16)), "a secret leaked into the trace");
  }
}

/**
 * Asserts that a handshake's outcome on `side` holds the vector's transcript hash and traffic
 * keys: the client seals with c2s and opens with s2c, the server the other way round.
 */
export function assertVectorKeys(
  outcome: { transcriptHash: Uint8Array; keys: SessionKeys },
  v: HandshakeVectorCommon,
  side: "client" | "server",
): void {
  const [c2s, s2c] = side === "client"
    ? [outcome.keys.send, outcome.keys.receive]
    : [outcome.keys.receive, outcome.keys.send];
  assert.equal(toHex(outcome.transcriptHash), v.transcript_hash);
  assert.equal(toHex(c2s.enc), v.c2s_enc);
  assert.equal(toHex(c2s.mac), v.c2s_mac);
  assert.equal(toHex(s2c.enc), v.s2c_enc);
  assert.equal(toHex(s2c.mac), v.s2c_mac);
}
