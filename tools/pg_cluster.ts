// A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a temporary directory
// (as the `postgres` user when running as root, since PostgreSQL refuses to run as root),
// listening on 127.0.0.1 only, on a free port, with a random password; stopped and removed
// at the end. Nothing has to be running before: only the server's binaries installed.

/** Where Debian and Ubuntu install each major version's server binaries. */
const DEBIAN_BIN_ROOT = "/usr/lib/postgresql";
/** The account the cluster runs as when we are root. */
const SERVICE_USER = "postgres";
/** Longest wait for the server to accept connections after `pg_ctl start` (seconds). */
const START_TIMEOUT_S = 30;

/** Options of `startCluster`. */
export interface ClusterOptions {
  /**
   * `fsync` of the cluster (default false: tests need no durability across power cuts, and
   * a fast shutdown checkpoints anyway). Benchmarks turn it on to measure real commits.
   */
  fsync?: boolean;
  /** Extra `postgresql.conf` lines. */
  settings?: readonly string[];
  /**
   * Stop and remove the cluster when this process has gone, even if it never got to call
   * `destroySync` (a test run aborted by an uncaught error): a watcher left in the background.
   */
  watchPid?: number;
}

/** How often the watcher of `watchPid` looks whether its process is still there (seconds). */
const WATCH_INTERVAL_S = 1;

