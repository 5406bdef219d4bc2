// The layout of a sealed message's envelope (PROTOCOL §8.3), without its cryptography: what
// the server checks before it accepts one (§8.4) and what a recipient checks first (§8.5
// "layout"). Sealing and opening, on top of this, are in protocol/sealed.ts.
//
//   envelope = "HSE" || version (u8 = 1) || sender_kid (32) || recipient_kid (32)
//           || wrapped_len (u16) || wrapped || iv (16) || ct_len (u32) || ct
//           || tag (32) || sig_len (u16) || sig
import { MAX_SEALED_CHARS } from "./limits.ts";

export const ENVELOPE_MAGIC = new Uint8Array([0x48, 0x53, 0x45]); // "HSE"
export const ENVELOPE_VERSION = 1;
export const KID_LENGTH = 32;
export const ENVELOPE_IV_LENGTH = 16;
export const ENVELOPE_TAG_LENGTH = 32;
const AES_BLOCK = 16;

/** An envelope's fields, as views of the bytes it was read from. */
export interface Envelope {
  readonly senderKid: Uint8Array;
  readonly recipientKid: Uint8Array;
  readonly wrapped: Uint8Array;
  readonly iv: Uint8Array;
  readonly ct: Uint8Array;
  readonly tag: Uint8Array;
  readonly sig: Uint8Array;
  /** `body`: "HSE" through `ct`, what the tag covers (§8.3). */
  readonly body: Uint8Array;
}

/** Why an envelope's layout is refused, in words. */
export class EnvelopeError extends Error {
  override name = "EnvelopeError";
}

/**
 * The bytes of `value` if it is standard base64 with its padding exactly right (§8.1, §8.3):
 * whole groups of 4, at most two `=` and only at the end. The platform's decoder checks the
 * alphabet and where `=` may be; it skips white space, which the length check catches. It runs
 * on every sealed message the server accepts, where a regular expression and a decoding loop
 * cost a measurable share of its time per message (docs/PERFORMANCE.md).
 */
export function decodePaddedBase64(value: string): Uint8Array | undefined {
  const n = value.length;
  if (n % 4 !== 0) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.fromBase64(value, { lastChunkHandling: "loose" });
  } catch {
    return undefined;
  }
  const padding = value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0;
  return bytes.length === (n / 4) * 3 - padding ? bytes : undefined;
}

/** Whether `value` is standard base64 with its padding exactly right (see decodePaddedBase64). */
export function isPaddedBase64(value: string): boolean {
  return decodePaddedBase64(value) !== undefined;
}

/**
 * §8.4's first check: `sealed` is standard, padded base64 of at most MAX_SEALED_CHARS
 * characters. Returns the envelope's bytes; EnvelopeError otherwise.
 */
export function decodeSealed(sealed: string): Uint8Array {
  if (sealed.length === 0 || sealed.length > MAX_SEALED_CHARS) {
    throw new EnvelopeError(
      `sealed is ${sealed.length} characters; 1 to ${MAX_SEALED_CHARS} allowed`,
    );
  }
  const bytes = decodePaddedBase64(sealed);
  if (bytes === undefined) throw new EnvelopeError("sealed is not padded standard base64");
  return bytes;
}

/** base64 of an envelope's bytes, as `sealed` carries it (standard alphabet, padded). */
export function encodeSealed(envelope: Uint8Array): string {
  return envelope.toBase64();
}

/**
 * Reads an envelope, exactly: the magic, version 1, every length inside the bytes, `ct_len` a
 * non-zero multiple of 16, and nothing after `sig`. EnvelopeError naming what is wrong.
 */
export function parseEnvelope(bytes: Uint8Array): Envelope {
  let at = 0;
  const take = (n: number, what: string): Uint8Array => {
    if (n > bytes.length - at) {
      throw new EnvelopeError(`length mismatch: ${what} runs past the end (${bytes.length} bytes)`);
    }
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  const u16 = (what: string) => {
    const b = take(2, what);
    return (b[0]! << 8) | b[1]!;
  };
  const magic = take(3, "magic");
  if (!magic.every((b, i) => b === ENVELOPE_MAGIC[i])) throw new EnvelopeError("bad magic");
  const version = take(1, "version")[0]!;
  if (version !== ENVELOPE_VERSION) throw new EnvelopeError(`unsupported version ${version}`);
  const senderKid = take(KID_LENGTH, "sender_kid");
  const recipientKid = take(KID_LENGTH, "recipient_kid");
  const wrapped = take(u16("wrapped_len"), "wrapped");
  const iv = take(ENVELOPE_IV_LENGTH, "iv");
  const lenBytes = take(4, "ct_len");
  const ctLen = new DataView(lenBytes.buffer, lenBytes.byteOffset, 4).getUint32(0);
  if (ctLen === 0 || ctLen % AES_BLOCK !== 0) {
    throw new EnvelopeError(`bad ciphertext length ${ctLen}: a non-zero multiple of 16 is needed`);
  }
  const ct = take(ctLen, "ct");
  const body = bytes.subarray(0, at);
  const tag = take(ENVELOPE_TAG_LENGTH, "tag");
  const sig = take(u16("sig_len"), "sig");
  if (at !== bytes.length) {
    throw new EnvelopeError(`length mismatch: ${bytes.length - at} bytes after sig`);
  }
  return { senderKid, recipientKid, wrapped, iv, ct, tag, sig, body };
}

/**
 * Bytes of an envelope (§8.3) whose inner plaintext is `innerBytes` long, with `wrappedBytes` of
 * wrapped key and `sigBytes` of signature: known before any of them is made.
 */
export function envelopeLength(innerBytes: number, wrappedBytes: number, sigBytes: number): number {
  const ctBytes = (Math.floor(innerBytes / AES_BLOCK) + 1) * AES_BLOCK; // PKCS#7 adds 1 to 16
  return 4 + 2 * KID_LENGTH + 2 + wrappedBytes + ENVELOPE_IV_LENGTH + 4 + ctBytes +
    ENVELOPE_TAG_LENGTH + 2 + sigBytes;
}

/** The envelope's bytes from its fields (§8.3); RangeError for a field that cannot fit. */
export function encodeEnvelope(
  e: Omit<Envelope, "body">,
): Uint8Array {
  if (e.senderKid.length !== KID_LENGTH || e.recipientKid.length !== KID_LENGTH) {
    throw new RangeError(`kids are ${KID_LENGTH} bytes`);
  }
  if (e.iv.length !== ENVELOPE_IV_LENGTH || e.tag.length !== ENVELOPE_TAG_LENGTH) {
    throw new RangeError("iv is 16 bytes and tag 32");
  }
  if (e.wrapped.length > 0xffff || e.sig.length > 0xffff) throw new RangeError("u16 length");
  const out = new Uint8Array(
    4 + 2 * KID_LENGTH + 2 + e.wrapped.length + ENVELOPE_IV_LENGTH + 4 + e.ct.length +
      ENVELOPE_TAG_LENGTH + 2 + e.sig.length,
  );
  const view = new DataView(out.buffer);
  let at = 0;
  const put = (b: Uint8Array) => {
    out.set(b, at);
    at += b.length;
  };
  put(ENVELOPE_MAGIC);
  out[at++] = ENVELOPE_VERSION;
  put(e.senderKid);
  put(e.recipientKid);
  view.setUint16(at, e.wrapped.length);
  at += 2;
  put(e.wrapped);
  put(e.iv);
  view.setUint32(at, e.ct.length);
  at += 4;
  put(e.ct);
  put(e.tag);
  view.setUint16(at, e.sig.length);
  at += 2;
  put(e.sig);
  return out;
}
