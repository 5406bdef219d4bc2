// Lean load clients for bench/load.ts: an HSP/1 client built on the protocol library (the same
// handshake, records and message codec as a real client) and a client of the plain relay, both
// behind one small interface so every load pattern runs unchanged against either server.
import { type CryptoEngine, type KexGroup } from "../crypto/mod.ts";
import { FrameReader, FrameWriter } from "../protocol/channel.ts";
import { parseServerMessage, type Request, type RequestCode } from "../protocol/messages.ts";
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
  readonly #pending = new Map<number, RequestCode>();
  readonly #waiting = new Map<number, (error: string) => void>();
  readonly #reading: Promise<void>;
  #nextId = 1;

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
      const id = this.#request({ code: "LGN", id: 0, user, password });
      this.#waiting.set(id, (error) => {
        if (error) reject(new Error(`LGN ${user}: ${error}`));
        else {
          this.name = user;
          resolve();
        }
      });
    });
  }

  send(to: string, text: string): void {
    this.#request({ code: "MSG", id: 0, to, text });
  }

  /** Sends one sealed message (§8): `sealed` is the envelope's base64. */
  sendSealed(to: string, sealed: string): void {
    this.#request({ code: "MSG", id: 0, to, sealed });
  }

  #request(request: Request): number {
    const id = this.#nextId++;
    this.#pending.set(id, request.code);
    this.#session.sendMessage({ ...request, id });
    return id;
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const plaintext = await this.#session.receive();
        if (plaintext === null) break;
        const parsed = parseServerMessage(plaintext, (id) => this.#pending.get(id));
        if (!parsed.ok) throw new Error(`malformed server message: ${parsed.reason}`);
        const m = parsed.value;
        switch (m.code) {
          case "ACK":
          case "ERR": {
            const error = m.code === "ERR" ? m.error : "";
            const request = this.#pending.get(m.id);
            this.#pending.delete(m.id);
            const waiter = this.#waiting.get(m.id);
            if (waiter) {
              this.#waiting.delete(m.id);
              waiter(error);
            } else if (request === "MSG") {
              this.onAck(error === "", error);
            }
            break;
          }
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
      for (const waiter of this.#waiting.values()) waiter(this.failure || "closed");
      this.#waiting.clear();
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
