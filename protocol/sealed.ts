// Sealed messages (PROTOCOL §8.3, §8.5): `seal` makes an envelope the server carries but can
// neither read nor forge; `open` runs the recipient's checks in the order of §8.5, and a failure
// names the check that refused. RSA carries a fresh AES key, AES carries the text, and the
// sender's signature binds both to the two usernames. The layout alone is in envelope.ts.
import { sha256 } from "@noble/hashes/sha2.js";
import {
  concat,
  constantTimeEqual,
  type CryptoEngine,
  OaepError,
  type RsaPrivateKey,
  type RsaPublicKey,
  toHex,
} from "../crypto/mod.ts";
import {
  decodeSealed,
  encodeEnvelope,
  encodeSealed,
  type Envelope,
  ENVELOPE_IV_LENGTH,
  ENVELOPE_TAG_LENGTH,
  EnvelopeError,
  envelopeLength,
  parseEnvelope,
} from "./envelope.ts";
import { MAX_SEALED_CHARS, MAX_TEXT_BYTES, MIN_TEXT_BYTES, USERNAME_PATTERN } from "./limits.ts";

/** The OAEP label of the wrapped key (§8.3). */
export const SEALED_KEY_LABEL = new TextEncoder().encode("HSP/1 sealed key");
/** What the signed message starts with: the context string and its 0x00 (§8.3). */
export const SEALED_SIGNATURE_CONTEXT = new TextEncoder().encode("HSP/1 sealed message\0");
/** K: an AES-256 key then an HMAC-SHA-256 key, fresh for each message (§8.3). */
export const MESSAGE_KEY_LENGTH = 64;
const ENC_KEY_LENGTH = 32;
const AES_BLOCK = 16;

/** The recipient's checks of §8.5, in their order. */
export const OPEN_CHECKS = [
  "layout",
  "recipient_key",
  "sender_key",
  "signature",
  "unwrap",
  "tag",
  "inner",
  "replay",
] as const;
export type OpenCheck = typeof OPEN_CHECKS[number];

/**
 * An envelope the recipient refuses, with the §8.5 check that refused it. From `unwrap` on the
 * message is one fixed sentence per check: the signature held, so the sender is who the DLV
 * says, but nothing about the decryption is worth more detail than its name.
 */
export class SealedError extends Error {
  override name = "SealedError";
  constructor(readonly check: OpenCheck, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** kid of §8.1: SHA-256 of the key's DER SubjectPublicKeyInfo. */
export function kidOf(key: RsaPublicKey): Uint8Array {
  return sha256(key.spkiDer);
}

/** `signed` of §8.3: context || from || 0x00 || to || 0x00 || body || tag. */
export function signedMessage(
  from: string,
  to: string,
  body: Uint8Array,
  tag: Uint8Array,
): Uint8Array {
  checkName("from", from);
  checkName("to", to);
  const names = new TextEncoder().encode(`${from}\0${to}\0`);
  return concat(SEALED_SIGNATURE_CONTEXT, names, body, tag);
}

/** The inner plaintext of §8.3: `{"text": …}` as UTF-8 JSON. */
export function innerPlaintext(text: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ text }));
}

/**
 * Characters of the `sealed` string that sealing `text` from `sender`'s key to `recipient`'s
 * would make. A text within MAX_TEXT_BYTES may still not fit MAX_SEALED_CHARS: JSON escapes a
 * quote or a backslash in two bytes and a control character in six.
 */
export function sealedChars(text: string, sender: RsaPublicKey, recipient: RsaPublicKey): number {
  return sealedCharsOf(innerPlaintext(text).length, sender, recipient);
}

function sealedCharsOf(innerBytes: number, sender: RsaPublicKey, recipient: RsaPublicKey): number {
  const bytes = envelopeLength(
    innerBytes,
    Math.ceil(recipient.bits / 8),
    Math.ceil(sender.bits / 8),
  );
  return 4 * Math.ceil(bytes / 3);
}

function checkName(what: string, name: string): void {
  // Usernames are ASCII by their pattern (§4.3), so the signed bytes are unambiguous.
  if (!USERNAME_PATTERN.test(name)) throw new TypeError(`${what} is not a username`);
}

