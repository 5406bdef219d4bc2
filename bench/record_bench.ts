// Micro benchmark of the §3 record layer: seal then open one record of 64 B, 1 KiB and 16 KiB,
// through crypto/record.ts (a RecordCipher set up for one record, and a connection's
// RecordLayer with keys prepared once) on each engine (native: OpenSSL over FFI; portable:
// noble), beside the same construction on node:crypto (createCipheriv + createHmac), the
// baseline, and noble set up per record as record.ts once did.
//
//   deno bench --allow-all bench/record_bench.ts
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomFillSync,
  timingSafeEqual,
} from "node:crypto";
import { cbc } from "@noble/ciphers/aes.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  constantTimeEqual,
  type CryptoEngine,
  IV_LENGTH,
  MAC_LENGTH,
  RecordCipher,
  sealedLength,
  selectCrypto,
} from "../crypto/mod.ts";
import { RecordLayer } from "../protocol/record_layer.ts";

const SIZES = [["64 B", 64], ["1 KiB", 1024], ["16 KiB", 16 * 1024]] as const;

const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const keys = { enc: random(32), mac: random(32) };
const portable = selectCrypto("portable").engine;
const ENGINES = [["native", selectCrypto("native").engine], ["portable", portable]] as const;

/** A RecordCipher set up for one record: seal (seq `seq`), or open. */
function once<T>(engine: CryptoEngine, use: (cipher: RecordCipher) => T): T {
  const cipher = new RecordCipher(engine, keys);
  try {
    return use(cipher);
  } finally {
    cipher.dispose();
  }
}
const seal = (seq: number, plaintext: Uint8Array) => once(portable, (c) => c.seal(seq, plaintext));
const open = (seq: number, record: Uint8Array) => once(portable, (c) => c.open(seq, record));

function seqBytes(seq: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(seq));
  return out;
}

/** §3 seal on node:crypto: IV || AES-256-CBC(PKCS#7) || HMAC-SHA-256(seq || IV || C). */
function nodeSeal(seq: number, plaintext: Uint8Array): Uint8Array {
  const iv = randomFillSync(new Uint8Array(IV_LENGTH));
  const cipher = createCipheriv("aes-256-cbc", keys.enc, iv);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  const cLength = head.length + tail.length;
  const record = new Uint8Array(IV_LENGTH + cLength + MAC_LENGTH);
  record.set(iv, 0);
  record.set(head, IV_LENGTH);
  record.set(tail, IV_LENGTH + head.length);
  const c = record.subarray(IV_LENGTH, IV_LENGTH + cLength);
  const tag = createHmac("sha256", keys.mac).update(seqBytes(seq)).update(iv).update(c).digest();
  record.set(tag, IV_LENGTH + cLength);
  return record;
}

/** §3 open on node:crypto, checks in the spec's order (MAC before decryption). */
function nodeOpen(seq: number, record: Uint8Array): Uint8Array {
  const iv = record.subarray(0, IV_LENGTH);
  const c = record.subarray(IV_LENGTH, record.length - MAC_LENGTH);
  const tag = createHmac("sha256", keys.mac).update(seqBytes(seq)).update(iv).update(c).digest();
  if (!timingSafeEqual(tag, record.subarray(record.length - MAC_LENGTH))) {
    throw new Error("bad record");
  }
  const decipher = createDecipheriv("aes-256-cbc", keys.enc, iv);
  const head = decipher.update(c);
  const tail = decipher.final();
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}

/** The record layer as it first was: noble's cbc() and hmac.create() set up on every record. */
function perCallSeal(seq: number, plaintext: Uint8Array): Uint8Array {
  const iv = crypto.getRandomValues(new Uint8Array(IV_LENGTH));
  const c = cbc(keys.enc, iv).encrypt(plaintext);
  const record = new Uint8Array(IV_LENGTH + c.length + MAC_LENGTH);
  record.set(iv, 0);
  record.set(c, IV_LENGTH);
  const tag = hmac.create(sha256, keys.mac).update(seqBytes(seq)).update(iv).update(c).digest();
  record.set(tag, IV_LENGTH + c.length);
  return record;
}

function perCallOpen(seq: number, record: Uint8Array): Uint8Array {
  const iv = record.subarray(0, IV_LENGTH);
  const c = record.subarray(IV_LENGTH, record.length - MAC_LENGTH);
  const tag = hmac.create(sha256, keys.mac).update(seqBytes(seq)).update(iv).update(c).digest();
  if (!constantTimeEqual(tag, record.subarray(record.length - MAC_LENGTH))) {
    throw new Error("bad record");
  }
  return cbc(keys.enc, iv).decrypt(c);
}

// All implementations must produce records the other opens, or the comparison means nothing.
{
  const plaintext = random(100);
  const opened = [
    nodeOpen(5, seal(5, plaintext)),
    open(6, nodeSeal(6, plaintext)),
    perCallOpen(7, seal(7, plaintext)),
    open(8, perCallSeal(8, plaintext)),
  ];
  if (opened.some((p) => p.join() !== plaintext.join())) {
    throw new Error("the record implementations disagree");
  }
}

for (const [label, size] of SIZES) {
  const plaintext = random(size);
  const group = `seal+open ${label}`;
  Deno.bench({
    name: `node:crypto createCipheriv+createHmac ${label}`,
    group,
    baseline: true,
    fn: () => {
      nodeOpen(1, nodeSeal(1, plaintext));
    },
  });
  Deno.bench({
    name: `noble cbc()+hmac.create() per record (record.ts before #6) ${label}`,
    group,
    fn: () => {
      perCallOpen(1, perCallSeal(1, plaintext));
    },
  });
  Deno.bench({
    name: `crypto/record.ts RecordCipher per record, portable engine ${label}`,
    group,
    fn: () => {
      open(1, seal(1, plaintext));
    },
  });
  // The server's path: one RecordLayer per direction of a connection, sequence numbers moving,
  // sealed into a reused buffer (the frame writer's, in a session) and opened in place.
  const record = new Uint8Array(sealedLength(plaintext.length));
  const into = { reserve: () => record };
  for (const [name, engine] of ENGINES) {
    const sender = new RecordLayer(engine, { send: keys, receive: keys });
    const receiver = new RecordLayer(engine, { send: keys, receive: keys });
    Deno.bench({
      name: `RecordLayer seal+open, ${name} engine ${label}`,
      group,
      fn: () => {
        sender.sealInto(plaintext, into);
        receiver.openInPlace(record);
      },
    });
  }
}
