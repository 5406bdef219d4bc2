// `deno run -A bench/flood.ts`: what an unauthenticated handshake flood does to an honest,
// logged-in client. The attacker (bench/_flooder.ts, its own process) opens connections as fast
// as it can, sends a valid ClientHello (ffdhe4096 by default: the dearest answer) and closes;
// meanwhile the honest client pings every 20 ms and sends itself a message every 200 ms, and
// its round trips are measured. Scenarios, each on a fresh server, in one run:
//   quiet            no attack (the baseline)
//   one address      the flood from one address: the per-address handshake rate (§5) meets it
//   many, workers    from 256 addresses (no per-address limit applies), handshakes on a worker
//   many, inline     the same, handshakes on the event loop (handshake_workers=0)
import { parseArgs } from "node:util";
import { kexGroupByName, selectCrypto } from "../crypto/mod.ts";
import { TestLink } from "../tools/link.ts";
import { testServerArgs } from "../tools/server_process.ts";
import { ServerChild } from "./_process.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" },
    group: { type: "string", default: "ffdhe4096" },
    concurrency: { type: "string", default: "6" },
    json: { type: "boolean", default: false },
    "server-main": { type: "string" },
    scenarios: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "usage: deno run -A bench/flood.ts [--seconds 8] [--group ffdhe4096] [--concurrency 6]\n" +
      "         [--scenarios quiet,one,workers,inline] [--server-main PATH] [--json]\n" +
      "--server-main runs another server/main.ts (an older checkout, for a before/after); its\n" +
      "scenarios then run without --limit flags, which an older server may not know.",
  );
  Deno.exit(0);
}
const SECONDS = Number(values.seconds);
if (!kexGroupByName(values.group!)) throw new Error(`unknown group ${values.group}`);
const HERE = new URL(".", import.meta.url).pathname;
const PING_EVERY_MS = 20;
const MSG_EVERY_MS = 200;

interface Scenario {
  name: string;
  addresses: number;
  flood: boolean;
  limits: string[];
}

const ALL: Record<string, Scenario> = {
  quiet: { name: "quiet", addresses: 0, flood: false, limits: [] },
  one: { name: "one address", addresses: 1, flood: true, limits: [] },
  workers: { name: "many, workers", addresses: 256, flood: true, limits: ["handshake_workers=1"] },
  inline: { name: "many, inline", addresses: 256, flood: true, limits: ["handshake_workers=0"] },
};
const SERVER_MAIN = values["server-main"] ?? `${HERE}../server/main.ts`;
const SCENARIOS: Scenario[] = (values.scenarios ?? "quiet,one,workers,inline").split(",").map(
  (name) => {
    const scenario = ALL[name.trim()];
    if (!scenario) throw new Error(`unknown scenario ${name}: ${Object.keys(ALL).join(", ")}`);
    return values["server-main"] === undefined ? scenario : { ...scenario, limits: [] };
  },
);

interface Result {
  scenario: string;
  ping: { p50: number; p95: number; p99: number; n: number };
  msg: { p50: number; p95: number; p99: number; n: number };
  flood_sent: number;
  handshakes_done: number;
  refused_logged: number;
  server_cpu_ms: number;
}

function quantiles(samples: number[]): { p50: number; p95: number; p99: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) =>
    s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { p50: q(0.5), p95: q(0.95), p99: q(0.99), n: s.length };
}

async function run(scenario: Scenario): Promise<Result> {
  const dir = await Deno.makeTempDir({ prefix: "hybrid-flood-" });
  let handshakes = 0;
  let refusedLogged = 0;
  const limits = scenario.limits.flatMap((l) => ["--limit", l]);
  const server = await ServerChild.start(SERVER_MAIN, testServerArgs(dir, limits), {
    onLine: (line) => {
      if (line.includes("handshake done")) handshakes++;
      if (line.includes("connection refused")) refusedLogged++;
    },
  });
  try {
    const honest = await TestLink.open(server.port, () => {}, {
      crypto: selectCrypto("auto").engine,
    });
    await honest.request({ code: "SNU", user: "honest", password: "password-honest" });
    await honest.request({ code: "LGN", user: "honest", password: "password-honest" });
    const cpuBefore = server.cpuMs();
    const flooder = scenario.flood
      ? new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${HERE}_flooder.ts`,
          "--port",
          String(server.port),
          "--group",
          values.group!,
          "--addresses",
          String(scenario.addresses),
          "--concurrency",
          values.concurrency!,
          "--seconds",
          String(SECONDS),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output()
      : undefined;
    const pings: number[] = [];
    const msgs: number[] = [];
    const end = Date.now() + SECONDS * 1000;
    let nextMsg = Date.now();
    while (Date.now() < end) {
      const t0 = performance.now();
      await honest.request({ code: "PNG" });
      pings.push(performance.now() - t0);
      if (Date.now() >= nextMsg) {
        nextMsg += MSG_EVERY_MS;
        const t1 = performance.now();
        await honest.request({ code: "MSG", to: "honest", text: "still here" });
        msgs.push(performance.now() - t1);
      }
      const wait = PING_EVERY_MS - (performance.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const cpu = server.cpuMs() - cpuBefore;
    let sent = 0;
    if (flooder) {
      const out = await flooder;
      sent = JSON.parse(new TextDecoder().decode(out.stdout).trim()).sent;
    }
    await honest.close();
    return {
      scenario: scenario.name,
      ping: quantiles(pings),
      msg: quantiles(msgs),
      flood_sent: sent,
      handshakes_done: handshakes - 1,
      refused_logged: refusedLogged,
      server_cpu_ms: cpu,
    };
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

const results: Result[] = [];
for (const scenario of SCENARIOS) results.push(await run(scenario));
if (values.json) {
  console.log(JSON.stringify({ group: values.group, seconds: SECONDS, results }, null, 2));
} else {
  const f = (x: number) => x.toFixed(1).padStart(7);
  console.log(
    `flood: ${values.group} ClientHellos, ${values.concurrency} connections at a time, ${SECONDS} s per scenario`,
  );
  console.log(
    "scenario          ping p50    p95    p99 | MSG p50    p95    p99 | hellos/s  handshakes/s  server CPU",
  );
  for (const r of results) {
    console.log(
      `${r.scenario.padEnd(15)} ${f(r.ping.p50)}${f(r.ping.p95)}${f(r.ping.p99)} |${f(r.msg.p50)}${
        f(r.msg.p95)
      }${f(r.msg.p99)} | ${String(Math.round(r.flood_sent / SECONDS)).padStart(8)}  ${
        String(Math.round(r.handshakes_done / SECONDS)).padStart(12)
      }  ${(r.server_cpu_ms / SECONDS / 10).toFixed(0).padStart(8)}%`,
    );
  }
  console.log("(round trips in ms; server CPU in % of one core)");
}
