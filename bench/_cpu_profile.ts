// CPU profiles of a child Deno process for bench/load.ts --profile: the V8 sampling profiler
// driven over the inspector protocol (the child runs with --inspect), saved as a .cpuprofile
// that Chrome DevTools opens, and summarised here by function and by source file.

/** The subset of a V8 .cpuprofile this summary reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** How long to wait for the inspector to answer a command. */
const COMMAND_TIMEOUT_MS = 30_000;

/** A sampling profiler session on a child's inspector WebSocket. */
export class InspectorProfiler {
  readonly #socket: WebSocket;
  readonly #replies = new Map<number, (result: unknown) => void>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (message.id !== undefined) {
        this.#replies.get(message.id)?.(message.result);
        this.#replies.delete(message.id);
      }
    };
  }

  /** Connects to `url` (ws://…, as printed by `deno run --inspect`). */
  static async connect(url: string): Promise<InspectorProfiler> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`cannot connect to the inspector at ${url}`));
    });
    return new InspectorProfiler(socket);
  }

  #call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), COMMAND_TIMEOUT_MS);
    this.#replies.set(id, (result) => {
      clearTimeout(timer);
      resolve(result);
    });
    this.#socket.send(JSON.stringify({ id, method, params }));
    return promise;
  }

  /** Starts sampling every `intervalUs` microseconds. */
  async start(intervalUs: number): Promise<void> {
    await this.#call("Profiler.enable");
    await this.#call("Profiler.setSamplingInterval", { interval: intervalUs });
    await this.#call("Profiler.start");
  }

  /** Stops sampling and returns the profile. */
  async stop(): Promise<CpuProfile> {
    const result = await this.#call("Profiler.stop") as { profile: CpuProfile };
    return result.profile;
  }

  close(): void {
    this.#socket.close();
  }
}

/** One row of a profile summary: milliseconds and share of the sampled time. */
export interface ProfileRow {
  name: string;
  ms: number;
  share: number;
}

/** Self and total time per function, self time per source file, over the sampled time. */
export interface ProfileSummary {
  sampledMs: number;
  /** Time on the JS thread outside "(idle)": how busy the server's main thread was. */
  busyMs: number;
  bySelf: ProfileRow[];
  byTotal: ProfileRow[];
  byFile: ProfileRow[];
}

/** A short name for a script URL: the repository-relative path, the npm package, or ext:. */
function fileOf(url: string, root: string): string {
  if (url === "") return "(native)";
  if (url.startsWith(root)) return url.slice(root.length);
  const npm = url.match(/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/[^/]+\/(.*)$/);
  if (npm) return `npm:${npm[1]}/${npm[2]}`;
  return url.replace(/^ext:/, "ext:");
}

function rows(map: Map<string, number>, total: number, limit: number): ProfileRow[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({ name, ms: us / 1000, share: total > 0 ? us / total : 0 }));
}

/**
 * Summarises a profile: self time per function and per file, and total (inclusive) time per
 * function, counting each function once per sample however deep it recurses.
 */
export function summarise(profile: CpuProfile, root: string, limit = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const nameOf = (id: number): string => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = fileOf(url, root);
    if (url === "") return functionName || "(anonymous)";
    return `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  let sampled = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const delta = profile.timeDeltas[i] ?? 0;
    sampled += delta;
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === "(idle)") {
      idle += delta;
      continue;
    }
    const name = nameOf(id);
    self.set(name, (self.get(name) ?? 0) + delta);
    const file = frame.url === "" ? frame.functionName : fileOf(frame.url, root);
    files.set(file, (files.get(file) ?? 0) + delta);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at)!;
      if (n.callFrame.functionName === "(root)") break;
      const key = nameOf(at);
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) ?? 0) + delta);
    }
  }
  const busy = sampled - idle;
  return {
    sampledMs: sampled / 1000,
    busyMs: busy / 1000,
    bySelf: rows(self, busy, limit),
    byTotal: rows(total, busy, limit),
    byFile: rows(files, busy, limit),
  };
}

/** The summary as text: three ranked lists, shares of the busy (non-idle) time. */
export function formatSummary(s: ProfileSummary): string {
  const list = (title: string, r: ProfileRow[]) =>
    [
      title,
      ...r.map((x) =>
        `  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.ms.toFixed(0).padStart(7)} ms  ${x.name}`
      ),
    ].join("\n");
  return [
    `sampled ${s.sampledMs.toFixed(0)} ms, main thread busy ${s.busyMs.toFixed(0)} ms ` +
    `(${
      ((s.busyMs / Math.max(s.sampledMs, 1)) * 100).toFixed(0)
    }%); shares below are of the busy time`,
    list("by file (self time):", s.byFile),
    list("by function (self time):", s.bySelf),
    list("by function (total time, callees included):", s.byTotal),
  ].join("\n");
}
