// Command line and HYBRID_* environment of the server (PROTOCOL §5 and our own).
import assert from "node:assert/strict";
import { type Config, DEFAULT_LIMITS, parseConfig, UsageError } from "../../server/config.ts";

const parse = (args: string[], env: Record<string, string> = {}) =>
  parseConfig(args, env) as Config;

Deno.test("defaults: 0.0.0.0:5002, ./events.log, key beside the log, fsync always, §5 limits", () => {
  const c = parse([]);
  assert.deepEqual([c.host, c.port, c.log, c.key, c.fsync, c.trace, c.jsonLogs], [
    "0.0.0.0",
    5002,
    "./events.log",
    "./server_key.pem",
    "always",
    false,
    false,
  ]);
  assert.deepEqual(c.limits, DEFAULT_LIMITS);
  assert.equal(parse(["--log", "/var/chat/events.log"]).key, "/var/chat/server_key.pem");
  assert.equal(parse(["--log", "events.log"]).key, "server_key.pem");
});

Deno.test("flags win over HYBRID_* variables, which win over defaults", () => {
  const env = {
    HYBRID_HOST: "127.0.0.2",
    HYBRID_PORT: "6000",
    HYBRID_LOG: "/tmp/x.log",
    HYBRID_FSYNC: "off",
    HYBRID_TRACE: "1",
  };
  const fromEnv = parse([], env);
  assert.deepEqual([fromEnv.host, fromEnv.port, fromEnv.log, fromEnv.fsync, fromEnv.trace], [
    "127.0.0.2",
    6000,
    "/tmp/x.log",
    "off",
    true,
  ]);
  const fromFlags = parse(["--host", "::1", "--port", "0", "--fsync", "always"], env);
  assert.deepEqual([fromFlags.host, fromFlags.port, fromFlags.fsync], ["::1", 0, "always"]);
});

Deno.test("--limit and HYBRID_LIMITS override named limits; --max-connections too", () => {
  const c = parse(["--limit", "idle_timeout_ms=1000", "--max-connections", "7"], {
    HYBRID_LIMITS: "msg_burst=3,hash_queue=9",
  });
  assert.equal(c.limits.idle_timeout_ms, 1000);
  assert.equal(c.limits.msg_burst, 3);
  assert.equal(c.limits.hash_queue, 9);
  assert.equal(c.limits.max_connections, 7);
});

Deno.test("bad values are UsageErrors that name the flag and the value", () => {
  const cases: [string[], RegExp][] = [
    [["--port", "65536"], /--port .* got "65536"/],
    [["--port", "http"], /--port/],
    [["--fsync", "sometimes"], /--fsync must be "always" or "off", got "sometimes"/],
    [["--limit", "nonsense=1"], /NAME one of .*got "nonsense=1"/],
    [["--limit", "msg_burst=0"], /limit msg_burst .* got "0"/],
    [["--max-connections", "-1"], /--max-connections/],
    [["--what"], /what/],
    [["--log", ""], /--log must not be empty/],
  ];
  for (const [args, message] of cases) {
    assert.throws(
      () => parseConfig(args, {}),
      (e) => e instanceof UsageError && message.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("--help and --version are recognised", () => {
  assert.equal(parseConfig(["--help"], {}), "help");
  assert.equal(parseConfig(["-V"], {}), "version");
});

Deno.test("--crypto and --libcrypto choose the engine (default auto), also from HYBRID_CRYPTO", () => {
  assert.deepEqual([parse([]).crypto, parse([]).libcrypto], ["auto", undefined]);
  const env = { HYBRID_CRYPTO: "portable", HYBRID_LIBCRYPTO: "/opt/ssl/libcrypto.so.3" };
  assert.deepEqual([parse([], env).crypto, parse([], env).libcrypto], [
    "portable",
    "/opt/ssl/libcrypto.so.3",
  ]);
  assert.equal(parse(["--crypto", "native"], env).crypto, "native");
  assert.throws(
    () => parseConfig(["--crypto", "fast"], {}),
    (e) =>
      e instanceof UsageError && /--crypto must be one of auto, native, portable/.test(e.message),
  );
  assert.throws(() => parseConfig(["--libcrypto", ""], {}), UsageError);
});

Deno.test("--groups narrows the key-exchange groups offered; all five by default", () => {
  assert.deepEqual(parse([]).groups.map((g) => g.name), [
    "ffdhe2048",
    "ffdhe3072",
    "ffdhe4096",
    "x25519",
    "x25519mlkem768",
  ]);
  assert.deepEqual(parse(["--groups", "x25519mlkem768, x25519"]).groups.map((g) => g.id), [
    0x11ec,
    0x001d,
  ]);
  assert.deepEqual(parse([], { HYBRID_GROUPS: "ffdhe3072" }).groups.map((g) => g.name), [
    "ffdhe3072",
  ]);
  assert.throws(() => parse(["--groups", "x25519,p256"]), /--groups takes names from .*"p256"/);
  assert.throws(() => parse(["--groups", ""]), UsageError);
  assert.throws(() => parse(["--groups", "x25519,x25519"]), /names a group twice/);
});

Deno.test("HYBRID_INSECURE_FAST_HASH is refused: weak hashing is asked for on the command line only", () => {
  assert.throws(
    () => parse([], { HYBRID_INSECURE_FAST_HASH: "1" }),
    (err: Error) => err instanceof UsageError && /--insecure-fast-hash/.test(err.message),
  );
  assert.throws(
    () => parse(["--insecure-fast-hash"], { HYBRID_INSECURE_FAST_HASH: "0" }),
    UsageError,
  );
  assert.equal(parse(["--insecure-fast-hash"]).insecureFastHash, true);
  assert.equal(parse([]).insecureFastHash, false);
});
