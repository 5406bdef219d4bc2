// PROTOCOL §6 pinning: the known_hosts format, the pin decision, and the private files on disk.
import assert from "node:assert/strict";
import {
  checkPin,
  endpointName,
  KnownHosts,
  parseKnownHosts,
  problemsFor,
  withPin,
} from "../../client/known_hosts.ts";
import { configDir, loadHistory, saveHistory } from "../../client/config.ts";
import { tempDir } from "./_harness.ts";

const A = "SHA256:" + "A".repeat(43);
const B = "SHA256:" + "abcdefghijklmnopqrstuvwxyz0123456789+/ABCD" + "w";
const C = "SHA256:" + "Q".repeat(42) + "4";

Deno.test("endpointName() lower-cases the host and brackets IPv6 literals", () => {
  assert.equal(endpointName("Example.ORG", 5002), "example.org:5002");
  assert.equal(endpointName("::1", 5002), "[::1]:5002");
  assert.equal(endpointName("127.0.0.1", 1), "127.0.0.1:1");
});

Deno.test("parseKnownHosts() reads host:port fingerprint lines and reports the malformed ones", () => {
  const text = [
    "# pinned servers",
    "",
    `127.0.0.1:5002 ${A}`,
    `  [::1]:5002\t${B}  `,
    `Chat.Example:443 ${C}`,
    "no-port " + A,
    `host:99999 ${A}`,
    "host:1 SHA256:short",
    `host:1 ${A} extra`,
  ].join("\n");
  const { entries, problems } = parseKnownHosts(text);
  assert.deepEqual(entries, [
    { endpoint: "127.0.0.1:5002", fingerprint: A, line: 3 },
    { endpoint: "[::1]:5002", fingerprint: B, line: 4 },
    { endpoint: "chat.example:443", fingerprint: C, line: 5 },
  ]);
  assert.deepEqual(problems, [
    { line: 6, first: "no-port", reason: '"no-port" is not host:port' },
    { line: 7, first: "host:99999", reason: '"host:99999" is not host:port' },
    { line: 8, first: "host:1", reason: "not a SHA256: fingerprint" },
    { line: 9, first: "host:1", reason: 'expected "host:port fingerprint"' },
  ]);
});

Deno.test("problemsFor() picks the unparsed lines that may be a host's pin, and only those", () => {
  const { problems } = parseKnownHosts([
    `h:1 ${A} # a comment`,
    `H ${A}`,
    `h:1x ${A}`,
    `h2:1 ${A} # another host`,
    `[::1]:5 ${A} #`,
    `hh:1 ${A} #`,
  ].join("\n"));
  assert.deepEqual(problemsFor(problems, "h").map((p) => p.line), [1, 2, 3]);
  assert.deepEqual(problemsFor(problems, "::1").map((p) => p.line), [5]);
  assert.deepEqual(problemsFor(problems, "elsewhere"), []);
});

