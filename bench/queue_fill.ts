// `deno run -A bench/queue_fill.ts`: how much memory one sender can make the server hold through
// a recipient who never logs in. One logged-in sender sends 16 KiB messages to an offline
// recipient as fast as it may (the MSG rate limit raised) until the server refuses one or
// --max messages were accepted; then the server's RSS is read. `--server-main` runs another
// checkout's server/main.ts, for a before/after.
import { parseArgs } from "node:util";
import { selectCrypto } from "../crypto/mod.ts";
import { TestLink } from "../tools/link.ts";
import { testServerArgs } from "../tools/server_process.ts";
import { ServerChild } from "./_process.ts";

const { values } = parseArgs({
  options: {
    max: { type: "string", default: "10000" },
    "server-main": { type: "string" },
  },
});
const HERE = new URL(".", import.meta.url).pathname;
const MAX = Number(values.max);
const TEXT = "q".repeat(16 * 1024);
const dir = await Deno.makeTempDir({ prefix: "hybrid-fill-" });
const server = await ServerChild.start(
  values["server-main"] ?? `${HERE}../server/main.ts`,
  testServerArgs(dir, [
    "--fsync",
    "off",
    "--limit",
    "msg_burst=1000000000",
    "--limit",
    "msg_per_second=1000000000",
  ]),
);
try {
  const crypto = selectCrypto("auto").engine;
  const link = await TestLink.open(server.port, () => {}, { crypto });
  for (const user of ["sender", "sink"]) {
    await link.request({ code: "SNU", user, password: `password-${user}` });
  }
  await link.request({ code: "LGN", user: "sender", password: "password-sender" });
  const rssBefore = server.memory().rss;
  let accepted = 0;
  let refusal = "";
  const started = performance.now();
  while (accepted < MAX) {
    // 32 in flight at a time: fast, and a refusal stops the run within one window.
    const answers = await Promise.all(
      Array.from({ length: 32 }, () => link.request({ code: "MSG", to: "sink", text: TEXT })),
    );
    for (const a of answers) {
      if (a === "closed") throw new Error("the server closed the connection");
      if (a.code === "ACK") accepted++;
      else if (refusal === "") refusal = a.code === "ERR" ? `${a.error}: ${a.message}` : a.code;
    }
    if (refusal !== "") break;
  }
  const seconds = (performance.now() - started) / 1000;
  const rss = server.memory().rss;
  await link.close();
  console.log(
    `accepted ${accepted} messages of 16 KiB for one offline recipient ` +
      `(${(accepted * 16 / 1024).toFixed(1)} MiB of text) in ${seconds.toFixed(1)} s; ` +
      `server RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rss / 2 ** 20).toFixed(0)} MiB; ` +
      (refusal === "" ? `stopped at --max ${MAX}` : `then refused: ${refusal}`),
  );
} finally {
  await server.stop();
  await Deno.remove(dir, { recursive: true });
}
