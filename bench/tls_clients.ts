// The client side of bench/load.ts's TLS 1.3 baseline, run as its own process: `--connectors`
// loops of Deno.connectTls + handshake + close against bench/tls_server.ts, printing running
// counts until it is stopped. A child process because Deno's TlsConn.close() can leave the
// client socket open for seconds when many handshakes run at once (measured here: 8 loops
// held about 1,000 extra sockets after 3 s), which would exhaust the file limit of the load
// generator that later opens 5,000 sessions; the socket pile-up dies with this process.
//
//   deno run --allow-net --allow-read bench/tls_clients.ts --port P --ca CERT.pem [--connectors 8]
import { parseArgs } from "node:util";
import { tlsHandshakeOnce } from "./_clients.ts";

/** How often the counts are printed: the parent reads the latest at each window edge. */
export const REPORT_INTERVAL_MS = 20;
/** The ready line, then one `count DONE FAILED` line per interval. */
export const STARTED = "started";
export const COUNT_LINE = /^count (\d+) (\d+)$/;
/** Pause after a failed handshake, so a refusing server is not hammered. */
const RETRY_MS = 10;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string" },
      ca: { type: "string" },
      connectors: { type: "string", default: "8" },
    },
  });
  if (values.port === undefined || values.ca === undefined) {
    console.error("tls_clients: --port and --ca are required");
    Deno.exit(2);
  }
  const port = Number(values.port);
  const ca = await Deno.readTextFile(values.ca);
  let done = 0;
  let failed = 0;
  const loop = async () => {
    while (true) {
      try {
        await tlsHandshakeOnce(port, ca);
        done++;
      } catch {
        failed++;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => Deno.exit(0));
  }
  console.log(STARTED);
  setInterval(() => console.log(`count ${done} ${failed}`), REPORT_INTERVAL_MS);
  for (let i = 0; i < Number(values.connectors); i++) void loop();
}
