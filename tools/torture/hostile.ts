// Hostile clients for the torture run, each from its own loopback address, each checking the
// server reacts as HSP/1 says: close (silently, or with ERR where §2.3 says so), refuse, throttle.
import type { CryptoEngine } from "../../crypto/mod.ts";
import type { Transport } from "../../protocol/channel.ts";
import { encodeFrame } from "../../protocol/frame.ts";
import { decodeHandshakeError } from "../../protocol/handshake.ts";
import { connectFrom } from "../node_transport.ts";
import { helloFrameWithShare, holdingSession, readToClose } from "../raw_conn.ts";
import type { Prng } from "../prng.ts";
import { TestLink } from "../link.ts";

/** The server under attack: its port (known once it listens), and the engine to talk to it on. */
export interface Target {
  readonly port: () => number;
  readonly crypto: CryptoEngine;
}

/** Invalid shares to send (the protocol's negative vectors, passed in by the caller). */
export interface InvalidShare {
  readonly group: number;
  readonly why: string;
  readonly share: string;
}

export interface AttackStats {
  readonly name: string;
  attempts: number;
  /** Attempts the server answered exactly as the protocol says. */
  expected: number;
  anomalies: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Shared shape: a loop of attempts until stopped. */
abstract class Attack {
  readonly stats: AttackStats;
  running = true;
  done: Promise<void> = Promise.resolve();

  constructor(
    name: string,
    readonly from: string,
    readonly target: Target,
    readonly rng: Prng,
  ) {
    this.stats = { name, attempts: 0, expected: 0, anomalies: [] };
  }

  port(): number {
    return this.target.port();
  }

  /** How a TestLink of this attack connects: from its address, on the target's engine. */
  linkOptions(): { crypto: CryptoEngine; from: string } {
    return { crypto: this.target.crypto, from: this.from };
  }

  start(): this {
    this.done = (async () => {
      while (this.running) {
        this.stats.attempts++;
        try {
          const verdict = await this.attempt();
          if (verdict === true) this.stats.expected++;
          else if (typeof verdict === "string" && this.stats.anomalies.length < 20) {
            this.stats.anomalies.push(verdict);
          }
        } catch (err) {
          // Connect failures while the server is at its connection caps are expected.
          if (!(err instanceof Error && /refused|reset|closed/i.test(err.message))) {
            if (this.stats.anomalies.length < 20) this.stats.anomalies.push(String(err));
          }
        }
        await sleep(this.pause());
      }
    })();
    return this;
  }

  pause(): number {
    return this.rng.range(20, 120);
  }

  /** true: the server reacted as it must; a string: what went wrong; undefined: inconclusive. */
  abstract attempt(): Promise<true | string | undefined>;

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  connect(): Promise<Transport> {
    return connectFrom(this.from, "127.0.0.1", this.port());
  }
}

/** Random bytes: dropped silently or told ERR bad_hello, never anything else. */
export class RandomBytes extends Attack {
  async attempt(): Promise<true | string | undefined> {
    const t = await this.connect();
    await t.write(this.rng.bytes(this.rng.range(1, 4000))).catch(() => 0);
    const reply = await readToClose(t, 1500);
    if (reply === "open") return undefined; // a length prefix still waiting for its body
    if (reply.length === 0 || decodeHandshakeError(reply.subarray(4))) return true;
    return `random bytes got ${reply.length} unexpected bytes back`;
  }
}

/** A frame cut short, then the connection closed: nothing comes back. */
export class TruncatedFrame extends Attack {
  async attempt(): Promise<true | string | undefined> {
    const t = await this.connect();
    const frame = encodeFrame(this.rng.bytes(this.rng.range(10, 8000)));
    await t.write(frame.subarray(0, this.rng.range(1, frame.length - 1))).catch(() => 0);
    t.close();
    return true;
  }
}

/** A length prefix over the limit: closed at once, nothing sent back. */
export class OversizedLength extends Attack {
  async attempt(): Promise<true | string | undefined> {
    const t = await this.connect();
    const n = this.rng.pick([0, 8193, 1_048_577, 0xffffffff]);
    await t.write(new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])).catch(
      () => 0,
    );
    const reply = await readToClose(t, 3000);
    if (reply === "open") return `length ${n} was not refused within 3 s`;
    return reply.length === 0 ? true : `length ${n} got ${reply.length} bytes back`;
  }
}

/** One byte per second of a ClientHello: dropped at the handshake timeout, nothing sent. */
export class Drip extends Attack {
  override pause() {
    return 0;
  }

  async attempt(): Promise<true | string | undefined> {
    const t = await this.connect();
    const hello = encodeFrame(new Uint8Array(6 + 32 + 256).fill(7));
    for (let i = 0; i < hello.length && this.running; i++) {
      try {
        await t.write(hello.subarray(i, i + 1));
      } catch {
        return true; // the server closed it (handshake timeout)
      }
      await sleep(1000);
    }
    t.close();
    return undefined;
  }
}

/** Every invalid share of the vectors: ERR bad_hello, then close. */
export class InvalidShares extends Attack {
  #next = 0;

