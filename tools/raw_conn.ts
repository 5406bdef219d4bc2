// Raw-connection helpers for tests and the torture harness: read until the server hangs up,
// and a session whose records are held back so they can be tampered with, replayed or reordered.
import { concat, type CryptoEngine, fromHex, KEX_GROUPS } from "../crypto/mod.ts";
import type { Transport } from "../protocol/channel.ts";
import { encodeFrame } from "../protocol/frame.ts";
import { encodeClientHello } from "../protocol/handshake.ts";
import { clientHandshake, type SecureSession } from "../protocol/session.ts";

/** The framed ClientHello a client sends to offer `shareHex` in group `groupId` (§2.1). */
export function helloFrameWithShare(groupId: number, shareHex: string): Uint8Array {
  return encodeFrame(
    encodeClientHello({
      version: 1,
      groupId,
      random: new Uint8Array(32),
      share: fromHex(shareHex),
    }),
  );
}

/**
 * Reads until the server closes the connection and returns every byte it sent, or "open" if it
 * is still open after `ms` (the connection is then closed by us).
 */
export async function readToClose(t: Transport, ms: number): Promise<Uint8Array | "open"> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(16384);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    t.close();
  }, ms);
  try {
    while (true) {
      const n = await t.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch {
    // A reset by the server is a close too; our own timer's close is told apart below.
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) return "open";
  try {
    t.close();
  } catch { /* already closed */ }
  return concat(...chunks);
}

/**
 * Handshakes over `t`, then holds back every record the session sends (in `held`, one frame
 * each) instead of writing it, so a test can write them altered, twice or out of order.
 */
export async function holdingSession(
  t: Transport,
  crypto: CryptoEngine,
): Promise<{ session: SecureSession; held: Uint8Array[] }> {
  const held: Uint8Array[] = [];
  let hold = false;
  const transport: Transport = {
    read: (p) => t.read(p),
    write: (p) => {
      if (!hold) return t.write(p);
      held.push(p.slice());
      return Promise.resolve(p.length);
    },
    close: () => t.close(),
  };
  const { session } = await clientHandshake(transport, { group: KEX_GROUPS[0]!, crypto });
  hold = true;
  return { session, held };
}
