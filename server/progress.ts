// Replay progress for the server's programs (server, compact, events), on stderr.
import { replayProgress } from "../store/mod.ts";

/** An `onProgress` for openEventLog/readEventLog that writes to stderr after the first second. */
export function progressOnStderr(
  label: string,
  unit: "bytes" | "events" = "bytes",
  verb?: string,
): (bytesDone: number, bytesTotal: number) => void {
  const encoder = new TextEncoder();
  return replayProgress({
    label,
    unit,
    verb,
    terminal: Deno.stderr.isTerminal(),
    write: (text) => {
      const bytes = encoder.encode(text);
      for (let done = 0; done < bytes.length;) done += Deno.stderr.writeSync(bytes.subarray(done));
    },
  });
}
