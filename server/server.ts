// The TCP shell: accepts connections, enforces the connection caps and timeouts of §5, runs
// the handshake, then turns records into requests for Chat and messages into records.
import type { CryptoEngine, ServerIdentity } from "../crypto/mod.ts";
import { HandshakeError, ProtocolError, RecordError } from "../protocol/errors.ts";
import type { HandshakeTrace } from "../protocol/handshake.ts";
import {
  type ByeReason,
  needsLogin,
  parseClientMessage,
  type ServerMessage,
} from "../protocol/messages.ts";
import { type RecordTrace, type SecureSession, serverHandshake } from "../protocol/session.ts";
import { toHex } from "../crypto/mod.ts";
import { Chat, type EventSink, type Peer } from "./chat.ts";
import type { ServerLimits } from "./config.ts";
import type { Logger } from "./logger.ts";
import type { ScryptParams } from "../crypto/mod.ts";
import type { State } from "../store/mod.ts";

/** How often timeouts and throttles are swept: one timer for all connections. */
const SWEEP_INTERVAL_MS = 250;
/** Throttle tables are pruned less often: each prune walks every key they hold. */
const THROTTLE_SWEEP_EVERY = 40;
/** How long shutdown waits for BYEs to reach slow clients before closing anyway. */
const SHUTDOWN_DRAIN_MS = 2000;

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  readonly identity: ServerIdentity;
  /** The engine for every connection's DH and records (chosen at start-up). */
  readonly crypto: CryptoEngine;
  readonly store: EventSink;
  readonly state: State;
  readonly limits: ServerLimits;
  readonly logger: Logger;
  readonly trace?: boolean;
  readonly hashParams?: ScryptParams;
}

type Phase = "handshake" | "open" | "closing";

class Connection implements Peer {
  user: string | undefined;
  phase: Phase = "handshake";
  session: SecureSession | undefined;
  lastActivity: number;
  closeReason = "";

  constructor(
    readonly id: number,
    readonly addr: string,
    readonly conn: Deno.Conn,
    readonly openedAt: number,
    readonly server: Server,
  ) {
    this.lastActivity = openedAt;
  }

  get open(): boolean {
    return this.phase === "open";
  }

  send(message: ServerMessage): void {
    if (this.phase !== "open" || !this.session) return;
    try {
      this.session.sendMessage(message);
    } catch (err) {
      // The peer stopped reading (slow_reader) or the socket failed: let it go.
      this.close(err instanceof ProtocolError ? err.code : "write failed");
    }
  }

  bye(reason: ByeReason): void {
    if (this.phase !== "open") return;
    this.send({ code: "BYE", reason });
    this.phase = "closing";
    const session = this.session;
    const drained = session ? session.writer.drained().catch(() => {}) : Promise.resolve();
    const timer = setTimeout(() => this.close(`bye ${reason}`), SHUTDOWN_DRAIN_MS);
    drained.finally(() => {
      clearTimeout(timer);
      this.close(`bye ${reason}`);
    });
  }

  close(reason: string): void {
    if (this.closeReason) return;
    this.closeReason = reason;
    this.phase = "closing";
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** A running server. */
export class Server {
  readonly chat: Chat;
  readonly #o: ServerOptions;
  readonly #listener: Deno.TcpListener;
  readonly #connections = new Set<Connection>();
  readonly #perAddress = new Map<string, number>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  readonly #tasks = new Set<Promise<void>>();
  #nextId = 1;
  #sweeps = 0;
  #accepting: Promise<void>;
  #stopping = false;

  constructor(options: ServerOptions) {
    this.#o = options;
    this.chat = new Chat({
      store: options.store,
      state: options.state,
      identity: options.identity,
      limits: options.limits,
      logger: options.logger,
      hashParams: options.hashParams,
    });
    this.#listener = Deno.listen({ hostname: options.host, port: options.port, transport: "tcp" });
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#accepting = this.#acceptLoop();
  }

  /** The address actually bound (port 0 resolved). */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#stopping || err instanceof Deno.errors.BadResource) return;
        // EMFILE and friends: log, pause briefly, keep serving the connections we have.
        this.#o.logger.error("accept failed", { error: String(err) });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      this.#admit(conn);
    }
  }

