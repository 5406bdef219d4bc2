// The server as a program: command line, restart with replay, graceful shutdown, the log lock,
// and a bundle smoke test (what `deno compile` needs, proven offline).
import assert from "node:assert/strict";
import { runServer, runTestServer } from "../../tools/server_process.ts";
import { loggedIn, TestClient } from "./_harness.ts";
import { NATIVE_SKIPPED } from "../_engines.ts";
import { KEX_GROUPS } from "../../crypto/mod.ts";
import { openEventLog } from "../../store/mod.ts";

Deno.test("--help and --version print and exit 0; a bad flag exits 2 naming it", async () => {
  const help = await runServer(["--help"], { waitListening: false });
  assert.equal(await help.exited, 0);
  assert.match(help.stdout.text, /--fsync always\|off/);
  assert.match(help.stdout.text, /HYBRID_PORT/);
  const version = await runServer(["--version"], { waitListening: false });
  assert.equal(await version.exited, 0);
  assert.match(version.stdout.text, /^hybrid-server \d+\.\d+\.\d+ \(HSP\/1\)$/);
  const bad = await runServer(["--port", "70000"], { waitListening: false });
  assert.equal(await bad.exited, 2);
  assert.match(bad.stderr.text, /--port must be an integer from 0 to 65535, got "70000"/);
  const unknown = await runServer(["--bogus"], { waitListening: false });
  assert.equal(await unknown.exited, 2);
  assert.match(unknown.stderr.text, /bogus/);
});

