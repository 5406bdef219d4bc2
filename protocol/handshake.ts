// The two-message HSP/1 handshake (PROTOCOL §2) as two small state machines, one per side.
// Pure: no sockets. Randomness, the key exchange's private values (crypto/kex.ts) and the
// server key are injectable so the vectors can be reproduced byte for byte.
import { sha256 } from "@noble/hashes/sha2.js";
import {
  concat,
  type CryptoEngine,
  type DirectionKeys,
  fingerprint as keyFingerprint,
  KEX_GROUPS,
  KexError,
  type KexGroup,
  kexGroupById,
  type KexSecrets,
  KeyError,
  keySchedule,
  respondKex,
  type ServerIdentity,
  startKex,
  toHex,
  type TrafficKeys,
  verifyServerSignature,
} from "../crypto/mod.ts";
import { HandshakeError } from "./errors.ts";
import { MAX_ERROR_MESSAGE_CHARS } from "./limits.ts";

export const VERSION = 1;
export const RANDOM_LENGTH = 32;
const ascii = (s: string) => new TextEncoder().encode(s);
const CHL = ascii("CHL");
const SHL = ascii("SHL");
const ERR = ascii("ERR");
/** §2.2: signed_message = "HSP/1 server handshake" || 0x00 || transcript_hash. */
export const SIGNATURE_CONTEXT = concat(ascii("HSP/1 server handshake"), new Uint8Array([0]));
/** "CHL" || version || group: bytes of a ClientHello before client_random. */
const CLIENT_HELLO_PREFIX = 3 + 1 + 2;

/** §2.3 handshake error codes. */
export type HandshakeErrorCode = "unsupported_version" | "unsupported_group" | "bad_hello";

/** A side's view of the traffic keys: which pair seals and which opens. */
export interface SessionKeys {
  readonly send: DirectionKeys;
  readonly receive: DirectionKeys;
}

/** Each step, for the educational trace (--trace). Never carries a key, only short key ids. */
export type HandshakeTrace =
  | { step: "client_hello"; group: string; random: string; share: Uint8Array; bytes: number }
  | { step: "server_hello"; group: string; random: string; share: Uint8Array; bytes: number }
  | { step: "server_key"; fingerprint: string; bits: number; keyBytes: number }
  | { step: "signature"; verified: boolean; bytes: number }
  | { step: "shared_secret"; group: string; bytes: number }
  | { step: "transcript_hash"; hex: string }
  | { step: "keys"; ids: Record<keyof TrafficKeys, string> };

export type TraceSink = (event: HandshakeTrace) => void;

/** The server answered with an §2.3 ERR frame: its code, and its message as the server sent it. */
export class HandshakeRefusedError extends HandshakeError {
  override name = "HandshakeRefusedError";
  constructor(code: string, readonly serverMessage: string) {
    super(
      code,
      `server refused the handshake: ${code}${serverMessage ? ` (${serverMessage})` : ""}`,
    );
  }
}

/** A ClientHello as read from the wire. */
export interface ClientHello {
  readonly version: number;
  readonly groupId: number;
  readonly random: Uint8Array;
  readonly share: Uint8Array;
}

/** A ServerHello as read from the wire. */
export interface ServerHello {
  readonly version: number;
  readonly groupId: number;
  readonly random: Uint8Array;
  readonly share: Uint8Array;
  readonly serverKey: Uint8Array;
  readonly signature: Uint8Array;
  /** server_hello_unsigned: the body up to and including server_key (§2.2). */
  readonly unsigned: Uint8Array;
}

function startsWith(body: Uint8Array, tag: Uint8Array): boolean {
  return body.length >= tag.length && tag.every((b, i) => body[i] === b);
}

function u16(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`${n} does not fit a u16`);
  return new Uint8Array([n >> 8, n & 0xff]);
}

/** §2.1: "CHL" || version || group || client_random || client_share. */
export function encodeClientHello(hello: ClientHello): Uint8Array {
  return concat(
    CHL,
    new Uint8Array([hello.version]),
    u16(hello.groupId),
    hello.random,
    hello.share,
  );
}

/** Parses a ClientHello; HandshakeError with a §2.3 code on anything malformed or unsupported. */
export function decodeClientHello(body: Uint8Array): ClientHello {
  if (!startsWith(body, CHL) || body.length < CLIENT_HELLO_PREFIX) {
    throw new HandshakeError("bad_hello", "first frame is not a ClientHello");
  }
  const version = body[3]!;
  if (version !== VERSION) {
    throw new HandshakeError("unsupported_version", `version ${version} is not supported (1 is)`);
  }
  const groupId = (body[4]! << 8) | body[5]!;
  const group = kexGroupById(groupId);
  if (!group) {
    throw new HandshakeError(
      "unsupported_group",
      `group 0x${groupId.toString(16).padStart(4, "0")} is not offered`,
    );
  }
  const expected = CLIENT_HELLO_PREFIX + RANDOM_LENGTH + group.clientShareBytes;
  if (body.length !== expected) {
    throw new HandshakeError(
      "bad_hello",
      `ClientHello for ${group.title} is ${body.length} bytes; expected ${expected}`,
    );
  }
  return {
    version,
    groupId,
    random: body.slice(CLIENT_HELLO_PREFIX, CLIENT_HELLO_PREFIX + RANDOM_LENGTH),
    share: body.slice(CLIENT_HELLO_PREFIX + RANDOM_LENGTH),
  };
}