  #admit(conn: Deno.TcpConn): void {
    const remote = conn.remoteAddr;
    const addr = remote.hostname;
    const limits = this.#o.limits;
    const fromAddr = this.#perAddress.get(addr) ?? 0;
    if (
      this.#connections.size >= limits.max_connections ||
      fromAddr >= limits.max_connections_per_address
    ) {
      // Over a cap: close at once, before any allocation for the connection.
      this.#o.logger.warn("connection refused", {
        addr,
        reason: fromAddr >= limits.max_connections_per_address
          ? "per-address cap"
          : "connection cap",
      });
      try {
        conn.close();
      } catch { /* gone */ }
      return;
    }
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const c = new Connection(this.#nextId++, addr, conn, Date.now(), this);
    this.#connections.add(c);
    this.#perAddress.set(addr, fromAddr + 1);
    this.#o.logger.info("connection opened", { conn: c.id, addr: `${addr}:${remote.port}` });
    const task = this.#serve(c).finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
  }

  #traceHandshake(c: Connection): ((e: HandshakeTrace) => void) | undefined {
    if (!this.#o.trace) return undefined;
    return (e) => {
      const fields: Record<string, string | number | boolean> = { conn: c.id };
      for (const [k, v] of Object.entries(e)) {
        fields[k] = v instanceof Uint8Array
          ? `${v.length} bytes ${toHex(v.subarray(0, 8))}…`
          : typeof v === "object"
          ? JSON.stringify(v)
          : v;
      }
      this.#o.logger.info("trace handshake", fields);
    };
  }

  #traceRecord(c: Connection): ((e: RecordTrace) => void) | undefined {
    if (!this.#o.trace) return undefined;
    return (e) => this.#o.logger.info("trace record", { conn: c.id, ...e });
  }

  async #serve(c: Connection): Promise<void> {
    let reason = "closed by peer";
    try {
      const result = await serverHandshake(c.conn, {
        identity: this.#o.identity,
        crypto: this.#o.crypto,
        trace: this.#traceHandshake(c),
        recordTrace: this.#traceRecord(c),
      });
      if (result === null) {
        reason = "closed before handshake";
        return;
      }
      if (c.phase !== "handshake") return; // timed out meanwhile
      c.session = result.session;
      c.phase = "open";
      c.lastActivity = Date.now();
      this.#o.logger.info("handshake done", { conn: c.id, group: result.group.name });
      await this.#readLoop(c, result.session);
    } catch (err) {
      reason = err instanceof HandshakeError
        ? `handshake refused: ${err.code}`
        : err instanceof RecordError
        ? "bad record"
        : err instanceof ProtocolError
        ? `protocol violation: ${err.code}`
        : c.closeReason || `error: ${(err as Error)?.message ?? String(err)}`;
    } finally {
      c.close(c.closeReason || reason);
      c.session?.dispose();
      this.chat.disconnected(c);
      this.#connections.delete(c);
      const n = (this.#perAddress.get(c.addr) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(c.addr);
      else this.#perAddress.set(c.addr, n);
      this.#o.logger.info("connection closed", {
        conn: c.id,
        addr: c.addr,
        user: c.user,
        reason: c.closeReason,
      });
    }
  }

  async #readLoop(c: Connection, session: SecureSession): Promise<void> {
    while (c.phase === "open") {
      const plaintext = await session.receive();
      if (plaintext === null) return;
      c.lastActivity = Date.now();
      const parsed = parseClientMessage(plaintext);
      if (!parsed.ok) {
        if (parsed.request === "DAK") continue; // DAK gets no response, even when malformed
        // A well-formed request that needs a login hears that first; a malformed one stays
        // bad_request (§4), as does anything whose id could not be read.
        const refusal = parsed.error.error !== "bad_request" && parsed.request !== undefined &&
            needsLogin(parsed.request) && c.user === undefined
          ? { ...parsed.error, error: "not_authenticated" as const, message: "log in first" }
          : parsed.error;
        c.send(refusal);
        continue;
      }
      const message = parsed.value;
      if (needsLogin(message.code) && c.user === undefined) {
        if (message.code !== "DAK") {
          c.send({
            code: "ERR",
            id: message.id,
            error: "not_authenticated",
            message: "log in first",
          });
        }
        continue;
      }
      try {
        this.chat.handle(c, message);
      } catch (err) {
        // A bug in a handler must not take the connection loop (or the server) down.
        this.#o.logger.error("request failed", {
          conn: c.id,
          code: message.code,
          error: String(err),
        });
        if (message.code !== "DAK") {
          c.send({ code: "ERR", id: message.id, error: "internal", message: "internal error" });
        }
      }
    }
  }

  #sweep(): void {
    const now = Date.now();
    const { handshake_timeout_ms, idle_timeout_ms } = this.#o.limits;
    for (const c of this.#connections) {
      if (c.phase === "handshake" && now - c.openedAt > handshake_timeout_ms) {
        c.close("handshake timeout"); // §2.3: dropped without a word
      } else if (c.phase === "open" && now - c.lastActivity > idle_timeout_ms) {
        c.bye("idle");
      }
    }
    if (++this.#sweeps % THROTTLE_SWEEP_EVERY === 0) this.chat.sweep();
  }

  /**
   * Graceful stop: no new connections, `BYE shutdown` to every session, then wait for the
   * connections to end. The caller closes the event log afterwards (pending appends finish).
   */
  async shutdown(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    await this.#accepting;
    for (const c of this.#connections) {
      if (c.phase === "open") c.bye("shutdown");
      else c.close("shutdown");
    }
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    clearInterval(this.#sweeper);
  }
}
