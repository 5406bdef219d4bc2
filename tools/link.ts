// One scripted HSP/1 connection for tests and harnesses: handshake, requests matched by id,
// pushes to a callback. (The interactive client has its own, with reconnects and a UI.)
import { type CryptoEngine, KEX_GROUPS } from "../crypto/mod.ts";
import type { Transport } from "../protocol/channel.ts";
import type { Request, RequestCode, ServerMessage } from "../protocol/messages.ts";
import { PendingRequests, type RequestBody } from "../protocol/rpc.ts";
import { clientHandshake, type SecureSession } from "../protocol/session.ts";
import { connectFrom } from "./node_transport.ts";

export type { RequestBody };

/** What a request came back with: the response, or "closed" if the connection ended first. */
export type Outcome = ServerMessage | "closed";

/** A scripted connection: requests matched by id, everything else to a callback. */
export class TestLink {
  readonly #pending = new PendingRequests<(m: Outcome) => void>();
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
  ): Promise<TestLink> {
    const { crypto, from = "127.0.0.1", groupIndex = 0 } = options;
    const transport: Transport = from === "127.0.0.1"
      ? await Deno.connect({ hostname: "127.0.0.1", port })
      : await connectFrom(from, "127.0.0.1", port);
    try {
      const { session } = await clientHandshake(transport, {
        group: KEX_GROUPS[groupIndex]!,
        crypto,
      });
      return new TestLink(transport, session, onPush);
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
        const read = this.#pending.read(plaintext);
        if (read.kind === "malformed") throw new Error(`malformed server message: ${read.reason}`);
        if (read.kind === "response") {
          read.waiter(read.response);
        } else {
          if (read.message.code === "BYE") this.closeReason = `BYE ${read.message.reason}`;
          onPush(read.message);
        }
      }
      this.closeReason ||= "eof";
    } catch (err) {
      // A dropped connection (server killed) is expected here; the caller reconnects.
      this.closeReason ||= String(err);
    } finally {
      this.#closed = true;
      for (const resolve of this.#pending.drain()) resolve("closed");
      try {
        this.transport.close();
      } catch { /* closed */ }
      this.session.dispose();
    }
  }

  request(body: RequestBody): Promise<Outcome> {
    if (this.#closed) return Promise.resolve("closed");
    return new Promise((resolve) => {
      const id = this.#pending.add(body.code, resolve);
      try {
        this.session.sendMessage({ ...body, id } as Request);
      } catch {
        this.#pending.take(id);
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
    return new Promise((resolve) => this.#pending.expect(id, code, resolve));
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
