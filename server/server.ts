// The TCP shell: accepts connections, enforces the connection caps, handshake limits and
// timeouts of §5, runs the handshake, then hands each record to the core (core.ts) and writes
// what it decides. Nothing here knows what a request means.
import type { CryptoEngine, KexGroup, ScryptParams, ServerIdentity } from "../crypto/mod.ts";
import { dummyHash, PASSWORD_PARAMS, toBase64, toHex } from "../crypto/mod.ts";
import { HandshakeError, ProtocolError, RecordError } from "../protocol/errors.ts";
import type { HandshakeTrace } from "../protocol/handshake.ts";
import { type ByeReason, parseClientMessage, type ServerMessage } from "../protocol/messages.ts";
import { type RecordTrace, type SecureSession, serverHandshake } from "../protocol/session.ts";
import type { EventStore, State } from "../store/mod.ts";
import { addressKey } from "./address.ts";
import type { ServerLimits } from "./config.ts";
import { type AppendTag, Core, type Outlet } from "./core.ts";
import { type HandshakePool, InlineResponder, WorkerResponder } from "./handshake_pool.ts";
import type { WorkerInit } from "./handshake_worker.ts";
import type { Logger } from "./logger.ts";
import { type Bucket, bucketTokens, bucketWait, newBucket, takeToken } from "./rate_limit.ts";
import { initialServerState } from "./state.ts";

/** How often timeouts are checked: one timer for all connections. */
const SWEEP_INTERVAL_MS = 250;
/** Throttle tables are pruned less often: each prune walks every key they hold. */
const THROTTLE_SWEEP_EVERY = 40;
/** How long shutdown waits for BYEs to reach slow clients before closing anyway. */
const SHUTDOWN_DRAIN_MS = 2000;
/** At most one "connection refused" line per address key and reason this often (floods). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;
/**
 * Connections that end before their handshake are logged one by one up to this many per
 * throttle sweep (10 s), then counted and summed up: a flood of ClientHellos must not turn into
 * a flood of log lines, each costing the server more than the connection did.
 */
const PRE_HANDSHAKE_LINES = 20;

export interface ServerOptions {
  /** Where to listen; ignored when `listener` is given. */
  readonly host?: string;
  readonly port?: number;
  /** A listener bound already (the server's main binds before it touches the log). */
  readonly listener?: Deno.TcpListener;
  readonly identity: ServerIdentity;
  /** The engine for every connection's key exchange and records (chosen at start-up). */
  readonly crypto: CryptoEngine;
  readonly store: EventStore<AppendTag>;
  readonly state: State;
  readonly limits: ServerLimits;
  readonly logger: Logger;
  readonly trace?: boolean;
  readonly hashParams?: ScryptParams;
  /**
   * The module handshake workers run (server/main.ts, which dispatches to handshake_worker.ts),
   * with what they need to rebuild the engine and identity. Without it handshakes run inline.
   */
  readonly handshakeWorkers?: {
    url: URL | string;
    init: Omit<WorkerInit, "type" | "pem" | "trace">;
  };
  /** Injectable clock and id source for deterministic tests. */
  readonly now?: () => number;
  readonly newMessageId?: () => string;
  /** Key-exchange groups offered; all five by default. */
  readonly groups?: readonly KexGroup[];
}

type Phase = "handshake" | "open" | "closing";

class Connection implements Outlet {
  phase: Phase = "handshake";
  session: SecureSession | undefined;
  lastActivity: number;
  closeReason = "";

