// Test harness: an in-process server on port 0 with a temporary log, and a scripted client
// speaking HSP/1 over a real loopback socket.
import {
  type CryptoEngine,
  type KexGroup,
  type ScryptParams,
  type ServerIdentity,
  TEST_ONLY_WEAK_PARAMS,
} from "../../crypto/mod.ts";
import type { RequestCode, ServerMessage } from "../../protocol/messages.ts";
import { type Outcome, type RequestBody, TestLink } from "../../tools/link.ts";
import { readToClose } from "../../tools/raw_conn.ts";
import { openStore } from "../../store/mod.ts";
import type { AppendTag } from "../../server/core.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "../../server/config.ts";
import { Logger } from "../../server/logger.ts";
import { Server } from "../../server/server.ts";
import { portableCrypto } from "../_engines.ts";
import { testIdentityOn } from "../_vectors.ts";

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

/**
 * Starts a server on 127.0.0.1:0 over a log in `dir` (a fresh temp dir by default), on the
 * portable engine unless `crypto` says otherwise.
 */
export async function startServer(
  options: {
    dir?: string;
    limits?: Partial<ServerLimits>;
    hashParams?: ScryptParams;
    groups?: readonly KexGroup[];
    identity?: ServerIdentity;
    crypto?: CryptoEngine;
    /** The event store's URL (a shared PostgreSQL, say); a log file in `dir` by default. */
    store?: string;
    /** How a PostgreSQL store follows the log (a node made to lag behind it). */
    follow?: { pollIntervalMs?: number; listen?: boolean };
  } = {},
): Promise<TestServer> {
  const crypto = options.crypto ?? portableCrypto;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "hybrid-test-" });
  const logPath = `${dir}/events.log`;
  const { store, state } = await openStore<AppendTag>(options.store ?? `file:${logPath}`, {
    follow: options.follow,
  });
  const lines: string[] = [];
  const server = new Server({
    host: "127.0.0.1",
    port: 0,
    identity: options.identity ?? testIdentityOn(crypto),
    crypto,
    store,
    state,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    logger: new Logger({ write: (line) => lines.push(line) }),
    hashParams: options.hashParams ?? TEST_ONLY_WEAK_PARAMS,
    groups: options.groups,
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      await server.shutdown();
      await store.close();
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

/** A scripted client for tests: a TestLink whose pushes are collected and can be waited for. */
export class TestClient {
  private constructor(readonly link: TestLink, readonly pushes: ServerMessage[]) {}

  /**
   * Connects and handshakes (on the portable engine by default); `from` picks a loopback
   * source address such as 127.0.0.2.
   */
  static async connect(
    port: number,
    groupIndex = 0,
    from = "127.0.0.1",
    crypto: CryptoEngine = portableCrypto,
  ): Promise<TestClient> {
    const pushes: ServerMessage[] = [];
    const link = await TestLink.open(port, (m) => pushes.push(m), { crypto, from, groupIndex });
    return new TestClient(link, pushes);
  }

  get closed(): boolean {
    return this.link.closed;
  }

  /** Sends a request and resolves with its response; fails if the connection ends first. */
  async request(body: RequestBody): Promise<ServerMessage> {
    return this.#answer(await this.link.request(body));
  }

  #answer(r: Outcome): ServerMessage {
    if (r === "closed") {
      throw new Error(`connection closed before the response (${this.link.closeReason})`);
    }
    return r;
  }

  /** Sends raw plaintext as one record; with `expect`, resolves with the response of that id. */
  async sendRaw(
    plaintext: string | Uint8Array,
    expect?: { id: number; code: RequestCode },
  ): Promise<ServerMessage | undefined> {
    const bytes = typeof plaintext === "string" ? new TextEncoder().encode(plaintext) : plaintext;
    const answer = expect ? this.link.expect(expect.id, expect.code) : undefined;
    this.link.sendRaw(bytes);
    return answer && this.#answer(await answer);
  }

  dak(msg: string): void {
    this.link.dak(msg);
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
        return found >= 0 || this.link.closed;
      },
      `a ${code} push`,
      ms,
    );
    if (found < 0) {
      throw new Error(`connection closed before a ${code} push (${this.link.closeReason})`);
    }
    return this.pushes.splice(found, 1)[0] as Extract<ServerMessage, { code: C }>;
  }

  /** Resolves once the server has closed the connection. */
  waitClosed(): Promise<void> {
    return this.link.done;
  }

  close(): Promise<void> {
    return this.link.close();
  }
}

/** Signs up and logs in `user` (password "password-<user>") on a fresh connection. */
export async function loggedIn(
  port: number,
  user: string,
  crypto: CryptoEngine = portableCrypto,
): Promise<TestClient> {
  const c = await TestClient.connect(port, 0, "127.0.0.1", crypto);
  const password = `password-${user}`;
  const snu = await c.request({ code: "SNU", user, password });
  if (snu.code !== "ACK" && !(snu.code === "ERR" && snu.error === "user_exists")) {
    throw new Error(`sign-up of ${user} failed: ${JSON.stringify(snu)}`);
  }
  const lgn = await c.request({ code: "LGN", user, password });
  if (lgn.code !== "ACK") throw new Error(`login of ${user} failed: ${JSON.stringify(lgn)}`);
  return c;
}

/** Reads a raw connection until the server closes it; fails if it stays open past `ms`. */
export async function readUntilClosed(conn: Deno.Conn, ms = 5000): Promise<Uint8Array> {
  const bytes = await readToClose(conn, ms);
  if (bytes === "open") throw new Error(`server kept the connection open past ${ms} ms`);
  return bytes;
}