/** §2.2: the ServerHello up to and including server_key. */
export function encodeServerHelloUnsigned(
  hello: Omit<ServerHello, "signature" | "unsigned">,
): Uint8Array {
  return concat(
    SHL,
    new Uint8Array([hello.version]),
    u16(hello.groupId),
    hello.random,
    hello.share,
    u16(hello.serverKey.length),
    hello.serverKey,
  );
}

/** §2.2: server_hello_unsigned || sig_len || signature. */
export function encodeServerHello(unsigned: Uint8Array, signature: Uint8Array): Uint8Array {
  return concat(unsigned, u16(signature.length), signature);
}

/**
 * Parses a ServerHello for a client that offered `group` (§2.4): version 1, the group echoed,
 * and every length adding up exactly to the frame.
 */
export function decodeServerHello(body: Uint8Array, group: KexGroup): ServerHello {
  const fail = (why: string): never => {
    throw new HandshakeError("bad_server_hello", `bad ServerHello: ${why}`);
  };
  if (!startsWith(body, SHL)) fail("the frame is not a ServerHello");
  if (body.length < CLIENT_HELLO_PREFIX) fail(`only ${body.length} bytes`);
  const version = body[3]!;
  if (version !== VERSION) fail(`version ${version}, expected ${VERSION}`);
  const groupId = (body[4]! << 8) | body[5]!;
  if (groupId !== group.id) {
    fail(`group 0x${groupId.toString(16)} does not echo 0x${group.id.toString(16)}`);
  }
  let at = CLIENT_HELLO_PREFIX;
  const take = (n: number, what: string): Uint8Array => {
    if (at + n > body.length) fail(`${what} runs past the end of the frame`);
    const out = body.slice(at, at + n);
    at += n;
    return out;
  };
  const readU16 = (what: string): number => {
    const b = take(2, what);
    return (b[0]! << 8) | b[1]!;
  };
  const random = take(RANDOM_LENGTH, "server_random");
  const share = take(group.serverShareBytes, "server_share");
  const serverKey = take(readU16("key_len"), "server_key");
  const unsigned = body.slice(0, at);
  const signature = take(readU16("sig_len"), "signature");
  if (at !== body.length) fail(`${body.length - at} trailing bytes`);
  return { version, groupId, random, share, serverKey, signature, unsigned };
}

/** §2.3: "ERR" || UTF-8 JSON {"code", "message"}. */
export function encodeHandshakeError(code: HandshakeErrorCode, message: string): Uint8Array {
  return concat(ERR, ascii(JSON.stringify({ code, message })));
}

/** Reads an §2.3 ERR frame defensively (the server may be hostile); undefined if not one. */
export function decodeHandshakeError(
  body: Uint8Array,
): { code: string; message: string } | undefined {
  if (!startsWith(body, ERR)) return undefined;
  try {
    const json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body.subarray(3)));
    const code = typeof json?.code === "string" ? json.code.slice(0, 64) : "unknown";
    const message = typeof json?.message === "string"
      ? json.message.slice(0, MAX_ERROR_MESSAGE_CHARS)
      : "";
    return { code, message };
  } catch {
    return { code: "unknown", message: "unreadable ERR frame" };
  }
}

/** transcript_hash = SHA-256(client_hello_body || server_hello_unsigned) (§2.2). */
export function transcriptHash(
  clientHello: Uint8Array,
  serverHelloUnsigned: Uint8Array,
): Uint8Array {
  return sha256.create().update(clientHello).update(serverHelloUnsigned).digest();
}

/** signed_message of §2.2. */
export function signedMessage(hash: Uint8Array): Uint8Array {
  return concat(SIGNATURE_CONTEXT, hash);
}

/** A short, non-secret id of a key for traces: the first 8 hex digits of SHA-256(key). */
export function keyId(key: Uint8Array): string {
  return toHex(sha256(key).subarray(0, 4));
}