  constructor(
    readonly id: number,
    readonly addr: string,
    readonly addrKey: string,
    readonly conn: Deno.Conn,
    readonly openedAt: number,
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
  readonly core: Core;
  readonly #o: ServerOptions;
  readonly #listener: Deno.TcpListener;
  readonly #connections = new Set<Connection>();
  readonly #perAddress = new Map<string, number>();
  /** Handshakes per address key (§5, IPv6 per /64): a token bucket each. */
  readonly #handshakeBuckets = new Map<string, Bucket>();
  readonly #refusalsLogged = new Map<string, number>();
  /** Connections that ended before their handshake and were not logged, by reason. */
  readonly #unlogged = new Map<string, number>();
  #preHandshakeLogged = 0;
  readonly #pool: HandshakePool;
  readonly #sweeper: ReturnType<typeof setInterval>;
  readonly #tasks = new Set<Promise<void>>();
  #handshaking = 0;
  #nextId = 1;
  #sweeps = 0;
  #accepting: Promise<void>;
  #stopping = false;

  constructor(options: ServerOptions) {
    this.#o = options;
    const { identity, limits } = options;
    const hashParams = options.hashParams ?? PASSWORD_PARAMS;
    this.core = new Core({
      store: options.store,
      state: initialServerState(
        {
          limits,
          serverKey: { key: toBase64(identity.spkiDer), fingerprint: identity.fingerprint },
          hashParams,
          dummyHash: dummyHash(hashParams),
          crypto: options.crypto,
        },
        options.state,
      ),
      logger: options.logger,
      now: options.now,
      newMessageId: options.newMessageId,
    });
    const workers = options.handshakeWorkers;
    const inline = new InlineResponder(
      { identity, crypto: options.crypto, groups: options.groups },
      options.trace ?? false,
    );
    this.#pool = workers && limits.handshake_workers > 0
      ? new WorkerResponder(
        workers.url,
        limits.handshake_workers,
        limits.max_handshakes_in_flight,
        { type: "init", pem: identity.toPem(), trace: options.trace ?? false, ...workers.init },
        inline,
        (message) => options.logger.error(message),
      )
      : inline;
    this.#listener = options.listener ??
      Deno.listen({
        hostname: options.host ?? "0.0.0.0",
        port: options.port ?? 0,
        transport: "tcp",
      });
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

  /** Why a new connection from `addrKey` must be refused at once, if it must. */
  #refusal(addrKey: string, now: number): string | undefined {
    const limits = this.#o.limits;
    if (this.#connections.size >= limits.max_connections) return "connection cap";
    if ((this.#perAddress.get(addrKey) ?? 0) >= limits.max_connections_per_address) {
      return "per-address cap";
    }
    // Every connection starts without a login: those count against their own cap.
    if (this.#connections.size - this.core.state.online.size >= limits.max_unauthenticated) {
      return "unauthenticated cap";
    }
    const bucket = this.#handshakeBuckets.get(addrKey);
    if (
      bucket && bucketWait(
          bucket,
          limits.handshakes_per_address_burst,
          limits.handshakes_per_address_per_second,
          now,
        ) > 0
    ) {
      return "handshake rate";
    }
    return undefined;
  }

  #admit(conn: Deno.TcpConn): void {
    const remote = conn.remoteAddr;
    const addr = remote.hostname;
    const addrKey = addressKey(addr);
    const limits = this.#o.limits;
    const now = Date.now();
    const refused = this.#refusal(addrKey, now);
    if (refused !== undefined) {
      // Closed at once, before any allocation for the connection.
      try {
        conn.close();
      } catch { /* gone */ }
      this.#logRefusal(addrKey, refused, now);
      return;
    }
    let bucket = this.#handshakeBuckets.get(addrKey);
    if (!bucket) {
      bucket = newBucket(limits.handshakes_per_address_burst, now);
      this.#handshakeBuckets.set(addrKey, bucket);
    }
    takeToken(
      bucket,
      limits.handshakes_per_address_burst,
      limits.handshakes_per_address_per_second,
      now,
    );
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const c = new Connection(this.#nextId++, addr, addrKey, conn, now);
    this.#connections.add(c);
    this.#perAddress.set(addrKey, (this.#perAddress.get(addrKey) ?? 0) + 1);
    if (this.#o.trace) {
      this.#o.logger.info("connection opened", { conn: c.id, addr: `${addr}:${remote.port}` });
    }
    const task = this.#serve(c).finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
  }

  /** Logs a refused connection, at most once per address key and reason per interval. */
  #logRefusal(addrKey: string, reason: string, now: number): void {
    const key = `${addrKey}\0${reason}`;
    const last = this.#refusalsLogged.get(key);
    if (last !== undefined && now - last < REFUSAL_LOG_INTERVAL_MS) return;
    this.#refusalsLogged.set(key, now);
    this.#o.logger.warn("connection refused", { addr: addrKey, reason });
  }

  #traceHandshake(c: Connection, e: HandshakeTrace): void {
    const fields: Record<string, string | number | boolean> = { conn: c.id };
    for (const [k, v] of Object.entries(e)) {
      fields[k] = v instanceof Uint8Array
        ? `${v.length} bytes ${toHex(v.subarray(0, 8))}…`
        : typeof v === "object"
        ? JSON.stringify(v)
        : v;
    }
    this.#o.logger.info("trace handshake", fields);
  }

  #traceRecord(c: Connection): ((e: RecordTrace) => void) | undefined {
    if (!this.#o.trace) return undefined;
    return (e) => this.#o.logger.info("trace record", { conn: c.id, ...e });
  }

  async #serve(c: Connection): Promise<void> {
    let reason = "closed by peer";
    const session = String(c.id);
    try {
      this.#handshaking++;
      const result = await serverHandshake(c.conn, {
        identity: this.#o.identity,
        crypto: this.#o.crypto,
        recordTrace: this.#traceRecord(c),
        respond: (hello) =>
          this.#pool.respond(hello)?.then(({ outcome, trace }) => {
            for (const step of trace) this.#traceHandshake(c, step);
            return outcome;
          }),
      }).finally(() => this.#handshaking--);
      if (result === null) {
        reason = "closed before handshake";
        return;
      }
      if (c.phase !== "handshake") return; // timed out meanwhile
      c.session = result.session;
      c.phase = "open";
      c.lastActivity = Date.now();
      this.#o.logger.info("handshake done", {
        conn: c.id,
        addr: c.addr,
        group: result.group.name,
      });
      this.core.open(session, c.addr, c.addrKey, c);
      await this.#readLoop(c, session, result.session);
    } catch (err) {
      if (err instanceof HandshakeError && err.code === "server_fault") {
        this.#o.logger.error("handshake failed on our side", { conn: c.id, error: err.message });
      }
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
      const user = this.core.state.sessions.get(session)?.user;
      this.core.close(session);
      this.#connections.delete(c);
      const n = (this.#perAddress.get(c.addrKey) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(c.addrKey);
      else this.#perAddress.set(c.addrKey, n);
      this.#logClosed(c, user);
    }
  }

  /** Logs a connection's end; those that never got past the handshake, within a budget. */
  #logClosed(c: Connection, user: string | undefined): void {
    const fields = { conn: c.id, addr: c.addr, user, reason: c.closeReason };
    if (c.session || this.#o.trace || this.#preHandshakeLogged < PRE_HANDSHAKE_LINES) {
      if (!c.session) this.#preHandshakeLogged++;
      this.#o.logger.info("connection closed", fields);
      return;
    }
    this.#unlogged.set(c.closeReason, (this.#unlogged.get(c.closeReason) ?? 0) + 1);
  }

  async #readLoop(c: Connection, session: string, secure: SecureSession): Promise<void> {
    while (c.phase === "open") {
      const plaintext = await secure.receive();
      if (plaintext === null) return;
      c.lastActivity = Date.now();
      try {
        this.core.receive(session, parseClientMessage(plaintext));
      } catch (err) {
        // A bug in the request logic must not take the connection loop (or the server) down.
        this.#o.logger.error("request failed", { conn: c.id, error: String(err) });
        c.close("internal error");
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
    this.core.tick();
    if (++this.#sweeps % THROTTLE_SWEEP_EVERY === 0) {
      this.core.sweep();
      const limits = this.#o.limits;
      for (const [key, bucket] of this.#handshakeBuckets) {
        const full = bucketTokens(
          bucket,
          limits.handshakes_per_address_burst,
          limits.handshakes_per_address_per_second,
          now,
        ) >= limits.handshakes_per_address_burst;
        if (full) this.#handshakeBuckets.delete(key);
      }
      if (this.#unlogged.size > 0) {
        const total = [...this.#unlogged.values()].reduce((a, b) => a + b, 0);
        this.#o.logger.warn("connections ended before their handshake, not logged one by one", {
          count: total,
          reasons: JSON.stringify(Object.fromEntries(this.#unlogged)),
        });
        this.#unlogged.clear();
      }
      this.#preHandshakeLogged = 0;
      for (const [key, at] of this.#refusalsLogged) {
        if (now - at >= REFUSAL_LOG_INTERVAL_MS) this.#refusalsLogged.delete(key);
      }
    }
  }

  /** ClientHellos being answered now (for tests and metrics). */
  get handshakesInFlight(): number {
    return this.#pool.inFlight;
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
    this.#pool.close();
    clearInterval(this.#sweeper);
  }
}