Deno.test("KnownHosts.looseness() names a file or directory others may write, and the fix", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/kh/known_hosts`;
  await Deno.mkdir(`${dir.path}/kh`, { mode: 0o700 });
  await Deno.writeTextFile(path, "");
  await Deno.chmod(path, 0o600);
  const known = new KnownHosts(path);
  assert.equal(await known.looseness(), undefined);
  await Deno.chmod(path, 0o620);
  assert.match((await known.looseness())!, /known_hosts is writable by others \(mode 0620\)/);
  await Deno.chmod(path, 0o600);
  await Deno.chmod(`${dir.path}/kh`, 0o777);
  assert.match((await known.looseness())!, /kh is writable by others .* run chmod go-w /);
  await Deno.chmod(`${dir.path}/kh`, 0o1777);
  assert.equal(await known.looseness(), undefined, "a sticky directory (as /tmp) is fine");
});

Deno.test("checkPin(): unknown at first contact, match for a pinned key, mismatch naming the pins", () => {
  const { entries } = parseKnownHosts(`h:1 ${A}\nh:1 ${B}\nother:1 ${C}\n`);
  assert.deepEqual(checkPin(entries, "new:1", A), { kind: "unknown" });
  assert.deepEqual(checkPin(entries, "h:1", B), { kind: "match" });
  assert.deepEqual(checkPin(entries, "h:1", C), {
    kind: "mismatch",
    pinned: [A, B],
    pinnedFor: ["h:1"],
  });
  assert.deepEqual(
    checkPin(entries, "h:2", A),
    { kind: "unknown" },
    "the port is part of the name",
  );
});

Deno.test("checkPin() binds the servers of a list to one key: an unpinned one must show its siblings' key", () => {
  const { entries } = parseKnownHosts(`a:1 ${A}
b:1 ${A}
other:1 ${C}
`);
  const list = ["a:1", "b:1", "new:1"];
  // A server of the list never pinned: the key pinned for the others, or a loud mismatch.
  assert.deepEqual(checkPin(entries, "new:1", A, list), { kind: "sibling", sibling: "a:1" });
  assert.deepEqual(checkPin(entries, "new:1", C, list), {
    kind: "mismatch",
    pinned: [A],
    pinnedFor: ["a:1", "b:1"],
  });
  // A key pinned for another server (outside the list) proves nothing for this one.
  assert.deepEqual(checkPin(entries, "b:1", C, list).kind, "mismatch");
  // Its own pin matching is not enough when another server of the list is pinned elsewhere.
  const split = parseKnownHosts(`a:1 ${A}
b:1 ${B}
`).entries;
  assert.deepEqual(checkPin(split, "b:1", B, ["a:1", "b:1"]), {
    kind: "mismatch",
    pinned: [A],
    pinnedFor: ["a:1"],
  });
  assert.deepEqual(checkPin(split, "b:1", B), { kind: "match" }, "alone, b is its own");
  assert.deepEqual(checkPin(entries, "new:1", B, ["new:1", "x:1"]), { kind: "unknown" });
});

Deno.test("withPin() replaces an endpoint's pins and keeps every other line", () => {
  const text = `# mine\nh:1 ${A}\n\nother:1 ${C}\nH:1 ${B}\n\n`;
  assert.equal(withPin(text, "h:1", C), `# mine\n\nother:1 ${C}\nh:1 ${C}\n`);
  assert.equal(withPin("", "h:1", A), `h:1 ${A}\n`);
});

Deno.test("KnownHosts.pin() creates the directory 0700 and the file 0600, and re-pins in place", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/deep/config/known_hosts`;
  const known = new KnownHosts(path);
  assert.deepEqual((await known.read()).entries, [], "an absent file is empty");
  await known.pin(["h:1"], A);
  await known.pin(["g:2", "f:3"], B);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(`${dir.path}/deep/config`)).mode! & 0o777, 0o700);
  assert.equal(await Deno.readTextFile(path), `h:1 ${A}\ng:2 ${B}\nf:3 ${B}\n`);
  await Deno.chmod(path, 0o644);
  await known.pin(["h:1"], C);
  assert.equal(await Deno.readTextFile(path), `g:2 ${B}\nf:3 ${B}\nh:1 ${C}\n`);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600, "a loosened file is private again");
  assert.deepEqual([...Deno.readDirSync(`${dir.path}/deep/config`)].map((e) => e.name), [
    "known_hosts",
  ]);
});

Deno.test("configDir(): HYBRID_HOME, then an absolute XDG_CONFIG_HOME, then ~/.config/hybrid", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(configDir(env({ HYBRID_HOME: "/h", XDG_CONFIG_HOME: "/x", HOME: "/u" })), "/h");
  assert.equal(configDir(env({ XDG_CONFIG_HOME: "/x", HOME: "/u" })), "/x/hybrid");
  assert.equal(configDir(env({ XDG_CONFIG_HOME: "relative", HOME: "/u" })), "/u/.config/hybrid");
  assert.equal(configDir(env({ HOME: "/u" })), "/u/.config/hybrid");
  assert.throws(() => configDir(env({})), /HYBRID_HOME/);
});

Deno.test("saveHistory() writes oldest first, mode 0600; loadHistory() reads newest first", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/history`;
  assert.deepEqual(await loadHistory(path), []);
  await saveHistory(path, ["/users", "@bob hi", "/login alice"]);
  assert.equal(await Deno.readTextFile(path), "/login alice\n@bob hi\n/users\n");
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.deepEqual(await loadHistory(path), ["/users", "@bob hi", "/login alice"]);
});
