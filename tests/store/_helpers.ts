// Shared by the store tests: temporary directories, a seeded PRNG and event generators.

import type { Event } from "../../store/mod.ts";

/** Runs `fn` with a fresh temporary directory, removed afterwards whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "store_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** mulberry32: a small seeded PRNG, so every "random" test is reproducible. Returns [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max] from `random`. */
export function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** A password hash in the server's format; opaque to the store. */
export function fakeHash(seed: string): string {
  const b64 = (s: string) => btoa(s.padEnd(16, "#"));
  return `scrypt$17$8$1$${b64(`salt-${seed}`)}$${b64(`hash-${seed}-0123456789abcdef`)}`;
}

/** One event of every type, for round trips. */
export function everyEventType(): Event[] {
  return [
    { type: "user_signed_up", ts: 1, user: "alice", passwordHash: fakeHash("alice") },
    { type: "login_succeeded", ts: 2, user: "alice", addr: "127.0.0.1:50000" },
    { type: "login_failed", ts: 3, user: "bob", addr: "[::1]:4000" },
    { type: "logged_out", ts: 4, user: "alice" },
    { type: "password_changed", ts: 5, user: "alice", passwordHash: fakeHash("alice2") },
    { type: "message_sent", ts: 6, msg: "m1", from: "alice", to: "bob", text: "héllo 👋\u0000\n" },
    { type: "message_sent", ts: 7, msg: "m2", from: "alice", to: "bob", text: "x", cid: "c-1" },
    { type: "message_delivered", ts: 8, msg: "m1", user: "bob" },
    { type: "cid_remembered", ts: 9, from: "alice", cid: "c-0", msg: "m0" },
    { type: "log_compacted", ts: 10, events: 12345 },
    {
      type: "sealed_message_sent",
      ts: 11,
      msg: "m3",
      from: "alice",
      to: "bob",
      sealed: "SFNFAQ==",
    },
    {
      type: "sealed_message_sent",
      ts: 12,
      msg: "m4",
      from: "alice",
      to: "bob",
      sealed: "AAAA",
      cid: "c-2",
    },
    {
      type: "user_key_published",
      ts: 13,
      user: "alice",
      key: "MIIBIjAN",
      fingerprint: "SHA256:abc",
      bits: 3072,
    },
  ];
}

/** A message event; `n` makes msg, cid and text unique. */
export function message(n: number, from = "alice", to = "bob", text = `message ${n}`): Event {
  return {
    type: "message_sent",
    ts: 1_700_000_000_000 + n,
    msg: `m${n}`,
    from,
    to,
    text,
    cid: `c${n}`,
  };
}

/**
 * A plausible history from `random`: sign-ups, logins good and bad, logouts, password
 * changes, messages (with and without cids, over more than CID_MEMORY cids per sender) and
 * deliveries, mostly oldest first but not always.
 */
export function randomHistory(random: () => number, length: number): Event[] {
  const users = ["alice", "bob", "carol", "dave", "erin"];
  const signedUp: string[] = [];
  const pending = new Map<string, string[]>();
  const events: Event[] = [];
  let n = 0;
  for (let ts = 1_700_000_000_000; events.length < length; ts += between(random, 0, 3)) {
    const r = random();
    const user = users[between(random, 0, users.length - 1)]!;
    if (signedUp.length < 2 || (r < 0.02 && !signedUp.includes(user))) {
      const fresh = users.find((u) => !signedUp.includes(u));
      if (fresh) {
        signedUp.push(fresh);
        events.push({
          type: "user_signed_up",
          ts,
          user: fresh,
          passwordHash: fakeHash(`${fresh}${ts}`),
        });
        continue;
      }
    }
    if (r < 0.06) {
      events.push({
        type: "login_succeeded",
        ts,
        user,
        addr: `10.0.0.${between(random, 1, 9)}:${between(random, 1024, 65535)}`,
      });
    } else if (r < 0.08) {
      events.push({ type: "login_failed", ts, user, addr: "10.0.0.66:4444" });
    } else if (r < 0.09) {
      events.push({ type: "logged_out", ts, user });
    } else if (r < 0.1) {
      events.push({ type: "password_changed", ts, user, passwordHash: fakeHash(`${user}${ts}`) });
    } else if (r < 0.7) {
      const from = signedUp[between(random, 0, signedUp.length - 1)]!;
      const to = signedUp[between(random, 0, signedUp.length - 1)]!;
      const msg = `m${n++}`;
      const event: Event = { type: "message_sent", ts, msg, from, to, text: `text ${msg}` };
      if (random() < 0.8) event.cid = `cid-${from}-${n}`;
      events.push(event);
      pending.set(to, [...(pending.get(to) ?? []), msg]);
    } else {
      const to = signedUp[between(random, 0, signedUp.length - 1)]!;
      const queue = pending.get(to) ?? [];
      if (queue.length === 0) continue;
      // Mostly the oldest, as a client DAKs in order; sometimes another one, or an unknown msg.
      const i = random() < 0.8 ? 0 : between(random, 0, queue.length - 1);
      const msg = random() < 0.02 ? "no-such-msg" : queue.splice(i, 1)[0]!;
      events.push({ type: "message_delivered", ts, msg, user: to });
    }
  }
  return events;
}

/** Reads a whole file. */
export function bytesOf(path: string): Promise<Uint8Array> {
  return Deno.readFile(path);
}
