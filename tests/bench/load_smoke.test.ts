// A seconds-long smoke run of the load generator (bench/load.ts) against the real server and
// both baselines, so that CI keeps it working. Its figures are not judged here: benchmarks are
// not timed tests. What is checked is that every phase ran, every figure came out as a finite
// number, and no request failed.
import assert from "node:assert/strict";
import { LOGIN_FAILURES_PER_ADDRESS } from "../../protocol/limits.ts";

const LOAD = new URL("../../bench/load.ts", import.meta.url).pathname;
/** The run takes about ten seconds; past this something hangs. */
const RUN_TIMEOUT_MS = 90_000;
/**
 * Idle sessions, all logging in from 127.0.0.1: more than the server's default login budget
 * per address (§5 counts logins in flight against it), which the load's server must not apply.
 */
const IDLE = 2 * LOGIN_FAILURES_PER_ADDRESS;

/** The keys `--json` must always carry: what docs/PERFORMANCE.md and CI read. */
const REQUIRED = [
  "delivered_per_s",
  "baseline_relay_per_s",
  "p50_ms",
  "p99_ms",
  "p999_ms",
  "offered_rate",
  "handshakes_per_s",
  "tls_handshakes_per_s",
  "server_peak_rss_mib",
  "rss_per_idle_session_kib",
] as const;

Deno.test("bench/load.ts --json reports every required figure as a finite number, with no errors", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      LOAD,
      "--seconds",
      "1",
      "--clients",
      "4",
      "--idle",
      String(IDLE),
      "--connectors",
      "2",
      "--rate",
      "500",
      "--sealed",
      "--sealed-bits",
      "2048",
      "--json",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
  }).output();
  const errors = new TextDecoder().decode(stderr);
  assert.equal(code, 0, `bench/load.ts exited with ${code}:\n${errors}`);
  const report = JSON.parse(new TextDecoder().decode(stdout)) as Record<string, unknown>;
  for (const key of REQUIRED) {
    assert.ok(
      typeof report[key] === "number" && Number.isFinite(report[key]),
      `${key} is ${JSON.stringify(report[key])}`,
    );
  }
  assert.equal(report.offered_rate, 500);
  for (
    const key of [
      "delivered_per_s",
      "baseline_relay_per_s",
      "handshakes_per_s",
      "tls_handshakes_per_s",
    ]
  ) {
    assert.ok((report[key] as number) > 0, `${key} is ${report[key]}: the phase moved nothing`);
  }
  // Every group's handshakes were measured beside TLS, and the sessions used the client default.
  assert.equal(report.handshake_group, "x25519mlkem768");
  const byGroup = report.handshakes_by_group as Record<string, Record<string, number>>;
  assert.deepEqual(Object.keys(byGroup), [
    "ffdhe2048",
    "ffdhe3072",
    "ffdhe4096",
    "x25519",
    "x25519mlkem768",
  ]);
  for (const [group, figures] of Object.entries(byGroup)) {
    assert.ok(figures.handshakes_per_s! > 0, `${group}: ${JSON.stringify(figures)}`);
    assert.ok(Number.isFinite(figures.server_cpu_ms_per_handshake), group);
    assert.equal(figures.failed, 0, group);
  }
  // --sealed: sealed messages beside texts, each phase moving messages, none refused.
  const sealed = report.sealed as Record<string, unknown>;
  for (
    const key of [
      "text_per_s",
      "sealed_per_s",
      "same_wire_text_per_s",
      "cpu_ratio_sealed_to_text",
      "cpu_ratio_sealed_to_same_wire_text",
    ]
  ) {
    assert.ok(
      typeof sealed[key] === "number" && (sealed[key] as number) > 0,
      `sealed.${key} is ${sealed[key]}`,
    );
  }
  assert.deepEqual(sealed.errors, { text: {}, sealed: {}, same_wire: {} });
  assert.deepEqual(report.errors, {
    server_saturation: {},
    server_latency: {},
    relay_saturation: {},
    relay_latency: {},
    handshakes_failed: 0,
    tls_handshakes_failed: 0,
  });
});
