// Runs the server as a child process (`deno run server/main.ts`), for tests and harnesses
// that need the real command line, signals, SIGKILL and restarts.

const MAIN = new URL("../server/main.ts", import.meta.url).pathname;

/** Collects a stream's lines as they arrive. */
export class Lines {
  readonly lines: string[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      let rest = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        this.lines.push(...parts);
      }
      if (rest) this.lines.push(rest);
    })();
  }

  /** Waits for a line matching `pattern` (up to `ms`) and returns its match. */
  async wait(pattern: RegExp, ms = 15000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    while (true) {
      for (const line of this.lines) {
        const m = line.match(pattern);
        if (m) return m;
      }
      if (Date.now() > deadline) {
        throw new Error(`no line matching ${pattern} in:\n${this.lines.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  get text(): string {
    return this.lines.join("\n");
  }
}

export interface ServerProcess {
  child: Deno.ChildProcess;
  stdout: Lines;
  stderr: Lines;
  /** The port from the `listening on HOST:PORT` line. */
  port: number;
  /** Resolves with the exit code once the process and its output streams are done. */
  exited: Promise<number>;
}

/** Runs the server with `args`; waits for `listening on` unless `waitListening` is false. */
export async function runServer(
  args: string[],
  options: { waitListening?: boolean; env?: Record<string, string>; permissions?: string[] } = {},
): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.permissions ?? ["-A"]), MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  const stdout = new Lines(child.stdout);
  const stderr = new Lines(child.stderr);
  const exited = Promise.all([child.status, stdout.done, stderr.done]).then(([s]) => s.code);
  let port = 0;
  if (options.waitListening ?? true) {
    const early = exited.then((code) => {
      throw new Error(`server exited with code ${code} before listening`);
    });
    try {
      port = Number((await Promise.race([stdout.wait(/^listening on .*:(\d+)$/), early]))[1]);
    } catch (err) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await exited;
      throw new Error(`${(err as Error).message}\nstderr:\n${stderr.text}`);
    }
    early.catch(() => {}); // the race is over; a later exit is the test's business
  }
  return { child, stdout, stderr, port, exited };
}

/**
 * The command line of a throwaway server: 127.0.0.1, a port the OS picks, its log in `dir`,
 * weak fast hashing (never for real passwords), then `extra`.
 */
export function testServerArgs(dir: string, extra: string[] = []): string[] {
  return [
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--log",
    `${dir}/events.log`,
    "--insecure-fast-hash",
    ...extra,
  ];
}

/** Starts a test server (see testServerArgs) with its log in `dir`. */
export function runTestServer(dir: string, extra: string[] = []): Promise<ServerProcess> {
  return runServer(testServerArgs(dir, extra));
}
