// Honest users for the torture run: sign up with a key of their own (§8.1), log in, send with
// cids, a share of it sealed end to end (§8), open and DAK what they are shown, reconnect and
// retry whatever was not acknowledged. The Ledger keeps what was acknowledged and what was
// delivered, so the run can prove nothing was lost, doubled or reordered, and that every
// sealed message opened on arrival.
import { type CryptoEngine, type RsaPrivateKey, toBase64, toHex } from "../../crypto/mod.ts";
import type { Content, Deliver, ServerMessage } from "../../protocol/messages.ts";
import { kidOf, open, seal, SealedError } from "../../protocol/sealed.ts";
import { TestLink } from "../link.ts";
import { Prng } from "../prng.ts";

/** One message an honest user wants delivered. */
export interface Outgoing {
  readonly from: string;
  readonly to: string;
  readonly cid: string;
  /** Per-sender sequence number; also in the text, so order can be checked on arrival. */
  readonly seq: number;
  readonly text: string;
  /** The envelope, when it goes sealed: made once, so that every retry carries the same. */
  readonly sealed?: string;
  firstSentAt?: number;
  msg?: string;
}

/** Everything acknowledged and delivered, and every anomaly seen. */
export class Ledger {
  /** Acknowledged messages by server id. */
  readonly acked = new Map<string, Outgoing>();
  /** `from\0cid` → the msg id its first ACK gave; a retry must get the same one. */
  readonly cidMsg = new Map<string, string>();
  readonly anomalies: string[] = [];
  /** DLV receipts counted before dedupe by msg. */
  receipts = 0;
  /** Per recipient: msg ids in order of first delivery. */
  readonly firstDeliveries = new Map<string, string[]>();
  readonly #seen = new Set<string>();
  /** MSG → first DLV latencies (ms) while `measuring` is set. */
  latencies: number[] = [];
  measuring = false;
  /** Messages sent by the harness (each cid counted once). */
  created = 0;
  /** Sealed messages shown for the first time, and how many of those opened. */
  sealedDelivered = 0;
  sealedOpened = 0;

  ack(m: Outgoing, msg: string): void {
    const key = `${m.from}\0${m.cid}`;
    const earlier = this.cidMsg.get(key);
    if (earlier !== undefined && earlier !== msg) {
      this.anomalies.push(`cid ${m.cid} of ${m.from} acknowledged as ${earlier} and then ${msg}`);
    }
    this.cidMsg.set(key, msg);
    m.msg = msg;
    this.acked.set(msg, m);
  }

  /**
   * A DLV shown to `recipient`, with the text it showed: the DLV's, or the one its envelope
   * opened to (undefined if it did not open, which is an anomaly, named by its check).
   */
  deliver(recipient: string, d: Deliver, now: number, shown: string | undefined): void {
    this.receipts++;
    if (d.to !== recipient) this.anomalies.push(`DLV ${d.msg} for ${d.to} pushed to ${recipient}`);
    const key = `${recipient}\0${d.msg}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    let list = this.firstDeliveries.get(recipient);
    if (!list) this.firstDeliveries.set(recipient, list = []);
    list.push(d.msg);
    if (d.sealed !== undefined) {
      this.sealedDelivered++;
      if (shown !== undefined) this.sealedOpened++;
    }
    if (shown !== undefined && d.sealed !== undefined && !this.#sentAt.has(shown)) {
      this.anomalies.push(`sealed ${d.msg} opened to a text no honest user sent`);
    }
    if (this.measuring && shown !== undefined) {
      const sent = this.#sentAt.get(shown);
      if (sent !== undefined) this.latencies.push(now - sent);
    }
  }

  /** Whether `msg` was shown to `recipient` before (at-least-once delivery repeats it). */
  seen(recipient: string, msg: string): boolean {
    return this.#seen.has(`${recipient}\0${msg}`);
  }

  /** Send times by text (texts are unique), for latency. */
  readonly #sentAt = new Map<string, number>();

  sent(m: Outgoing, now: number): void {
    if (m.firstSentAt === undefined) {
      m.firstSentAt = now;
      this.#sentAt.set(m.text, now);
    }
  }

  delivered(msg: string, recipient: string): boolean {
    return this.#seen.has(`${recipient}\0${msg}`);
  }

  /** Acknowledged messages their recipient has not (yet) been shown. */
  undelivered(): Outgoing[] {
    return [...this.acked.entries()].filter(([msg, m]) => !this.delivered(msg, m.to)).map(([, m]) =>
      m
    );
  }

  /** Pairs whose first deliveries are out of the sender's order. */
  orderViolations(): string[] {
    const out: string[] = [];
    for (const [recipient, msgs] of this.firstDeliveries) {
      const last = new Map<string, number>();
      for (const msg of msgs) {
        const m = this.acked.get(msg);
        if (!m) {
          out.push(`${recipient} was shown ${msg}, which no sender had acknowledged`);
          continue;
        }
        const previous = last.get(m.from) ?? -1;
        if (m.seq < previous) {
          out.push(`${m.from}→${recipient}: #${m.seq} arrived after #${previous}`);
        }
        last.set(m.from, Math.max(previous, m.seq));
      }
    }
    return out;
  }
}