/** One step of sealing or opening, for the educational trace (no secret ever appears). */
export type SealedTrace =
  | { readonly step: "message_key"; readonly bytes: number }
  | {
    readonly step: "wrap";
    readonly recipientKid: string;
    readonly bits: number;
    readonly wrappedBytes: number;
  }
  | {
    readonly step: "encrypt";
    readonly innerBytes: number;
    readonly iv: string;
    readonly ctBytes: number;
  }
  | { readonly step: "mac"; readonly bodyBytes: number; readonly tagHead: string }
  | {
    readonly step: "sign";
    readonly senderKid: string;
    readonly bits: number;
    readonly signedBytes: number;
    readonly sigBytes: number;
  }
  | { readonly step: "sealed"; readonly envelopeBytes: number; readonly chars: number }
  /** A check of §8.5 that passed (`ok`) or refused; `detail` says what was checked. */
  | {
    readonly step: "check";
    readonly check: OpenCheck;
    readonly ok: boolean;
    readonly detail: string;
  };

/** Test-only inputs: fixed K and IV for the vectors (like the handshake's fixed exponents). */
export interface SealOptions {
  readonly messageKey?: Uint8Array;
  readonly iv?: Uint8Array;
  readonly trace?: (step: SealedTrace) => void;
}

/** What sealing made. */
export interface Sealed {
  /** The envelope's bytes. */
  readonly envelope: Uint8Array;
  /** base64 of the envelope, as MSG's `sealed` carries it. */
  readonly sealed: string;
}

/**
 * Seals `text` from `from` to `to` (§8.3): a fresh K wrapped with RSA-OAEP to the recipient's
 * key, the inner plaintext under AES-256-CBC, an HMAC tag over the body, and the sender's
 * RSA-PSS signature over both names, the body and the tag. TypeError or RangeError for a bad
 * name or text.
 */
export function seal(
  crypto: CryptoEngine,
  message: { readonly from: string; readonly to: string; readonly text: string },
  keys: { readonly sender: RsaPrivateKey; readonly recipient: RsaPublicKey },
  options: SealOptions = {},
): Sealed {
  const { from, to, text } = message;
  checkName("from", from);
  checkName("to", to);
  const textBytes = utf8Bytes(text);
  if (textBytes < MIN_TEXT_BYTES || textBytes > MAX_TEXT_BYTES) {
    throw new RangeError(
      `text is ${textBytes < 0 ? "not UTF-8" : `${textBytes} bytes`}; ` +
        `${MIN_TEXT_BYTES} to ${MAX_TEXT_BYTES} bytes of UTF-8 are allowed`,
    );
  }
  const inner = innerPlaintext(text);
  // Before any RSA work: an envelope the server would refuse (§8.4) is not worth making.
  const chars = sealedCharsOf(inner.length, keys.sender.publicKey, keys.recipient);
  if (chars > MAX_SEALED_CHARS) {
    throw new RangeError(`sealed would be ${chars} characters, above ${MAX_SEALED_CHARS}`);
  }
  const trace = options.trace;
  const k = options.messageKey?.slice() ?? randomBytes(MESSAGE_KEY_LENGTH);
  const iv = options.iv?.slice() ?? randomBytes(ENVELOPE_IV_LENGTH);
  if (k.length !== MESSAGE_KEY_LENGTH || iv.length !== ENVELOPE_IV_LENGTH) {
    throw new RangeError(`K is ${MESSAGE_KEY_LENGTH} bytes and the IV ${ENVELOPE_IV_LENGTH}`);
  }
  const senderKid = kidOf(keys.sender.publicKey);
  const recipientKid = kidOf(keys.recipient);
  const padded = pad(inner);
  const ct = new Uint8Array(padded.length);
  const cipher = crypto.cbc(k.subarray(0, ENC_KEY_LENGTH), true);
  const mac = crypto.hmac(k.subarray(ENC_KEY_LENGTH));
  try {
    trace?.({ step: "message_key", bytes: k.length });
    const wrapped = keys.recipient.encryptOaep(k, SEALED_KEY_LABEL);
    trace?.({
      step: "wrap",
      recipientKid: toHex(recipientKid),
      bits: keys.recipient.bits,
      wrappedBytes: wrapped.length,
    });
    cipher.run(iv, padded, ct);
    trace?.({ step: "encrypt", innerBytes: inner.length, iv: toHex(iv), ctBytes: ct.length });
    // `body` is the envelope up to `ct`: one encoded without a signature, less its tag and
    // its sig_len.
    const body = encodeEnvelope({
      senderKid,
      recipientKid,
      wrapped,
      iv,
      ct,
      tag: new Uint8Array(ENVELOPE_TAG_LENGTH),
      sig: new Uint8Array(0),
    }).subarray(0, -(ENVELOPE_TAG_LENGTH + 2));
    const tag = new Uint8Array(ENVELOPE_TAG_LENGTH);
    mac.macInto(tag, body);
    trace?.({ step: "mac", bodyBytes: body.length, tagHead: toHex(tag.subarray(0, 8)) });
    const signed = signedMessage(from, to, body, tag);
    const sig = keys.sender.signPss(signed);
    trace?.({
      step: "sign",
      senderKid: toHex(senderKid),
      bits: keys.sender.publicKey.bits,
      signedBytes: signed.length,
      sigBytes: sig.length,
    });
    const envelope = encodeEnvelope({ senderKid, recipientKid, wrapped, iv, ct, tag, sig });
    const sealed = encodeSealed(envelope);
    trace?.({ step: "sealed", envelopeBytes: envelope.length, chars: sealed.length });
    return { envelope, sealed };
  } finally {
    k.fill(0);
    padded.fill(0);
    cipher.dispose();
    mac.dispose();
  }
}

