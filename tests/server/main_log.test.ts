// The server program and its event log: the README's start on a fresh machine (missing
// directories), a directory given as --log, and start-up advice that fits the damage found.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runServer, runTestServer, type ServerProcess } from "../../tools/server_process.ts";
import { type Event, openEventLog, readEventLog } from "../../store/mod.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-main-log-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the server on the log at `log` and waits for it to exit, which it should do at once. */
async function refused(log: string, ...extra: string[]): Promise<ServerProcess> {
  const server = await runServer(["--port", "0", "--log", log, ...extra], {
    waitListening: false,
  });
  await server.exited;
  return server;
}

async function stop(server: ServerProcess): Promise<number> {
  server.child.kill("SIGTERM");
  return await server.exited;
}

const SIGNUPS: Event[] = ["alice", "bob", "carol", "dave"].map((user, i) => ({
  type: "user_signed_up",
  ts: 1_700_000_000_000 + i,
  user,
  passwordHash: `scrypt$17$8$1$c2FsdC0${i}$aGFzaC0${i}`,
}));

Deno.test("the server starts with --log in directories that do not exist yet, creating them 0700", async () => {
  await withTempDir(async (dir) => {
    const fresh = join(dir, "chat", "data");
    const server = await runTestServer(fresh, ["--trace"]);
    assert.equal(await stop(server), 0, server.stderr.text);
    assert.equal((await Deno.stat(join(dir, "chat"))).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(fresh)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(fresh, "events.log"))).isFile, true);
    // The identity key is created beside the log, in the new directory.
    assert.equal((await Deno.stat(join(fresh, "server_key.pem"))).mode! & 0o777, 0o600);
    assert.match(server.stderr.text, /directory created path=.*chat\/data mode=0700/);
    assert.doesNotMatch(server.stderr.text, /Uncaught/);
  });
});

Deno.test("the server refuses a directory given as --log, naming it", async () => {
  await withTempDir(async (dir) => {
    const server = await refused(dir);
    assert.equal(await server.exited, 1);
    assert.ok(
      server.stderr.lines.includes(
        `hybrid-server: cannot open event log ${dir}: it is a directory; give the path of a file in it`,
      ),
      server.stderr.text,
    );
    assert.doesNotMatch(server.stderr.text, /Uncaught/);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("on a file that is not a log the server does not advise --repair, given or not", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "notes.txt");
    await Deno.writeTextFile(path, "these are not the events you are looking for\n");
    for (const extra of [[], ["--repair"]]) {
      const server = await refused(path, ...extra);
      assert.equal(await server.exited, 1);
      assert.match(server.stderr.text, /^hybrid-server: .*notes\.txt is not an event log: /m);
      assert.match(server.stderr.text, /Nothing was changed\. Check that --log names/);
      assert.doesNotMatch(server.stderr.text, /Run again with --repair/);
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["notes.txt"]);
  });
});

Deno.test("on a damaged log the server advises --repair, which keeps every whole record and says what it dropped", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    {
      const { log } = await openEventLog(path);
      await log.appendMany(SIGNUPS);
      await log.close();
    }
    // 13 junk bytes between bob's and carol's sign-ups.
    const bytes = await Deno.readFile(path);
    const offsets: number[] = [];
    await readEventLog(path, { onEvent: (_, offset) => offsets.push(offset) });
    const at = offsets[2]!;
    await Deno.writeFile(
      path,
      new Uint8Array([
        ...bytes.subarray(0, at),
        ...new Uint8Array(13).fill(0xa5),
        ...bytes.subarray(at),
      ]),
    );
    const refusedStart = await refused(path);
    assert.equal(await refusedStart.exited, 1);
    assert.match(
      refusedStart.stderr.text,
      new RegExp(`13 bytes at offset ${at} hold no whole record`),
    );
    assert.match(refusedStart.stderr.text, /Run again with --repair to do that\.$/);
    const server = await runTestServer(dir, ["--repair"]);
    assert.equal(await stop(server), 0, server.stderr.text);
    assert.match(server.stdout.text, /replayed 4 events .*: 4 users/);
    assert.match(
      server.stderr.text,
      new RegExp(`log repaired: damaged bytes dropped offset=${at} bytes=13 reason=`),
    );
    const backup = server.stderr.text.match(/log repaired regions=1 bytes=13 backup=(\S+)/)?.[1];
    assert.ok(backup, server.stderr.text);
    assert.match(backup, /events\.log\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.bak$/);
    assert.equal((await Deno.stat(backup)).size, bytes.length + 13);
    assert.deepEqual((await Deno.readFile(path)).subarray(0, bytes.length), bytes);
  });
});