export interface HonestOptions {
  readonly name: string;
  readonly peers: readonly string[];
  readonly port: () => number;
  /** The engine of this user's connections. */
  readonly crypto: CryptoEngine;
  readonly ledger: Ledger;
  readonly rng: Prng;
  /** Chance per tick of queueing a new message while sending is on. */
  readonly sendChance: number;
  /** Chance per tick of dropping the connection on purpose (reconnect tests). */
  disconnectChance: number;
  /** Chance of withholding the DAK for a delivery (exercises redelivery). */
  readonly skipDakChance: number;
  /** Share of this user's messages sent sealed (§8). */
  readonly sealedShare: number;
  /**
   * Every honest user's own key, by name: this user's private key, and the others' public
   * keys as their clients would have fetched and pinned them (GPK, §8.1).
   */
  readonly keys: ReadonlyMap<string, RsaPrivateKey>;
}

const MAX_IN_FLIGHT = 4;

/**
 * An answer to try again later: `rate_limited`, or `internal` because the server's event store
 * (PostgreSQL) is unavailable, which the server says in its message (docs/SCALING.md).
 */
function transient(r: ServerMessage): boolean {
  return r.code === "ERR" &&
    (r.error === "rate_limited" ||
      (r.error === "internal" && r.message.includes("event store is unavailable")));
}
const TICK_MS = [40, 160] as const;

/** One honest user, run until `stop()`. */
export class HonestUser {
  readonly password: string;
  readonly outbox: Outgoing[] = [];
  sending = true;
  running = true;
  link: TestLink | undefined;
  loggedIn = false;
  reconnects = 0;
  readonly closeReasons = new Map<string, number>();
  errors: string[] = [];
  /** Sends refused while the event store was unavailable (retried later with their cid). */
  storeOutages = 0;
  #seq = 0;
  #signedUp = false;
  /** DLVs being opened and shown, one after the other. */
  #showing: Promise<void> = Promise.resolve();
  readonly #inFlight = new Set<Outgoing>();
  readonly done: Promise<void>;

  constructor(readonly o: HonestOptions) {
    this.password = `honest password of ${o.name}`;
    this.done = this.#run();
  }

