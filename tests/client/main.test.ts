// client/main.ts as a program: flags, exit statuses, and that it bundles into one runnable file.
import assert from "node:assert/strict";
import { tempDir } from "./_harness.ts";

const CLIENT = new URL("../../client/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("--version and --help print and exit 0; a bad flag exits 2 with a hint", async () => {
  const version = await run(["run", "-A", CLIENT, "--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^hybrid-client \d+\.\d+\.\d+ \(HSP\/1\)\n$/);

  const help = await run(["run", "-A", CLIENT, "--help"]);
  assert.equal(help.code, 0);
  for (const flag of ["--host", "--port", "--group", "--user", "--known-hosts", "--json"]) {
    assert.ok(help.stdout.includes(flag), `--help mentions ${flag}`);
  }

  const bad = await run(["run", "-A", CLIENT, "--group", "ffdhe1024"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--group ffdhe1024 is not one of ffdhe2048, ffdhe3072, ffdhe4096/);
});

Deno.test("--crypto native without FFI permission, or without the library, exits 2 saying why", async () => {
  const noFfi = ["--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys"];
  const refused = await run(["run", ...noFfi, CLIENT, "--crypto", "native", "--version"]);
  // --version answers before any engine is chosen; a run needs the engine first.
  assert.equal(refused.code, 0);
  const denied = await run(["run", ...noFfi, CLIENT, "--crypto", "native"]);
  assert.equal(denied.code, 2);
  assert.match(denied.stderr, /--crypto native: FFI is not permitted \(run with --allow-ffi\)/);
  const missing = await run(
    ["run", "-A", CLIENT, "--crypto", "native", "--libcrypto", "/nonexistent/libcrypto.so.3"],
  );
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--crypto native: cannot load libcrypto \(\/nonexistent/);
  const badMode = await run(["run", "-A", CLIENT, "--crypto", "fastest"]);
  assert.equal(badMode.code, 2);
  assert.match(badMode.stderr, /--crypto fastest is not one of auto, native, portable/);
});

Deno.test("a server that is not there is reported, and the script's status is 1", async () => {
  await using dir = await tempDir();
  // A port that was free a moment ago: nothing listens on it now.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const result = await run(["run", "-A", CLIENT, "--port", String(port), "--json"], {
    HYBRID_HOME: dir.path,
  });
  assert.equal(result.code, 1);
  const events = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(events[0].event, "connecting");
  assert.equal(events[1].event, "error");
  assert.equal(events[1].code, "connect_failed");
});

Deno.test("deno bundle makes one file of the client that runs", async () => {
  await using dir = await tempDir();
  const bundle = `${dir.path}/hybrid-client.js`;
  const built = await run(["bundle", "--quiet", "--config", CONFIG, CLIENT, "-o", bundle]);
  assert.equal(built.code, 0, built.stderr);
  // No permissions at all: --version must not touch the network, files or environment.
  const version = await run(["run", "--no-config", bundle, "--version"]);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^hybrid-client \d+\.\d+\.\d+ \(HSP\/1\)\n$/);
});
