// Micro benchmark of sealed messages (§8.3, §8.5): seal and open of a 100-byte and a 16 KiB text,
// sender and recipient keys of 2048, 3072 and 4096 bits, on each engine (native: OpenSSL over
// FFI; portable: @noble and node:crypto). Sealing costs an OAEP encryption and a PSS signature,
// opening a PSS verification and an OAEP decryption; AES-CBC and HMAC are small beside them.
//
//   deno bench --allow-all bench/sealed_bench.ts
//   deno bench --allow-all --filter "open 100 B" bench/sealed_bench.ts
import { type CryptoEngine, RSA_KEY_BITS, selectCrypto } from "../crypto/mod.ts";
import { open, seal } from "../protocol/sealed.ts";

const ENGINES: [string, CryptoEngine][] = [
  ["native", selectCrypto("native").engine],
  ["portable", selectCrypto("portable").engine],
];
const SIZES: [string, number][] = [["100 B", 100], ["16 KiB", 16384]];

for (const bits of RSA_KEY_BITS) {
  // Two keys per size (sender and recipient), made once and loaded into each engine.
  const maker = ENGINES[0]![1];
  const senderDer = (await maker.generateRsaKey(bits)).exportPkcs8();
  const recipientDer = (await maker.generateRsaKey(bits)).exportPkcs8();
  for (const [name, engine] of ENGINES) {
    const sender = engine.parsePrivateKey(senderDer);
    const recipient = engine.parsePrivateKey(recipientDer);
    const keys = {
      recipientKey: () => recipient,
      senderKey: () => sender.publicKey,
    };
    for (const [size, bytes] of SIZES) {
      const message = { from: "alice", to: "bob", text: "x".repeat(bytes) };
      const parties = { sender, recipient: recipient.publicKey };
      const { sealed } = seal(engine, message, parties);
      if ((await open(engine, sealed, message, keys)).text !== message.text) {
        throw new Error(`${name} RSA-${bits} does not round-trip`);
      }
      Deno.bench({
        name: `seal ${size} RSA-${bits}, ${name}`,
        group: `seal ${size} RSA-${bits}`,
        fn: () => {
          seal(engine, message, parties);
        },
      });
      Deno.bench({
        name: `open ${size} RSA-${bits}, ${name}`,
        group: `open ${size} RSA-${bits}`,
        fn: async () => {
          await open(engine, sealed, message, keys);
        },
      });
    }
  }
}
