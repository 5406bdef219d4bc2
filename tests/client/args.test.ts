// The client's flags: defaults, every flag of the issue, and a clear error for each bad value.
import assert from "node:assert/strict";
import { DEFAULT_PORT, parseClientArgs } from "../../client/args.ts";
import { unsupportedGroupMessage } from "../../client/connection.ts";
import { MAX_SERVERS } from "../../client/server_list.ts";

function options(args: string[]) {
  const parsed = parseClientArgs(args);
  assert.equal(parsed.kind, "run", parsed.kind === "error" ? parsed.message : parsed.kind);
  return (parsed as Extract<typeof parsed, { kind: "run" }>).options;
}

function error(args: string[]): string {
  const parsed = parseClientArgs(args);
  assert.equal(parsed.kind, "error");
  return (parsed as Extract<typeof parsed, { kind: "error" }>).message;
}

Deno.test("parseClientArgs() defaults to 127.0.0.1:5002 with X25519MLKEM768 and nothing else on", () => {
  const o = options([]);
  assert.deepEqual(o.servers, [{ host: "127.0.0.1", port: DEFAULT_PORT }]);
  assert.equal(o.group.name, "x25519mlkem768"); // §2.6: clients default to the hybrid
  assert.equal(o.user, undefined);
  assert.equal(o.knownHosts, undefined);
  assert.deepEqual([o.acceptNewKey, o.trace, o.json, o.noColor], [false, false, false, false]);
  assert.deepEqual([o.crypto, o.libcrypto], ["auto", undefined]);
  assert.deepEqual(o.acceptKeys, []);
});

Deno.test("parseClientArgs() takes --accept-key fingerprints, each checked", () => {
  const a = "SHA256:" + "A".repeat(43);
  const b = "SHA256:" + "b".repeat(42) + "w";
  assert.deepEqual(options(["--accept-key", a, "--accept-key", b]).acceptKeys, [a, b]);
  assert.equal(
    error(["--accept-key", "SHA256:abc"]),
    '--accept-key "SHA256:abc" is not a fingerprint (SHA256: and 43 base64 characters, as the ' +
      "server prints it)",
  );
});

Deno.test("parseClientArgs() reads every flag", () => {
  const o = options([
    "--host=chat.example",
    "--port",
    "6000",
    "--group",
    "ffdhe4096",
    "--user",
    "alice",
    "--known-hosts",
    "/tmp/kh",
    "--accept-new-key",
    "--trace",
    "--json",
    "--no-color",
    "--crypto",
    "portable",
    "--libcrypto",
    "/opt/ssl/libcrypto.so.3",
  ]);
  assert.deepEqual(o.servers, [{ host: "chat.example", port: 6000 }]);
  assert.equal(o.group.name, "ffdhe4096");
  assert.equal(o.user, "alice");
  assert.equal(o.knownHosts, "/tmp/kh");
  assert.deepEqual([o.acceptNewKey, o.trace, o.json, o.noColor], [true, true, true, true]);
  assert.deepEqual([o.crypto, o.libcrypto], ["portable", "/opt/ssl/libcrypto.so.3"]);
  assert.deepEqual(options(["--host", "[::1]"]).servers, [{ host: "::1", port: DEFAULT_PORT }]);
  assert.deepEqual(parseClientArgs(["--help"]), { kind: "help" });
  assert.deepEqual(parseClientArgs(["-h"]), { kind: "help" });
  assert.deepEqual(parseClientArgs(["-V"]), { kind: "version" });
});

Deno.test("parseClientArgs() names the flag and the value it refuses", () => {
  assert.equal(error(["--port", "0"]), "--port 0 is not a port (1-65535)");
  assert.equal(error(["--port", "5002x"]), "--port 5002x is not a port (1-65535)");
  assert.equal(error(["--port", "70000"]), "--port 70000 is not a port (1-65535)");
  assert.match(error(["--group", "modp"]), /^--group modp is not one of ffdhe2048/);
  assert.equal(error(["--user", "Alice"]), '--user "Alice" is not a username');
  assert.match(error(["--host", "a b"]), /^--host "a b" is not host\[:port\]/);
  assert.match(error(["--bogus"]), /bogus/);
  assert.match(error(["positional"]), /positional/);
  assert.equal(error(["--crypto", "fast"]), "--crypto fast is not one of auto, native, portable");
  assert.equal(error(["--libcrypto="]), "--libcrypto needs a path");
});