function randomBytes(length: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}

function pad(inner: Uint8Array): Uint8Array {
  const n = AES_BLOCK - (inner.length % AES_BLOCK);
  const out = new Uint8Array(inner.length + n);
  out.set(inner);
  out.fill(n, inner.length);
  return out;
}

/**
 * What the recipient knows (§8.5): its own private keys by kid (the current one and older ones
 * it kept), the keys the DLV's `from` published by kid (asking the server with GPK if need be),
 * and whether an envelope was opened before. Undefined means "no such key".
 */
export interface OpenKeys {
  recipientKey(kid: Uint8Array): RsaPrivateKey | undefined | Promise<RsaPrivateKey | undefined>;
  senderKey(kid: Uint8Array): RsaPublicKey | undefined | Promise<RsaPublicKey | undefined>;
  /** Whether the envelope with this SHA-256 was opened before; no replay check when absent. */
  openedBefore?(digest: Uint8Array): boolean | Promise<boolean>;
}

/** A sealed message that passed every check. */
export interface Opened {
  readonly text: string;
  /** SHA-256 of the envelope, for the replay memory (§8.5 step 8). */
  readonly digest: Uint8Array;
  readonly senderKid: Uint8Array;
  readonly recipientKid: Uint8Array;
}

/**
 * Opens `sealed` (the base64 string, or the envelope's bytes) delivered `from` → `to`, with the
 * checks of §8.5 in their order; SealedError naming the first that fails. The signature is
 * verified before any decryption, so the OAEP, tag and padding checks only ever run on an
 * envelope the named sender made.
 */
