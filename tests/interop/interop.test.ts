// Interoperation with an independent implementation of §2.6: tests/interop/hsp_peer.py, written
// from PROTOCOL-v1.md alone on pyca/cryptography (OpenSSL's X25519, ML-KEM-768, RSA-PSS, HKDF,
// AES and HMAC, none of our code or libraries). As a client against the real server, and as a
// server for the real client library, in x25519 and X25519MLKEM768, over loopback.
import assert from "node:assert/strict";
import { kexGroupByName, toHex } from "../../crypto/mod.ts";
import { clientHandshake } from "../../protocol/session.ts";
import { startServer } from "../server/_harness.ts";
import { testIdentity } from "../_vectors.ts";
import { portableCrypto } from "../_engines.ts";
import { endPeer, lineReader, missingPython } from "./_python.ts";

const PEER = new URL("./hsp_peer.py", import.meta.url).pathname;
const KEY = new URL("../vectors/server_test_key.pem", import.meta.url).pathname;
const GROUPS = ["x25519", "x25519mlkem768"] as const;
/** The peer's whole run; past this it hangs. */
const PEER_TIMEOUT_MS = 30_000;

const missing = missingPython(
  "from cryptography.hazmat.primitives.asymmetric import mlkem, x25519",
  "pyca/cryptography with ML-KEM (version 46 or later)",
);
if (missing) console.error(`interop tests ignored: ${missing}`);

for (const name of GROUPS) {
  Deno.test({
    name: `an independent ${name} client handshakes with the server and gets its PNG answered`,
    ignore: missing !== "",
    fn: async () => {
      const t = await startServer();
      try {
        const { code, stdout, stderr } = await new Deno.Command("python3", {
          args: [PEER, "client", String(t.port), name],
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(PEER_TIMEOUT_MS),
        }).output();
        const out = new TextDecoder().decode(stdout);
        assert.equal(code, 0, `${out}${new TextDecoder().decode(stderr)}`);
        const result = JSON.parse(out);
        assert.equal(result.group, name);
        assert.equal(result.fingerprint, testIdentity.fingerprint);
        assert.match(result.answer, /^ACK\{"id":7/);
      } finally {
        await t.dispose();
      }
    },
  });

  Deno.test({
    name: `the client library handshakes in ${name} with an independent server and reads its ACK`,
    ignore: missing !== "",
    fn: async () => {
      const peer = new Deno.Command("python3", {
        args: [PEER, "server", KEY, name],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(PEER_TIMEOUT_MS),
      }).spawn();
      const lines = lineReader(peer.stdout);
      const stderr = new Response(peer.stderr).text();
      try {
        const first = await lines.next();
        const port = Number(first.match(/^port (\d+)$/)?.[1]);
        if (!(port > 0)) assert.fail(`the peer said ${JSON.stringify(first)}: ${await stderr}`);
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          const { session, result } = await clientHandshake(conn, {
            group: kexGroupByName(name)!,
            crypto: portableCrypto,
          });
          assert.equal(result.fingerprint, testIdentity.fingerprint);
          session.send(new TextEncoder().encode('PNG{"id":42}'));
          const answer = await session.receive();
          assert.equal(new TextDecoder().decode(answer!), 'ACK{"id":42}');
          const report = JSON.parse(await lines.next());
          assert.equal(report.transcript_hash, toHex(result.transcriptHash));
          session.dispose();
        } finally {
          conn.close();
        }
        const status = await peer.status;
        assert.equal(status.code, 0, await stderr);
      } finally {
        await endPeer(peer, lines, stderr);
      }
    },
  });
}