Deno.test("--host takes several servers, each with its port or --port's, in the order given", () => {
  assert.deepEqual(
    options(["--host", "a.example:5002,B.example, [2001:db8::1]:7000,c", "--port", "6000"]).servers,
    [
      { host: "a.example", port: 5002 },
      { host: "B.example", port: 6000 },
      { host: "2001:db8::1", port: 7000 },
      { host: "c", port: 6000 },
    ],
  );
  const most = Array.from({ length: MAX_SERVERS }, (_, i) => `n${i}`).join(",");
  assert.equal(options(["--host", most]).servers.length, MAX_SERVERS);
});

Deno.test("--host names the entry it refuses: empty, malformed, a bad port, twice, too many", () => {
  assert.equal(error(["--host", ""]), '--host has an empty entry: ""');
  assert.equal(error(["--host", "a,,b"]), '--host has an empty entry (entry 2): "a,,b"');
  assert.equal(error(["--host", "a,"]), '--host has an empty entry (entry 2): "a,"');
  assert.equal(
    error(["--host", "a:5002,b:0"]),
    '--host "b:0" (entry 2) is not host[:port] (port 1-65535, an IPv6 address in brackets)',
  );
  assert.match(
    error(["--host", "a,b:70000"]),
    /^--host "b:70000" \(entry 2\) is not host\[:port\]/,
  );
  assert.match(error(["--host", "::1"]), /^--host "::1" is not host\[:port\] .*IPv6 .* brackets/);
  assert.match(error(["--host", "user@a"]), /^--host "user@a" is not host\[:port\]/);
  assert.equal(error(["--host", "a:5002,b,A"]), "--host names a:5002 twice");
  assert.equal(error(["--host", "a,b,B:6000", "--port", "6000"]), "--host names b:6000 twice");
  const many = Array.from({ length: MAX_SERVERS + 1 }, (_, i) => `n${i}`).join(",");
  assert.equal(
    error(["--host", many]),
    `--host names ${MAX_SERVERS + 1} servers, more than MAX_SERVERS (${MAX_SERVERS})`,
  );
});

Deno.test("parseClientArgs() takes the engine from HYBRID_CRYPTO when no flag gives it", () => {
  const env = (name: string) => ({ HYBRID_CRYPTO: "native" } as Record<string, string>)[name];
  const parsed = parseClientArgs([], env);
  assert.equal(parsed.kind === "run" && parsed.options.crypto, "native");
  const flagWins = parseClientArgs(["--crypto", "auto"], env);
  assert.equal(flagWins.kind === "run" && flagWins.options.crypto, "auto");
});

Deno.test("--group takes each of the five groups, in either spelling of the hybrid", () => {
  for (const name of ["ffdhe2048", "ffdhe3072", "ffdhe4096", "x25519", "x25519mlkem768"]) {
    assert.equal(options(["--group", name]).group.name, name);
  }
  assert.equal(options(["--group", "X25519MLKEM768"]).group.id, 0x11ec);
  assert.match(error(["--group", "p256"]), /--group p256 is not one of .*x25519, x25519mlkem768/);
});

Deno.test("a refused group names the server's list and suggests only the groups in it", () => {
  const hybrid = options([]).group;
  const text = unsupportedGroupMessage(
    hybrid,
    "group x25519mlkem768 is not offered; this server offers ffdhe2048, x25519",
  );
  assert.match(text, /does not offer the X25519MLKEM768 key exchange/);
  assert.match(text, /it says: .*this server offers ffdhe2048, x25519/);
  // Not ffdhe3072 nor ffdhe4096: the server said it does not offer them.
  assert.match(text, /; try --group ffdhe2048, --group x25519$/);
  // "x25519" inside "x25519mlkem768" is not the name of the classical group.
  assert.match(
    unsupportedGroupMessage(options(["--group", "ffdhe4096"]).group, "offers X25519MLKEM768"),
    /; try --group x25519mlkem768$/,
  );
});

Deno.test("a refused group whose server names no group we know suggests every other one", () => {
  const text = unsupportedGroupMessage(options([]).group, "no");
  assert.match(
    text,
    /try --group ffdhe2048, --group ffdhe3072, --group ffdhe4096, --group x25519$/,
  );
});