export async function open(
  crypto: CryptoEngine,
  sealed: string | Uint8Array,
  names: { readonly from: string; readonly to: string },
  keys: OpenKeys,
  trace?: (step: SealedTrace) => void,
): Promise<Opened> {
  const pass = (check: OpenCheck, detail: string) =>
    trace?.({ step: "check", check, ok: true, detail });
  const refuse = (check: OpenCheck, message: string, cause?: unknown): never => {
    trace?.({ step: "check", check, ok: false, detail: message });
    throw new SealedError(check, message, cause === undefined ? undefined : { cause });
  };

  // 1. layout
  let bytes: Uint8Array;
  let envelope: Envelope;
  try {
    bytes = typeof sealed === "string" ? decodeSealed(sealed) : sealed;
    envelope = parseEnvelope(bytes);
  } catch (err) {
    if (!(err instanceof EnvelopeError)) throw err;
    return refuse("layout", err.message, err);
  }
  pass("layout", `${bytes.length} bytes parse exactly`);

  // 2. recipient_key
  const recipient = await keys.recipientKey(envelope.recipientKid);
  if (recipient === undefined || !sameKid(recipient.publicKey, envelope.recipientKid)) {
    return refuse(
      "recipient_key",
      `sealed to a key that is not one of ${names.to}'s here (${short(envelope.recipientKid)})`,
    );
  }
  pass("recipient_key", `sealed to your RSA-${recipient.publicKey.bits} key`);

  // 3. sender_key
  const sender = await keys.senderKey(envelope.senderKid);
  if (sender === undefined || !sameKid(sender, envelope.senderKid)) {
    return refuse(
      "sender_key",
      `signed with a key ${names.from} never published (${short(envelope.senderKid)})`,
    );
  }
  pass("sender_key", `a key ${names.from} published (RSA-${sender.bits})`);

  // 4. signature, over both names as the DLV gives them: a re-attributed or re-routed
  // envelope fails here.
  const signed = signedMessage(names.from, names.to, envelope.body, envelope.tag);
  if (!sender.verifyPss(signed, envelope.sig)) {
    return refuse(
      "signature",
      `the signature does not verify as ${names.from} to ${names.to}`,
    );
  }
  pass("signature", `RSA-PSS by ${names.from} to ${names.to} over ${signed.length} bytes`);

  // 5. unwrap
  let k: Uint8Array;
  try {
    k = recipient.decryptOaep(envelope.wrapped, SEALED_KEY_LABEL);
  } catch (err) {
    if (!(err instanceof OaepError)) throw err;
    return refuse("unwrap", "the wrapped key does not decrypt");
  }
  if (k.length !== MESSAGE_KEY_LENGTH) {
    k.fill(0);
    return refuse("unwrap", "the wrapped key does not decrypt");
  }
  pass("unwrap", `RSA-OAEP gave the ${MESSAGE_KEY_LENGTH}-byte message key`);

  let text: string;
  const cipher = crypto.cbc(k.subarray(0, ENC_KEY_LENGTH), false);
  const mac = crypto.hmac(k.subarray(ENC_KEY_LENGTH));
  try {
    // 6. tag
    const tag = new Uint8Array(ENVELOPE_TAG_LENGTH);
    mac.macInto(tag, envelope.body);
    if (!constantTimeEqual(tag, envelope.tag)) return refuse("tag", "the tag does not match");
    pass("tag", `HMAC-SHA-256 over ${envelope.body.length} bytes matches`);

    // 7. inner
    const padded = new Uint8Array(envelope.ct.length);
    cipher.run(envelope.iv, envelope.ct, padded);
    const inner = readInner(padded);
    padded.fill(0);
    if (inner === undefined) {
      return refuse("inner", "the plaintext is not JSON with a text of 1 to 16384 bytes");
    }
    text = inner;
    pass("inner", `AES-256-CBC gave ${envelope.ct.length} bytes, a valid text`);
  } finally {
    k.fill(0);
    cipher.dispose();
    mac.dispose();
  }

  // 8. replay
  const digest = sha256(bytes);
  if (await keys.openedBefore?.(digest)) {
    return refuse("replay", "this envelope was opened before, under another message id");
  }
  pass("replay", "not opened before");
  return { text, digest, senderKid: envelope.senderKid, recipientKid: envelope.recipientKid };
}

function sameKid(key: RsaPublicKey, kid: Uint8Array): boolean {
  return constantTimeEqual(kidOf(key), kid);
}

function short(kid: Uint8Array): string {
  return `kid ${toHex(kid.subarray(0, 8))}…`;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The text of an inner plaintext after CBC, or undefined: padding, UTF-8, JSON, `text`. */
function readInner(padded: Uint8Array): string | undefined {
  const n = padded[padded.length - 1]!;
  if (n === 0 || n > AES_BLOCK || n > padded.length) return undefined;
  for (let i = padded.length - n; i < padded.length; i++) if (padded[i] !== n) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(padded.subarray(0, padded.length - n)));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const text = Object.hasOwn(value, "text") ? (value as { text: unknown }).text : undefined;
  if (typeof text !== "string") return undefined;
  const bytes = utf8Bytes(text);
  return bytes >= MIN_TEXT_BYTES && bytes <= MAX_TEXT_BYTES ? text : undefined;
}

/** UTF-8 length, or -1 for a lone surrogate (JSON's \ud800 escapes can make one). */
function utf8Bytes(text: string): number {
  if (!text.isWellFormed()) return -1;
  return new TextEncoder().encode(text).length;
}
