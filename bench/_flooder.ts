// The attacker of bench/flood.ts, run as its own process: opens connections as fast as it can,
// sends one valid ClientHello in the chosen group and closes at once, so the server computes a
// handshake for nothing. It cycles through `addresses` loopback source addresses (127.0.x.y),
// so that per-address limits are met only when it uses one. Prints a JSON line when done.
import net from "node:net";
import { parseArgs } from "node:util";
import { encodeFrame } from "../protocol/frame.ts";
import { ClientHandshake } from "../protocol/handshake.ts";
import { kexGroupByName } from "../crypto/mod.ts";
import { portableCrypto } from "../crypto/portable.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    group: { type: "string", default: "ffdhe4096" },
    addresses: { type: "string", default: "1" },
    concurrency: { type: "string", default: "6" },
    seconds: { type: "string", default: "5" },
  },
});
const group = kexGroupByName(values.group!);
if (!group) throw new Error(`unknown group ${values.group}`);
const port = Number(values.port);
const addresses = Number(values.addresses);
const deadline = Date.now() + Number(values.seconds) * 1000;
// One valid hello, sent every time: the server cannot tell it from a fresh one.
const hello = encodeFrame(new ClientHandshake({ group, crypto: portableCrypto }).hello());

let sent = 0;
let refused = 0;
let next = 0;

function source(): string {
  const n = next++ % addresses;
  return `127.0.${100 + Math.floor(n / 250)}.${(n % 250) + 1}`;
}

function once(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: source() });
    socket.on("connect", () => {
      socket.write(hello, () => {
        sent++;
        socket.destroy();
        resolve();
      });
    });
    socket.on("error", () => {
      refused++;
      socket.destroy();
      resolve();
    });
    socket.on("close", () => resolve());
  });
}

await Promise.all(
  Array.from({ length: Number(values.concurrency) }, async () => {
    while (Date.now() < deadline) await once();
  }),
);
console.log(JSON.stringify({ sent, refused }));
