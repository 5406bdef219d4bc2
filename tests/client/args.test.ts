// The client's flags: defaults, every flag of the issue, and a clear error for each bad value.
import assert from "node:assert/strict";
import { DEFAULT_PORT, parseClientArgs, unsupportedGroupMessage } from "../../client/args.ts";

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
  assert.equal(o.host, "127.0.0.1");
  assert.equal(o.port, DEFAULT_PORT);
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
  assert.equal(o.host, "chat.example");
  assert.equal(o.port, 6000);
  assert.equal(o.group.name, "ffdhe4096");
  assert.equal(o.user, "alice");
  assert.equal(o.knownHosts, "/tmp/kh");
  assert.deepEqual([o.acceptNewKey, o.trace, o.json, o.noColor], [true, true, true, true]);
  assert.deepEqual([o.crypto, o.libcrypto], ["portable", "/opt/ssl/libcrypto.so.3"]);
  assert.equal(options(["--host", "[::1]"]).host, "::1");
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
  assert.match(error(["--host", "a b"]), /is not a host name/);
  assert.match(error(["--bogus"]), /bogus/);
  assert.match(error(["positional"]), /positional/);
  assert.equal(error(["--crypto", "fast"]), "--crypto fast is not one of auto, native, portable");
  assert.equal(error(["--libcrypto="]), "--libcrypto needs a path");
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

Deno.test("a refused group names the server's list and every other group to try", () => {
  const hybrid = options([]).group;
  const text = unsupportedGroupMessage(hybrid, "this server offers ffdhe2048, x25519");
  assert.match(text, /does not offer the X25519MLKEM768 key exchange/);
  assert.match(text, /it says: this server offers ffdhe2048, x25519/);
  assert.match(
    text,
    /try --group ffdhe2048, --group ffdhe3072, --group ffdhe4096, --group x25519$/,
  );
});
