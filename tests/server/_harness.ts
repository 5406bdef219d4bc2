// Test harness: an in-process server on port 0 with a temporary log, and a scripted client
// speaking HSP/1 over a real loopback socket.
import { concat, GROUPS, type ScryptParams, TEST_ONLY_WEAK_PARAMS } from "../../crypto/mod.ts";
import {
  encodeMessage,
  parseServerMessage,
  type Request,
  type RequestCode,
  type ServerMessage,
} from "../../protocol/messages.ts";
import { clientHandshake, type SecureSession } from "../../protocol/session.ts";
import type { Transport } from "../../protocol/channel.ts";
import { connectFrom } from "../../tools/node_transport.ts";
import { openEventLog } from "../../store/mod.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "../../server/config.ts";
import { Logger } from "../../server/logger.ts";
import { Server } from "../../server/server.ts";
import { testIdentity } from "../_vectors.ts";

/** Waits for `condition` to hold, polling each turn of the event loop, up to `ms`. */
export async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export interface TestServer {
  server: Server;
  port: number;
  dir: string;
  logPath: string;
  lines: string[];
  /** Graceful shutdown and log close; idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the temporary directory. */
  dispose(): Promise<void>;
}

/** Starts a server on 127.0.0.1:0 over a log in `dir` (a fresh temp dir by default). */
export async function startServer(
  options: { dir?: string; limits?: Partial<ServerLimits>; hashParams?: ScryptParams } = {},
): Promise<TestServer> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "hybrid-test-" });
  const logPath = `${dir}/events.log`;
  const { log, state } = await openEventLog(logPath);
  const lines: string[] = [];
  const server = new Server({
    host: "127.0.0.1",
    port: 0,
    identity: testIdentity,
    store: log,
    state,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    logger: new Logger({ write: (line) => lines.push(line) }),
    hashParams: options.hashParams ?? TEST_ONLY_WEAK_PARAMS,
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      await server.shutdown();
      await log.close();
    })();
  return {
    server,
    port: server.addr.port,
    dir,
    logPath,
    lines,
    stop,
    dispose: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A request without its id (distributes over the union). */
type RequestBody = Request extends infer R ? R extends Request ? Omit<R, "id"> : never : never;

/** A scripted HSP/1 client: requests matched by id, pushes collected in order. */
export class TestClient {
  readonly pushes: ServerMessage[] = [];
  readonly #pending = new Map<number, { code: RequestCode; resolve: (m: ServerMessage) => void }>();
  #nextId = 1;
  closed = false;
  closeReason = "";
  readonly #reading: Promise<void>;

  private constructor(readonly conn: Transport, readonly session: SecureSession) {
    this.#reading = this.#readLoop();
  }

  /** Connects and handshakes; `from` picks a loopback source address such as 127.0.0.2. */
  static async connect(port: number, groupIndex = 0, from?: string): Promise<TestClient> {
    const conn: Transport = from === undefined
      ? await Deno.connect({ hostname: "127.0.0.1", port })
      : await connectFrom(from, "127.0.0.1", port);
    try {
      const { session } = await clientHandshake(conn, { group: GROUPS[groupIndex]! });
      return new TestClient(conn, session);
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const plaintext = await this.session.receive();
        if (plaintext === null) break;
        const parsed = parseServerMessage(plaintext, (id) => this.#pending.get(id)?.code);
        if (!parsed.ok) throw new Error(`server sent a malformed message: ${parsed.reason}`);
        const m = parsed.value;
        if ((m.code === "ACK" || m.code === "ERR") && m.id !== 0) {
          const waiter = this.#pending.get(m.id);
          this.#pending.delete(m.id);
          waiter?.resolve(m);
        } else {
          this.pushes.push(m);
        }
      }
      this.closeReason = "eof";
    } catch (err) {
      this.closeReason = String(err);
    } finally {
      this.closed = true;
      for (const w of this.#pending.values()) w.resolve({ code: "BYE", reason: "shutdown" });
      this.#pending.clear();
    }
  }

  /** Sends a request and resolves with its response (ACK or ERR). */
  request(body: RequestBody): Promise<ServerMessage> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, { code: body.code, resolve });
      this.session.send(encodeMessage({ ...body, id } as Request));
    });
  }

  /** Sends raw plaintext as one record (for malformed-request tests). */
  sendRaw(
    plaintext: string | Uint8Array,
    expectId?: { id: number; code: RequestCode },
  ): Promise<ServerMessage> | void {
    const bytes = typeof plaintext === "string" ? new TextEncoder().encode(plaintext) : plaintext;
    if (!expectId) return this.session.send(bytes);
    return new Promise((resolve) => {
      this.#pending.set(expectId.id, { code: expectId.code, resolve });
      this.session.send(bytes);
    });
  }

  dak(msg: string): void {
    this.session.send(encodeMessage({ code: "DAK", msg }));
  }

  /** Waits for a push matching `pred` (default: any of `code`), removing it from the list. */
  async push<C extends ServerMessage["code"]>(
    code: C,
    pred: (m: Extract<ServerMessage, { code: C }>) => boolean = () => true,
    ms = 5000,
  ): Promise<Extract<ServerMessage, { code: C }>> {
    let found = -1;
    await until(
      () => {
        found = this.pushes.findIndex((m) =>
          m.code === code && pred(m as Extract<ServerMessage, { code: C }>)
        );
        return found >= 0 || this.closed;
      },
      `a ${code} push`,
      ms,
    );
    if (found < 0) throw new Error(`connection closed before a ${code} push (${this.closeReason})`);
    return this.pushes.splice(found, 1)[0] as Extract<ServerMessage, { code: C }>;
  }

  /** Resolves once the server has closed the connection. */
  async waitClosed(): Promise<void> {
    await this.#reading;
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* already closed */ }
    await this.#reading;
  }
}

/** Signs up and logs in `user` (password "password-<user>") on a fresh connection. */
export async function loggedIn(port: number, user: string): Promise<TestClient> {
  const c = await TestClient.connect(port);
  const password = `password-${user}`;
  const snu = await c.request({ code: "SNU", user, password });
  if (snu.code !== "ACK" && !(snu.code === "ERR" && snu.error === "user_exists")) {
    throw new Error(`sign-up of ${user} failed: ${JSON.stringify(snu)}`);
  }
  const lgn = await c.request({ code: "LGN", user, password });
  if (lgn.code !== "ACK") throw new Error(`login of ${user} failed: ${JSON.stringify(lgn)}`);
  return c;
}

/**
 * Reads from a raw connection until the server closes it; returns every byte it sent.
 * Fails if the server keeps it open longer than `ms`.
 */
export async function readUntilClosed(conn: Deno.Conn, ms = 5000): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    conn.close();
  }, ms);
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch (err) {
    // A reset counts as closed by the server; anything else (our timer's close) does not.
    if (fired || !(err instanceof Deno.errors.ConnectionReset)) {
      throw fired ? new Error(`server kept the connection open past ${ms} ms`) : err;
    }
  } finally {
    clearTimeout(timer);
  }
  if (fired) throw new Error(`server kept the connection open past ${ms} ms`);
  try {
    conn.close();
  } catch { /* closed */ }
  return concat(...chunks);
}
