// The TLS 1.3 baseline of bench/load.ts: a Deno.listenTls server (rustls) that completes each
// handshake and then waits for the client to leave, so handshakes per second can be set beside
// HSP/1's, with the server in its own process as the real server is.
//
//   deno run --allow-net --allow-read bench/tls_server.ts --cert CERT.pem --key KEY.pem [--port 0]
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    cert: { type: "string" },
    key: { type: "string" },
  },
});
if (values.cert === undefined || values.key === undefined) {
  console.error("tls_server: --cert and --key are required");
  Deno.exit(2);
}
const listener = Deno.listenTls({
  hostname: values.host,
  port: Number(values.port),
  cert: await Deno.readTextFile(values.cert),
  key: await Deno.readTextFile(values.key),
});
console.log(`listening on ${listener.addr.hostname}:${listener.addr.port}`);

/** Completes the handshake, then reads until the client closes. */
async function serve(conn: Deno.TlsConn): Promise<void> {
  const buffer = new Uint8Array(1024);
  try {
    await conn.handshake();
    while ((await conn.read(buffer)) !== null) { /* drain */ }
  } catch {
    // A client that leaves mid-handshake or resets: nothing to do.
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    listener.close();
    Deno.exit(0);
  });
}
for await (const conn of listener) void serve(conn);