function keyIds(keys: TrafficKeys): Record<keyof TrafficKeys, string> {
  return {
    c2sEnc: keyId(keys.c2sEnc),
    c2sMac: keyId(keys.c2sMac),
    s2cEnc: keyId(keys.s2cEnc),
    s2cMac: keyId(keys.s2cMac),
  };
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** Everything a client learns from a completed handshake. */
export interface ClientHandshakeResult {
  readonly keys: SessionKeys;
  readonly serverKey: Uint8Array;
  readonly fingerprint: string;
  readonly transcriptHash: Uint8Array;
  readonly group: KexGroup;
}

/** The KexSecrets fields are injectable for known-answer tests only, like `random`. */
export interface ClientHandshakeOptions extends KexSecrets {
  readonly group: KexGroup;
  /** The engine for the key exchange, the signature check and the session's records. */
  readonly crypto: CryptoEngine;
  readonly random?: Uint8Array;
  readonly trace?: TraceSink;
}

/**
 * Client side: `hello()` gives the ClientHello body to send; `finish(body)` takes the
 * server's reply, runs every check of §2.4 (pinning excepted: the caller checks the returned
 * fingerprint against known_hosts) and yields the session keys.
 */
export class ClientHandshake {
  #state: "start" | "awaiting_server_hello" | "done" | "failed" = "start";
  #hello?: Uint8Array;
  readonly #kex;
  readonly #random: Uint8Array;
  readonly #options: ClientHandshakeOptions;

  constructor(options: ClientHandshakeOptions) {
    this.#options = options;
    this.#random = options.random ?? randomBytes(RANDOM_LENGTH);
    if (this.#random.length !== RANDOM_LENGTH) {
      throw new RangeError("client_random must be 32 bytes");
    }
    this.#kex = startKex(options.crypto, options.group, options);
  }

  get state(): string {
    return this.#state;
  }

  /** The ClientHello body (§2.1). */
  hello(): Uint8Array {
    if (this.#state !== "start") throw new TypeError(`hello() in state ${this.#state}`);
    const { group } = this.#options;
    this.#hello = encodeClientHello({
      version: VERSION,
      groupId: group.id,
      random: this.#random,
      share: this.#kex.share,
    });
    this.#state = "awaiting_server_hello";
    this.#options.trace?.({
      step: "client_hello",
      group: group.name,
      random: toHex(this.#random),
      share: this.#kex.share,
      bytes: this.#hello.length,
    });
    return this.#hello;
  }

  /** Checks the ServerHello (or ERR) body and derives the keys; HandshakeError on any failure. */
  finish(body: Uint8Array): ClientHandshakeResult {
    if (this.#state !== "awaiting_server_hello") {
      throw new TypeError(`finish() in state ${this.#state}`);
    }
    this.#state = "failed";
    try {
      return this.#finish(body);
    } finally {
      this.#kex.dispose(); // §2.5, §2.6: private values discarded, whatever the outcome
    }
  }

  #finish(body: Uint8Array): ClientHandshakeResult {
    const serverError = decodeHandshakeError(body);
    if (serverError) throw new HandshakeRefusedError(serverError.code, serverError.message);
    const { group, crypto, trace } = this.#options;
    const hello = decodeServerHello(body, group);
    trace?.({
      step: "server_hello",
      group: group.name,
      random: toHex(hello.random),
      share: hello.share,
      bytes: body.length,
    });
    // The signature is checked before Z exists, so no failure path leaves Z behind; the share's
    // own checks (§2.4, §2.6) run as Z is computed.
    const hash = transcriptHash(this.#hello!, hello.unsigned);
    let verdict;
    try {
      const { serverKey, signature } = hello;
      verdict = verifyServerSignature(crypto, serverKey, signedMessage(hash), signature);
    } catch (cause) {
      if (cause instanceof KeyError) {
        throw new HandshakeError("bad_server_key", cause.message, { cause });
      }
      throw cause;
    }
    const fp = keyFingerprint(hello.serverKey);
    trace?.({
      step: "server_key",
      fingerprint: fp,
      bits: verdict.key.bits,
      keyBytes: hello.serverKey.length,
    });
    trace?.({ step: "signature", verified: verdict.valid, bytes: hello.signature.length });
    if (!verdict.valid) {
      throw new HandshakeError(
        "bad_signature",
        "the server's signature over the transcript does not verify",
      );
    }
    let z: Uint8Array;
    try {
      z = this.#kex.finish(hello.share);
    } catch (cause) {
      if (cause instanceof KexError) {
        throw new HandshakeError("bad_server_hello", cause.message, { cause });
      }
      throw cause;
    }
    trace?.({ step: "shared_secret", group: group.name, bytes: z.length });
    trace?.({ step: "transcript_hash", hex: toHex(hash) });
    const { prk, keys } = keySchedule(z, hash);
    z.fill(0);
    prk.fill(0);
    trace?.({ step: "keys", ids: keyIds(keys) });
    this.#state = "done";
    return {
      keys: {
        send: { enc: keys.c2sEnc, mac: keys.c2sMac },
        receive: { enc: keys.s2cEnc, mac: keys.s2cMac },
      },
      serverKey: hello.serverKey,
      fingerprint: fp,
      transcriptHash: hash,
      group,
    };
  }
}

