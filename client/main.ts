// Entry point of the terminal client (`deno task client`): flags, then the REPL on a terminal
// or on piped stdin. Exit status: 0 when every command succeeded, 1 if one failed, 2 for bad flags.
import { join } from "node:path";
import { NativeCryptoError, selectCrypto } from "../crypto/mod.ts";
import { HELP, parseClientArgs, VERSION } from "./args.ts";
import { complete, mayHoldPassword, pasteProblem } from "./commands.ts";
import { configDir, loadHistory, MAX_HISTORY, saveHistory } from "./config.ts";
import { KnownHosts } from "./known_hosts.ts";
import { Repl } from "./repl.ts";
import { makeStyle, wantsColor } from "./style.ts";
import { type LineInput, PipedInput, PlainScreen, type Screen, Terminal } from "./terminal.ts";

/**
 * Signals that end the client, with their numbers (the exit status is 128 + the number, as a
 * shell reports it). Their default action would leave the terminal in raw mode, without echo and
 * with bracketed paste on, so the shell after us would be unusable: we give the terminal back
 * first. Windows delivers only SIGINT and SIGBREAK to a listener.
 */
const ENDING_SIGNALS: ReadonlyArray<readonly [Deno.Signal, number]> = Deno.build.os === "windows"
  ? [["SIGINT", 2]]
  : [["SIGHUP", 1], ["SIGINT", 2], ["SIGTERM", 15]];
const SIGINT_NUMBER = 2;

/** Runs the client with `args`; resolves to the exit status. */
export async function main(args: readonly string[]): Promise<number> {
  const env = (name: string) => Deno.env.get(name);
  const parsed = parseClientArgs(args, env);
  switch (parsed.kind) {
    case "help":
      console.log(HELP);
      return 0;
    case "version":
      console.log(`hybrid-client ${VERSION} (HSP/1)`);
      return 0;
    case "error":
      console.error(`hybrid-client: ${parsed.message}\nTry --help.`);
      return 2;
    case "run":
      break;
    default: {
      const never: never = parsed;
      throw new TypeError(`unhandled ${JSON.stringify(never)}`);
    }
  }
  const { options } = parsed;
  let engine;
  try {
    engine = selectCrypto(options.crypto, options.libcrypto).engine;
  } catch (err) {
    if (!(err instanceof NativeCryptoError)) throw err;
    console.error(`hybrid-client: --crypto native: ${err.message}`);
    return 2;
  }
  let dir: string | undefined;
  try {
    dir = configDir(env);
  } catch (err) {
    if (options.knownHosts === undefined) {
      console.error(`hybrid-client: ${(err as Error).message}, or pass --known-hosts`);
      return 2;
    }
  }
  const knownHosts = new KnownHosts(options.knownHosts ?? join(dir!, "known_hosts"));
  const interactive = Deno.stdin.isTerminal();
  const style = makeStyle(
    !options.json && wantsColor(options.noColor, env, Deno.stdout.isTerminal()),
  );

  let input: LineInput;
  let screen: Screen;
  let terminal: Terminal | undefined;
  let savingHistory = Promise.resolve();
  /** Gives the terminal back and exits with `status` at once, the history saved. */
  let leave = (status: number): void => Deno.exit(status);
  if (interactive) {
    const historyPath = dir === undefined ? undefined : join(dir, "history");
    const history = historyPath === undefined
      ? []
      : await loadHistory(historyPath).catch(() => [] as string[]);
    terminal = new Terminal({
      history,
      historySize: MAX_HISTORY,
      prompt: options.json ? "" : "> ",
      completer: (line) => complete(line, repl?.completionSources ?? { users: [], endpoints: [] }),
      pasteProblem,
      unsaved: mayHoldPassword,
      // Ctrl-C twice while a command runs: leave now, as SIGINT would, not after the command.
      onAbort: () => leave(128 + SIGINT_NUMBER),
      onHistory: (entries) => {
        if (historyPath === undefined) return;
        // Saved after every line, so that a crash loses nothing; never with a secret in it.
        // One save at a time, in order, and the last one awaited before the client leaves.
        const snapshot = [...entries];
        savingHistory = savingHistory.then(() => saveHistory(historyPath, snapshot))
          .catch(() => {});
      },
    });
    input = terminal;
    screen = terminal;
    const restoring = terminal;
    leave = (status) => {
      restoring.close();
      void savingHistory.finally(() => Deno.exit(status));
    };
    for (const [signal, number] of ENDING_SIGNALS) {
      Deno.addSignalListener(signal, () => leave(128 + number));
    }
  } else {
    input = new PipedInput(Deno.stdin.readable);
    screen = new PlainScreen();
  }
  const repl = new Repl({
    options,
    crypto: engine,
    input,
    screen,
    style,
    knownHosts,
    configDir: dir,
    interactive,
  });
  try {
    return await repl.run();
  } finally {
    terminal?.close();
    await savingHistory;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
