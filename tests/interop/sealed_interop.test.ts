// Interoperation of sealed messages (§8) with an independent client: tests/interop/
// sealed_peer.py, written from PROTOCOL-v1.md alone on pyca/cryptography, against the real
// server: keys at sign-up and with KEY, GPK, sealed sending and opening with every check, a
// rotation, the server's refusals; then a sealed exchange with this repository's own library
// (protocol/sealed.ts) both ways.
import assert from "node:assert/strict";
import {
  checkUserKey,
  fingerprintOfKid,
  fromBase64,
  type RsaPublicKey,
  toBase64,
} from "../../crypto/mod.ts";
import { kidOf, open, seal } from "../../protocol/sealed.ts";
import { startServer, TestClient } from "../server/_harness.ts";
import { portableCrypto } from "../_engines.ts";
import { userTestKeyDer } from "../_vectors.ts";
import { endPeer, lineReader, missingPython } from "./_python.ts";

const PEER = new URL("./sealed_peer.py", import.meta.url).pathname;
/** The peer's whole run (it makes a 3072-bit key among others); past this it hangs. */
const PEER_TIMEOUT_MS = 60_000;

const missing = missingPython(
  "from cryptography.hazmat.primitives.asymmetric import rsa, x25519",
  "pyca/cryptography",
);
if (missing) console.error(`sealed interop tests ignored: ${missing}`);

/** The JSON lines the peer prints, one at a time; its error report fails the test. */
function jsonLines(stream: ReadableStream<Uint8Array>) {
  const lines = lineReader(stream);
  return {
    async next(): Promise<Record<string, unknown>> {
      const line = await lines.next();
      if (line === "") throw new Error("the peer stopped without a word");
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.error !== undefined) throw new Error(`the peer failed: ${parsed.error}`);
      return parsed;
    },
    cancel: () => lines.cancel(),
  };
}

Deno.test({
  name: "an independent §8 client publishes, rotates, seals and opens, and talks sealed with ours",
  ignore: missing !== "",
  fn: async () => {
    const t = await startServer();
    const carolKey = portableCrypto.parsePrivateKey(userTestKeyDer("carol"));
    const carol = await TestClient.connect(t.port);
    const peer = new Deno.Command("python3", {
      args: [PEER, String(t.port)],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(PEER_TIMEOUT_MS),
    }).spawn();
    const lines = jsonLines(peer.stdout);
    const stderr = new Response(peer.stderr).text();
    try {
      const password = "carol-password";
      const snu = await carol.request({
        code: "SNU",
        user: "carol",
        password,
        key: toBase64(carolKey.publicKey.spkiDer),
      });
      assert.equal(snu.code, "ACK", JSON.stringify(snu));

      const report = await lines.next();
      assert.equal(report.opened, "hello bob, from python é🌍");
      assert.deepEqual(report.rotation, [
        "sealed before the rotation",
        "sealed after the rotation",
      ]);
      assert.equal(report.replay, "replay");
      assert.deepEqual(report.key_refusals, [
        "1024 bits",
        "EC P-256",
        "exponent 3",
        "trailing byte",
        "KEY 1024 bits",
      ]);

      // The peer sealed to carol: our library opens it, asking the server for alice's key.
      const login = await carol.request({ code: "LGN", user: "carol", password });
      assert.equal(login.code, "ACK");
      const dlv = await carol.push("DLV", (m) => m.from === "alice", 10_000);
      const aliceKeyOf = async (kid?: Uint8Array): Promise<RsaPublicKey | undefined> => {
        const gpk = await carol.request({
          code: "GPK",
          user: "alice",
          ...(kid ? { fingerprint: fingerprintOfKid(kid) } : {}),
        });
        if (gpk.code !== "ACK" || gpk.request !== "GPK") return undefined;
        assert.ok(typeof checkUserKey(portableCrypto, gpk.key) !== "string");
        return portableCrypto.parsePublicKey(fromBase64(gpk.key));
      };
      const opened = await open(portableCrypto, dlv.sealed!, { from: "alice", to: "carol" }, {
        recipientKey: () => carolKey,
        senderKey: (kid) => aliceKeyOf(kid),
      });
      carol.dak(dlv.msg);
      assert.equal(opened.text, "from python to carol");
      const alicePublic = (await aliceKeyOf())!;
      assert.equal(fingerprintOfKid(kidOf(alicePublic)), report.ready);

      // And the other way: sealed here, opened by the peer with every check of §8.5.
      const { sealed } = seal(portableCrypto, {
        from: "carol",
        to: "alice",
        text: "from typescript to alice ✓",
      }, { sender: carolKey, recipient: alicePublic });
      const sent = await carol.request({ code: "MSG", to: "alice", sealed });
      assert.equal(sent.code, "ACK", JSON.stringify(sent));
      const last = await lines.next();
      assert.equal(last.from_carol, "from typescript to alice ✓");
      const status = await peer.status;
      assert.equal(status.code, 0, await stderr);
    } finally {
      await endPeer(peer, lines, stderr);
      await carol.close();
      await t.dispose();
    }
  },
});