Deno.test({
  name:
    "the server says which crypto engine it uses, and --crypto native stops with the reason when it cannot be had",
  ignore: NATIVE_SKIPPED,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "hybrid-engine-" });
    try {
      const log = ["--port", "0", "--log", `${dir}/events.log`];
      const auto = await runServer(log);
      auto.child.kill("SIGTERM");
      assert.equal(await auto.exited, 0);
      assert.match(
        auto.stderr.text + auto.stdout.text,
        /crypto engine engine=native detail="OpenSSL 3/,
      );
      // `deno task server`'s permissions without --allow-ffi: auto falls back and says why.
      const permissions = [
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-sys",
      ];
      const noFfi = await runServer(log, { permissions });
      noFfi.child.kill("SIGTERM");
      assert.equal(await noFfi.exited, 0);
      assert.match(noFfi.stderr.text + noFfi.stdout.text, /engine=portable .*FFI is not permitted/);
      const refused = await runServer([...log, "--crypto", "native"], {
        permissions,
        waitListening: false,
      });
      assert.equal(await refused.exited, 1);
      assert.match(
        refused.stderr.text,
        /--crypto native: FFI is not permitted \(run with --allow-ffi\)/,
      );
      const missing = await runServer(
        [...log, "--crypto", "native", "--libcrypto", `${dir}/none.so`],
        {
          waitListening: false,
        },
      );
      assert.equal(await missing.exited, 1);
      assert.match(missing.stderr.text, /--crypto native: cannot load libcrypto \(.*none\.so/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("SIGTERM shuts down gracefully: BYE shutdown, exit 0, and every acknowledged message survives a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-life-" });
  try {
    const first = await runTestServer(dir);
    assert.match(first.stdout.text, /replayed 0 events/);
    assert.match(first.stdout.text, /server key SHA256:/);
    const alice = await loggedIn(first.port, "alice");
    const bob = await loggedIn(first.port, "bob");
    await bob.close();
    const acks = [];
    for (let i = 0; i < 10; i++) {
      acks.push(await alice.request({ code: "MSG", to: "bob", text: `m${i}` }));
    }
    assert.ok(acks.every((a) => a.code === "ACK"));
    first.child.kill("SIGTERM");
    assert.deepEqual(await alice.push("BYE"), { code: "BYE", reason: "shutdown" });
    await alice.waitClosed();
    assert.equal(await first.exited, 0);
    assert.match(first.stderr.text, /shutdown complete/);

    const second = await runTestServer(dir);
    assert.match(second.stdout.text, /2 users, 10 queued messages/);
    const again = await TestClient.connect(second.port);
    const lgn = await again.request({ code: "LGN", user: "bob", password: "password-bob" });
    assert.equal(lgn.code === "ACK" && lgn.request === "LGN" && lgn.queued, 10);
    const texts = [];
    for (let i = 0; i < 10; i++) texts.push((await again.push("DLV")).text);
    assert.deepEqual(texts, Array.from({ length: 10 }, (_, i) => `m${i}`));
    await again.close();
    second.child.kill("SIGTERM");
    assert.equal(await second.exited, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a second server on the same log is refused with a clear message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-lock-" });
  try {
    const first = await runTestServer(dir);
    const second = await runTestServer(dir).catch((e: Error) => e);
    assert.ok(second instanceof Error);
    assert.match(second.message, /events\.log/);
    assert.match(second.message, /lock|in use|another/i);
    first.child.kill("SIGTERM");
    assert.equal(await first.exited, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the identity key is created beside the log with mode 0600 and reused at the next start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-key-" });
  try {
    const first = await runTestServer(dir);
    const fp = first.stdout.text.match(/server key (SHA256:\S+)/)![1];
    assert.equal((await Deno.stat(`${dir}/server_key.pem`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/events.log`)).mode! & 0o777, 0o600);
    first.child.kill("SIGTERM");
    await first.exited;
    const second = await runTestServer(dir);
    assert.equal(second.stdout.text.match(/server key (SHA256:\S+)/)![1], fp);
    second.child.kill("SIGTERM");
    await second.exited;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the server bundles into one file that runs (deno compile readiness, offline)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-bundle-" });
  try {
    const out = `${dir}/hybrid-server.js`;
    const bundle = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "-o",
        out,
        new URL("../../server/main.ts", import.meta.url).pathname,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(bundle.code, 0, new TextDecoder().decode(bundle.stderr));
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", out, "--version"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    assert.match(new TextDecoder().decode(run.stdout), /^hybrid-server \d+\.\d+\.\d+/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--trace --json-logs logs each handshake step and record as JSON lines, and never a key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-trace-" });
  try {
    const server = await runTestServer(dir, ["--trace", "--json-logs"]);
    const c = await loggedIn(server.port, "alice");
    await c.request({ code: "PNG" });
    await c.close();
    server.child.kill("SIGTERM");
    assert.equal(await server.exited, 0);
    const events = server.stderr.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const steps = events.filter((e) => e.event === "trace handshake").map((e) => e.step);
    assert.deepEqual(steps.slice(0, 6), [
      "client_hello",
      "shared_secret",
      "transcript_hash",
      "server_hello",
      "server_key",
      "keys",
    ]);
    const records = events.filter((e) => e.event === "trace record");
    assert.ok(records.some((e) => e.direction === "receive" && e.code === "LGN" && e.seq === 1));
    assert.ok(records.some((e) => e.direction === "send" && e.code === "ACK"));
    assert.ok(
      events.some((e) => e.event === "connection opened") &&
        events.some((e) => e.event === "logged in"),
    );
    const text = server.stderr.text;
    assert.ok(!text.includes("password-alice"), "a password reached the log");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGINT twice at once (the terminal's and deno task's copy) is one graceful shutdown", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-sigint-" });
  try {
    const server = await runTestServer(dir);
    server.child.kill("SIGINT");
    server.child.kill("SIGINT");
    assert.equal(await server.exited, 0);
    assert.match(server.stderr.text, /shutdown complete/);
    assert.doesNotMatch(server.stderr.text, /exiting at once/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a port in use is reported before the log or the key file is created", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-port-" });
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const server = await runServer(
      ["--host", "127.0.0.1", "--port", String(taken.addr.port), "--log", `${dir}/new/events.log`],
      { waitListening: false },
    );
    assert.equal(await server.exited, 1);
    assert.match(server.stderr.text, /127\.0\.0\.1:\d+ is already in use/);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "the server left files behind");
  } finally {
    taken.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a log holding more undelivered text than max_queued_bytes_total stops replay with the limit to raise", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-replay-" });
  try {
    const { log } = await openEventLog(`${dir}/events.log`);
    const text = "z".repeat(1000);
    await log.append({
      type: "user_signed_up",
      ts: 1,
      user: "bob",
      passwordHash: "scrypt$10$8$1$AA==$AA==",
    });
    for (let i = 0; i < 20; i++) {
      await log.append({
        type: "message_sent",
        ts: 2 + i,
        msg: `m${i}`,
        from: "bob",
        to: "bob",
        text,
      });
    }
    await log.close();
    const refused = await runTestServer(dir, ["--limit", "max_queued_bytes_total=10000"]).then(
      () => assert.fail("the server started"),
      (err: Error) => err.message,
    );
    assert.match(refused, /exited with code 1/);
    assert.match(
      refused,
      /take over 10000 bytes \(max_queued_bytes_total\).*--limit max_queued_bytes_total=N/s,
    );
    const fits = await runTestServer(dir, ["--limit", "max_queued_bytes_total=20000"]);
    assert.match(fits.stdout.text, /1 user, 20 queued messages/);
    fits.child.kill("SIGTERM");
    assert.equal(await fits.exited, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("handshakes computed on worker threads give working sessions, for every group", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-workers-" });
  try {
    const server = await runTestServer(dir, ["--limit", "handshake_workers=2"]);
    for (let i = 0; i < KEX_GROUPS.length; i++) {
      const c = await TestClient.connect(server.port, i);
      assert.equal((await c.request({ code: "PNG" })).code, "ACK");
      await c.close();
    }
    server.child.kill("SIGTERM");
    assert.equal(await server.exited, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
