// `deno task events` (admin/print_events.ts), run as the task runs it: read-only permissions.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Event, openEventLog } from "../../store/mod.ts";
import { formatEvent, redactHash } from "../../admin/print_events.ts";
import { everyEventType, fakeHash, message, withTempDir } from "./_helpers.ts";

const CLI = new URL("../../admin/print_events.ts", import.meta.url).pathname;

async function events(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    // The permissions of the `events` task in deno.json: it must never need to write.
    args: ["run", "--allow-read", "--allow-env", CLI, ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

async function writeLog(path: string, list: readonly Event[]): Promise<void> {
  const { log } = await openEventLog(path);
  await log.appendMany(list);
  await log.close();
}

/** The secret parts of fakeHash(seed): salt and hash. */
function secrets(seed: string): string[] {
  const parts = fakeHash(seed).split("$");
  return [fakeHash(seed), parts.at(-2)!, parts.at(-1)!];
}

Deno.test("events prints one readable line per event and never a password hash in full", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, everyEventType());
    for (const json of [false, true]) {
      const { code, stdout } = await events("--log", path, ...(json ? ["--json"] : []));
      assert.equal(code, 0);
      const lines = stdout.trimEnd().split("\n");
      assert.equal(lines.length, everyEventType().length);
      for (const secret of [...secrets("alice"), ...secrets("alice2")]) {
        assert.equal(stdout.includes(secret), false, `${json ? "--json" : "text"} shows ${secret}`);
      }
      assert.match(stdout, /scrypt\$17\$8\$1\$<redacted>/);
      if (json) {
        assert.deepEqual(JSON.parse(lines[5]!), everyEventType()[5]);
      } else {
        assert.equal(
          lines[0],
          "1970-01-01T00:00:00.001Z  user_signed_up  user=alice passwordHash=scrypt$17$8$1$<redacted>",
        );
        assert.equal(
          lines[6],
          "1970-01-01T00:00:00.007Z  message_sent  msg=m2 from=alice to=bob text=x cid=c-1",
        );
      }
    }
  });
});

Deno.test("events filters by type, by user and to the last N", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, [
      ...everyEventType(),
      message(20, "carol", "dave"),
      message(21, "dave", "carol"),
      message(22, "erin", "frank"),
    ]);
    const types = (out: string) => out.trimEnd().split("\n").map((l) => l.split("  ")[1]);
    assert.deepEqual(types((await events("--log", path, "--type", "logged_out")).stdout), [
      "logged_out",
    ]);
    assert.deepEqual(
      types(
        (await events(
          "--log",
          path,
          "--type",
          "login_failed,log_compacted",
          "--type",
          "logged_out",
        )).stdout,
      ),
      ["login_failed", "logged_out", "log_compacted"],
    );
    const carol = (await events("--log", path, "--user", "carol")).stdout.trimEnd().split("\n");
    assert.deepEqual(carol.map((l) => l.match(/msg=(\S+)/)?.[1]), ["m20", "m21"]);
    const tail = (await events("--log", path, "--tail", "2", "--json")).stdout.trimEnd().split(
      "\n",
    );
    assert.deepEqual(tail.map((l) => JSON.parse(l).msg), ["m21", "m22"]);
    const combined = await events(
      "--log",
      path,
      "--type",
      "message_sent",
      "--user",
      "bob",
      "--tail",
      "1",
    );
    assert.match(combined.stdout, /^\S+ {2}message_sent {2}msg=m2 /);
  });
});

Deno.test("events escapes control and bidi characters in message texts", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    const text = "hi\x1b[2J\u009b31m\u202eevil\r\nok 👋";
    await writeLog(path, [message(1, "a", "b", text)]);
    for (const args of [[], ["--json"]]) {
      const { stdout } = await events("--log", path, ...args);
      // deno-lint-ignore no-control-regex
      assert.equal(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/.test(stdout), false, stdout);
      assert.ok(stdout.includes("👋"));
    }
    const { stdout } = await events("--log", path);
    assert.ok(
      stdout.includes(String.raw`text="hi\u001b[2J\u009b31m\u202eevil\u000d\u000aok 👋"`),
      stdout,
    );
  });
});

