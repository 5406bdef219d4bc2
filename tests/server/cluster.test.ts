// Several server nodes on one PostgreSQL log form one service: every rule that spans users is
// enforced by the database or by every node applying every event, never by one node's memory.
// Each test starts two or three in-process nodes on a schema of its own.
import assert from "node:assert/strict";
import type { ServerMessage } from "../../protocol/messages.ts";
import { pgTest, waitFor } from "../_postgres.ts";
import { Lines } from "../../tools/server_process.ts";
import { startServer, TestClient, type TestServer } from "./_harness.ts";

async function nodes(url: string, n: number): Promise<TestServer[]> {
  const started: TestServer[] = [];
  for (let i = 0; i < n; i++) started.push(await startServer({ store: url }));
  return started;
}

async function stopAll(servers: TestServer[], clients: TestClient[] = []): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.dispose()));
}

async function logIn(port: number, user: string): Promise<TestClient> {
  const c = await TestClient.connect(port);
  const r = await c.request({ code: "LGN", user, password: `password-${user}` });
  assert.equal(r.code, "ACK", `login of ${user}: ${JSON.stringify(r)}`);
  return c;
}

async function signUp(port: number, user: string): Promise<void> {
  const c = await TestClient.connect(port);
  const r = await c.request({ code: "SNU", user, password: `password-${user}` });
  assert.equal(r.code, "ACK", `sign-up of ${user}: ${JSON.stringify(r)}`);
  await c.close();
}

function outcome(m: ServerMessage): string {
  return m.code === "ERR" ? m.error : m.code;
}

pgTest("a name is signed up once when two nodes get the same SNU at the same time", async (db) => {
  const servers = await nodes(db.url, 2);
  const clients = await Promise.all(servers.map((s) => TestClient.connect(s.port)));
  try {
    for (let round = 0; round < 5; round++) {
      const user = `twin${round}`;
      const answers = await Promise.all(
        clients.map((c) => c.request({ code: "SNU", user, password: "password-twin" })),
      );
      assert.deepEqual(answers.map(outcome).sort(), ["ACK", "user_exists"], `round ${round}`);
    }
    for (const s of servers) {
      await waitFor(
        "both nodes to apply the sign-ups",
        () => s.server.core.state.log.users.size === 5,
      );
    }
  } finally {
    await stopAll(servers, clients);
  }
});

pgTest(
  "a cid retried on another node gets the first ACK, and the message is stored once",
  async (db) => {
    const [a, b] = await nodes(db.url, 2);
    await signUp(a!.port, "alice");
    await signUp(a!.port, "bob");
    const onA = await logIn(a!.port, "alice");
    try {
      const first = await onA.request({ code: "MSG", to: "bob", text: "once", cid: "c-1" });
      assert.equal(first.code, "ACK");
      const onB = await logIn(b!.port, "alice"); // ends the session on A: a client moving over
      const again = await onB.request({ code: "MSG", to: "bob", text: "once", cid: "c-1" });
      assert.deepEqual(again, { ...first, id: again.code === "ACK" ? again.id : -1 });
      for (const node of [a!, b!]) {
        await waitFor(
          "the nodes to apply the send",
          () => node.server.core.state.log.queues.get("bob")?.size === 1,
        );
      }
      await onB.close();
    } finally {
      await stopAll([a!, b!], [onA]);
    }
  },
);

pgTest(
  "a login on one node ends the user's session on another with BYE logged_in_elsewhere",
  async (db) => {
    const [a, b] = await nodes(db.url, 2);
    await signUp(a!.port, "alice");
    const onA = await logIn(a!.port, "alice");
    try {
      const onB = await logIn(b!.port, "alice");
      assert.deepEqual(await onA.push("BYE"), { code: "BYE", reason: "logged_in_elsewhere" });
      await onA.waitClosed();
      assert.equal((await onB.request({ code: "PNG" })).code, "ACK");
      await onB.close();
    } finally {
      await stopAll([a!, b!], [onA]);
    }
  },
);

pgTest(
  "a message to a user online on another node is pushed there at once, in order",
  async (db) => {
    const [a, b, c] = await nodes(db.url, 3);
    await signUp(a!.port, "alice");
    await signUp(a!.port, "bob");
    const alice = await logIn(a!.port, "alice");
    const bob = await logIn(c!.port, "bob");
    try {
      for (let i = 0; i < 10; i++) {
        assert.equal((await alice.request({ code: "MSG", to: "bob", text: `m${i}` })).code, "ACK");
      }
      const texts: string[] = [];
      for (let i = 0; i < 10; i++) {
        const dlv = await bob.push("DLV");
        texts.push(dlv.text ?? "");
        bob.dak(dlv.msg);
      }
      assert.deepEqual(texts, Array.from({ length: 10 }, (_, i) => `m${i}`));
      // The DAKs made on node C emptied bob's queue everywhere: B has nothing to deliver.
      await waitFor("the DAKs to reach node B", () => !b!.server.core.state.log.queues.has("bob"));
      await bob.close();
      const again = await TestClient.connect(b!.port);
      const lgn = await again.request({ code: "LGN", user: "bob", password: "password-bob" });
      assert.ok(lgn.code === "ACK" && lgn.request === "LGN" && lgn.queued === 0);
      await again.close();
    } finally {
      await stopAll([a!, b!, c!], [alice]);
    }
  },
);

