// One scripted HSP/1 connection for tests and harnesses: handshake, requests matched by id,
// pushes to a callback. (The interactive client has its own, with reconnects and a UI.)
import { type CryptoEngine, KEX_GROUPS } from "../crypto/mod.ts";
import type { Transport } from "../protocol/channel.ts";
import {
  parseServerMessage,
  type Request,
  type RequestCode,
  type ServerMessage,
} from "../protocol/messages.ts";
import { clientHandshake, type SecureSession } from "../protocol/session.ts";
import { connectFrom } from "./node_transport.ts";

/** A request without its id (distributes over the union). */
export type RequestBody = Request extends infer R ? R extends Request ? Omit<R, "id"> : never
  : never;

/** What a request came back with: the response, or "closed" if the connection ended first. */
export type Outcome = ServerMessage | "closed";

export class Link {
  readonly #pending = new Map<number, { code: RequestCode; resolve: (m: Outcome) => void }>();
  #nextId = 1;
  #closed = false;
  /** Why the connection ended: "eof", a BYE reason, or the error. */
  closeReason = "";
  readonly done: Promise<void>;

  private constructor(
    readonly transport: Transport,
    readonly session: SecureSession,
    onPush: (m: ServerMessage) => void,
  ) {
    this.done = this.#read(onPush);
  }

  /**
   * Connects from `from` (a loopback address) to 127.0.0.1:`port` and handshakes on `crypto`
   * in the group with index `groupIndex` of KEX_GROUPS.
   */
  static async open(
    port: number,
    onPush: (m: ServerMessage) => void,
    options: { crypto: CryptoEngine; from?: string; groupIndex?: number },
  ): Promise<Link> {
    const { crypto, from = "127.0.0.1", groupIndex = 0 } = options;
    const transport: Transport = from === "127.0.0.1"
      ? await Deno.connect({ hostname: "127.0.0.1", port })
      : await connectFrom(from, "127.0.0.1", port);
    try {
      const { session } = await clientHandshake(transport, {
        group: KEX_GROUPS[groupIndex]!,
        crypto,
      });
      return new Link(transport, session, onPush);
    } catch (err) {
      transport.close();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  async #read(onPush: (m: ServerMessage) => void): Promise<void> {
    try {
      while (true) {
        const plaintext = await this.session.receive();
        if (plaintext === null) break;
        const parsed = parseServerMessage(plaintext, (id) => this.#pending.get(id)?.code);
        if (!parsed.ok) throw new Error(`malformed server message: ${parsed.reason}`);
        const m = parsed.value;
        if ((m.code === "ACK" || m.code === "ERR") && m.id !== 0) {
          const waiter = this.#pending.get(m.id);
          this.#pending.delete(m.id);
          waiter?.resolve(m);
        } else {
          if (m.code === "BYE") this.closeReason = `BYE ${m.reason}`;
          onPush(m);
        }
      }
      this.closeReason ||= "eof";
    } catch (err) {
      // A dropped connection (server killed) is expected here; the caller reconnects.
      this.closeReason ||= String(err);
    } finally {
      this.#closed = true;
      for (const w of this.#pending.values()) w.resolve("closed");
      this.#pending.clear();
      try {
        this.transport.close();
      } catch { /* closed */ }
      this.session.dispose();
    }
  }

  request(body: RequestBody): Promise<Outcome> {
    if (this.#closed) return Promise.resolve("closed");
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, { code: body.code, resolve });
      try {
        this.session.sendMessage({ ...body, id } as Request);
      } catch {
        this.#pending.delete(id);
        resolve("closed");
      }
    });
  }

  /** Sends raw plaintext as one record (malformed-request tests). */
  sendRaw(plaintext: Uint8Array): void {
    if (!this.#closed) this.session.send(plaintext);
  }

  /** Resolves with the response that carries `id`, read as an answer to a `code` request. */
  expect(id: number, code: RequestCode): Promise<Outcome> {
    if (this.#closed) return Promise.resolve("closed");
    return new Promise((resolve) => this.#pending.set(id, { code, resolve }));
  }

  dak(msg: string): void {
    if (this.#closed) return;
    try {
      this.session.sendMessage({ code: "DAK", msg });
    } catch { /* closing */ }
  }

  close(): Promise<void> {
    try {
      this.transport.close();
    } catch { /* closed */ }
    return this.done;
  }
}