  constructor(
    from: string,
    target: Target,
    rng: Prng,
    readonly shares: readonly InvalidShare[],
  ) {
    super("invalid shares", from, target, rng);
  }

  async attempt(): Promise<true | string | undefined> {
    const v = this.shares[this.#next++ % this.shares.length]!;
    const t = await this.connect();
    await t.write(helloFrameWithShare(v.group, v.share));
    const reply = await readToClose(t, 3000);
    if (reply === "open") return `share "${v.why}" not refused within 3 s`;
    return decodeHandshakeError(reply.subarray(4))?.code === "bad_hello"
      ? true
      : `share "${v.why}" not answered bad_hello`;
  }
}

/** Tampered, replayed and reordered records: closed with nothing sent back. */
export class BadRecords extends Attack {
  async attempt(): Promise<true | string | undefined> {
    const t = await this.connect();
    const { session, held } = await holdingSession(t, this.target.crypto);
    const kind = this.rng.pick(["tampered", "replayed", "reordered"] as const);
    const png = (id: number) => new TextEncoder().encode(`PNG{"id":${id}}`);
    session.send(png(1));
    await session.writer.drained();
    session.send(png(2));
    await session.writer.drained();
    const [first, second] = [held[0]!, held[1]!];
    if (kind === "tampered") {
      first[4 + this.rng.range(0, first.length - 5)]! ^= 1 << this.rng.range(0, 7);
      await t.write(first);
    } else if (kind === "replayed") {
      await t.write(first);
      await t.write(first);
    } else {
      await t.write(second);
      await t.write(first);
    }
    const reply = await readToClose(t, 3000);
    if (reply === "open") return `${kind} record left the connection open`;
    // A replay is caught at the second copy: the first copy's PNG is answered first.
    const allowed = kind === "replayed" ? 1 : 0;
    return reply.length === 0 || (allowed > 0 && reply.length < 200)
      ? true
      : `${kind} record got ${reply.length} bytes back`;
  }
}

/** Requests that need a login, sent before one: each answered not_authenticated. */
export class BeforeLogin extends Attack {
  async attempt(): Promise<true | string | undefined> {
    const link = await TestLink.open(this.port(), () => {}, this.linkOptions());
    try {
      for (
        const body of [
          { code: "GUL" as const },
          { code: "MSG" as const, to: "victim", text: "hi" },
          { code: "LGO" as const },
        ]
      ) {
        const r = await link.request(body);
        if (r === "closed") return undefined;
        if (!(r.code === "ERR" && r.error === "not_authenticated")) {
          return `${body.code} before login got ${JSON.stringify(r)}`;
        }
      }
      return true;
    } finally {
      await link.close();
    }
  }
}

/** Password guessing against one account: invalid_credentials, then rate_limited. */
export class PasswordGuessing extends Attack {
  #link: TestLink | undefined;
  limited = 0;

  constructor(from: string, target: Target, rng: Prng, readonly victim: string) {
    super("password guessing", from, target, rng);
  }

  async attempt(): Promise<true | string | undefined> {
    if (!this.#link || this.#link.closed) {
      this.#link = await TestLink.open(this.port(), () => {}, this.linkOptions());
    }
    const r = await this.#link.request({
      code: "LGN",
      user: this.victim,
      password: `guess ${this.rng.next()}`,
    });
    if (r === "closed") return undefined;
    if (r.code === "ERR" && r.error === "rate_limited") this.limited++;
    return r.code === "ERR" && (r.error === "invalid_credentials" || r.error === "rate_limited")
      ? true
      : `a guess got ${JSON.stringify(r)}`;
  }

  override async stop() {
    await super.stop();
    await this.#link?.close();
  }
}

/** Many connections from one address: those past the per-address cap are closed at once. */
export class ConnectionFlood extends Attack {
  readonly #held: Transport[] = [];
  refused = 0;

  constructor(
    from: string,
    target: Target,
    rng: Prng,
    readonly burst: number,
    readonly cap: number,
  ) {
    super("connection flood", from, target, rng);
  }

  override pause() {
    return 500;
  }

  async attempt(): Promise<true | string | undefined> {
    for (const t of this.#held.splice(0)) t.close();
    await sleep(200); // let the server count the old ones out
    const opened = await Promise.all(
      Array.from({ length: this.burst }, () => this.connect().catch(() => undefined)),
    );
    const live = opened.filter((t): t is Transport => t !== undefined);
    // Those beyond the cap are closed by the server straight away.
    const states = await Promise.all(live.map(async (t) => {
      const r = await Promise.race([
        t.read(new Uint8Array(1)).then(() => "closed", () => "closed"),
        sleep(300).then(() => "open"),
      ]);
      return { t, r };
    }));
    const open = states.filter((s) => s.r === "open").map((s) => s.t);
    this.refused += states.length - open.length;
    this.#held.push(...open);
    return open.length <= this.cap
      ? true
      : `${open.length} connections from one address stayed open (cap ${this.cap})`;
  }

  override async stop() {
    await super.stop();
    for (const t of this.#held.splice(0)) t.close();
  }
}