pgTest("a message queued through one node is delivered at a login on another", async (db) => {
  const [a, b] = await nodes(db.url, 2);
  await signUp(a!.port, "alice");
  await signUp(a!.port, "bob");
  const alice = await logIn(a!.port, "alice");
  try {
    await alice.request({ code: "MSG", to: "bob", text: "while you were away" });
    await waitFor("node B to apply it", () => b!.server.core.state.log.queues.has("bob"));
    const bob = await logIn(b!.port, "bob");
    assert.equal((await bob.push("DLV")).text, "while you were away");
    await bob.close();
  } finally {
    await stopAll([a!, b!], [alice]);
  }
});

pgTest(
  "PostgreSQL down: nodes answer ERR internal, keep their connections, and resume by themselves",
  async (db) => {
    const [a, b] = await nodes(db.url, 2);
    await signUp(a!.port, "alice");
    await signUp(a!.port, "bob");
    const alice = await logIn(a!.port, "alice");
    const bob = await logIn(b!.port, "bob");
    try {
      assert.equal((await alice.request({ code: "MSG", to: "bob", text: "before" })).code, "ACK");
      await db.cluster!.stop();
      const during = await alice.request({ code: "MSG", to: "bob", text: "during" });
      assert.equal(outcome(during), "internal", JSON.stringify(during));
      assert.match(during.code === "ERR" ? during.message : "", /event store is unavailable/);
      assert.equal((await bob.request({ code: "PNG" })).code, "ACK", "a connection was dropped");
      await db.cluster!.start();
      // Back: the same connections send and receive again, without reconnecting.
      let after: ServerMessage | undefined;
      const deadline = Date.now() + 20_000;
      for (let i = 0; after?.code !== "ACK" && Date.now() < deadline; i++) {
        after = await alice.request({ code: "MSG", to: "bob", text: `after ${i}` });
        if (after.code !== "ACK") await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(after?.code, "ACK", "appends did not resume within 20 s");
      const texts = new Set<string>();
      await waitFor("bob to get what was acknowledged", () => {
        for (const m of bob.pushes) if (m.code === "DLV" && m.text) texts.add(m.text);
        return texts.has("before") && [...texts].some((t) => t.startsWith("after"));
      });
    } finally {
      await stopAll([a!, b!], [alice, bob]);
    }
  },
  { ownCluster: true },
);

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** The permission flags `deno task compile` gives the server's binary, read from deno.json. */
function compiledServerPermissions(): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(CONFIG)).tasks as Record<string, string>;
  const server = tasks.compile!.split(" && ").find((c) => c.includes("server/main.ts"))!;
  return server.split(" ").map((word) => word.replaceAll('"', "")).filter((word) =>
    word.startsWith("--allow-")
  );
}

/** Runs a server command with the store at `url`, signs a user up and sends; exits cleanly. */
async function servesOnPostgres(
  command: (dir: string) => string[],
  url: string,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-perms-pg-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: command(dir).concat(["--host", "127.0.0.1", "--port", "0", "--store", url])
      .concat(["--key", `${dir}/server_key.pem`, "--insecure-fast-hash"]),
    env: { NO_COLOR: "1", HYBRID_DATA: dir },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Lines(child.stdout);
  const stderr = new Lines(child.stderr);
  try {
    const port = Number((await stdout.wait(/^listening on 127\.0\.0\.1:(\d+)$/))[1]);
    await signUp(port, "alice");
    const alice = await logIn(port, "alice");
    assert.equal((await alice.request({ code: "MSG", to: "alice", text: "hi" })).code, "ACK");
    await alice.close();
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* exited: the status says how */ }
    const status = await child.status;
    await Promise.all([stdout.done, stderr.done]);
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, stderr.text);
  }
  assert.doesNotMatch(stderr.text, /NotCapable/);
}

pgTest(
  "`deno task server --store postgres://…` starts and serves under the task's own permissions",
  async (db) => {
    await servesOnPostgres(() => ["task", "--quiet", "--config", CONFIG, "server"], db.url);
  },
);

pgTest(
  "the server binary of `deno task compile` may read what postgres.js reads (PG* variables)",
  async (db) => {
    const main = new URL("../../server/main.ts", import.meta.url).pathname;
    const permissions = compiledServerPermissions();
    assert.ok(permissions.some((p) => p.startsWith("--allow-env=")), permissions.join(" "));
    await servesOnPostgres(() => ["run", ...permissions, main], db.url);
  },
);

pgTest("a node behind the log catches up before it says a user is unknown", async (db) => {
  const a = await startServer({ store: db.url });
  // Node B hears of new events only when it reads the log itself: no NOTIFY, a poll a minute.
  const b = await startServer({ store: db.url, follow: { listen: false, pollIntervalMs: 60_000 } });
  await signUp(b.port, "alice");
  const alice = await logIn(b.port, "alice");
  try {
    await signUp(a.port, "newcomer");
    assert.equal(b.server.core.state.log.users.has("newcomer"), false, "B is not behind: no test");
    const sent = await alice.request({ code: "MSG", to: "newcomer", text: "welcome" });
    assert.equal(outcome(sent), "ACK");
    const gpk = await alice.request({ code: "GPK", user: "newcomer" });
    assert.equal(outcome(gpk), "no_key", "a user without a key, not an unknown one");
    assert.equal(
      outcome(await alice.request({ code: "MSG", to: "nobody-at-all", text: "x" })),
      "unknown_user",
    );
  } finally {
    await stopAll([a, b], [alice]);
  }
});
