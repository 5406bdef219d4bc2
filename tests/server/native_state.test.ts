// The native engine's per-connection state (EVP cipher contexts holding key schedules) is freed
// when a connection ends, on the server's side and on the client's, and none is left behind.
import assert from "node:assert/strict";
import { liveNativeHandles } from "../../crypto/native.ts";
import { NATIVE_SKIPPED, nativeCrypto } from "../_engines.ts";
import { loggedIn, startServer, until } from "./_harness.ts";

Deno.test({
  name: "every connection's native cipher contexts are freed when it closes, on both sides",
  ignore: NATIVE_SKIPPED,
  fn: async () => {
    const crypto = nativeCrypto();
    const server = await startServer({ crypto });
    try {
      // One connection first: the identity's signing key and the client's parsed server key
      // stay in OpenSSL for the process's life, and are counted from here on.
      const warm = await loggedIn(server.port, "warm", crypto);
      await warm.close();
      await until(() => server.server.connectionCount === 0, "the warm-up connection to close");
      const before = liveNativeHandles();
      const alice = await loggedIn(server.port, "alice", crypto);
      const bob = await loggedIn(server.port, "bob", crypto);
      // Records in every direction: MSG and ACK for alice, DLV and DAK for bob.
      for (let i = 0; i < 3; i++) {
        assert.equal((await alice.request({ code: "MSG", to: "bob", text: `m${i}` })).code, "ACK");
      }
      await bob.push("DLV");
      // Each side of each connection has made an encryptor and a decryptor.
      await until(() => liveNativeHandles() >= before + 8, "contexts in every direction");
      await alice.close();
      await bob.close();
      await until(() => liveNativeHandles() === before, "every context to be freed");
    } finally {
      await server.dispose();
    }
  },
});
