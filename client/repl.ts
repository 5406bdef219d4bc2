// The REPL: reads command lines, runs them one at a time against the Connection, and shows every
// event through the display. Knows the user's intent (what a command was for, when it failed);
// the Connection knows the wire.
import {
  type CryptoEngine,
  fingerprint as keyFingerprint,
  fromBase64,
  type RsaKeyBits,
  type RsaPrivateKey,
  toBase64,
} from "../crypto/mod.ts";
import type { Deliver, Response, UserEntry } from "../protocol/messages.ts";
import type { Options } from "./args.ts";
import {
  type Command,
  COMMANDS,
  type CompletionSources,
  newPasswordProblem,
  parseLine,
  secretLines,
} from "./commands.ts";
import { serviceAccountDir } from "./config.ts";
import {
  Connection,
  ConnectionError,
  type PinResult,
  RESEND_WINDOW_MS,
  showWithoutKeys,
} from "./connection.ts";
import { jsonLine, plural, renderEvent } from "./display.ts";
import type { ClientEvent, Endpoint, ErrorContext } from "./client_events.ts";
import { checkPin, endpointName, type KnownHosts, problemsFor } from "./known_hosts.ts";
import { serverListName, withPorts } from "./server_list.ts";
import type { Style } from "./style.ts";
import type { LineInput, Screen, Secret } from "./terminal.ts";
import { Keyring } from "./keyring.ts";
import { type Outgoing, SealedMessaging, SealingError } from "./sealing.ts";

/** How long the end of input waits for the messages a login said were queued. */
export const QUEUED_WAIT_MS = 5_000;
/**
 * Pages of GUL /users fetches (each at most the server's page, MAX_GUL_PAGE): beyond them it
 * shows what it has and says that more exist, rather than fill the screen with thousands.
 */
export const MAX_USER_PAGES = 10;
/** Frames of the spinner shown at a terminal while a key is made (plain ASCII: any terminal). */
const SPINNER = ["|", "/", "-", "\\"] as const;
const SPINNER_MS = 120;

export interface ReplOptions {
  readonly options: Options;
  /** The engine every connection runs on (chosen at start-up). */
  readonly crypto: CryptoEngine;
  readonly input: LineInput;
  readonly screen: Screen;
  readonly style: Style;
  readonly knownHosts: KnownHosts;
  /**
   * The config folder: each account's keys, pins and memory of opened envelopes live under it
   * (§8). Without one nothing is sealed.
   */
  readonly configDir?: string;
  /** A person at a terminal: new passwords are asked twice, the prompt shows the state. */
  readonly interactive: boolean;
  readonly now?: () => number;
}

/** The client's REPL; `run()` returns the exit status. */
export class Repl {
  readonly #options: Options;
  readonly #io: ReplOptions;
  readonly #now: () => number;
  /** The servers connected to (or to connect to): one service's, tried in turn. */
  #servers: readonly Endpoint[];
  #connection: Connection | undefined;
  #tracing: boolean;
  #failed = false;
  /** Lines read from the input so far (passwords included), for messages about a script. */
  #lineNumber = 0;
  /** The line of the running (or last) command. */
  #commandLine = 0;
  /** Passwords the running command has asked for. */
  #secretsRead = 0;
  readonly #usersSeen = new Set<string>();
  #endpointsPinned: string[] = [];
  readonly #warned = new Set<string>();
  /** Messages queued while reconnecting, not yet answered. */
  readonly #sending = new Set<Promise<void>>();
  /** Keys the user checked and accepted in place of a different pin (--accept-key). */
  readonly #acceptedKeys: Set<string>;
  /**
   * Sealed messaging of the logged-in account, once its keys are open; set (pending) when a
   * login starts, so that the messages pushed right after it wait for the keys.
   */
  #sealing: Promise<SealedMessaging | undefined> = Promise.resolve(undefined);
  /** The same, once settled (for the commands that need it now). */
  #sealed: SealedMessaging | undefined;

  constructor(io: ReplOptions) {
    this.#io = io;
    this.#options = io.options;
    this.#now = io.now ?? Date.now;
    this.#servers = io.options.servers;
    this.#tracing = io.options.trace;
    this.#acceptedKeys = new Set(io.options.acceptKeys);
    if (io.options.user) this.#usersSeen.add(io.options.user);
  }

