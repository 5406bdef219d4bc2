// The independent peers of tests/interop/ run on python3 and pyca/cryptography: whether they can
// here, and their output read line by line as they write it.

/** Why python3 cannot run `imports` here, or "" when it can; `needs` names what is missing. */
export function missingPython(imports: string, needs: string): string {
  try {
    const probe = new Deno.Command("python3", {
      args: ["-c", imports],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return probe.success ? "" : `python3 has no ${needs}`;
  } catch {
    return "no python3";
  }
}

/** Reads a peer's stdout line by line as it writes it ("" once it ended). */
export function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    async next(): Promise<string> {
      while (!buffered.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) return buffered;
        buffered += value;
      }
      const line = buffered.slice(0, buffered.indexOf("\n"));
      buffered = buffered.slice(line.length + 1);
      return line;
    },
    cancel: () => reader.cancel(),
  };
}

/** Ends a peer's run, whatever state it is in: its output read to the end, the process gone. */
export async function endPeer(
  peer: Deno.ChildProcess,
  lines: { cancel(): Promise<void> },
  stderr: Promise<string>,
): Promise<void> {
  await lines.cancel().catch(() => {});
  await stderr;
  try {
    peer.kill();
  } catch { /* exited */ }
  await peer.status;
}
