// One service, from the client's side: its servers tried in turn, dial, the §2 handshake with §6
// pinning, the §4 request table (ids, responses in any order, timeouts), pushes (a DLV is shown,
// then DAK'd; duplicates are dropped by `msg`), PNG keep-alives, and reconnection in rounds over
// the servers with back-off and a fresh login.
import { type CryptoEngine, KEX_GROUPS, type KexGroup } from "../crypto/mod.ts";
import type { Transport } from "../protocol/channel.ts";
import { type ClientHandshakeResult, HandshakeRefusedError } from "../protocol/handshake.ts";
import { CLIENT_PING_INTERVAL_MS, HANDSHAKE_TIMEOUT_MS } from "../protocol/limits.ts";
import {
  type Ack,
  type ByeReason,
  type Content,
  type Deliver,
  type Request,
  type Response,
  type ServerMessage,
} from "../protocol/messages.ts";
import { PendingRequests, type RequestBody } from "../protocol/rpc.ts";
import { clientHandshake, type SecureSession } from "../protocol/session.ts";
import type { ConnectionState, Endpoint, EventSink, PinOutcome } from "./client_events.ts";
import { endpointName } from "./known_hosts.ts";
import { handshakeView, recordView } from "./trace.ts";

/** Time to open the TCP connection. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Time a request may wait for its response (a login waits for password hashing on the server). */
export const REQUEST_TIMEOUT_MS = 30_000;
/** A PNG unanswered this long means the connection is dead, though TCP has not noticed. */
export const PING_TIMEOUT_MS = 20_000;
/**
 * The wait before the first reconnect round (each tries every server once); it doubles per
 * failed round up to RECONNECT_MAX_MS, with jitter (backoffDelay).
 */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 30_000;
/** Message ids remembered to drop duplicates (§4.3: delivery is at least once). */
export const SEEN_MESSAGES = 10_000;
/**
 * How long a MSG whose connection was lost before its answer keeps being sent again (same cid,
 * so the server stores it once, §4.3) after each automatic re-login.
 */
export const RESEND_WINDOW_MS = 60_000;
/** Messages that may wait for a re-login at once; more are refused rather than kept. */
export const MAX_QUEUED_MESSAGES = 100;
/** Time to flush queued records (DAKs) when the user closes the connection. */
export const CLOSE_DRAIN_MS = 1_000;

/** Why the connection could not do what was asked; `code` is stable, for --json. */
export class ConnectionError extends Error {
  override name = "ConnectionError";
  constructor(
    readonly code:
      | "not_connected"
      | "connection_lost"
      | "timeout"
      | "connect_failed"
      | "handshake"
      | "key_mismatch"
      | "known_hosts"
      | "queue_full",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What the pin check decided, for the `connected` event. */
export interface PinResult {
  readonly pin: PinOutcome;
  readonly previous: readonly string[];
  /** The server of the list whose pin the key matched, when `pin` is "sibling". */
  readonly sibling?: string;
  readonly knownHosts: string;
}

export interface ConnectionOptions {
  /** The servers of one service (they share one key), in the order they are tried; not empty. */
  readonly servers: readonly Endpoint[];
  readonly group: KexGroup;
  /** The engine for the handshake and the session's records. */
  readonly crypto: CryptoEngine;
  readonly events: EventSink;
  /**
   * Checks the key of the server at `endpoint` against known_hosts (§6) before any record is
   * sent; throws ConnectionError("key_mismatch") to refuse. `automatic` is true on reconnects,
   * which must never accept a changed key by themselves (and reach it only for the session's
   * own key).
   */
  readonly pin: (endpoint: Endpoint, fingerprint: string, automatic: boolean) => Promise<PinResult>;
  /** Opens the transport; TCP by default. */
  readonly dial?: (endpoint: Endpoint) => Promise<Transport>;
  /** Jitter source in [0, 1); Math.random by default. */
  readonly random?: () => number;
  readonly pingIntervalMs?: number;
  readonly pingTimeoutMs?: number;
  /**
   * Shows a new DLV (opening it first if it is sealed, §8.5), reporting what it shows through
   * the events; the DAK follows once it settles. DLVs go through it one at a time, in the order
   * they came. False: it could not be handled now (the server could not be asked something),
   * so no DAK; it comes again. Without it, a text is shown as is and a sealed message as one
   * not opened.
   */
  readonly deliver?: (message: Deliver) => Promise<boolean>;
}

/** The delay before reconnect round `attempt` (1-based): exponential, capped, half jittered. */
export function backoffDelay(attempt: number, random: () => number): number {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt - 1, 16));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

/** What a request waits with in its link's table. */
interface Waiter {
  readonly resolve: (response: Response) => void;
  readonly reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Given up on (timed out): a late response is still expected and must parse, then is dropped. */
  settled: boolean;
}

/** One established transport and its session. */
interface Link {
  readonly transport: Transport;
  readonly session: SecureSession;
  readonly fingerprint: string;
  readonly pending: PendingRequests<Waiter>;
  ping: ReturnType<typeof setInterval> | undefined;
  /** A PNG is in flight: the next tick waits for it rather than pile up. */
  pinging: boolean;
  bye: ByeReason | undefined;
  /** Set when the user closes it: no reconnect, no "lost" report. */
  closing: boolean;
  /** Why we cut the transport ourselves, when we did: it explains the end of the read loop. */
  cutReason: string | undefined;
  done: Promise<void>;
}

async function defaultDial(endpoint: Endpoint): Promise<Transport> {
  const conn = await Deno.connect({ hostname: endpoint.host, port: endpoint.port });
  conn.setNoDelay(true);
  return conn;
}

/** Races `promise` against a timer; a value that arrives late is handed to `late` (to close it). */
function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  error: () => Error,
  late?: (value: T) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(error());
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (expired) late?.(value);
        else resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        if (!expired) reject(err);
      },
    );
  });
}

