// One-record helpers for tests: seal or open with a RecordCipher set up for that record alone
// (what sessions do over many records), on the engine given.
import { type CryptoEngine, type DirectionKeys, RecordCipher } from "../../crypto/mod.ts";

function once<T>(engine: CryptoEngine, keys: DirectionKeys, use: (c: RecordCipher) => T): T {
  const cipher = new RecordCipher(engine, keys);
  try {
    return use(cipher);
  } finally {
    cipher.dispose();
  }
}

/** seal (§3) of one record; `iv` fixed for known answers. */
export function seal(
  engine: CryptoEngine,
  keys: DirectionKeys,
  seq: number,
  plaintext: Uint8Array,
  iv?: Uint8Array,
): Uint8Array {
  return once(engine, keys, (c) => c.seal(seq, plaintext, iv));
}

/** open (§3) of one record. */
export function open(
  engine: CryptoEngine,
  keys: DirectionKeys,
  seq: number,
  record: Uint8Array,
): Uint8Array {
  return once(engine, keys, (c) => c.open(seq, record));
}