/** The KexSecrets fields are injectable for known-answer tests only, like `random`. */
export interface ServerHandshakeOptions extends KexSecrets {
  readonly identity: ServerIdentity;
  /** The engine for the key exchange and the session's records (the identity signs on its own). */
  readonly crypto: CryptoEngine;
  /** Groups this server offers; all five of §2.1 by default (§2.6). */
  readonly groups?: readonly KexGroup[];
  readonly random?: Uint8Array;
  readonly trace?: TraceSink;
}

/**
 * The server's answer to a ClientHello: the frame to send, and keys when it succeeded. A
 * failure of the server's own (its signature could not be made, say) has no frame: §2.3's codes
 * name the client's faults, so the connection is dropped and the cause is logged, not blamed
 * on the client as `bad_hello`.
 */
export type ServerHandshakeOutcome =
  | { ok: true; reply: Uint8Array; keys: SessionKeys; group: KexGroup; transcriptHash: Uint8Array }
  | { ok: false; reply: Uint8Array | undefined; error: HandshakeError };

/** Server side: `respond(clientHelloBody)` answers with a ServerHello or an §2.3 ERR frame. */
export class ServerHandshake {
  #state: "awaiting_client_hello" | "done" | "failed" = "awaiting_client_hello";
  readonly #options: ServerHandshakeOptions;

  constructor(options: ServerHandshakeOptions) {
    this.#options = options;
  }

  get state(): string {
    return this.#state;
  }

  /** Answers one ClientHello. Never throws for anything the client sent. */
  respond(body: Uint8Array): ServerHandshakeOutcome {
    if (this.#state !== "awaiting_client_hello") {
      throw new TypeError(`respond() in state ${this.#state}`);
    }
    this.#state = "failed";
    try {
      return this.#respond(body);
    } catch (err) {
      if (!(err instanceof HandshakeError)) {
        return {
          ok: false,
          reply: undefined,
          error: new HandshakeError("server_fault", `handshake failed on our side: ${err}`, {
            cause: err,
          }),
        };
      }
      const error = err;
      const code = (["unsupported_version", "unsupported_group"] as const).find((c) =>
        c === error.code
      ) ??
        "bad_hello";
      return { ok: false, reply: encodeHandshakeError(code, error.message), error };
    }
  }

  #respond(body: Uint8Array): ServerHandshakeOutcome {
    const { identity, crypto, trace } = this.#options;
    const hello = decodeClientHello(body);
    const group = kexGroupById(hello.groupId)!;
    const offered = this.#options.groups ?? KEX_GROUPS;
    if (!offered.includes(group)) {
      // Naming what is offered lets a client choose again (TLS does it with HelloRetryRequest).
      throw new HandshakeError(
        "unsupported_group",
        `group ${group.name} is not offered; this server offers ${
          offered.map((g) => g.name).join(", ")
        }`,
      );
    }
    trace?.({
      step: "client_hello",
      group: group.name,
      random: toHex(hello.random),
      share: hello.share,
      bytes: body.length,
    });
    let kex;
    try {
      kex = respondKex(crypto, group, hello.share, this.#options); // private values wiped inside
    } catch (cause) {
      if (cause instanceof KexError) {
        throw new HandshakeError("bad_hello", cause.message, { cause });
      }
      throw cause;
    }
    const z = kex.secret;
    trace?.({ step: "shared_secret", group: group.name, bytes: z.length });
    const random = this.#options.random ?? randomBytes(RANDOM_LENGTH);
    const unsigned = encodeServerHelloUnsigned({
      version: VERSION,
      groupId: group.id,
      random,
      share: kex.share,
      serverKey: identity.spkiDer,
    });
    const hash = transcriptHash(body, unsigned);
    trace?.({ step: "transcript_hash", hex: toHex(hash) });
    const signature = identity.sign(signedMessage(hash));
    const reply = encodeServerHello(unsigned, signature);
    trace?.({
      step: "server_hello",
      group: group.name,
      random: toHex(random),
      share: kex.share,
      bytes: reply.length,
    });
    trace?.({
      step: "server_key",
      fingerprint: identity.fingerprint,
      bits: identity.bits,
      keyBytes: identity.spkiDer.length,
    });
    const { prk, keys } = keySchedule(z, hash);
    z.fill(0);
    prk.fill(0);
    trace?.({ step: "keys", ids: keyIds(keys) });
    this.#state = "done";
    return {
      ok: true,
      reply,
      keys: {
        send: { enc: keys.s2cEnc, mac: keys.s2cMac },
        receive: { enc: keys.c2sEnc, mac: keys.c2sMac },
      },
      group,
      transcriptHash: hash,
    };
  }
}
