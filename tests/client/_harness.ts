// Subprocess harness for the client tests: a real server (server/main.ts) on port 0 in a temporary
// directory, and clients (client/main.ts) driven through pipes. Everything waits for output lines
// with a timeout, never for a fixed time, and every process and directory is cleaned up.

const ROOT = new URL("../../", import.meta.url);
const SERVER = new URL("server/main.ts", ROOT).pathname;
const CLIENT = new URL("client/main.ts", ROOT).pathname;

/**
 * Characters a terminal may act on: C0 controls but LF, DEL, C1 controls, line separators, bidi
 * controls. Written out here, independently of client/escape.ts, which the tests check.
 */
export const TERMINAL_CONTROL =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Longest wait for one expected line: generous for a loaded 2-core CI machine. */
export const WAIT_MS = 15_000;

/** Collects a child's stdout lines and lets a test wait for one that matches. */
class LineLog {
  readonly lines: string[] = [];
  /** Everything written so far, partial last line included (a prompt has no newline). */
  raw = "";
  #rawCursor = 0;
  #cursor = 0;
  #waiters = new Set<() => void>();
  #ended = false;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#pump(stream);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      this.raw += chunk;
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
      this.#wake();
    }
    if (partial !== "") this.lines.push(partial);
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
  }

  /** Waits until `text` appears after the last text found, even inside an unfinished line. */
  async text(text: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const at = this.raw.indexOf(text, this.#rawCursor);
      if (at >= 0) {
        this.#rawCursor = at + text.length;
        return;
      }
      const left = deadline - Date.now();
      if (this.#ended || left <= 0) {
        throw new Error(
          `${this.#ended ? "output ended" : `timed out after ${timeoutMs} ms`} waiting for ` +
            `${JSON.stringify(text)}; output so far:\n${this.raw}`,
        );
      }
      await this.#changed(left);
    }
  }

  /** Resolves at the next output, or after `ms`. */
  #changed(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const waiters = this.#waiters;
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  /**
   * The first line after the last match that satisfies `test`; consumes it and what precedes it.
   * Rejects after `timeoutMs`, or at the end of the output, quoting what was seen.
   */
  async next(test: (line: string) => boolean, what: string, timeoutMs = WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      for (; this.#cursor < this.lines.length; this.#cursor++) {
        const line = this.lines[this.#cursor]!;
        if (test(line)) {
          this.#cursor++;
          return line;
        }
      }
      const left = deadline - Date.now();
      if (this.#ended || left <= 0) {
        throw new Error(
          `${
            this.#ended ? "output ended" : `timed out after ${timeoutMs} ms`
          } waiting for ${what}; ` +
            `output so far:\n${this.lines.join("\n")}`,
        );
      }
      await this.#changed(left);
    }
  }
}

