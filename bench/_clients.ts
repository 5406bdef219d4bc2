// Lean load clients for bench/load.ts: an HSP/1 client built on the protocol library (the same
// handshake, records and message codec as a real client) and a client of the plain relay, both
// behind one small interface so every load pattern runs unchanged against either server.
import { type CryptoEngine, type KexGroup } from "../crypto/mod.ts";
import { FrameReader, FrameWriter } from "../protocol/channel.ts";
import type { Request } from "../protocol/messages.ts";
import { PendingRequests, type RequestBody } from "../protocol/rpc.ts";
import { clientHandshake, type SecureSession } from "../protocol/session.ts";
import { parseRelayFrame, relayLogin, relayMessage } from "./plain_relay.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One connected, logged-in load client, whichever server it talks to. */
export interface LoadClient {
  readonly name: string;
  /** Sends one message to `to`; the reply comes to `onAck`, the delivery to the recipient. */
  send(to: string, text: string): void;
  /** Called with each MSG reply: ok, or the ERR code. */
  onAck: (ok: boolean, error: string) => void;
  /** Called with the text of each delivered message. */
  onDeliver: (text: string) => void;
  /** Why the connection ended, once it has; "" while it is open. */
  readonly failure: string;
  close(): Promise<void>;
}

const noAck = (_ok: boolean, _error: string) => {};
const noDeliver = (_text: string) => {};

async function connectTcp(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  return conn;
}

/** An HSP/1 client: handshake, LGN, then MSGs out and DLVs in, each DLV answered with DAK. */
export class HspClient implements LoadClient {
  onAck = noAck;
  onDeliver = noDeliver;
  failure = "";
  name = "";
  readonly #conn: Deno.Conn;
  readonly #session: SecureSession;
  /** What each request waits with: a login's callback, or nothing (a MSG goes to onAck). */
  readonly #pending = new PendingRequests<((error: string) => void) | undefined>();
  readonly #reading: Promise<void>;

  private constructor(conn: Deno.Conn, session: SecureSession) {
    this.#conn = conn;
    this.#session = session;
    this.#reading = this.#readLoop();
  }

  /**
   * Connects to 127.0.0.1:`port` and completes the §2 handshake on `crypto` (no pinning: a
   * benchmark).
   */
  static async connect(
    port: number,
    crypto: CryptoEngine,
    group: KexGroup,
  ): Promise<HspClient> {
    const conn = await connectTcp(port);
    try {
      const { session } = await clientHandshake(conn, { group, crypto });
      return new HspClient(conn, session);
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  /** LGN; resolves once ACKed, rejects with the ERR code otherwise. */
  login(user: string, password: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#request({ code: "LGN", user, password }, (error) => {
        if (error) reject(new Error(`LGN ${user}: ${error}`));
        else {
          this.name = user;
          resolve();
        }
      });
    });
  }

  send(to: string, text: string): void {
    this.#request({ code: "MSG", to, text }, undefined);
  }

  /** Sends one sealed message (§8): `sealed` is the envelope's base64. */
  sendSealed(to: string, sealed: string): void {
    this.#request({ code: "MSG", to, sealed }, undefined);
  }

  #request(body: RequestBody, waiter: ((error: string) => void) | undefined): void {
    const id = this.#pending.add(body.code, waiter);
    this.#session.sendMessage({ ...body, id } as Request);
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const plaintext = await this.#session.receive();
        if (plaintext === null) break;
        const read = this.#pending.read(plaintext);
        if (read.kind === "malformed") throw new Error(`malformed server message: ${read.reason}`);
        if (read.kind === "response") {
          const error = read.response.code === "ERR" ? read.response.error : "";
          if (read.waiter) read.waiter(error);
          else if (read.code === "MSG") this.onAck(error === "", error);
          continue;
        }
        const m = read.message;
        switch (m.code) {
          case "ACK":
          case "ERR":
            throw new Error(`${m.code} with id 0: ${m.code === "ERR" ? m.error : ""}`);
          case "DLV":
            this.#session.sendMessage({ code: "DAK", msg: m.msg });
            this.onDeliver(m.text ?? m.sealed);
            break;
          case "BYE":
            throw new Error(`BYE ${m.reason}`);
          default: {
            const never: never = m;
            throw new TypeError(`unhandled ${JSON.stringify(never)}`);
          }
        }
      }
      this.failure = "closed by server";
    } catch (err) {
      this.failure = err instanceof Error ? err.message : String(err);
    } finally {
      for (const waiter of this.#pending.drain()) waiter?.(this.failure || "closed");
    }
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* closed */ }
    await this.#reading;
  }
}

/** A client of bench/plain_relay.ts, with the same shape as HspClient. */
export class RelayClient implements LoadClient {
  onAck = noAck;
  onDeliver = noDeliver;
  failure = "";
  readonly #conn: Deno.Conn;
  readonly #reader: FrameReader;
  readonly #writer: FrameWriter;
  readonly #reading: Promise<void>;
  readonly #loggedIn: Promise<void>;
  #loggedInResolve: () => void = () => {};
  #nextId = 1;
  readonly #names = new Map<string, Uint8Array>();
  static readonly #dak = encoder.encode("DAK");

  private constructor(conn: Deno.Conn, readonly name: string) {
    this.#conn = conn;
    this.#reader = new FrameReader(conn);
    this.#writer = new FrameWriter(conn);
    this.#loggedIn = new Promise((resolve) => this.#loggedInResolve = resolve);
    this.#reading = this.#readLoop();
  }

  /** Connects and logs in as `name` (the relay checks nothing). */
  static async connect(port: number, name: string): Promise<RelayClient> {
    const client = new RelayClient(await connectTcp(port), name);
    client.#writer.send(relayLogin(name));
    await Promise.race([client.#loggedIn, client.#reading]);
    if (client.failure) throw new Error(`relay login of ${name}: ${client.failure}`);
    return client;
  }

  send(to: string, text: string): void {
    let name = this.#names.get(to);
    if (!name) {
      name = encoder.encode(to);
      this.#names.set(to, name);
    }
    this.#writer.send(relayMessage(this.#nextId++, name, encoder.encode(text)));
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const body = await this.#reader.next();
        if (body === null) break;
        const event = parseRelayFrame(body);
        if (event === undefined) throw new Error("malformed relay frame");
        if (event.kind === "ack") {
          if (event.id === 0) this.#loggedInResolve();
          else this.onAck(event.ok, event.ok ? "" : "unknown_user");
        } else {
          this.#writer.send(RelayClient.#dak);
          this.onDeliver(decoder.decode(event.text));
        }
      }
      this.failure = "closed by relay";
    } catch (err) {
      this.failure = err instanceof Error ? err.message : String(err);
    }
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* closed */ }
    await this.#reading;
  }
}

/** One HSP/1 handshake over a fresh connection, then close: the unit of handshakes/s. */
export async function hspHandshakeOnce(
  port: number,
  crypto: CryptoEngine,
  group: KexGroup,
): Promise<void> {
  const conn = await connectTcp(port);
  try {
    const { session } = await clientHandshake(conn, { group, crypto });
    session.dispose();
  } finally {
    conn.close();
  }
}

/** One TLS handshake over a fresh connection (trusting `caPem`), then close. */
export async function tlsHandshakeOnce(port: number, caPem: string): Promise<void> {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] });
  try {
    await conn.handshake();
  } finally {
    conn.close();
  }
}
