// Two nodes of one service, as an independent client sees them: tests/interop/cluster_peer.py,
// written from PROTOCOL-v1.md alone on pyca/cryptography, against two real server processes on
// one PostgreSQL log with one RSA key. A name signs up once, messages cross nodes, a login takes
// a session over across nodes, a cid retried on the other node gets the first answer, and when
// a node is SIGKILLed mid-burst nothing it acknowledged is lost.
import assert from "node:assert/strict";
import { runServer, type ServerProcess } from "../../tools/server_process.ts";
import { pgTest } from "../_postgres.ts";
import { endPeer, lineReader, missingPython } from "./_python.ts";

const PEER = new URL("./cluster_peer.py", import.meta.url).pathname;
const KEY = new URL("../vectors/server_test_key.pem", import.meta.url).pathname;
/** The peer's whole run; past this it hangs. */
const PEER_TIMEOUT_MS = 60_000;

const missing = missingPython(
  "from cryptography.hazmat.primitives.asymmetric import x25519",
  "pyca/cryptography",
);
if (missing) console.error(`cluster interop test ignored: ${missing}`);

async function node(url: string, key: string): Promise<ServerProcess> {
  return await runServer([
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--store",
    url,
    "--key",
    key,
    "--insecure-fast-hash",
  ]);
}

async function stop(server: ServerProcess): Promise<void> {
  try {
    server.child.kill("SIGKILL");
  } catch { /* already gone */ }
  await server.exited;
}

if (missing) {
  Deno.test({ name: "an independent client sees two nodes as one service", ignore: true, fn() {} });
} else {
  pgTest("an independent client sees two nodes as one service", async (db) => {
    // Both nodes hold the same identity key, so the client's pin holds on either (§6).
    const dir = await Deno.makeTempDir();
    const key = `${dir}/server_key.pem`;
    await Deno.copyFile(KEY, key);
    await Deno.chmod(key, 0o600);
    const a = await node(db.url, key);
    const b = await node(db.url, key);
    const peer = new Deno.Command("python3", {
      args: [PEER, String(a.port), String(b.port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(PEER_TIMEOUT_MS),
    }).spawn();
    const lines = lineReader(peer.stdout);
    const stderr = new Response(peer.stderr).text();
    const stages: Record<string, unknown>[] = [];
    try {
      while (true) {
        const line = await lines.next();
        if (line === "") assert.fail(`the peer stopped without a word: ${await stderr}`);
        const parsed = JSON.parse(line) as Record<string, unknown>;
        stages.push(parsed);
        if (parsed.error !== undefined) assert.fail(`the peer failed: ${parsed.error}`);
        if (parsed.kill === "b") {
          await stop(b);
          const writer = peer.stdin.getWriter();
          await writer.write(new TextEncoder().encode("killed\n"));
          await writer.close();
        }
        if (parsed.delivered !== undefined) break;
      }
      assert.deepEqual(stages.map((s) => Object.keys(s)[0]), [
        "signup",
        "delivery",
        "takeover",
        "cid",
        "kill",
        "retried_on_a",
        "delivered",
      ]);
      const last = stages.at(-1)!;
      assert.equal(last.delivered, 15);
      assert.ok(Number(last.acknowledged_by_b) >= 5, JSON.stringify(last));
      assert.equal((await peer.status).code, 0);
    } finally {
      await endPeer(peer, lines, stderr);
      await Promise.all([stop(a), stop(b)]);
      await Deno.remove(dir, { recursive: true });
    }
  });
}