/**
 * What to tell the user when `server` answers ERR unsupported_group: the server's own list (in
 * its message, shown as it came) and the groups to try with --group. The message is free text
 * (§2.3), but when it names some of our groups those are the ones the server offers: suggesting
 * the others too would send the user to a second refusal. A message naming none gets them all.
 */
export function unsupportedGroupMessage(
  group: KexGroup,
  serverMessage: string,
  server = "the server",
): string {
  const others = KEX_GROUPS.filter((g) => g !== group);
  const named = others.filter((g) =>
    new RegExp(`(?<![a-z0-9])${g.name}(?![a-z0-9])`, "i").test(serverMessage)
  );
  const tries = (named.length > 0 ? named : others).map((g) => `--group ${g.name}`);
  return `${server} does not offer the ${group.title} key exchange` +
    `${serverMessage ? ` (it says: ${serverMessage})` : ""}; try ${tries.join(", ")}`;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A client connection to one of a service's servers; see the file comment. */
export class Connection {
  readonly servers: readonly Endpoint[];
  /** The server in use, or last tried: an index into `servers`. */
  #current = 0;
  readonly #options: ConnectionOptions;
  readonly #random: () => number;
  #link: Link | undefined;
  #state: ConnectionState = "idle";
  /** The first request id of the next link: ids go on from one connection to the next. */
  #nextId = 1;
  /** Bumped to cancel a reconnect loop in flight. */
  #generation = 0;
  #retry: { timer: ReturnType<typeof setTimeout>; wake: () => void } | undefined;
  #credentials: { user: string; password: string } | undefined;
  /**
   * The key of the last connection the user started: a reconnect must find it again. The pins
   * alone do not suffice, since a key they do not know counts as a first contact, and a
   * reconnect sends the password by itself.
   */
  #sessionFingerprint: string | undefined;
  /** A re-login is under way (messages wait for it). */
  #loggingInAgain = false;
  /** Waiting for the next automatic re-login: true once it succeeds, false if it never will. */
  #reloginWaiters: ((ok: boolean) => void)[] = [];
  readonly #seen = new Set<string>();
  #queuedRemaining = 0;
  #queuedWaiters: (() => void)[] = [];
  /** DLVs being shown, one after the other: the last one's settling. */
  #delivering: Promise<void> = Promise.resolve();
  #tracing = false;
  /** Messages shown (duplicates excluded). */
  messagesReceived = 0;

  constructor(options: ConnectionOptions) {
    if (options.servers.length === 0) throw new RangeError("a connection needs a server");
    this.servers = options.servers;
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  /** The server in use, or the one last tried. */
  get endpoint(): Endpoint {
    return this.servers[this.#current]!;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The logged-in user, while credentials are held for re-login. */
  get user(): string | undefined {
    return this.#credentials?.user;
  }

  /** The server key's fingerprint on the open connection. */
  get fingerprint(): string | undefined {
    return this.#link?.fingerprint;
  }

  get records(): { sent: number; received: number } | undefined {
    return this.#link?.session.counts;
  }

  get group(): KexGroup {
    return this.#options.group;
  }

  /** Turns the handshake and record trace on or off, at once for the open session. */
  set tracing(on: boolean) {
    this.#tracing = on;
    if (this.#link) this.#link.session.trace = on ? this.#recordTrace : undefined;
  }

  get tracing(): boolean {
    return this.#tracing;
  }

  /**
   * Connects now (the user asked to), trying the servers in turn from the first: rejects with a
   * ConnectionError if none can be used.
   */
  async open(): Promise<void> {
    this.#cancelReconnect();
    if (this.#link) return;
    try {
      await this.#connectAny(0, false, this.#generation);
    } catch (err) {
      this.#state = "idle";
      throw err;
    }
  }

  /**
   * Closes the connection at the user's request: no reconnect, credentials forgotten, queued
   * DAKs flushed first (briefly). Reports `disconnected` if there was anything to close, unless
   * `report` is false (the client is leaving anyway).
   */
  async close(reason = "closed by you", report = true): Promise<void> {
    const wasActive = this.#link !== undefined || this.#state === "reconnecting";
    this.#cancelReconnect();
    this.#forgetCredentials();
    await this.#closeLink();
    this.#state = "idle";
    if (wasActive && report) {
      this.#options.events({
        type: "disconnected",
        ...this.endpoint,
        reason,
        reconnect: false,
      });
    }
  }

  /**
   * Connects again at the user's request (/connect to these servers, from the one in use): the
   * open link, if any, is closed, and the login this session holds is made again if the server
   * shows the session's key, as an automatic reconnect does. A key the user accepted in its
   * place starts a new session: the credentials are forgotten, and the user is told to log in.
   */
  async reconnect(): Promise<void> {
    const wasActive = this.#link !== undefined || this.#state === "reconnecting";
    this.#cancelReconnect();
    await this.#closeLink();
    if (wasActive) {
      this.#options.events({
        type: "disconnected",
        ...this.endpoint,
        reason: "connecting again as you asked",
        reconnect: true,
      });
    }
    const previous = this.#sessionFingerprint;
    try {
      await this.#connectAny(this.#current, false, this.#generation);
    } catch (err) {
      this.#state = "idle";
      if (err instanceof ConnectionError && err.code !== "connect_failed") {
        this.#forgetCredentials();
      }
      throw err;
    }
    const credentials = this.#credentials;
    if (credentials === undefined) return;
    if (this.#link?.fingerprint === previous) {
      await this.#relogin();
      return;
    }
    this.#forgetCredentials();
    this.#options.events({
      type: "info",
      message: `not logged in again as ${credentials.user}: the server's key is not the one ` +
        "it had when you logged in; /login",
    });
  }

  /** Closes the open link (its DAKs flushed first, briefly), reporting nothing. */
  async #closeLink(): Promise<void> {
    const link = this.#link;
    if (link === undefined) return;
    link.closing = true;
    await withTimeout(link.session.writer.drained(), CLOSE_DRAIN_MS, () => new Error("drain"))
      .catch(() => {});
    this.#safeClose(link.transport);
    await link.done;
  }

  /** Sends one request and waits for its response (an ACK or an ERR; both resolve). */
  request(body: RequestBody): Promise<Response> {
    const link = this.#link;
    if (link === undefined) {
      const why = this.#state === "reconnecting" ? "not connected (reconnecting)" : "not connected";
      return Promise.reject(new ConnectionError("not_connected", `${why}: use /connect`));
    }
    return this.#requestOn(link, body, REQUEST_TIMEOUT_MS);
  }

  /**
   * MSG with a fresh cid. If the connection is lost before the answer, or is being regained
   * when the message is sent, the same MSG (same cid, so the server stores it once, §4.3) waits
   * for the next automatic re-login and is sent then, in the order given, for up to
   * RESEND_WINDOW_MS; past that, or when no re-login can happen, the loss is the answer. At
   * most MAX_QUEUED_MESSAGES wait at a time.
   */
  async sendMessage(to: string, content: Content): Promise<Response> {
    const cid = crypto.randomUUID();
    const deadline = Date.now() + RESEND_WINDOW_MS;
    while (true) {
      // Checked before the first await, so that `queuedMessages` counts this one at once.
      if (this.queues) await this.#waitForRelogin(deadline);
      try {
        return await this.request({ code: "MSG", to, ...content, cid } as RequestBody);
      } catch (err) {
        // A lost connection is being regained (queues) unless no re-login can follow.
        const lost = err instanceof ConnectionError && err.code === "connection_lost";
        if (!lost || !this.queues || Date.now() >= deadline) throw err;
      }
    }
  }

  /**
   * When a message sent now would wait for a re-login (`queues`), waits for it in line as
   * sendMessage does, and counts in `queuedMessages` at once: for work a send needs first
   * (fetching the recipient's key to seal to).
   */
  async loggedIn(): Promise<void> {
    if (this.queues) await this.#waitForRelogin(Date.now() + RESEND_WINDOW_MS);
  }

  /**
   * Waits, in line, for the next re-login; throws if the queue is full or none comes in time.
   * The messages say why, not what: the REPL reports them as "not sent: …".
   */
  #waitForRelogin(deadline: number): Promise<void> {
    if (this.#reloginWaiters.length >= MAX_QUEUED_MESSAGES) {
      return Promise.reject(
        new ConnectionError(
          "queue_full",
          `${MAX_QUEUED_MESSAGES} messages already wait for the connection to come back`,
        ),
      );
    }
    return this.#loggedInAgain(deadline - Date.now()).then((ok) => {
      if (!ok) {
        throw new ConnectionError(
          "connection_lost",
          `the connection did not come back with your login (within ${RESEND_WINDOW_MS / 1000} s)`,
        );
      }
    });
  }

  /**
   * Whether a message sent now would wait for a re-login: the connection is being regained, or
   * its login made again (sent before, it would find the session not yet logged in).
   */
  get queues(): boolean {
    return this.#credentials !== undefined &&
      (this.#state === "reconnecting" || this.#loggingInAgain);
  }

  /** Messages waiting for the next re-login. */
  get queuedMessages(): number {
    return this.#reloginWaiters.length;
  }

  /** Resolves true at the next successful automatic re-login, false if none comes in `ms`. */
  #loggedInAgain(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const settle = (ok: boolean) => {
        clearTimeout(timer);
        this.#reloginWaiters = this.#reloginWaiters.filter((w) => w !== settle);
        resolve(ok);
      };
      const timer = setTimeout(() => settle(false), ms);
      this.#reloginWaiters.push(settle);
    });
  }

  #settleRelogin(ok: boolean): void {
    for (const settle of [...this.#reloginWaiters]) settle(ok);
  }

  /** Drops the in-memory credentials: no automatic re-login, so no resend, will follow. */
  #forgetCredentials(): void {
    this.#credentials = undefined;
    this.#settleRelogin(false);
  }

  /** LGN; on success the credentials are kept (in memory only) to log in again after a reconnect. */
  async login(user: string, password: string): Promise<Response> {
    const response = await this.request({ code: "LGN", user, password });
    if (response.code === "ACK" && response.request === "LGN") {
      this.#credentials = { user: response.user, password };
      this.#expectQueued(response.queued);
    }
    return response;
  }

  /** LGO; on success the credentials are forgotten. */
  async logout(): Promise<Response> {
    const response = await this.request({ code: "LGO" });
    if (response.code === "ACK") {
      this.#forgetCredentials();
      // Messages the login said were queued and not shown yet come again at the next login.
      this.#queuedDone();
    }
    return response;
  }

  /** CPW; on success a later re-login uses the new password. */
  async changePassword(old: string, next: string): Promise<Response> {
    const response = await this.request({ code: "CPW", old, new: next });
    if (response.code === "ACK" && this.#credentials) this.#credentials.password = next;
    return response;
  }

  /**
   * Resolves once the messages the last login said were queued have all arrived (or the
   * connection went), or after `timeoutMs`: a script that logs in to fetch its mail waits here.
   */
  queuedDelivered(timeoutMs: number): Promise<void> {
    if (this.#queuedRemaining === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#queuedWaiters.push(done);
    });
  }

  // ─── Establishing ─────────────────────────────────────────────────────────────────────────

  /**
   * Tries the servers in turn from index `start` until one is established. A refused key (or
   * known_hosts that cannot be trusted) ends the round at once: the refusal is the answer, never
   * passed over for the next server. Throws that refusal, the one failure, or all of them.
   */
  async #connectAny(start: number, automatic: boolean, generation: number): Promise<void> {
    const { servers } = this;
    const failures: ConnectionError[] = [];
    for (let i = 0; i < servers.length; i++) {
      const index = (start + i) % servers.length;
      this.#current = index;
      try {
        await this.#establish(index, automatic, generation, failures.at(-1)?.message);
        return;
      } catch (err) {
        const refused = err instanceof ConnectionError &&
          (err.code === "key_mismatch" || err.code === "known_hosts");
        if (!(err instanceof ConnectionError) || refused || generation !== this.#generation) {
          throw err;
        }
        failures.push(err);
      }
    }
    if (failures.length === 1) throw failures[0];
    throw new ConnectionError(
      failures.every((f) => f.code === "connect_failed") ? "connect_failed" : "handshake",
      `none of the ${servers.length} servers could be used: ` +
        failures.map((f) => f.message).join("; "),
      { cause: failures.at(-1) },
    );
  }

  /**
   * Dials server `index` and runs the handshake; `generation` is the attempt's, to notice a
   * close() meanwhile; `lastError`, why the server tried before it in this round failed.
   */
  async #establish(
    index: number,
    automatic: boolean,
    generation: number,
    lastError: string | undefined,
  ): Promise<void> {
    const endpoint = this.servers[index]!;
    const { group, events } = this.#options;
    if (!automatic) this.#state = "connecting";
    // A reconnect round has announced itself already ("reconnecting in …"): with one server,
    // that is all; with several, each is named as it is tried.
    if (!automatic || this.servers.length > 1) {
      events({
        type: "connecting",
        ...endpoint,
        group: group.name,
        server: index + 1,
        servers: this.servers.length,
        ...(lastError === undefined ? {} : { last_error: lastError }),
      });
    }
    const name = endpointName(endpoint.host, endpoint.port);
    const dial = this.#options.dial ?? defaultDial;
    let transport: Transport;
    try {
      transport = await withTimeout(
        dial(endpoint),
        CONNECT_TIMEOUT_MS,
        () => new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`),
        (late) => late.close(),
      );
    } catch (err) {
      throw new ConnectionError("connect_failed", `cannot connect to ${name}: ${describe(err)}`, {
        cause: err,
      });
    }
    let pin: PinResult | undefined;
    let handshake: { session: SecureSession; result: ClientHandshakeResult };
    try {
      handshake = await withTimeout(
        clientHandshake(transport, {
          group,
          crypto: this.#options.crypto,
          trace: (event) => {
            if (this.#tracing) {
              events({ type: "trace", handshake: handshakeView(event), ...endpoint });
            }
          },
          checkPin: async (result) => {
            if (automatic) this.#checkSessionKey(result.fingerprint);
            pin = await this.#options.pin(endpoint, result.fingerprint, automatic);
          },
        }),
        HANDSHAKE_TIMEOUT_MS,
        () => new Error(`the handshake did not complete within ${HANDSHAKE_TIMEOUT_MS / 1000} s`),
      );
    } catch (err) {
      this.#safeClose(transport);
      if (err instanceof ConnectionError) throw err;
      if (err instanceof HandshakeRefusedError && err.code === "unsupported_group") {
        // Named: in a list of servers, the user must know which one refused.
        const text = unsupportedGroupMessage(group, err.serverMessage, name);
        throw new ConnectionError("handshake", text, { cause: err });
      }
      throw new ConnectionError("handshake", `handshake with ${name} failed: ${describe(err)}`, {
        cause: err,
      });
    }
    const { session, result } = handshake;
    if (generation !== this.#generation) {
      // close() was called while this attempt was under way: it must not come back to life.
      this.#safeClose(transport);
      throw new ConnectionError("connect_failed", "cancelled");
    }
    const link: Link = {
      transport,
      session,
      fingerprint: result.fingerprint,
      pending: new PendingRequests(this.#nextId),
      ping: undefined,
      pinging: false,
      bye: undefined,
      closing: false,
      cutReason: undefined,
      done: Promise.resolve(),
    };
    session.trace = this.#tracing ? this.#recordTrace : undefined;
    // A connection the user starts may have accepted a new key: the session's key from now on.
    if (!automatic) this.#sessionFingerprint = result.fingerprint;
    this.#link = link;
    this.#state = "open";
    link.done = this.#readLoop(link);
    link.ping = setInterval(
      () => this.#ping(link),
      this.#options.pingIntervalMs ?? CLIENT_PING_INTERVAL_MS,
    );
    events({
      type: "connected",
      ...endpoint,
      group: group.name,
      fingerprint: result.fingerprint,
      pin: pin?.pin ?? "match",
      previous: pin?.previous ?? [],
      ...(pin?.sibling === undefined ? {} : { sibling: pin.sibling }),
      known_hosts: pin?.knownHosts ?? "",
    });
  }

  /** Refuses, loudly, a reconnect to a key other than the session's (before any record). */
  #checkSessionKey(fingerprint: string): void {
    const expected = this.#sessionFingerprint;
    if (fingerprint === expected) return;
    this.#options.events({
      type: "key_mismatch",
      ...this.endpoint,
      source: "session",
      pinned: expected === undefined ? [] : [expected],
      pinned_for: [],
      presented: fingerprint,
      accepted: false,
      known_hosts: null,
    });
    throw new ConnectionError(
      "key_mismatch",
      `refused: the server's key ${fingerprint} is not the key ${expected} of this session`,
    );
  }

  readonly #recordTrace = (event: Parameters<NonNullable<SecureSession["trace"]>>[0]) => {
    this.#options.events({ type: "trace", record: recordView(event) });
  };

  // ─── Requests and pushes ──────────────────────────────────────────────────────────────────

  #requestOn(link: Link, body: RequestBody, timeoutMs: number): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined, settled: false };
      const id = link.pending.add(body.code, waiter);
      waiter.timer = setTimeout(() => {
        waiter.settled = true;
        reject(new ConnectionError("timeout", `no response within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      try {
        link.session.sendMessage({ ...body, id } as Request);
      } catch (err) {
        // The writer failed: the connection is going; the read loop reports it.
        clearTimeout(waiter.timer);
        link.pending.take(id);
        reject(new ConnectionError("connection_lost", `cannot send: ${describe(err)}`));
        this.#cut(link, `cannot send: ${describe(err)}`);
      }
    });
  }

  async #readLoop(link: Link): Promise<void> {
    let reason = "the server closed the connection";
    try {
      while (true) {
        const plaintext = await link.session.receive();
        if (plaintext === null) break;
        const read = link.pending.read(plaintext);
        if (read.kind === "malformed") {
          reason = `the server sent a malformed message (${read.reason})`;
          break;
        }
        const message = read.kind === "response" ? read.response : read.message;
        try {
          if (read.kind === "response") {
            clearTimeout(read.waiter.timer);
            // Given up on (timed out): the late response parsed, and is dropped.
            if (!read.waiter.settled) read.waiter.resolve(read.response);
          } else {
            this.#dispatch(link, read.message);
          }
        } catch (err) {
          // A fault of ours while showing a message must not take the connection down.
          this.#options.events({
            type: "error",
            context: "connection",
            code: "internal",
            message: `internal error: ${describe(err)}`,
          });
        }
        if (message.code === "ACK" || message.code === "ERR") {
          // Let the requester report its response before the pushes that follow it are shown
          // (a login's ACK, then its queued messages): its continuation runs on microtasks.
          await new Promise((wake) => setTimeout(wake, 0));
        }
      }
    } catch (err) {
      reason = `connection failed: ${describe(err)}`;
    }
    reason = link.cutReason ?? reason;
    this.#lost(link, link.bye ? `${reason} (${link.bye})` : reason);
  }

  #dispatch(link: Link, message: ServerMessage): void {
    switch (message.code) {
      case "ACK":
      case "ERR":
        // Only ERR bad_request with id 0 gets here: responses to requests were taken out by the
        // table, and the parser refuses an id nobody asked.
        this.#options.events({
          type: "error",
          context: "connection",
          code: message.code === "ERR" ? message.error : "bad_request",
          message: message.code === "ERR" ? message.message : "unexpected ACK",
        });
        return;
      case "DLV": {
        if (this.#seen.has(message.msg)) {
          // Shown before (§4.3: at least once): acknowledged again, in its turn.
          this.#delivering = this.#delivering.then(() => this.#acknowledge(link, message.msg));
          return;
        }
        this.#remember(message.msg);
        const loggedIn = this.user;
        this.#delivering = this.#delivering.then(async () => {
          // The login it came for ended while it waited its turn (/logout, another /login,
          // leaving): neither shown nor acknowledged, it comes again at that user's next login.
          // Shown now it would fail the recipient_key check, a false alarm. (A DLV whose `to` is
          // not the user logged in is still shown as failing and acknowledged, as §8.5 says.)
          if (this.user !== loggedIn) {
            this.#seen.delete(message.msg);
            return;
          }
          try {
            if (!await this.#show(message)) {
              this.#seen.delete(message.msg);
              return;
            }
          } catch (err) {
            this.#options.events({
              type: "error",
              context: "connection",
              code: "internal",
              message: `internal error while showing message ${message.msg}: ${describe(err)}`,
            });
          }
          this.#acknowledge(link, message.msg);
        });
        return;
      }
      case "BYE":
        link.bye = message.reason;
        this.#options.events({ type: "bye", reason: message.reason });
        return;
      default: {
        const never: never = message;
        throw new TypeError(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  /** Shows one new DLV, through the `deliver` option when there is one; false if it could not. */
  async #show(message: Deliver): Promise<boolean> {
    if (this.#options.deliver && !await this.#options.deliver(message)) return false;
    this.messagesReceived++;
    if (!this.#options.deliver) showWithoutKeys(message, this.#options.events);
    return true;
  }

  /**
   * DAK for a DLV shown (or shown before, or that failed to open: §8.5 sends one whatever the
   * outcome), so the server may drop it from the queue (§4.2). On the link it came by, or on the
   * one that replaced it; none if the connection is down (it comes again at the next login).
   */
  #acknowledge(link: Link, msg: string): void {
    if (this.#queuedRemaining > 0 && --this.#queuedRemaining === 0) this.#queuedDone();
    const current = link.transport === this.#link?.transport || this.#link === undefined
      ? link
      : this.#link;
    try {
      current.session.sendMessage({ code: "DAK", msg });
    } catch {
      // The connection is going: the message is pushed again at the next login.
    }
  }

  #remember(msg: string): void {
    this.#seen.add(msg);
    if (this.#seen.size > SEEN_MESSAGES) {
      // Sets iterate in insertion order: the first is the oldest.
      this.#seen.delete(this.#seen.values().next().value!);
    }
  }

  #expectQueued(count: number): void {
    this.#queuedRemaining = count;
    if (count === 0) this.#queuedDone();
  }

  #queuedDone(): void {
    this.#queuedRemaining = 0;
    const waiters = this.#queuedWaiters;
    this.#queuedWaiters = [];
    for (const wake of waiters) wake();
  }

  async #ping(link: Link): Promise<void> {
    if (link.pinging) return;
    link.pinging = true;
    const timeout = this.#options.pingTimeoutMs ?? PING_TIMEOUT_MS;
    try {
      await this.#requestOn(link, { code: "PNG" }, timeout);
      link.pinging = false;
    } catch {
      // Unanswered: the server or the path is gone. Cutting ends the read loop, which reports.
      this.#cut(link, `no answer to a keep-alive within ${timeout / 1000} s`);
    }
  }

  // ─── Losing and regaining the connection ─────────────────────────────────────────────────

  #lost(link: Link, reason: string): void {
    clearInterval(link.ping);
    this.#safeClose(link.transport);
    link.session.dispose();
    this.#nextId = link.pending.next;
    for (const waiter of link.pending.drain()) {
      clearTimeout(waiter.timer);
      if (!waiter.settled) {
        waiter.reject(new ConnectionError("connection_lost", `connection lost: ${reason}`));
      }
    }
    this.#queuedDone();
    if (this.#link !== link) return;
    this.#link = undefined;
    if (link.closing) return;
    if (link.bye === "logged_in_elsewhere" || link.bye === "logged_out_by_server") {
      // Logging in again would end the other session, which would end ours: never fight.
      this.#forgetCredentials();
    }
    this.#state = "reconnecting";
    this.#options.events({ type: "disconnected", ...this.endpoint, reason, reconnect: true });
    // The server just lost is tried last: it is the one likeliest to be down.
    void this.#reconnectLoop(++this.#generation, (this.#current + 1) % this.servers.length);
  }

  /** Rounds over the servers from index `start`, each after its back-off, until one is back. */
  async #reconnectLoop(generation: number, start: number): Promise<void> {
    let lastError: string | undefined;
    for (let attempt = 1;; attempt++) {
      const delay = backoffDelay(attempt, this.#random);
      this.#options.events({
        type: "reconnecting",
        ...this.servers[start]!,
        attempt,
        delay_ms: delay,
        ...(lastError === undefined ? {} : { last_error: lastError }),
        servers: this.servers.length,
      });
      await new Promise<void>((wake) => {
        this.#retry = { timer: setTimeout(wake, delay), wake };
      });
      this.#retry = undefined;
      if (generation !== this.#generation) return;
      try {
        await this.#connectAny(start, true, generation);
      } catch (err) {
        if (generation !== this.#generation) return;
        if (
          err instanceof ConnectionError &&
          (err.code === "key_mismatch" || err.code === "known_hosts")
        ) {
          this.#state = "idle";
          this.#forgetCredentials();
          this.#options.events({
            type: "disconnected",
            ...this.endpoint,
            reason: err.code === "key_mismatch"
              ? "the server's key changed: not reconnecting"
              : `${err.message}: not reconnecting`,
            reconnect: false,
          });
          return;
        }
        this.#state = "reconnecting";
        lastError = describe(err);
        continue;
      }
      if (generation !== this.#generation) return;
      await this.#relogin();
      return;
    }
  }

  async #relogin(): Promise<void> {
    this.#loggingInAgain = true;
    try {
      await this.#loginAgain();
    } finally {
      this.#loggingInAgain = false;
    }
  }

  async #loginAgain(): Promise<void> {
    const link = this.#link;
    const credentials = this.#credentials;
    if (link === undefined || credentials === undefined) return;
    const { events } = this.#options;
    let response: Response;
    try {
      response = await this.#requestOn(
        link,
        { code: "LGN", user: credentials.user, password: credentials.password },
        REQUEST_TIMEOUT_MS,
      );
    } catch (err) {
      events({
        type: "error",
        context: "LGN",
        code: err instanceof ConnectionError ? err.code : "internal",
        message: `logging in again failed: ${describe(err)}`,
      });
      return;
    }
    if (response.code === "ACK" && response.request === "LGN") {
      this.#expectQueued(response.queued);
      events({ ...reloginAck(response), relogin: true });
      this.#settleRelogin(true);
      return;
    }
    if (response.code === "ERR") {
      if (response.error === "invalid_credentials") this.#forgetCredentials();
      events({
        type: "error",
        context: "LGN",
        code: response.error,
        message: `logging in again as ${credentials.user} failed: ${response.message}`,
        ...(response.retry_after_ms === undefined ? {} : {
          retry_after_ms: response.retry_after_ms,
        }),
      });
    }
  }

  #cancelReconnect(): void {
    this.#generation++;
    if (this.#retry) {
      clearTimeout(this.#retry.timer);
      this.#retry.wake();
      this.#retry = undefined;
    }
    if (this.#state === "reconnecting") this.#state = "idle";
  }

  /** Closes a link's transport because of `reason`; its read loop ends and reports it. */
  #cut(link: Link, reason: string): void {
    link.cutReason ??= reason;
    this.#safeClose(link.transport);
  }

  #safeClose(transport: Transport): void {
    try {
      transport.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * Shows a DLV where no key of the user's is open: a text as not sealed, a sealed message as one
 * that cannot be opened here (§8.5 recipient_key), never as text.
 */
export function showWithoutKeys(message: Deliver, events: EventSink): void {
  const { msg, from, to, ts } = message;
  if (message.sealed === undefined) {
    events({ type: "message", msg, from, to, ts, text: message.text, sealed: false });
    return;
  }
  events({
    type: "message_failed",
    msg,
    from,
    to,
    ts,
    check: "recipient_key",
    reason: "no key of yours is open on this client",
  });
}

function reloginAck(ack: Extract<Ack, { request: "LGN" }>) {
  return {
    type: "ack" as const,
    request: "LGN" as const,
    id: ack.id,
    user: ack.user,
    queued: ack.queued,
  };
}