  /** Names for tab completion: users seen this session, and servers in known_hosts. */
  get completionSources(): CompletionSources {
    return { users: this.#usersSeen, endpoints: this.#endpointsPinned };
  }

  /** Connects, runs commands until /quit or the end of input, then closes; the exit status. */
  async run(): Promise<number> {
    await this.#refreshEndpoints();
    await this.#connect(this.#servers);
    this.#refreshPrompt();
    while (!this.#mustStop()) {
      const line = await this.#io.input.next();
      if (line === null) break;
      const lineNumber = ++this.#lineNumber;
      this.#commandLine = lineNumber;
      const secrets = secretLines(line, this.#io.interactive);
      this.#secretsRead = 0;
      const parsed = parseLine(line);
      if (!parsed.ok) {
        this.#fail("command", "usage", parsed.error);
      } else if (parsed.command.type === "quit") {
        break;
      } else {
        try {
          await this.#execute(parsed.command);
        } catch (err) {
          this.#fail("command", "internal", `internal error: ${(err as Error).message}`);
        }
      }
      await this.#skipSecrets(secrets - this.#secretsRead, lineNumber);
      this.#refreshPrompt();
    }
    // Messages queued while reconnecting are sent, or fail, within their resend window: said,
    // or a /quit would seem to hang for up to a minute.
    if (this.#sending.size > 0) {
      this.show({
        type: "info",
        message: `waiting for ${plural(this.#sending.size, "queued message")} to be sent ` +
          `(at most ${RESEND_WINDOW_MS / 1000} s)` +
          (this.#io.interactive ? "; Ctrl-C twice leaves now, unsent" : ""),
      });
    }
    await Promise.all(this.#sending);
    const connection = this.#connection;
    if (connection) {
      await connection.queuedDelivered(QUEUED_WAIT_MS);
      await connection.close("leaving", false);
    }
    return this.#failed ? 1 : 0;
  }

  /** Piped input stops at the first failure (unless --keep-going): later lines assumed it. */
  #mustStop(): boolean {
    if (!this.#failed || this.#io.interactive || this.#options.keepGoing) return false;
    const what = this.#commandLine === 0
      ? "the connection at start failed"
      : `line ${this.#commandLine} failed`;
    this.show({
      type: "info",
      message: `stopped: ${what}; the rest of the input is not run (--keep-going runs it)`,
    });
    return true;
  }

  /** Skips the passwords a command that failed before asking for them would have read. */
  async #skipSecrets(count: number, commandLine: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      if (!(await this.#io.input.skipSecret())) return;
      const skipped = ++this.#lineNumber;
      this.show({
        type: "info",
        message: this.#io.interactive
          ? "dropped a line typed ahead: the password of the failed command"
          : `skipped line ${skipped}: the password of the failed command on line ${commandLine}`,
      });
    }
  }

  /** Shows an event (JSON or lines) and keeps what completion and the prompt need. */
  show(event: ClientEvent): void {
    switch (event.type) {
      case "message":
        this.#usersSeen.add(event.from);
        break;
      case "ack":
        if (event.request === "GUL") {
          this.#learnUsers(event.users);
          this.#sealed?.noteUsers(event.users);
        }
        if (event.request === "MSG") this.#usersSeen.add(event.to);
        // At a terminal, the names Tab completes are there from the login on (the user's own
        // login waits for them, so that the prompt comes back with them).
        if (event.request === "LGN" && event.relogin && this.#io.interactive) {
          void this.#fetchUsers();
        }
        if (event.request === "LGN" && event.relogin && this.#sealed?.ownKeyChecked === false) {
          const sealing = this.#sealed;
          void this.#checkOwnKey(sealing);
        }
        break;
    }
    if (event.type === "connected" || event.type === "disconnected" || event.type === "ack") {
      // The prompt shows the new state as the event's lines are printed above it.
      this.#refreshPrompt(false);
    }
    if (this.#options.json) {
      this.#io.screen.print([jsonLine(event)]);
    } else {
      this.#io.screen.print(renderEvent(event, {
        style: this.#io.style,
        me: this.#connection?.user,
        now: this.#now(),
      }));
    }
  }

  async #execute(command: Command): Promise<void> {
    switch (command.type) {
      case "empty":
      case "quit":
        return;
      case "connect": {
        // A server named without a port keeps the port of the one in use.
        const named = command.servers === undefined
          ? { ok: true as const, servers: this.#servers }
          : withPorts(command.servers, this.#server.port);
        if (!named.ok) {
          this.#fail("command", "usage", `/connect ${named.error}`);
          return;
        }
        await this.#connect(named.servers);
        return;
      }
      case "accept-key":
        this.#acceptedKeys.add(command.fingerprint);
        await this.#connect(this.#servers);
        return;
      case "disconnect": {
        const connection = this.#connection;
        if (connection === undefined || connection.state === "idle") {
          this.show({ type: "info", message: "not connected" });
          return;
        }
        const user = connection.user;
        await connection.close();
        if (user === undefined) return;
        this.show({
          type: "info",
          message: `logged out: the session as ${user} ended with the connection; /connect, ` +
            "then /login",
        });
        return;
      }
      case "signup":
      case "login":
        return await this.#signUpOrLogIn(command.type, command.user);
      case "logout": {
        const connection = this.#requireConnection("LGO");
        if (connection === undefined) return;
        const response = await this.#ask("LGO", () => connection.logout());
        this.#report("LGO", response);
        if (response?.code === "ACK") this.#endSealing();
        return;
      }
      case "passwd":
        return await this.#changePassword();
      case "msg": {
        const connection = this.#connection;
        if (connection?.queues) {
          // Not awaited: the prompt stays free while the connection is regained.
          const sending = this.#sendMessage(connection, command.to, command.text);
          this.#sending.add(sending);
          void sending.finally(() => this.#sending.delete(sending));
          const count = connection.queuedMessages;
          this.show({
            type: "info",
            message: `queued for ${command.to}: ${plural(count, "message")} ` +
              `${count === 1 ? "waits" : "wait"} to be sent once the connection is back and ` +
              "you are logged in again",
          });
          return;
        }
        const open = this.#requireConnection("MSG");
        if (open) await this.#sendMessage(open, command.to, command.text);
        return;
      }
      case "users":
        return await this.#listUsers();
      case "keygen":
        return await this.#keygen(command.bits ?? this.#options.rsaBits);
      case "whois": {
        const sealing = this.#requireSealing("GPK");
        if (sealing) await this.#sealingCommand("GPK", () => sealing.whois(command.user));
        return;
      }
      case "trust": {
        const sealing = this.#requireSealing("GPK");
        if (sealing) {
          await this.#sealingCommand("GPK", () => sealing.trust(command.user, command.fingerprint));
        }
        return;
      }
      case "key":
        return await this.#serverKey();
      case "trace":
        this.#tracing = command.on;
        if (this.#connection) this.#connection.tracing = command.on;
        this.show({ type: "info", message: `trace ${command.on ? "on" : "off"}` });
        return;
      case "status": {
        const c = this.#connection;
        this.show({
          type: "status",
          state: c?.state ?? "idle",
          host: this.#server.host,
          port: this.#server.port,
          servers: this.#servers.map((e) => endpointName(e.host, e.port)),
          group: this.#options.group.name,
          fingerprint: c?.fingerprint ?? null,
          user: c?.user ?? null,
          trace: this.#tracing,
          known_hosts: this.#io.knownHosts.path,
          records: c?.records ?? null,
          messages_received: c?.messagesReceived ?? 0,
          user_key: this.#sealingOf(c)?.currentKey?.fingerprint ?? null,
          require_sealed: this.#options.requireSealed,
        });
        return;
      }
      case "help":
        if (command.topic !== undefined) {
          const entry = COMMANDS.find((c) => c.name === command.topic)!;
          this.show({ type: "info", message: `${entry.usage} — ${entry.summary}` });
        } else {
          this.show({
            type: "help",
            commands: COMMANDS.map((c) => ({ usage: c.usage, summary: c.summary })),
          });
        }
        return;
      default: {
        const never: never = command;
        throw new TypeError(`unhandled command ${JSON.stringify(never)}`);
      }
    }
  }

  // ─── Commands ─────────────────────────────────────────────────────────────────────────────

  /**
   * Sends a message, sealed when both sides have a key (§8.2); a fresh cid: sent again after a
   * re-login, it is stored once (§4.3). A `stale_key` answer means a key changed since it was
   * fetched: the keys are fetched again (the recipient's pin checked again) and it is sealed
   * and sent once more.
   */
  async #sendMessage(connection: Connection, to: string, text: string): Promise<void> {
    try {
      // Sealing may need the recipient's key: wait for the login being made again, if it is.
      await connection.loggedIn();
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      this.#fail("MSG", err.code, err.message);
      return;
    }
    for (let attempt = 1;; attempt++) {
      let outgoing: Outgoing;
      try {
        outgoing = await this.#outgoing(connection, to, text);
      } catch (err) {
        if (!(err instanceof SealingError || err instanceof ConnectionError)) throw err;
        this.#fail("MSG", err.code, err.message);
        return;
      }
      const response = await this.#ask("MSG", () => connection.sendMessage(to, outgoing.content));
      if (response?.code === "ACK" && response.request === "MSG") {
        this.show({
          type: "ack",
          request: "MSG",
          id: response.id,
          msg: response.msg,
          ts: response.ts,
          to,
          text,
          sealed: outgoing.sealed,
        });
        return;
      }
      const sealing = this.#sealingOf(connection);
      if (response?.code === "ERR" && response.error === "stale_key" && sealing && attempt === 1) {
        let refreshed: Response | undefined;
        try {
          refreshed = await this.#ask("GPK", async () => {
            await sealing.stale(to);
            return response;
          });
        } catch (err) {
          if (!(err instanceof SealingError)) throw err;
          this.#fail("MSG", err.code, err.message);
          return;
        }
        if (refreshed !== undefined) continue;
      }
      this.#report("MSG", response);
      return;
    }
  }

  /** What a message goes out as: sealed if it can be, else text unless --require-sealed. */
  async #outgoing(connection: Connection, to: string, text: string): Promise<Outgoing> {
    const sealing = this.#sealingOf(connection);
    if (sealing) return await sealing.outgoing(to, text, this.#options.requireSealed);
    if (this.#options.requireSealed) {
      throw new SealingError(
        "not_sealed",
        "this client cannot seal (log in, with a config folder for the keys), and " +
          "--require-sealed is on",
      );
    }
    return { content: { text }, sealed: false };
  }

  /** /users: every page of GUL, up to MAX_USER_PAGES (then it says that more exist). */
  async #listUsers(): Promise<void> {
    const connection = this.#requireConnection("GUL");
    if (connection === undefined) return;
    const users: UserEntry[] = [];
    let after: string | undefined;
    let id = 0;
    for (let page = 1;; page++) {
      const response = await this.#ask(
        "GUL",
        () => connection.request(after === undefined ? { code: "GUL" } : { code: "GUL", after }),
      );
      if (response?.code !== "ACK" || response.request !== "GUL") {
        this.#report("GUL", response);
        return;
      }
      id = response.id;
      users.push(...response.users);
      if (response.next === undefined) break;
      if (page >= MAX_USER_PAGES) {
        this.show({ type: "ack", request: "GUL", id, users, more: true });
        return;
      }
      after = response.next;
    }
    this.show({ type: "ack", request: "GUL", id, users, more: false });
  }

  /** /keygen: a new key of `bits`, stored encrypted, published with KEY (§8.1). */
  async #keygen(bits: RsaKeyBits): Promise<void> {
    const sealing = this.#requireSealing("KEY");
    if (sealing === undefined) return;
    const key = await this.#makeKey(bits);
    const response = await this.#ask("KEY", () => sealing.publish(key));
    if (response?.code === "ERR") this.#report("KEY", response);
  }

  /** Makes an RSA key of `bits`, with a spinner at a terminal (a 4096-bit one takes seconds). */
  async #makeKey(bits: RsaKeyBits): Promise<RsaPrivateKey> {
    const label = `making your RSA-${bits} key pair`;
    const { screen, style } = this.#io;
    if (!this.#io.interactive || this.#options.json || screen.status === undefined) {
      this.show({ type: "info", message: `${label}…` });
      return await this.#io.crypto.generateRsaKey(bits);
    }
    let frame = 0;
    const draw = () => screen.status?.(style.dim(`${label} ${SPINNER[frame++ % SPINNER.length]}`));
    draw();
    const timer = setInterval(draw, SPINNER_MS);
    const started = this.#now();
    try {
      return await this.#io.crypto.generateRsaKey(bits);
    } finally {
      clearInterval(timer);
      screen.status?.(undefined);
      this.show({
        type: "info",
        message: `${label}: done in ${((this.#now() - started) / 1000).toFixed(1)} s`,
      });
    }
  }

  /**
   * Connects to `servers` (one service's, tried in turn). The servers already in use are
   * connected to again, logging in again as an automatic reconnect does; switching servers
   * leaves the login behind, and says so.
   */
  async #connect(servers: readonly Endpoint[]): Promise<void> {
    const current = this.#connection;
    const name = serverListName(servers);
    if (current && serverListName(current.servers) === name) {
      await this.#opening(current.reconnect());
      return;
    }
    if (current) {
      const user = current.user;
      await current.close(`switching to ${name}`);
      this.#endSealing();
      if (user !== undefined) {
        this.show({
          type: "info",
          message: `logged out: the login as ${user} was for ${serverListName(current.servers)}; ` +
            `/login on ${name}`,
        });
      }
    }
    this.#servers = servers;
    const connection: Connection = new Connection({
      servers,
      group: this.#options.group,
      crypto: this.#io.crypto,
      events: (event) => this.show(event),
      pin: (endpoint, fingerprint, automatic) =>
        this.#checkPin(servers, endpoint, fingerprint, automatic),
      deliver: (message) => this.#deliver(connection, message),
    });
    connection.tracing = this.#tracing;
    this.#connection = connection;
    await this.#opening(connection.open());
  }

  /** The server in use, or the one last tried (the first of the list before any). */
  get #server(): Endpoint {
    return this.#connection?.endpoint ?? this.#servers[0]!;
  }

  /** Waits for a connection attempt; a failure is the command's. */
  async #opening(attempt: Promise<void>): Promise<void> {
    try {
      await attempt;
    } catch (err) {
      const code = err instanceof ConnectionError ? err.code : "internal";
      this.#fail("connect", code, (err as Error).message);
    }
    await this.#refreshEndpoints();
  }

  async #signUpOrLogIn(kind: "signup" | "login", named: string | undefined): Promise<void> {
    const code = kind === "signup" ? "SNU" : "LGN";
    const user = named ?? this.#options.user;
    if (user === undefined) {
      this.#fail("command", "usage", `usage: /${kind} USER (or start with --user USER)`);
      return;
    }
    const connection = this.#requireConnection(code);
    if (connection === undefined) return;
    const password = await this.#readPassword(
      kind === "signup" ? `new password for ${user}: ` : `password for ${user}: `,
      kind === "signup",
      code,
    );
    if (password === undefined) return;
    this.#usersSeen.add(user);
    if (kind === "signup") {
      await this.#signUp(connection, user, password);
      return;
    }
    // Messages pushed right after the login wait for the account's keys (see #deliver); a
    // login that fails leaves the session before it, and its keys, as they were.
    const previous = this.#sealed;
    let opened: (sealing: SealedMessaging | undefined) => void = () => {};
    this.#sealing = new Promise((resolve) => opened = resolve);
    try {
      const response = await this.#ask("LGN", () => connection.login(user, password));
      this.#report("LGN", response);
      if (response?.code !== "ACK" || response.request !== "LGN") {
        opened(previous);
        return;
      }
      previous?.dispose();
      this.#sealed = undefined;
      const sealing = await this.#openSealing(connection, user, password);
      this.#sealed = sealing;
      opened(sealing);
      if (sealing) await this.#checkOwnKey(sealing);
      if (this.#io.interactive) await this.#fetchUsers();
    } finally {
      opened(undefined);
    }
  }

  /**
   * SNU with a fresh key (§8.1): made first (a spinner at a terminal), stored encrypted with
   * the password in the account's folder, published with the account; forgotten again if the
   * sign-up is refused (kept if unanswered: the account may hold it).
   */
  async #signUp(connection: Connection, user: string, password: string): Promise<void> {
    const dir = await this.#accountDir(connection, user);
    if (dir === undefined) {
      this.#report(
        "SNU",
        await this.#ask("SNU", () => connection.request({ code: "SNU", user, password })),
      );
      return;
    }
    const key = await this.#makeKey(this.#options.rsaBits);
    const { keyring } = await Keyring.open(dir, password, this.#io.crypto);
    const own = await keyring.add(key, password);
    try {
      const response = await this.#ask(
        "SNU",
        () =>
          connection.request({ code: "SNU", user, password, key: toBase64(key.publicKey.spkiDer) }),
      );
      if (response?.code !== "ACK" || response.request !== "SNU") {
        // Refused: the key is no one's. Unanswered (the connection went), the account may have
        // been made with it: it stays, for the next login to find.
        if (response !== undefined) await keyring.remove(own);
        this.#report("SNU", response);
        return;
      }
      if (response.fingerprint !== own.fingerprint) {
        this.#fail(
          "SNU",
          "bad_key",
          `the server published ${response.fingerprint ?? "no key"} for you, not your key ` +
            `${own.fingerprint}; /login, then /keygen`,
        );
      }
      this.show({
        type: "ack",
        request: "SNU",
        id: response.id,
        user: response.user,
        fingerprint: own.fingerprint,
      });
      this.show({
        type: "info",
        message: `your private key is in ${own.path}, encrypted with your password`,
      });
    } finally {
      keyring.dispose();
    }
  }

  /**
   * Which of the account's keys the server publishes (one is made for an account without).
   * A lost connection is no failure of the login: the check runs again at the re-login.
   */
  async #checkOwnKey(sealing: SealedMessaging): Promise<void> {
    try {
      const published = await sealing.checkOwnKey(() => this.#makeKey(this.#options.rsaBits));
      if (published?.code === "ERR") this.#report("KEY", published);
    } catch (err) {
      if (!(err instanceof ConnectionError || err instanceof SealingError)) throw err;
      this.show({
        type: "warning",
        message: `your key could not be checked (${err.message}); messages go out unsealed ` +
          "until it is, at the next login",
      });
    }
  }

  /** The account's sealed messaging, its keys opened with `password`; undefined if it cannot. */
  async #openSealing(
    connection: Connection,
    user: string,
    password: string,
  ): Promise<SealedMessaging | undefined> {
    const dir = await this.#accountDir(connection, user);
    if (dir === undefined) {
      this.#warnOnce("no config folder for your keys (set HYBRID_HOME): messages go unsealed");
      return undefined;
    }
    try {
      return await SealedMessaging.open({
        crypto: this.#io.crypto,
        user,
        password,
        dir,
        request: (body) => connection.request(body),
        events: (event) => this.show(event),
        tracing: () => this.#tracing,
      });
    } catch (err) {
      this.#fail("LGN", "keys", `cannot read your keys in ${dir}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** The account's folder on `connection`'s servers, whichever of them is in use. */
  async #accountDir(connection: Connection, user: string): Promise<string | undefined> {
    const dir = this.#io.configDir;
    if (dir === undefined) return undefined;
    return await serviceAccountDir(dir, connection.servers, user);
  }

  /** The sealed messaging of `connection`'s logged-in user, if it is the one open. */
  #sealingOf(connection: Connection | undefined): SealedMessaging | undefined {
    const sealed = this.#sealed;
    return sealed !== undefined && connection === this.#connection &&
        connection?.user === sealed.user
      ? sealed
      : undefined;
  }

  /** The open sealed messaging, or reports why a command needing it cannot run. */
  #requireSealing(context: ErrorContext): SealedMessaging | undefined {
    const connection = this.#requireConnection(context);
    if (connection === undefined) return undefined;
    const sealing = this.#sealingOf(connection);
    if (sealing === undefined) {
      this.#fail(
        context,
        "not_authenticated",
        connection.user === undefined ? "log in first" : "your keys are not available here",
      );
    }
    return sealing;
  }

  /** Runs a /whois or /trust; its refusals and a lost connection are the command's failure. */
  async #sealingCommand(context: ErrorContext, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      if (!(err instanceof SealingError || err instanceof ConnectionError)) throw err;
      this.#fail(context, err.code, err.message);
    }
  }

  /** Forgets the account's keys (logged out, or another login). */
  #endSealing(): void {
    this.#sealed?.dispose();
    this.#sealed = undefined;
    this.#sealing = Promise.resolve(undefined);
  }

  /**
   * Shows one DLV of `connection`: through the account's sealed messaging once its keys are
   * open (a sealed message is opened, §8.5); without it, a sealed message cannot be opened.
   */
  async #deliver(connection: Connection, message: Deliver): Promise<boolean> {
    const user = connection.user;
    const sealing = await this.#sealing;
    // The login ended while this waited for the keys (/quit, /logout or another /login): not
    // shown, not acknowledged, it comes again at the next login. Shown now it would read as a
    // message failing recipient_key, a false alarm.
    if (user === undefined || connection.user !== user) return false;
    if (sealing !== undefined && this.#sealingOf(connection) === sealing) {
      return await sealing.receive(message);
    }
    showWithoutKeys(message, (event) => this.show(event));
    return true;
  }

  async #changePassword(): Promise<void> {
    const connection = this.#requireConnection("CPW");
    if (connection === undefined) return;
    if (connection.user === undefined) {
      this.#fail("CPW", "not_authenticated", "log in first");
      return;
    }
    const old = await this.#readPassword("current password: ", false, "CPW");
    if (old === undefined) return;
    const next = await this.#readPassword("new password: ", true, "CPW");
    if (next === undefined) return;
    // The key files are copied under the new password first: should the answer be lost, the
    // server may hold either password, and the next login keeps the files its password opens.
    const sealing = this.#sealingOf(connection);
    await sealing?.preparePassword(next);
    const response = await this.#ask("CPW", () => connection.changePassword(old, next));
    this.#report("CPW", response);
    if (sealing === undefined) return;
    if (response === undefined) {
      this.show({
        type: "warning",
        message: "the password change got no answer, so it may or may not have been made: your " +
          "key files are kept under both passwords, and the next /login keeps those its " +
          "password opens",
      });
      return;
    }
    await sealing.passwordAnswered(next, response.code === "ACK");
    if (response.code === "ACK") {
      this.show({ type: "info", message: "your key files are encrypted with the new password" });
    }
  }

  async #serverKey(): Promise<void> {
    const connection = this.#requireConnection("GSR");
    if (connection === undefined) return;
    const response = await this.#ask("GSR", () => connection.request({ code: "GSR" }));
    if (response?.code !== "ACK" || response.request !== "GSR") {
      this.#report("GSR", response);
      return;
    }
    // The fingerprint is computed here: the server's own claim proves nothing.
    const computed = keyFingerprint(fromBase64(response.key));
    if (computed !== response.fingerprint) {
      this.#fail(
        "GSR",
        "bad_fingerprint",
        `the server claims ${response.fingerprint} for a key whose fingerprint is ${computed}`,
      );
    }
    const name = endpointName(this.#server.host, this.#server.port);
    const pinned = (await this.#io.knownHosts.read()).entries
      .filter((e) => e.endpoint === name)
      .map((e) => e.fingerprint);
    this.show({
      type: "ack",
      request: "GSR",
      id: response.id,
      fingerprint: computed,
      handshake_fingerprint: connection.fingerprint ?? "",
      handshake_group: connection.group.name,
      pinned,
      matches_pin: pinned.includes(computed),
    });
  }

  // ─── Helpers ──────────────────────────────────────────────────────────────────────────────

  /**
   * §6: first contact records the key; a mismatch refuses unless the user accepted new keys.
   * The servers of a list share one key, so the pins of every one of them count (checkPin): a
   * server not pinned yet must show the key pinned for the others. A line that does not parse
   * but may be the pin of a server of the list refuses too: ignoring it would pin whatever key
   * is presented in place of the one its author meant.
   */
  async #checkPin(
    servers: readonly Endpoint[],
    endpoint: Endpoint,
    fingerprint: string,
    automatic: boolean,
  ): Promise<PinResult> {
    const known = this.#io.knownHosts;
    const name = endpointName(endpoint.host, endpoint.port);
    let content;
    try {
      content = await known.read();
    } catch (err) {
      throw new ConnectionError(
        "known_hosts",
        `cannot read ${known.path}: ${(err as Error).message}`,
      );
    }
    const loose = await known.looseness();
    if (loose !== undefined) this.#warnOnce(loose);
    const unparsed = servers.flatMap(({ host }) =>
      problemsFor(content.problems, host).map((problem) => ({ problem, host }))
    );
    for (const problem of content.problems) {
      if (!unparsed.some((u) => u.problem === problem)) {
        this.#warnOnce(`${known.path} line ${problem.line} ignored: ${problem.reason}`);
      }
    }
    const names = servers.map((s) => endpointName(s.host, s.port));
    const check = checkPin(content.entries, name, fingerprint, names);
    if (check.kind === "match") return { pin: "match", previous: [], knownHosts: known.path };
    const first = unparsed[0];
    if (first !== undefined) {
      throw new ConnectionError(
        "known_hosts",
        `refused: ${known.path} line ${first.problem.line} does not parse ` +
          `(${first.problem.reason}) and may be the pin of ${first.host}: fix or remove that ` +
          "line, then /connect",
      );
    }
    const replaced = check.kind === "mismatch" ? check.pinnedFor : [];
    if (check.kind === "mismatch") {
      // The user's acceptance speaks for the connections they start, never for a reconnect.
      const accepted = !automatic &&
        (this.#options.acceptNewKey || this.#acceptedKeys.has(fingerprint));
      this.show({
        type: "key_mismatch",
        ...endpoint,
        source: "known_hosts",
        pinned: check.pinned,
        pinned_for: check.pinnedFor,
        presented: fingerprint,
        accepted,
        known_hosts: known.path,
      });
      if (!accepted) {
        const others = check.pinnedFor.filter((n) => n !== name);
        throw new ConnectionError(
          "key_mismatch",
          `refused: the server's key ${fingerprint} does not match the pinned ` +
            check.pinned.join(", ") +
            (others.length === 0
              ? ""
              : ` of ${others.join(", ")} (the servers of one list share one key)`),
        );
      }
    }
    try {
      // An accepted key replaces the pins it differed from, for every server that had them.
      await known.pin([...new Set([name, ...replaced])], fingerprint);
    } catch (err) {
      this.show({
        type: "error",
        context: "connect",
        code: "known_hosts",
        message: `cannot record the key in ${known.path}: ${(err as Error).message}`,
      });
    }
    switch (check.kind) {
      case "mismatch":
        return { pin: "replaced", previous: check.pinned, knownHosts: known.path };
      case "sibling":
        return { pin: "sibling", previous: [], sibling: check.sibling, knownHosts: known.path };
      case "unknown":
        return { pin: "first_contact", previous: [], knownHosts: known.path };
      default: {
        const never: never = check;
        throw new TypeError(`unhandled pin check ${JSON.stringify(never)}`);
      }
    }
  }

  /** The connection, when it is open; otherwise reports why the command cannot run. */
  #requireConnection(context: ErrorContext): Connection | undefined {
    const connection = this.#connection;
    if (connection?.state === "open") return connection;
    const why = connection?.state === "reconnecting"
      ? "not connected (reconnecting…)"
      : "not connected: use /connect";
    this.#fail(context, "not_connected", why);
    return undefined;
  }

  /** Runs a request; a ConnectionError becomes a reported failure and undefined. */
  async #ask<T>(
    context: ErrorContext,
    request: () => Promise<T>,
  ): Promise<T | undefined> {
    try {
      return await request();
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      this.#fail(context, err.code, err.message);
      return undefined;
    }
  }

  /** Shows a response: an ACK as an event, an ERR as a failure. */
  #report(context: ErrorContext, response: Response | undefined): void {
    if (response === undefined) return;
    if (response.code === "ERR") {
      this.#failed = true;
      this.show({
        type: "error",
        context,
        code: response.error,
        message: response.message || response.error.replaceAll("_", " "),
        ...(response.retry_after_ms === undefined
          ? {}
          : { retry_after_ms: response.retry_after_ms }),
      });
      return;
    }
    switch (response.request) {
      case "LGN":
        this.show({
          type: "ack",
          request: "LGN",
          id: response.id,
          user: response.user,
          queued: response.queued,
          relogin: false,
        });
        return;
      case "SNU":
        this.show({ type: "ack", request: "SNU", id: response.id, user: response.user });
        return;
      case "GUL":
        this.show({
          type: "ack",
          request: "GUL",
          id: response.id,
          users: response.users,
          more: response.next !== undefined,
        });
        return;
      case "LGO":
      case "CPW":
        this.show({ type: "ack", request: response.request, id: response.id });
        return;
      case "PNG":
      case "GSR":
      case "MSG":
      case "KEY":
      case "GPK":
        return;
      default: {
        const never: never = response;
        throw new TypeError(`unhandled response ${JSON.stringify(never)}`);
      }
    }
  }

  /** A password from the input; new ones are asked twice at a terminal. Undefined if none. */
  async #readPassword(
    prompt: string,
    isNew: boolean,
    context: ErrorContext,
  ): Promise<string | undefined> {
    this.#secretsRead++;
    const first = this.#secretValue(await this.#io.input.secret(prompt), context);
    if (first === undefined) return undefined;
    this.#lineNumber++;
    const problem = isNew ? newPasswordProblem(first) : undefined;
    if (problem !== undefined) {
      this.#fail(context, "weak_password", problem);
      return undefined;
    }
    if (isNew && this.#io.interactive) {
      this.#secretsRead++;
      const again = this.#secretValue(await this.#io.input.secret("again, to be sure: "), context);
      if (again === undefined) return undefined;
      if (again !== first) {
        this.#fail(context, "password_mismatch", "the two passwords differ");
        return undefined;
      }
    }
    return first;
  }

  /** A secret's value; a cancelled or missing one is the command's failure, said so. */
  #secretValue(secret: Secret, context: ErrorContext): string | undefined {
    switch (secret.type) {
      case "secret":
        return secret.value;
      case "cancelled":
        this.#fail(context, "cancelled", "cancelled");
        return undefined;
      case "end":
        this.#fail(context, "no_password", "no password given");
        return undefined;
      default: {
        const never: never = secret;
        throw new TypeError(`unhandled secret ${JSON.stringify(never)}`);
      }
    }
  }

  #learnUsers(users: readonly { readonly user: string }[]): void {
    for (const u of users) this.#usersSeen.add(u.user);
  }

  /** Asks for the user list without showing it (for completion); a failure is not reported. */
  async #fetchUsers(): Promise<void> {
    const response = await this.#connection?.request({ code: "GUL" }).catch(() => undefined);
    if (response?.code === "ACK" && response.request === "GUL") this.#learnUsers(response.users);
  }

  /** Shows a warning once per session (a reconnect checks the pins again). */
  #warnOnce(message: string): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.show({ type: "warning", message });
  }

  #fail(context: ErrorContext, code: string, message: string): void {
    this.#failed = true;
    this.show({ type: "error", context, code, message });
  }

  #refreshPrompt(redraw = true): void {
    if (!this.#io.interactive || this.#options.json) return;
    const { style } = this.#io;
    const c = this.#connection;
    const where = endpointName(this.#server.host, this.#server.port);
    const prompt = c?.state === "open"
      ? `${c.user ?? "(not logged in)"}@${where}> `
      : `(${c?.state === "reconnecting" ? "reconnecting" : "offline"})> `;
    this.#io.screen.setPrompt(
      c?.state === "open" ? style.bold(prompt) : style.dim(prompt),
      redraw,
    );
  }

  async #refreshEndpoints(): Promise<void> {
    try {
      const { entries } = await this.#io.knownHosts.read();
      this.#endpointsPinned = [...new Set(entries.map((e) => e.endpoint))];
    } catch {
      // Completion is a convenience: an unreadable file is reported when a pin is checked.
    }
  }
}
