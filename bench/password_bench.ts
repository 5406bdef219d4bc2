// Micro benchmark of password hashing at the production setting (PASSWORD_PARAMS: scrypt
// N=2^15, r=8, p=3), beside node:crypto's scrypt called directly with the same parameters
// (the baseline: what the wrapper adds), and the weak test setting for contrast.
// Each hash takes a few hundred milliseconds, so few iterations are run.
//
//   deno bench --allow-all bench/password_bench.ts
import { scrypt } from "node:crypto";
import {
  hashPassword,
  PASSWORD_PARAMS,
  type ScryptParams,
  TEST_ONLY_WEAK_PARAMS,
  verifyPassword,
} from "../crypto/mod.ts";

const PASSWORD = "correct horse battery staple";
/** Iterations of each slow benchmark: enough for a stable mean, short enough to wait for. */
const SLOW_RUNS = 10;
const stored = await hashPassword(PASSWORD, PASSWORD_PARAMS);

function rawScrypt(params: ScryptParams): Promise<Uint8Array> {
  const N = 2 ** params.logN;
  const maxmem = 128 * N * params.r + 4 * 1024 * 1024;
  return new Promise((resolve, reject) =>
    scrypt(
      PASSWORD,
      crypto.getRandomValues(new Uint8Array(16)),
      32,
      { N, r: params.r, p: params.p, maxmem },
      (err, key) => err ? reject(err) : resolve(new Uint8Array(key)),
    )
  );
}

Deno.bench({
  name: "node:crypto scrypt N=2^15 r=8 p=3 (direct)",
  group: "password hash",
  baseline: true,
  n: SLOW_RUNS,
  warmup: 1,
  fn: async () => {
    await rawScrypt(PASSWORD_PARAMS);
  },
});
Deno.bench({
  name: "hashPassword(PASSWORD_PARAMS)",
  group: "password hash",
  n: SLOW_RUNS,
  warmup: 1,
  fn: async () => {
    await hashPassword(PASSWORD, PASSWORD_PARAMS);
  },
});
Deno.bench({
  name: "verifyPassword (PASSWORD_PARAMS hash)",
  group: "password hash",
  n: SLOW_RUNS,
  warmup: 1,
  fn: async () => {
    if (!(await verifyPassword(PASSWORD, stored))) throw new Error("verify failed");
  },
});
Deno.bench({
  name: "hashPassword(TEST_ONLY_WEAK_PARAMS), for contrast",
  group: "password hash",
  fn: async () => {
    await hashPassword(PASSWORD, TEST_ONLY_WEAK_PARAMS);
  },
});
