// What the shipped programs load: the server's and the client's module graphs (deno info) hold
// only the audited runtime packages, never a test-only one such as node-forge (kept for tests
// and benchmarks as an independent implementation, and not reachable by name from other code).
import assert from "node:assert/strict";

/** npm packages (name@version) whose modules the graph of `entry` contains. */
async function npmPackagesOf(entry: string): Promise<string[]> {
  const path = new URL(`../../${entry}`, import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { kind?: string; npmPackage?: string; specifier: string }[];
  };
  const packages = graph.modules.flatMap((m) =>
    m.kind === "npm" ? [m.npmPackage ?? m.specifier] : []
  );
  assert.ok(graph.modules.length > 10, `${entry}: a graph of ${graph.modules.length} modules`);
  return [...new Set(packages.map((p) => p.replace(/@[^@]*$/, "")))].sort();
}

/** The only npm packages runtime code may load. */
const RUNTIME_PACKAGES = [
  "@noble/ciphers",
  "@noble/curves",
  "@noble/hashes",
  "@noble/post-quantum",
  "postgres",
];

for (
  const entry of [
    "server/main.ts",
    "client/main.ts",
    "admin/print_events.ts",
    "admin/compact_log.ts",
  ]
) {
  Deno.test(`${entry} loads only the runtime packages (${RUNTIME_PACKAGES.join(", ")})`, async () => {
    const packages = await npmPackagesOf(entry);
    assert.ok(!packages.includes("node-forge"), `${entry} reaches node-forge`);
    for (const name of packages) {
      assert.ok(RUNTIME_PACKAGES.includes(name), `${entry} loads ${name}`);
    }
  });
}

Deno.test("node-forge resolves by name only in tests/ and bench/ (deno.json scopes)", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { imports: Record<string, string>; scopes: Record<string, Record<string, string>> };
  assert.ok(!("node-forge" in config.imports));
  assert.deepEqual(
    Object.entries(config.scopes).filter(([, map]) => "node-forge" in map).map(([scope]) => scope)
      .sort(),
    ["./bench/", "./tests/"],
  );
});
