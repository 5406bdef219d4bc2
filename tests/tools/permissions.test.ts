// The native engine under scoped permissions: `--allow-ffi=PATH` is enough for `auto` to load
// OpenSSL, and the server and client tasks of deno.json start, load it and work under exactly
// the permissions they grant (a mis-scoped flag in deno.json fails here, not in a user's hands).
import assert from "node:assert/strict";
import { parseClientArgs } from "../../client/args.ts";
import { loadNativeCrypto } from "../../crypto/native.ts";
import { parseConfig, UsageError } from "../../server/config.ts";
import { Lines, runServer } from "../../tools/server_process.ts";
import { NATIVE_SKIPPED } from "../_engines.ts";

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const PROBE = new URL("./_engine_probe.ts", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}, stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1", ...env },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const output = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test({
  name:
    "auto loads OpenSSL with FFI permitted for the library's path alone, and says why not without",
  ignore: NATIVE_SKIPPED,
  fn: async () => {
    const probe = async (...flags: string[]) => {
      const result = await run(["run", "--quiet", ...flags, PROBE, "auto"]);
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout) as { engine: string; fallback?: string };
    };
    const scoped = await probe(`--allow-ffi=${loadNativeCrypto().path}`);
    assert.equal(scoped.engine, "native", scoped.fallback);
    const elsewhere = await probe("--allow-ffi=/nonexistent/libcrypto.so.3");
    assert.equal(elsewhere.engine, "portable");
    assert.match(elsewhere.fallback ?? "", /^FFI is not permitted \(run with --allow-ffi\) for \//);
    const none = await probe();
    assert.equal(none.engine, "portable");
    assert.match(none.fallback ?? "", /^FFI is not permitted \(run with --allow-ffi\) for \//);
  },
});

Deno.test("`deno task server --help` and `deno task client --help` run under the tasks' permissions", async () => {
  for (const task of ["server", "client"]) {
    const help = await run(["task", "--quiet", "--config", CONFIG, task, "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /--crypto/);
  }
});

Deno.test({
  name:
    "`deno task server` loads OpenSSL and serves under its own permissions, and `deno task client` talks to it on OpenSSL under its own",
  ignore: NATIVE_SKIPPED,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "hybrid-task-" });
    const server = new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "--config", CONFIG, "server", "--host", "127.0.0.1"].concat(
        ["--port", "0", "--log", `${dir}/events.log`, "--insecure-fast-hash"],
      ),
      env: { NO_COLOR: "1", HYBRID_DATA: dir, HYBRID_CRYPTO: "auto" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new Lines(server.stdout);
    const stderr = new Lines(server.stderr);
    try {
      await stderr.wait(/crypto engine engine=native detail="OpenSSL 3\./);
      const port = (await stdout.wait(/^listening on 127\.0\.0\.1:(\d+)$/))[1]!;
      assert.doesNotMatch(stderr.text, /NATIVE CRYPTO UNAVAILABLE/);
      const client = await run(
        ["task", "--quiet", "--config", CONFIG, "client", "--port", port, "--crypto", "native"]
          .concat("--json"),
        { HYBRID_HOME: `${dir}/home` },
        "/signup alice\nalice-password-1\n/quit\n",
      );
      assert.equal(client.code, 0, client.stderr + client.stdout);
      assert.match(client.stdout, /"event":"ack","request":"SNU"/);
      assert.ok((await Deno.stat(`${dir}/home/known_hosts`)).isFile);
    } finally {
      server.kill("SIGTERM");
      const status = await server.status;
      await Promise.all([stdout.done, stderr.done]);
      await Deno.remove(dir, { recursive: true });
      assert.equal(status.code, 0, stderr.text);
    }
    assert.match(stderr.text, /shutdown complete/);
    // The handshake workers load their module under the task's permissions too.
    assert.doesNotMatch(stderr.text, /handshake worker failed/);
  },
});

Deno.test("a server whose auto engine falls back to portable warns once, loudly, saying why and what it costs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-fallback-" });
  try {
    const server = await runServer(
      ["--host", "127.0.0.1", "--port", "0", "--log", `${dir}/events.log`, "--crypto", "auto"],
      { permissions: ["--allow-net", "--allow-read", "--allow-write", "--allow-env"] },
    );
    server.child.kill("SIGTERM");
    assert.equal(await server.exited, 0);
    const warnings = server.stderr.lines.filter((line) =>
      / warn +NATIVE CRYPTO UNAVAILABLE/.test(line)
    );
    assert.equal(warnings.length, 1, server.stderr.text);
    assert.match(warnings[0]!, /reason="FFI is not permitted/);
    assert.match(warnings[0]!, /Marvin/);
    assert.match(warnings[0]!, /T-tables/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a relative or bare --libcrypto is a usage error for the server and the client", () => {
  for (const name of ["libcrypto.so.3", "./lib/libcrypto.so.3"]) {
    assert.throws(
      () => parseConfig(["--libcrypto", name], {}),
      (e) => e instanceof UsageError && /must be an absolute path/.test(e.message),
    );
    assert.throws(() => parseConfig([], { HYBRID_LIBCRYPTO: name }), UsageError);
    const client = parseClientArgs(["--libcrypto", name]);
    assert.equal(
      client.kind === "error" && client.message,
      `--libcrypto ${name} is not an absolute path`,
    );
  }
  const absolute = parseClientArgs(["--libcrypto", "/opt/ssl/libcrypto.so.3"]);
  assert.equal(absolute.kind, "run");
});