  #onPush(link: TestLink, m: ServerMessage): void {
    if (m.code === "DLV") {
      // The DAK waits for the opening, in order: a DAK withheld still exercises redelivery.
      const dak = this.o.rng.next() >= this.o.skipDakChance;
      this.#showing = this.#showing.then(async () => {
        const now = performance.now();
        const shown = m.sealed === undefined || this.o.ledger.seen(this.o.name, m.msg)
          ? m.text
          : await this.#open(m);
        this.o.ledger.deliver(this.o.name, m, now, shown ?? m.text);
        if (dak) link.dak(m.msg);
      });
    }
    // BYE (shutdown/idle) is followed by a close; the loop reconnects.
  }

  /** Opens a sealed DLV with §8.5's checks; its text, or undefined (an anomaly, said why). */
  async #open(m: Deliver): Promise<string | undefined> {
    const own = this.o.keys.get(this.o.name)!;
    const sender = this.o.keys.get(m.from)?.publicKey;
    const same = (a: Uint8Array, b: Uint8Array) => toHex(a) === toHex(b);
    try {
      const opened = await open(this.o.crypto, m.sealed!, { from: m.from, to: this.o.name }, {
        recipientKey: (kid) => same(kid, kidOf(own.publicKey)) ? own : undefined,
        senderKey: (kid) => sender && same(kid, kidOf(sender)) ? sender : undefined,
      });
      return opened.text;
    } catch (err) {
      if (!(err instanceof SealedError)) throw err;
      this.o.ledger.anomalies.push(`sealed ${m.msg} to ${this.o.name} failed ${err.check}`);
      return undefined;
    }
  }

  async #connect(): Promise<TestLink | undefined> {
    let link: TestLink;
    try {
      link = await TestLink.open(this.o.port(), (m) => this.#onPush(link, m), {
        crypto: this.o.crypto,
      });
    } catch {
      return undefined; // server down (being restarted): retry on the next tick
    }
    if (!this.#signedUp) {
      const key = toBase64(this.o.keys.get(this.o.name)!.publicKey.spkiDer);
      const r = await link.request({
        code: "SNU",
        user: this.o.name,
        password: this.password,
        key,
      });
      if (r === "closed") return undefined;
      if (r.code === "ACK" || (r.code === "ERR" && r.error === "user_exists")) {
        this.#signedUp = true;
      } else if (transient(r)) {
        return this.#closeAnd(link, undefined);
      } else this.errors.push(`SNU: ${JSON.stringify(r)}`);
    }
    const r = await link.request({ code: "LGN", user: this.o.name, password: this.password });
    if (r === "closed") return undefined;
    if (r.code !== "ACK") {
      if (!transient(r)) this.errors.push(`LGN: ${JSON.stringify(r)}`);
      return this.#closeAnd(link, undefined);
    }
    this.loggedIn = true;
    return link;
  }

  async #closeAnd<T>(link: TestLink, value: T): Promise<T> {
    await link.close();
    return value;
  }

  #send(link: TestLink, m: Outgoing): void {
    this.#inFlight.add(m);
    this.o.ledger.sent(m, performance.now());
    const content: Content = m.sealed === undefined ? { text: m.text } : { sealed: m.sealed };
    link.request({ code: "MSG", to: m.to, ...content, cid: m.cid }).then((r) => {
      this.#inFlight.delete(m);
      if (r === "closed") return; // retried with the same cid after reconnecting
      if (r.code === "ACK" && r.request === "MSG") {
        this.o.ledger.ack(m, r.msg);
        const i = this.outbox.indexOf(m);
        if (i >= 0) this.outbox.splice(i, 1);
      } else if (transient(r)) {
        if (r.code === "ERR" && r.error === "internal") this.storeOutages++;
      } else {
        this.errors.push(`MSG: ${JSON.stringify(r)}`);
      }
    });
  }

  async #run(): Promise<void> {
    const rng = this.o.rng;
    while (this.running) {
      if (!this.link || this.link.closed) {
        this.loggedIn = false;
        this.#inFlight.clear();
        if (this.link) {
          this.reconnects++;
          const why = this.link.closeReason.slice(0, 60);
          this.closeReasons.set(why, (this.closeReasons.get(why) ?? 0) + 1);
        }
        this.link = await this.#connect();
        if (!this.link) {
          await sleep(rng.range(50, 200));
          continue;
        }
      }
      const link = this.link;
      if (this.sending && rng.next() < this.o.sendChance) {
        const to = rng.pick(this.o.peers);
        const seq = this.#seq++;
        const text = `${this.o.name}→${to} #${seq}`;
        const sealed = rng.next() < this.o.sealedShare
          ? seal(this.o.crypto, { from: this.o.name, to, text }, {
            sender: this.o.keys.get(this.o.name)!,
            recipient: this.o.keys.get(to)!.publicKey,
          }).sealed
          : undefined;
        this.outbox.push({
          from: this.o.name,
          to,
          seq,
          cid: `${this.o.name}-${seq}`,
          text,
          ...(sealed === undefined ? {} : { sealed }),
        });
        this.o.ledger.created++;
      }
      // Send in order: only the oldest MAX_IN_FLIGHT unacknowledged, each once per connection.
      for (const m of this.outbox.slice(0, MAX_IN_FLIGHT)) {
        if (!this.#inFlight.has(m)) this.#send(link, m);
      }
      if (rng.next() < this.o.disconnectChance) await link.close();
      await sleep(rng.range(TICK_MS[0], TICK_MS[1]));
    }
    await this.link?.close();
    await this.#showing;
  }

  /** Stops the loop and closes the connection. */
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