/** Leaves a detached shell that stops and removes the cluster once `pid` has exited. */
async function watch(pid: number, pgCtl: string, dataDir: string, root: string): Promise<void> {
  const [cmd, argv] = asOwner(pgCtl, ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
  const stop = [cmd, ...argv].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const script = `(while kill -0 ${pid} 2>/dev/null; do sleep ${WATCH_INTERVAL_S}; done; ` +
    `[ -d '${root}' ] && { ${stop}; rm -rf '${root}'; }) </dev/null >/dev/null 2>&1 &`;
  await new Deno.Command("sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  })
    .output();
}

/** A running throwaway cluster. */
export interface Cluster {
  /** `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`. */
  readonly url: string;
  readonly password: string;
  readonly port: number;
  readonly bindir: string;
  /** Its data directory (the server's log is `server.log` beside it). */
  readonly dataDir: string;
  /** Whether the server is running (between `start` and `stop`). */
  readonly running: boolean;
  /** Runs a binary of the cluster's version (pgbench, psql) as the cluster's user, on its port. */
  run(binary: string, args: readonly string[]): Promise<{ code: number; output: string }>;
  /** Stops the server (fast shutdown: sessions are ended, the data is kept). */
  stop(): Promise<void>;
  /** Starts it again on the same port after `stop`. */
  start(): Promise<void>;
  /** Stops it and removes every file; synchronous, so it can run from an `unload` handler. */
  destroySync(): void;
}

/**
 * The directory of the PostgreSQL server binaries (`initdb`, `pg_ctl`), or undefined with the
 * places looked at: `pg_config --bindir`, then the newest of /usr/lib/postgresql/N/bin.
 */
export function findPostgresBinaries(): { bindir?: string; looked: string[] } {
  const looked: string[] = [];
  const hasServer = (dir: string) => {
    looked.push(dir);
    try {
      return Deno.statSync(`${dir}/initdb`).isFile && Deno.statSync(`${dir}/pg_ctl`).isFile;
    } catch {
      return false;
    }
  };
  try {
    const out = new Deno.Command("pg_config", { args: ["--bindir"], stderr: "null" }).outputSync();
    const dir = new TextDecoder().decode(out.stdout).trim();
    if (out.success && dir && hasServer(dir)) return { bindir: dir, looked };
  } catch {
    looked.push("pg_config (not on PATH)");
  }
  let versions: number[] = [];
  try {
    versions = [...Deno.readDirSync(DEBIAN_BIN_ROOT)].map((e) => Number(e.name))
      .filter((n) => Number.isInteger(n)).sort((a, b) => b - a);
  } catch {
    looked.push(`${DEBIAN_BIN_ROOT}/*/bin`);
  }
  for (const v of versions) {
    const dir = `${DEBIAN_BIN_ROOT}/${v}/bin`;
    if (hasServer(dir)) return { bindir: dir, looked };
  }
  return { looked };
}

function isRoot(): boolean {
  return Deno.uid() === 0;
}

function idOf(flag: "-u" | "-g"): number {
  const out = new Deno.Command("id", { args: [flag, SERVICE_USER] }).outputSync();
  if (!out.success) throw new Error(`no ${SERVICE_USER} account to run PostgreSQL as`);
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/** The command line that runs `binary` as the cluster's owner. */
function asOwner(binary: string, args: readonly string[]): [string, string[]] {
  return isRoot() ? ["runuser", ["-u", SERVICE_USER, "--", binary, ...args]] : [binary, [...args]];
}

async function runChecked(binary: string, args: readonly string[], what: string): Promise<void> {
  const [cmd, argv] = asOwner(binary, args);
  const out = await new Deno.Command(cmd, { args: argv, stdin: "null" }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${what} failed (exit ${out.code}): ${text.trim()}`);
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Initialises and starts a cluster; throws if the binaries are missing or it will not start. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const { bindir, looked } = findPostgresBinaries();
  if (!bindir) throw new Error(`no PostgreSQL server binaries (looked in ${looked.join(", ")})`);
  const root = await Deno.makeTempDir({ prefix: "hybrid_pg_" });
  const dataDir = `${root}/data`;
  const password = crypto.randomUUID();
  const port = freePort();
  try {
    if (isRoot()) await Deno.chown(root, idOf("-u"), idOf("-g"));
    const pwfile = `${root}/pwfile`;
    await Deno.writeTextFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (isRoot()) await Deno.chown(pwfile, idOf("-u"), idOf("-g"));
    await runChecked(`${bindir}/initdb`, [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "--pwfile",
      pwfile,
      "--auth",
      "scram-sha-256",
      "-E",
      "UTF8",
      "--locale",
      "C",
      "--no-sync",
      "--no-instructions",
    ], "initdb");
    await Deno.remove(pwfile);
    const settings = [
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${root}'`,
      `fsync = ${options.fsync ? "on" : "off"}`,
      "max_connections = 200",
      "logging_collector = off",
      ...(options.settings ?? []),
    ];
    await Deno.writeTextFile(`${dataDir}/postgresql.conf`, `\n${settings.join("\n")}\n`, {
      append: true,
    });
  } catch (e) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
    throw e;
  }
  const pgCtl = `${bindir}/pg_ctl`;
  const logFile = `${root}/server.log`;
  let running = false;
  const cluster: Cluster = {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    password,
    port,
    bindir,
    dataDir,
    get running() {
      return running;
    },
    async run(binary, args) {
      const [cmd, argv] = asOwner(`${bindir}/${binary}`, args);
      const out = await new Deno.Command(cmd, {
        args: argv,
        stdin: "null",
        env: {
          PGHOST: "127.0.0.1",
          PGPORT: String(port),
          PGPASSWORD: password,
          PGUSER: "postgres",
        },
      }).output();
      const text = new TextDecoder();
      return { code: out.code, output: text.decode(out.stdout) + text.decode(out.stderr) };
    },
    async start() {
      await runChecked(pgCtl, [
        "-D",
        dataDir,
        "-l",
        logFile,
        "-w",
        "-t",
        String(START_TIMEOUT_S),
        "start",
      ], "pg_ctl start");
      running = true;
    },
    async stop() {
      await runChecked(pgCtl, ["-D", dataDir, "-m", "fast", "-w", "stop"], "pg_ctl stop");
      running = false;
    },
    destroySync() {
      if (running) {
        const [cmd, argv] = asOwner(pgCtl, ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
        new Deno.Command(cmd, { args: argv, stdin: "null", stdout: "null", stderr: "null" })
          .outputSync();
        running = false;
      }
      Deno.removeSync(root, { recursive: true });
    },
  };
  try {
    await cluster.start();
    if (options.watchPid !== undefined) await watch(options.watchPid, pgCtl, dataDir, root);
  } catch (e) {
    cluster.destroySync();
    throw e;
  }
  return cluster;
}

/**
 * `deno run -A tools/pg_cluster.ts [--fsync]`: a throwaway cluster for benchmarks and the
 * torture run by hand. Prints its URL, and removes it on SIGINT or SIGTERM.
 */
if (import.meta.main) {
  const cluster = await startCluster({ fsync: Deno.args.includes("--fsync"), watchPid: Deno.pid });
  console.log(cluster.url);
  const end = () => {
    cluster.destroySync();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", end);
  Deno.addSignalListener("SIGTERM", end);
  setInterval(() => {}, 1 << 30); // stay up until a signal comes
}
