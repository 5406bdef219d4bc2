// Child processes for bench/load.ts: start a server script, wait for its `listening on` line
// (or another ready line), keep the tail of its output, and read its memory and CPU time
// from /proc (Linux).

/** Lines of a child's output kept for the error message if it fails. */
const TAIL_LINES = 40;
/** What a server prints once it accepts connections; the port is the first group. */
const LISTENING = /^listening on .*:(\d+)$/;
/** How long a child gets to print `listening on` (it may generate an RSA key first). */
const START_TIMEOUT_MS = 30_000;
/** How long a child gets to exit after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

// /proc readings are shared with the torture harness.
import { cpuMsOf, fileLimit, memoryOf, type MemoryStatus } from "../tools/proc.ts";
export { cpuMsOf, fileLimit, machineBusyMs, memoryOf, type MemoryStatus } from "../tools/proc.ts";

/** A child process serving on a port. */
export class ServerChild {
  readonly #child: Deno.ChildProcess;
  readonly #tail: string[] = [];
  readonly #exited: Promise<number>;
  readonly #ready: RegExp;
  readonly #onLine: ((line: string) => void) | undefined;
  #started = false;
  #port = 0;
  #inspector = "";

  private constructor(
    child: Deno.ChildProcess,
    ready: RegExp,
    onLine: ((line: string) => void) | undefined,
  ) {
    this.#child = child;
    this.#ready = ready;
    this.#onLine = onLine;
    const out = this.#collect(child.stdout);
    const err = this.#collect(child.stderr);
    this.#exited = Promise.all([child.status, out, err]).then(([s]) => s.code);
  }

  /**
   * Runs `deno run -A <denoFlags> <script> <args>` and waits for `listening on HOST:PORT`
   * (or for a line matching `ready`). `openFiles` raises the child's soft limit on open files
   * (through sh's ulimit) when the current one is lower, so thousands of sessions fit.
   * `onLine` sees every line the child prints.
   */
  static async start(
    script: string,
    args: string[],
    options: {
      denoFlags?: string[];
      openFiles?: number;
      ready?: RegExp;
      onLine?: (line: string) => void;
    } = {},
  ): Promise<ServerChild> {
    const command = [Deno.execPath(), "run", "-A", ...(options.denoFlags ?? []), script, ...args];
    const limit = fileLimit();
    const want = options.openFiles ?? 0;
    const raise = want > limit.soft ? Math.min(want, limit.hard) : 0;
    const [program, ...rest] = raise > 0
      ? ["sh", "-c", `ulimit -n ${raise} && exec "$0" "$@"`, ...command]
      : command;
    const child = new Deno.Command(program!, {
      args: rest,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const server = new ServerChild(child, options.ready ?? LISTENING, options.onLine);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!server.#started) {
      const exited = await Promise.race([
        server.#exited.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 20)),
      ]);
      if (exited || Date.now() > deadline) {
        await server.stop();
        throw new Error(
          `${script} did not start (${exited ? "exited" : "timed out"}):\n${server.tail}`,
        );
      }
    }
    return server;
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) this.#line(line);
    }
    if (rest) this.#line(rest);
  }

  #line(line: string): void {
    if (!this.#started) {
      const m = line.match(this.#ready);
      if (m) {
        this.#started = true;
        this.#port = m[1] === undefined ? 0 : Number(m[1]);
      }
    }
    this.#onLine?.(line);
    if (this.#inspector === "") {
      const m = line.match(/(ws:\/\/\S+)/);
      if (m && line.includes("Debugger listening")) this.#inspector = m[1]!;
    }
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
  }

  get pid(): number {
    return this.#child.pid;
  }

  get port(): number {
    return this.#port;
  }

  /** The inspector's WebSocket URL when started with --inspect, else "". */
  get inspector(): string {
    return this.#inspector;
  }

  /** The last lines the child printed. */
  get tail(): string {
    return this.#tail.join("\n");
  }

  memory(): MemoryStatus {
    return memoryOf(this.pid);
  }

  cpuMs(): number {
    return cpuMsOf(this.pid);
  }

  /** SIGTERM (graceful shutdown), SIGKILL after STOP_TIMEOUT_MS; resolves with the exit code. */
  async stop(): Promise<number> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, STOP_TIMEOUT_MS);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
