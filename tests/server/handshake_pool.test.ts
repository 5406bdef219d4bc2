// Handshakes off the event loop: the worker pool's cap on handshakes in flight, and a fault of
// the server's own during a handshake, logged as such and never blamed on the client.
import assert from "node:assert/strict";
import { KEX_GROUPS } from "../../crypto/mod.ts";
import { ClientHandshake } from "../../protocol/handshake.ts";
import { InlineResponder, WorkerResponder } from "../../server/handshake_pool.ts";
import { startServer, TestClient, until } from "./_harness.ts";
import { testIdentity } from "../_vectors.ts";
import { portableCrypto } from "../_engines.ts";

const WORKER = new URL("../../server/main.ts", import.meta.url);
const INIT = {
  type: "init",
  pem: testIdentity.toPem(),
  crypto: "portable",
  libcrypto: undefined,
  groups: undefined,
  trace: false,
} as const;
const inline = () => new InlineResponder({ identity: testIdentity, crypto: portableCrypto }, false);
const x25519Hello = () =>
  new ClientHandshake({
    crypto: portableCrypto,
    group: KEX_GROUPS.find((g) => g.name === "x25519")!,
  }).hello();

Deno.test("the worker pool answers ClientHellos and refuses more than its cap in flight", async () => {
  const pool = new WorkerResponder(WORKER, 1, 2, INIT, inline());
  try {
    const hellos = [0, 1, 2].map(() =>
      new ClientHandshake({
        crypto: portableCrypto,
        group: KEX_GROUPS.find((g) => g.name === "x25519")!,
      }).hello()
    );
    const first = pool.respond(hellos[0]!);
    const second = pool.respond(hellos[1]!);
    assert.ok(first && second);
    assert.equal(pool.inFlight, 2);
    assert.equal(pool.respond(hellos[2]!), undefined, "a third was taken past the cap");
    const answers = await Promise.all([first, second]);
    assert.ok(answers.every((a) => a.outcome.ok));
    assert.equal(pool.inFlight, 0);
    const third = await pool.respond(hellos[2]!);
    assert.ok(third?.outcome.ok);
  } finally {
    pool.close();
  }
});

Deno.test("a worker that cannot start is reported, and its handshakes are computed on the event loop", async () => {
  const faults: string[] = [];
  const missing = new URL("./no_such_worker.ts", import.meta.url);
  const pool = new WorkerResponder(missing, 1, 4, INIT, inline(), (m) => faults.push(m));
  try {
    const answers = await Promise.all([pool.respond(x25519Hello())!, pool.respond(x25519Hello())!]);
    assert.ok(answers.every((a) => a.outcome.ok), "a handshake was lost with its worker");
    await until(() => faults.length > 0, "the fault to be reported");
    assert.match(faults[0]!, /handshake worker failed .*computed on the event loop/s);
    assert.ok((await pool.respond(x25519Hello())!).outcome.ok);
  } finally {
    pool.close();
  }
});

Deno.test("a signing failure on the server is logged as ours and the client gets no bad_hello", async () => {
  const broken = {
    ...testIdentity,
    sign: (): Uint8Array => {
      throw new Error("the signing key is unreadable");
    },
  };
  const t = await startServer({ identity: broken });
  try {
    await assert.rejects(TestClient.connect(t.port), (err: Error) => {
      assert.match(err.message, /closed the connection during the handshake/);
      return true;
    });
    await until(() => t.lines.some((l) => l.includes("handshake failed on our side")), "the log");
    const line = t.lines.find((l) => l.includes("handshake failed on our side"))!;
    assert.match(line, /the signing key is unreadable/);
    assert.ok(!t.lines.some((l) => l.includes("bad_hello")));
  } finally {
    await t.dispose();
  }
});
