// Child process for the crash and lock tests. Usage:
//   _crash_child.ts append <log> <seed> <always|off>  append under load until killed, printing
//                                                     each event's number once its append resolved
//   _crash_child.ts try-open <log>                    print "opened", or the error's name and code

import { openEventLog, StoreError } from "../../store/mod.ts";
import { between, prng } from "./_helpers.ts";

/** Appends in flight at once: enough that group commits hold several records. */
const WORKERS = 16;
/** A bound on a run, should the parent never kill it. */
const MAX_APPENDS = 200_000;

const encoder = new TextEncoder();
function print(line: string): void {
  const bytes = encoder.encode(`${line}\n`);
  for (let done = 0; done < bytes.length;) done += Deno.stdout.writeSync(bytes.subarray(done));
}

const [mode, path, seedText, fsync] = Deno.args;
if (mode === "try-open" && path) {
  try {
    const { log } = await openEventLog(path);
    await log.close();
    print("opened");
  } catch (e) {
    print(e instanceof StoreError ? `${e.name} ${e.code}: ${e.message}` : String(e));
    Deno.exit(3);
  }
} else if (mode === "append" && path && (fsync === "always" || fsync === "off")) {
  const random = prng(Number(seedText));
  const { log, state } = await openEventLog(path, { fsync });
  let next = state.events; // numbers continue across runs on the same log
  const stop = next + MAX_APPENDS;
  const worker = async () => {
    while (next < stop) {
      const n = next++;
      // Texts from a few bytes to a few dozen pages, so a kill can land inside any part of a record.
      const text = `${n}:`.padEnd(between(random, 3, 20_000), "x");
      await log.append({
        type: "message_sent",
        ts: n,
        msg: `m${n}`,
        from: "load",
        to: "sink",
        text,
        cid: `c${n}`,
      });
      print(String(n));
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  await log.close();
} else {
  console.error("usage: _crash_child.ts append <log> <seed> <always|off> | try-open <log>");
  Deno.exit(2);
}