/** A temporary directory removed at dispose. */
export async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "hybrid-client-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** A running server. */
export class TestServer implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #stdout: LineLog;
  readonly #stderr: Promise<string>;
  #stopped: Promise<Deno.CommandStatus> | undefined;

  private constructor(child: Deno.ChildProcess, readonly port: number, stdout: LineLog) {
    this.#child = child;
    this.#stdout = stdout;
    this.#stderr = new Response(child.stderr).text();
  }

  /**
   * Starts server/main.ts with its log in `dir`, on `port` (0: any), fast password hashing,
   * and `extra` flags.
   */
  static start(dir: string, port = 0, ...extra: string[]): Promise<TestServer> {
    return TestServer.run(["--port", String(port), "--log", `${dir}/events.log`, ...extra]);
  }

  /** Starts server/main.ts on 127.0.0.1 with fast password hashing and `args` (port, store). */
  static async run(args: string[]): Promise<TestServer> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SERVER, "--host", "127.0.0.1", "--insecure-fast-hash", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new LineLog(child.stdout);
    let line: string;
    try {
      line = await stdout.next((l) => l.startsWith("listening on "), "the server to listen");
    } catch (err) {
      child.kill("SIGKILL");
      await child.status;
      await stdout.done;
      const stderr = await new Response(child.stderr).text();
      throw new Error(`${(err as Error).message}\nserver stderr:\n${stderr}`);
    }
    const bound = Number(/:(\d+)$/.exec(line)?.[1]);
    return new TestServer(child, bound, stdout);
  }

  /** The fingerprint the server printed at start. */
  get fingerprint(): string {
    const line = this.#stdout.lines.find((l) => l.startsWith("server key "));
    return line?.split(" ")[2] ?? "";
  }

  /**
   * SIGTERM (a graceful shutdown, BYE shutdown to clients), or `signal`, then waits for the
   * exit. SIGKILL is a node that dies: no BYE, its connections simply end.
   */
  stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    if (this.#stopped === undefined) {
      this.#child.kill(signal);
      this.#stopped = (async () => {
        const status = await this.#child.status;
        await this.#stdout.done;
        await this.#stderr;
        return status;
      })();
    }
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A client driven through its stdin, with its stdout collected line by line. */
export class TestClient implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly stdout: LineLog;
  readonly stderr: Promise<string>;
  #stdinClosed = false;

  /** Runs `deno run -A client/main.ts ...args`, or `command` with its own `args` when given. */
  constructor(args: string[], env: Record<string, string>, command = Deno.execPath()) {
    this.#child = new Deno.Command(command, {
      args: command === Deno.execPath() ? ["run", "-A", CLIENT, ...args] : args,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.stdout = new LineLog(this.#child.stdout);
    this.stderr = new Response(this.#child.stderr).text();
  }

  /** Writes `text` to the client's stdin as it is (keys, for a terminal). */
  async type(text: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  /** Writes lines to the client's stdin. */
  async send(...lines: string[]): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(lines.map((l) => l + "\n").join("")));
  }

  /** Waits for a stdout line containing `text`. */
  line(text: string, timeoutMs?: number): Promise<string> {
    return this.stdout.next((l) => l.includes(text), JSON.stringify(text), timeoutMs);
  }

  /** Waits for a --json event with `type` whose fields include `fields`; returns it parsed. */
  async event(
    type: string,
    fields: Record<string, unknown> = {},
    timeoutMs?: number,
  ): Promise<Record<string, unknown>> {
    const matches = (line: string) => {
      if (!line.startsWith("{")) return false;
      const event = JSON.parse(line) as Record<string, unknown>;
      return event.event === type &&
        Object.entries(fields).every(([k, v]) => JSON.stringify(event[k]) === JSON.stringify(v));
    };
    const line = await this.stdout.next(
      matches,
      `event ${type} ${JSON.stringify(fields)}`,
      timeoutMs,
    );
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** Closes stdin (end of input) and waits for the exit status. */
  async finish(): Promise<number> {
    if (!this.#stdinClosed) {
      this.#stdinClosed = true;
      await this.#stdin.close();
    }
    const { code } = await this.#child.status;
    await this.stdout.done;
    await this.stderr;
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#stdinClosed) {
      this.#stdinClosed = true;
      await this.#stdin.close().catch(() => {});
    }
    // A client that does not leave within WAIT_MS after the end of its input is a failure
    // reported by the test itself; here it is only made to go.
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Gone already.
      }
    }, WAIT_MS);
    await this.#child.status;
    clearTimeout(timer);
    await this.stdout.done;
    await this.stderr;
  }
}

/** Starts a client for `server` with its config directory (HYBRID_HOME) in `home`. */
export function client(
  port: number,
  home: string,
  ...args: string[]
): TestClient {
  return new TestClient(["--port", String(port), "--no-color", ...args], {
    HYBRID_HOME: home,
    NO_COLOR: "1",
  });
}

/** Whether util-linux/bsdutils `script` is here to give the client a pseudo-terminal. */
export const HAS_SCRIPT = (() => {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/**
 * A client on a pseudo-terminal (through `script`), so that it runs its readline terminal:
 * type keys with `type()`, wait for screen text with `stdout.text()`.
 */
export function terminalClient(port: number, home: string, ...args: string[]): TestClient {
  return terminalShell(clientCommand(port, args), home);
}

/**
 * A client on a pseudo-terminal as terminalClient(), which first prints its process id
 * (`client-pid=N`), then, once it has exited, `exit-status=N` and the shell command `after`'s
 * output at the same terminal (`stty -a`, say, to see the state it was left in).
 */
export function terminalClientThen(
  port: number,
  home: string,
  after: string,
  ...args: string[]
): TestClient {
  // exec keeps the shell's pid: the one printed is the client's.
  const client = `sh -c 'echo client-pid=$$; exec "$0" "$@"' ${clientCommand(port, args)}`;
  return terminalShell(`${client}; echo exit-status=$?; ${after}`, home);
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The shell words that run the client on `port` with `args`. */
function clientCommand(port: number, args: readonly string[]): string {
  return [Deno.execPath(), "run", "-A", CLIENT, "--port", String(port), ...args].map(quote)
    .join(" ");
}

/** `script` running the shell `command` on a pseudo-terminal fed by the test's writes. */
function terminalShell(command: string, home: string): TestClient {
  return new TestClient(["-qfec", command, "/dev/null"], {
    HYBRID_HOME: home,
    NO_COLOR: "1",
    TERM: "xterm",
  }, "script");
}

/** Signs up each of `users` with password `<user>-password` through a one-shot client. */
export async function signUp(port: number, home: string, ...users: string[]): Promise<void> {
  await using c = client(port, home, "--json");
  for (const user of users) {
    await c.send(`/signup ${user}`, passwordOf(user));
    await c.event("ack", { request: "SNU", user });
  }
  const code = await c.finish();
  if (code !== 0) throw new Error(`sign-up client exited ${code}:\n${c.stdout.lines.join("\n")}`);
}

/** The test password of `user`. */
export function passwordOf(user: string): string {
  return `${user}-password`;
}