Deno.test("events notes a torn tail on stderr and still prints the whole records", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, [message(1), message(2)]);
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 3));
    const { code, stdout, stderr } = await events("--log", path);
    assert.equal(code, 0);
    assert.equal(stdout.trimEnd().split("\n").length, 1);
    assert.match(stderr, /not a whole record/);
    assert.equal((await Deno.stat(path)).size, bytes.length - 3); // read-only: nothing cut
  });
});

Deno.test("events shows every whole record of a damaged log, notes where the damage is, exits 1", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.log");
    await writeLog(path, [message(1), message(2), message(3)]);
    const bytes = await Deno.readFile(path);
    bytes[30]! ^= 1; // inside the first record, which starts after the 20-byte header
    await Deno.writeFile(path, bytes);
    const second = (await events("--log", path, "--json")).stdout;
    const { code, stdout, stderr } = await events("--log", path);
    assert.equal(code, 1);
    assert.deepEqual(stdout.trimEnd().split("\n").map((l) => l.match(/msg=(\S+)/)?.[1]), [
      "m2",
      "m3",
    ]);
    assert.equal(second.trimEnd().split("\n").length, 2);
    const recordBytes = (bytes.length - 20) / 3;
    assert.match(
      stderr,
      new RegExp(
        `^events: damaged: ${recordBytes} bytes at offset 20 hold no whole record \\(checksum mismatch.*\\); whole records resume at offset ${
          20 + recordBytes
        }\n`,
      ),
    );
    assert.match(
      stderr,
      /is damaged: \d+ bytes in 1 region could not be read; .*\(2 events in all\).*--repair/,
    );
    assert.deepEqual(await Deno.readFile(path), bytes); // read-only: nothing repaired
  });
});

Deno.test("events fails clearly on a missing log, a directory and a file that is not a log", async () => {
  await withTempDir(async (dir) => {
    const missing = await events("--log", join(dir, "nope.log"));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no event log at .*nope\.log/);
    const directory = await events("--log", dir);
    assert.equal(directory.code, 1);
    assert.equal(directory.stderr, `events: ${dir} is a directory, not an event log\n`);
    const text = join(dir, "notes.txt");
    await Deno.writeTextFile(text, "these are not the events you are looking for\n");
    const notLog = await events("--log", text);
    assert.equal(notLog.code, 1);
    assert.match(notLog.stderr, /^events: .*notes\.txt is not an event log: /);
    assert.doesNotMatch(notLog.stderr, /Uncaught|--repair/);
  });
});

Deno.test("events explains bad usage with status 2 and shows help with status 0", async () => {
  const help = await events("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task events/);
  for (
    const args of [["--bogus"], ["--type", "nope"], ["--tail", "0"], ["--tail", "x"], [
      "positional",
    ]]
  ) {
    const { code, stderr } = await events(...args);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, /^events: .*\nRun with --help for usage\./, args.join(" "));
  }
});

Deno.test("redactHash() keeps the scheme and parameters and drops salt and hash", () => {
  assert.equal(redactHash("scrypt$17$8$1$c2FsdA==$aGFzaA=="), "scrypt$17$8$1$<redacted>");
  assert.equal(redactHash("$2b$12$abcdefghijklmnopqrstuv"), "$2b$<redacted>");
  assert.equal(redactHash("plainsecret"), "<redacted>");
  assert.equal(redactHash("a$b"), "<redacted>");
});

Deno.test("formatEvent() quotes only values that need it", () => {
  assert.equal(
    formatEvent({ type: "message_sent", ts: 0, msg: "m", from: "a", to: "b", text: 'say "hi"' }),
    String.raw`1970-01-01T00:00:00.000Z  message_sent  msg=m from=a to=b text="say \"hi\""`,
  );
  assert.equal(
    formatEvent({ type: "log_compacted", ts: 0, events: 7 }),
    "1970-01-01T00:00:00.000Z  log_compacted  events=7",
  );
});
