// Short seeded torture runs: crash loops and hostile clients, nothing lost; one server on its
// log file, and three nodes on one PostgreSQL whose database also restarts once.
import assert from "node:assert/strict";
import { PG_SKIP_REASON } from "../_postgres.ts";

async function torture(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../tools/torture/main.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `${text}\n${new TextDecoder().decode(out.stderr)}`);
  const m = text.match(/^acked (\d+), delivered (\d+), lost (\d+), duplicates (\d+)$/m);
  assert.ok(m, text);
  assert.ok(Number(m[1]) > 50, "too few messages to mean anything");
  assert.equal(m[1], m[2]);
  assert.equal(m[3], "0");
  assert.match(text, /node kills \(SIGKILL\) and restarts\s+[1-9]/);
  assert.match(text, /guessed account usable by its owner\s+yes/);
  // A share of the honest traffic went sealed, and every sealed message opened on arrival.
  const sealed = text.match(/sealed: stored \/ delivered \/ opened\s+(\d+) \/ (\d+) \/ (\d+)/);
  assert.ok(sealed, text);
  assert.ok(Number(sealed[2]) > 10, "too few sealed messages to mean anything");
  assert.equal(sealed[2], sealed[3]);
  return text;
}

Deno.test("a 20-second seeded torture run loses nothing and keeps every promise", async () => {
  await torture(["--seconds", "20", "--seed", "1"]);
});

Deno.test({
  name: "three nodes on one PostgreSQL, killed at random and the database restarted, lose nothing",
  ignore: PG_SKIP_REASON !== undefined,
  fn: async () => {
    const text = await torture([
      "--seconds",
      "20",
      "--seed",
      "2",
      "--nodes",
      "3",
      "--store",
      "throwaway",
    ]);
    assert.match(text, /database restarts\s+1/);
  },
});
