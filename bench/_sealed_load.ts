// The sealed phases of `deno task load --sealed` (bench/load.ts): every load user publishes one
// shared RSA key (the server checks kids and lengths only, §8.4, and never which account holds
// which key), each client sends envelopes sealed once up front to the next in the ring (the
// server does no RSA work for them, so re-sending one costs it what sending a fresh one would),
// and three saturations run back to back on the same clients: texts of the size asked for,
// sealed messages of texts of that size, and texts as long as the envelopes on the wire (or as
// long as a text may be, when an envelope is longer).
import {
  checkUserKey,
  type CryptoEngine,
  type RsaKeyBits,
  type RsaPrivateKey,
  toBase64,
} from "../crypto/mod.ts";
import { MAX_TEXT_BYTES } from "../protocol/limits.ts";
import { seal } from "../protocol/sealed.ts";
import type { Event } from "../store/mod.ts";
import type { HspClient } from "./_clients.ts";

/** The key every load user publishes, and its published form. */
export interface SealedLoadKey {
  readonly key: RsaPrivateKey;
  readonly published: { readonly key: string; readonly fingerprint: string; readonly bits: number };
}

/** Makes the shared key (on `engine`, off the event loop). */
export async function sealedLoadKey(
  engine: CryptoEngine,
  bits: RsaKeyBits,
): Promise<SealedLoadKey> {
  const key = await engine.generateRsaKey(bits);
  const b64 = toBase64(key.publicKey.spkiDer);
  const checked = checkUserKey(engine, b64);
  if (typeof checked === "string") throw new Error(`the load key is refused: ${checked}`);
  return { key, published: { key: b64, fingerprint: checked.fingerprint, bits } };
}

/** The log events that publish the shared key for each of `users`, written before start. */
export function keyEvents(users: readonly string[], key: SealedLoadKey, ts: number): Event[] {
  return users.map((user) => ({ type: "user_key_published", ts, user, ...key.published }));
}

/** An envelope per client, sealed to the next client in the ring, of a `textBytes` text. */
export function ringEnvelopes(
  engine: CryptoEngine,
  key: SealedLoadKey,
  names: readonly string[],
  textBytes: number,
): string[] {
  return names.map((from, i) =>
    seal(engine, { from, to: names[(i + 1) % names.length]!, text: "x".repeat(textBytes) }, {
      sender: key.key,
      recipient: key.key.publicKey,
    }).sealed
  );
}

/** How a saturation phase sends: client `i` of the ring, to `to`. */
export type RingSend = (client: HspClient, i: number, to: string) => void;

/**
 * The three senders of the sealed phases, the envelopes' length on the wire, and that of the
 * long texts: the envelope's, unless that is more than a text may be (§4.3).
 */
export function sealedSenders(envelopes: readonly string[], textBytes: number): {
  text: RingSend;
  sealed: RingSend;
  sameWire: RingSend;
  envelopeChars: number;
  sameWireBytes: number;
} {
  const text = "x".repeat(textBytes);
  const envelopeChars = envelopes[0]!.length;
  const long = "x".repeat(Math.min(envelopeChars, MAX_TEXT_BYTES));
  return {
    text: (c, _i, to) => c.send(to, text),
    sealed: (c, i, to) => c.sendSealed(to, envelopes[i]!),
    sameWire: (c, _i, to) => c.send(to, long),
    envelopeChars,
    sameWireBytes: long.length,
  };
}
