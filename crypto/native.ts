// The native engine: OpenSSL 3's libcrypto through Deno's FFI, for the primitives a busy
// server spends its time in (AES-256-CBC and HMAC-SHA-256 per record, the RSA-PSS signature and
// the two modular exponentiations per handshake) and for §8's RSA-OAEP and key generation.
// Deno's node:crypto does RSA and DH in Rust big-integer code, several times slower and not
// constant time (docs/PERFORMANCE.md, docs/SECURITY.md). The portable engine (portable.ts)
// stays the reference and the fallback; select.ts picks.
//
// Review notes: every length handed to C is the length of the buffer passed with it, output
// buffers are sized before the call and every return code is checked; secret BIGNUMs are
// freed with BN_clear_free; contexts holding keys are freed by dispose() or, as a safety net,
// when their owner is garbage collected (liveNativeHandles() lets tests count them). No pointer
// is ever made from a number or read from JS: that needs the FFI permission for every path,
// which the tasks do not grant, and is where memory-safety mistakes would live. MAC comparison
// and padding checks stay in JS (crypto/record.ts), so both engines refuse records through the
// same single failure. Key parsing and export use node:crypto (_rsa_keys.ts) for both engines.
import type { KeyObject } from "node:crypto";
import { isAbsolute } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { checkCbcBuffers } from "./_contract.ts";
import {
  type ParsedPrivateKey,
  type ParsedPublicKey,
  parsePrivateDer,
  parseSpki,
  pkcs8Of,
} from "./_rsa_keys.ts";
import { bytesToBigInt, fromHex, toHex } from "./bytes.ts";
import {
  type BlockCipher,
  checkKeyBits,
  type CryptoEngine,
  KeyError,
  type Mac,
  OaepError,
  PSS_SALT_LENGTH,
  type RsaKeyBits,
  type RsaPrivateKey,
  type RsaPublicKey,
} from "./engine.ts";
import { portableCrypto } from "./portable.ts";

/**
 * Absolute paths where OpenSSL 3's libcrypto is usually installed, per OS (and, on Linux, CPU
 * directory). Only absolute paths: a bare name would be searched for by the dynamic loader (in
 * LD_LIBRARY_PATH, the working directory's neighbours on some systems), and the FFI permission
 * is granted per path, so the tasks in deno.json list exactly these.
 */
export const LIBRARY_CANDIDATES: Readonly<Record<string, readonly string[]>> = {
  linux: [
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", // Debian, Ubuntu
    "/lib/x86_64-linux-gnu/libcrypto.so.3",
    "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
    "/lib/aarch64-linux-gnu/libcrypto.so.3",
    "/usr/lib64/libcrypto.so.3", // Fedora, RHEL, SUSE
    "/lib64/libcrypto.so.3",
    "/usr/lib/libcrypto.so.3", // Arch, Alpine
    "/lib/libcrypto.so.3",
  ],
  darwin: [
    "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib", // Homebrew, Apple silicon
    "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib", // Homebrew, Intel
    "/opt/local/lib/libcrypto.3.dylib", // MacPorts
  ],
};

/** OpenSSL 3.0.0 as OpenSSL_version_num() reports it: the first ABI these symbols match. */
const MIN_OPENSSL_VERSION = 0x30000000n;
/**
 * OpenSSL 4.0.0: the first release free to change what this file relies on (the deprecated
 * SHA256_* functions and their struct, the ABI of 3.x), so it is refused until checked.
 */
const MAX_OPENSSL_VERSION_EXCLUSIVE = 0x40000000n;
const BN_FLG_CONSTTIME = 0x04;
const RSA_PKCS1_PSS_PADDING = 6;
const RSA_PKCS1_OAEP_PADDING = 4;
const EVP_PKEY_RSA = 6;
const BIO_CTRL_PENDING = 10;
/** Longest PKCS#8 DER read back from key generation: a 4096-bit key takes about 2.4 KB. */
const MAX_PKCS8_BYTES = 16 * 1024;
/** Longest OAEP label handed to OpenSSL (§8's is 16 bytes). */
const MAX_OAEP_LABEL = 1024;
/**
 * sizeof(SHA256_CTX) in OpenSSL 3 (sha.h: eight hash words, two length words, a 16-word block,
 * num, md_len; all 32-bit, so no padding). JS allocates the struct, so checkSha256Ctx() proves
 * the loaded library agrees before any HMAC is made.
 */
const SHA256_CTX_BYTES = 112;
const SHA256_BLOCK = 64;
const EMPTY = new Uint8Array(0);
/** Public keys kept parsed: a client talks to a handful of servers. */
const MAX_CACHED_PUBLIC_KEYS = 8;

const SYMBOLS = {
  OpenSSL_version_num: { parameters: [], result: "u64" },
  ERR_clear_error: { parameters: [], result: "void" },
  EVP_sha256: { parameters: [], result: "pointer" },
  EVP_aes_256_cbc: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_CIPHER_CTX_set_padding: { parameters: ["pointer", "i32"], result: "i32" },
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherUpdate: { parameters: ["pointer", "buffer", "buffer", "buffer", "i32"], result: "i32" },
  // SHA256_CTX is a public struct of OpenSSL 3's ABI (sha.h), its size checked at load; the
  // functions are deprecated in favour of EVP but exported by every 3.x, and EVP_MAC's context
  // copies per MAC cost more (docs/PERFORMANCE.md).
  SHA256_Init: { parameters: ["buffer"], result: "i32" },
  SHA256_Update: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  SHA256_Final: { parameters: ["buffer", "buffer"], result: "i32" },
  BN_CTX_new: { parameters: [], result: "pointer" },
  BN_new: { parameters: [], result: "pointer" },
  BN_bin2bn: { parameters: ["buffer", "i32", "pointer"], result: "pointer" },
  BN_bn2binpad: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  BN_set_flags: { parameters: ["pointer", "i32"], result: "void" },
  BN_free: { parameters: ["pointer"], result: "void" },
  BN_clear_free: { parameters: ["pointer"], result: "void" },
  BN_MONT_CTX_new: { parameters: [], result: "pointer" },
  BN_MONT_CTX_set: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  BN_mod_exp_mont_consttime: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  BIO_new_mem_buf: { parameters: ["buffer", "i32"], result: "pointer" },
  BIO_free: { parameters: ["pointer"], result: "i32" },
  d2i_PrivateKey_bio: { parameters: ["pointer", "pointer"], result: "pointer" },
  d2i_PUBKEY_bio: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_get_size: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_sign_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_sign: { parameters: ["pointer", "buffer", "buffer", "buffer", "usize"], result: "i32" },
  EVP_PKEY_verify_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_verify: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  EVP_PKEY_CTX_set_rsa_padding: { parameters: ["pointer", "i32"], result: "i32" },
  EVP_PKEY_CTX_set_rsa_pss_saltlen: { parameters: ["pointer", "i32"], result: "i32" },
  EVP_PKEY_CTX_set_rsa_mgf1_md: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_PKEY_CTX_set_signature_md: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_PKEY_encrypt_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_encrypt: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  EVP_PKEY_decrypt_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_decrypt: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  EVP_PKEY_CTX_set_rsa_oaep_md: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_PKEY_CTX_set0_rsa_oaep_label: { parameters: ["pointer", "pointer", "i32"], result: "i32" },
  CRYPTO_memdup: { parameters: ["buffer", "usize", "pointer", "i32"], result: "pointer" },
  CRYPTO_free: { parameters: ["pointer", "pointer", "i32"], result: "void" },
  EVP_PKEY_CTX_new_id: { parameters: ["i32", "pointer"], result: "pointer" },
  EVP_PKEY_keygen_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_CTX_set_rsa_keygen_bits: { parameters: ["pointer", "i32"], result: "i32" },
  EVP_PKEY_keygen: { parameters: ["pointer", "buffer"], result: "i32", nonblocking: true },
  BIO_s_mem: { parameters: [], result: "pointer" },
  BIO_new: { parameters: ["pointer"], result: "pointer" },
  BIO_ctrl: { parameters: ["pointer", "i32", "i64", "pointer"], result: "i64" },
  BIO_read: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // The key EVP_PKEY_keygen made is known by its address only (see generateRsaKey).
  i2d_PKCS8PrivateKey_bio_at: {
    name: "i2d_PKCS8PrivateKey_bio",
    parameters: ["pointer", "usize", "pointer", "pointer", "i32", "pointer", "pointer"],
    result: "i32",
  },
  EVP_PKEY_free_at: { name: "EVP_PKEY_free", parameters: ["usize"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type Pointer = NonNullable<Deno.PointerValue>;

/** libcrypto could not be loaded or did not behave; the message says which. */
export class NativeCryptoError extends Error {
  override name = "NativeCryptoError";
}

/** Frees native memory of handles their owner forgot to dispose(), once they are collected. */
const leaks = new FinalizationRegistry<() => void>((free) => free());
let liveHandles = 0;

/** Native objects (cipher contexts, keys) made and not yet freed: tests check nothing leaks. */
export function liveNativeHandles(): number {
  return liveHandles;
}

/** A native resource with an explicit dispose() and a collection-time safety net. */
abstract class Handle {
  #free: (() => void) | undefined;

  protected constructor(free: () => void) {
    liveHandles++;
    // Either dispose() or the registry calls this, never both (dispose() unregisters first).
    const counted = () => {
      liveHandles--;
      free();
    };
    this.#free = counted;
    leaks.register(this, counted, this);
  }

  protected get live(): boolean {
    return this.#free !== undefined;
  }

  /** Frees the native state now; the handle is unusable afterwards. Idempotent. */
  dispose(): void {
    if (this.#free === undefined) return;
    leaks.unregister(this);
    const free = this.#free;
    this.#free = undefined;
    free();
  }
}

/** AES-256-CBC in one direction under one key, without padding (the record layer pads). */
class NativeCbc extends Handle implements BlockCipher {
  readonly #s: Symbols;
  readonly #ctx: Pointer;
  readonly #written = new Int32Array(1);

  constructor(s: Symbols, key: Uint8Array, encrypt: boolean) {
    if (key.length !== 32) throw new RangeError(`AES-256 key must be 32 bytes, got ${key.length}`);
    const ctx = s.EVP_CIPHER_CTX_new();
    if (ctx === null) throw new NativeCryptoError("EVP_CIPHER_CTX_new failed");
    super(() => s.EVP_CIPHER_CTX_free(ctx));
    this.#s = s;
    this.#ctx = ctx;
    if (
      s.EVP_CipherInit_ex(ctx, s.EVP_aes_256_cbc(), null, key, null, encrypt ? 1 : 0) !== 1 ||
      s.EVP_CIPHER_CTX_set_padding(ctx, 0) !== 1
    ) {
      this.dispose();
      throw fail(s, "EVP_CipherInit_ex");
    }
  }

  /** CBC over whole blocks of `input` into `output` (same length; may be the same bytes). */
  run(iv: Uint8Array, input: Uint8Array, output: Uint8Array): void {
    if (!this.live) throw new TypeError("cipher used after dispose()");
    checkCbcBuffers(iv, input, output);
    const s = this.#s;
    // A null key keeps the expanded key; only the IV is reset for the next record.
    if (
      s.EVP_CipherInit_ex(this.#ctx, null, null, null, iv, -1) !== 1 ||
      s.EVP_CipherUpdate(this.#ctx, output, this.#written, input, input.length) !== 1 ||
      this.#written[0] !== input.length
    ) {
      throw fail(s, "EVP_CipherUpdate");
    }
  }
}

/**
 * HMAC-SHA-256 (RFC 2104) under one key, on OpenSSL's SHA-256 block function: the states
 * after absorbing the inner and outer key pads are kept (as noble's HMAC keeps them) and
 * copied per MAC, so a MAC is five calls and no allocation. Measured beside OpenSSL's
 * HMAC_CTX (which allocates a digest context twice per MAC) it is as fast in a loop and
 * leaves no native memory to free; the states live in JS memory, wiped by dispose().
 */
class NativeHmac implements Mac {
  readonly #s: Symbols;
  readonly #inner = new Uint8Array(SHA256_CTX_BYTES);
  readonly #outer = new Uint8Array(SHA256_CTX_BYTES);
  /** Scratch shared by every key: the working state and the inner hash (JS is one thread). */
  readonly #work: Uint8Array;
  readonly #innerHash: Uint8Array;
  #live = true;

  constructor(s: Symbols, key: Uint8Array, scratch: { work: Uint8Array; hash: Uint8Array }) {
    this.#s = s;
    this.#work = scratch.work;
    this.#innerHash = scratch.hash;
    const block = new Uint8Array(SHA256_BLOCK);
    if (key.length > SHA256_BLOCK) {
      // A key longer than a block is hashed first (RFC 2104 §2).
      this.#digest(block.subarray(0, 32), key);
    } else {
      block.set(key);
    }
    for (let i = 0; i < SHA256_BLOCK; i++) block[i]! ^= 0x36;
    let ok = s.SHA256_Init(this.#inner) === 1 &&
      s.SHA256_Update(this.#inner, block, BigInt(SHA256_BLOCK)) === 1;
    for (let i = 0; i < SHA256_BLOCK; i++) block[i]! ^= 0x36 ^ 0x5c;
    ok &&= s.SHA256_Init(this.#outer) === 1 &&
      s.SHA256_Update(this.#outer, block, BigInt(SHA256_BLOCK)) === 1;
    block.fill(0);
    if (!ok) throw fail(s, "SHA256_Init");
  }

  #digest(out: Uint8Array, data: Uint8Array): void {
    const s = this.#s;
    if (
      s.SHA256_Init(this.#work) !== 1 ||
      s.SHA256_Update(this.#work, data, BigInt(data.length)) !== 1 ||
      s.SHA256_Final(out, this.#work) !== 1
    ) {
      throw fail(s, "SHA256");
    }
  }

  /** HMAC over `a` then `b` (seq, then IV || C), written into the 32 bytes of `out`. */
  macInto(out: Uint8Array, a: Uint8Array, b: Uint8Array = EMPTY): void {
    if (!this.#live) throw new TypeError("HMAC used after dispose()");
    if (out.length !== 32) {
      throw new RangeError(`HMAC-SHA-256 output is 32 bytes, not ${out.length}`);
    }
    const s = this.#s;
    const work = this.#work;
    const hash = this.#innerHash;
    work.set(this.#inner);
    let ok = s.SHA256_Update(work, a, BigInt(a.length)) === 1 &&
      s.SHA256_Update(work, b, BigInt(b.length)) === 1 &&
      s.SHA256_Final(hash, work) === 1;
    work.set(this.#outer);
    ok &&= s.SHA256_Update(work, hash, 32n) === 1 && s.SHA256_Final(out, work) === 1;
    if (!ok) throw fail(s, "SHA256");
  }

  /** Wipes the key states; the HMAC is unusable afterwards. Idempotent. */
  dispose(): void {
    this.#live = false;
    this.#inner.fill(0);
    this.#outer.fill(0);
  }
}

/**
 * An EVP_PKEY parsed from DER (PKCS#8 private or SPKI public), with a context set up once for
 * RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32) to sign or verify; freed with its owner.
 */
class EvpKey extends Handle {
  readonly #s: Symbols;
  readonly #pkey: Pointer;
  readonly #pss: Pointer;
  /** Bytes of a signature or an OAEP ciphertext under this key (the modulus). */
  readonly size: number;
  readonly #length = new BigUint64Array(1);

  constructor(s: Symbols, der: Uint8Array, kind: "private" | "public") {
    const pkey = readKey(s, der, kind);
    const pss = s.EVP_PKEY_CTX_new(pkey, null);
    if (pss === null) {
      s.EVP_PKEY_free(pkey);
      throw fail(s, "EVP_PKEY_CTX_new");
    }
    super(() => {
      s.EVP_PKEY_CTX_free(pss);
      s.EVP_PKEY_free(pkey);
    });
    this.#s = s;
    this.#pkey = pkey;
    this.#pss = pss;
    this.size = s.EVP_PKEY_get_size(pkey);
    const init = kind === "private" ? s.EVP_PKEY_sign_init(pss) : s.EVP_PKEY_verify_init(pss);
    if (init !== 1 || !setPss(s, pss) || this.size <= 0) {
      this.dispose();
      throw fail(s, `setting up the ${kind} key for RSA-PSS`);
    }
  }

  #checkLive(): void {
    if (!this.live) throw new TypeError("key used after dispose()");
  }

  /** The PSS signature of `message` (OpenSSL draws the salt and blinds the key). */
  sign(message: Uint8Array): Uint8Array {
    this.#checkLive();
    const digest = sha256(message);
    const signature = new Uint8Array(this.size);
    this.#length[0] = BigInt(signature.length);
    const s = this.#s;
    if (s.EVP_PKEY_sign(this.#pss, signature, this.#length, digest, BigInt(digest.length)) !== 1) {
      throw fail(s, "EVP_PKEY_sign");
    }
    if (this.#length[0] !== BigInt(signature.length)) {
      throw new NativeCryptoError("EVP_PKEY_sign gave a signature of the wrong length");
    }
    return signature;
  }

  /** Whether `signature` is a valid PSS signature of `message`. */
  verify(message: Uint8Array, signature: Uint8Array): boolean {
    this.#checkLive();
    const digest = sha256(message);
    const s = this.#s;
    const result = s.EVP_PKEY_verify(
      this.#pss,
      signature,
      BigInt(signature.length),
      digest,
      BigInt(digest.length),
    );
    // 0 is a bad signature, below 0 malformed input: both are "not valid", and the reason
    // stays in OpenSSL's error queue, which is cleared so it cannot grow.
    s.ERR_clear_error();
    return result === 1;
  }

  /**
   * RSAES-OAEP (SHA-256, MGF1-SHA-256, `label`) of `input` into a modulus-sized buffer, in a
   * context made for this call; the output and its length, or null for any failure.
   */
  oaep(encrypt: boolean, input: Uint8Array, label: Uint8Array): Uint8Array | null {
    this.#checkLive();
    const s = this.#s;
    const out = new Uint8Array(this.size);
    const length = this.#length;
    length[0] = BigInt(out.length);
    const ctx = s.EVP_PKEY_CTX_new(this.#pkey, null);
    if (ctx === null) return null;
    let ok: boolean;
    try {
      const sha256 = s.EVP_sha256();
      ok = (encrypt ? s.EVP_PKEY_encrypt_init(ctx) : s.EVP_PKEY_decrypt_init(ctx)) === 1 &&
        s.EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) === 1 &&
        s.EVP_PKEY_CTX_set_rsa_oaep_md(ctx, sha256) === 1 &&
        s.EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, sha256) === 1 && setOaepLabel(s, ctx, label) &&
        (encrypt ? s.EVP_PKEY_encrypt : s.EVP_PKEY_decrypt)(
            ctx,
            out,
            length,
            input,
            BigInt(input.length),
          ) === 1 &&
        length[0]! <= BigInt(out.length);
    } finally {
      s.EVP_PKEY_CTX_free(ctx);
      // Whatever failed (length, padding, label), the reason is not kept.
      s.ERR_clear_error();
    }
    if (!ok) {
      out.fill(0);
      return null;
    }
    if (Number(length[0]) === out.length) return out;
    const result = out.slice(0, Number(length[0]));
    out.fill(0);
    return result;
  }
}

/**
 * An RSA public key for the native engine. Its EVP_PKEY is made on first use: a server that
 * only checks a published key's size and kid (§8.4) never needs one.
 */
class NativePublicKey implements RsaPublicKey {
  readonly spkiDer: Uint8Array;
  readonly bits: number;
  readonly publicExponent: bigint;
  readonly #s: Symbols;
  #key: EvpKey | undefined;

  constructor(s: Symbols, parsed: ParsedPublicKey) {
    this.#s = s;
    this.spkiDer = parsed.spkiDer;
    this.bits = parsed.bits;
    this.publicExponent = parsed.publicExponent;
  }

  get #evp(): EvpKey {
    return this.#key ??= new EvpKey(this.#s, this.spkiDer, "public");
  }

  verifyPss(message: Uint8Array, signature: Uint8Array): boolean {
    return this.#evp.verify(message, signature);
  }

  encryptOaep(plaintext: Uint8Array, label: Uint8Array): Uint8Array {
    const out = this.#evp.oaep(true, plaintext, label);
    if (out === null || out.length !== this.#evp.size) {
      throw new NativeCryptoError("libcrypto: RSA-OAEP encryption failed");
    }
    return out;
  }
}

/**
 * An RSA private key inside OpenSSL, set up for RSASSA-PSS signatures and OAEP decryption.
 * node:crypto's key object is kept for export (PKCS#8) only.
 */
class NativePrivateKey implements RsaPrivateKey {
  readonly publicKey: RsaPublicKey;
  readonly #key: EvpKey;
  #exportable: KeyObject | undefined;

  constructor(s: Symbols, parsed: ParsedPrivateKey, publicKey: RsaPublicKey) {
    const der = pkcs8Of(parsed.key);
    try {
      this.#key = new EvpKey(s, der, "private");
    } finally {
      der.fill(0);
    }
    this.#exportable = parsed.key;
    this.publicKey = publicKey;
  }

  signPss(message: Uint8Array): Uint8Array {
    return this.#key.sign(message);
  }

  decryptOaep(ciphertext: Uint8Array, label: Uint8Array): Uint8Array {
    // RFC 8017 §7.1.2 step 1: a ciphertext is exactly k bytes. OpenSSL takes a shorter one as
    // the same number with its leading zeros dropped, so a ciphertext whose first byte is 0
    // would still open one byte short: refused here, alike with every other failure.
    if (ciphertext.length !== this.#key.size) throw new OaepError();
    const out = this.#key.oaep(false, ciphertext, label);
    if (out === null) throw new OaepError();
    return out;
  }

  exportPkcs8(): Uint8Array {
    if (this.#exportable === undefined) throw new TypeError("key used after dispose()");
    return pkcs8Of(this.#exportable);
  }

  dispose(): void {
    this.#exportable = undefined;
    this.#key.dispose();
  }
}

/**
 * The native engine on one loaded library, shared by every connection of the process (JS is
 * one thread).
 */
export class NativeCrypto implements CryptoEngine {
  readonly name = "native";
  readonly detail: string;
  readonly version: string;
  /** The absolute path it was loaded from. */
  readonly path: string;
  readonly #s: Symbols;
  readonly #bnCtx: Pointer;
  /** Montgomery contexts per modulus (hex), made once: the three RFC 7919 groups in practice. */
  readonly #mont = new Map<string, { p: Pointer; mont: Pointer }>();
  readonly #hmacScratch = {
    work: new Uint8Array(SHA256_CTX_BYTES),
    hash: new Uint8Array(32),
  };
  readonly #montByArray = new WeakMap<Uint8Array, { p: Pointer; mont: Pointer }>();
  /**
   * Public keys parsed lately, oldest first: a client verifies the same few servers' keys at
   * every handshake, and OpenSSL 3's decoders are slow (docs/PERFORMANCE.md). A key dropped
   * from here is freed once its last user lets go of it.
   */
  readonly #publicKeys = new Map<string, NativePublicKey>();

  constructor(s: Symbols, path: string) {
    this.#s = s;
    this.path = path;
    const version = BigInt(s.OpenSSL_version_num());
    checkOpenSslVersion(version);
    checkSha256Ctx(s);
    // Read from the number (0xMNN00PP0), not OpenSSL_version()'s text: reading a C string
    // needs the FFI permission for every path, which the tasks do not grant.
    this.version = `OpenSSL ${version >> 28n}.${(version >> 20n) & 0xffn}.${
      (version >> 4n) & 0xffn
    }`;
    this.detail = `${this.version} (libcrypto over FFI)`;
    const bnCtx = s.BN_CTX_new();
    if (bnCtx === null) throw fail(s, "BN_CTX_new");
    this.#bnCtx = bnCtx;
  }

  cbc(key: Uint8Array, encrypt: boolean): BlockCipher {
    return new NativeCbc(this.#s, key, encrypt);
  }

  hmac(key: Uint8Array): Mac {
    return new NativeHmac(this.#s, key, this.#hmacScratch);
  }

  parsePublicKey(spkiDer: Uint8Array): RsaPublicKey {
    const id = toHex(spkiDer);
    const known = this.#publicKeys.get(id);
    if (known !== undefined) return known;
    const key = new NativePublicKey(this.#s, parseSpki(spkiDer));
    if (this.#publicKeys.size >= MAX_CACHED_PUBLIC_KEYS) {
      this.#publicKeys.delete(this.#publicKeys.keys().next().value!);
    }
    this.#publicKeys.set(id, key);
    return key;
  }

  /**
   * Hands the private key to OpenSSL (the DER copy in JS is wiped) and checks one signature
   * with node:crypto before trusting it, so a mismatched libcrypto cannot sign garbage.
   */
  parsePrivateKey(der: Uint8Array): RsaPrivateKey {
    const parsed = parsePrivateDer(der);
    const publicKey = this.parsePublicKey(parsed.publicKey.spkiDer);
    const key = new NativePrivateKey(this.#s, parsed, publicKey);
    const probe = new TextEncoder().encode("HSP/1 native signer check");
    if (!portableCrypto.parsePublicKey(publicKey.spkiDer).verifyPss(probe, key.signPss(probe))) {
      key.dispose();
      throw new KeyError("the native engine's RSA-PSS signature did not verify");
    }
    return key;
  }

  /**
   * RSA key generation on one of Deno's FFI threads (it can take a second at 4096 bits). The
   * new key travels to JS as PKCS#8 DER through a memory BIO (cleared when freed) and is parsed
   * again; OpenSSL's first copy is freed.
   */
  async generateRsaKey(bits: RsaKeyBits): Promise<RsaPrivateKey> {
    checkKeyBits(bits);
    const s = this.#s;
    const ctx = s.EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, null);
    if (ctx === null) throw fail(s, "EVP_PKEY_CTX_new_id");
    // EVP_PKEY_keygen writes the new key's address here, kept as a number: making a pointer
    // object of it would need the FFI permission for every path.
    const made = new BigUint64Array(1);
    try {
      if (
        s.EVP_PKEY_keygen_init(ctx) !== 1 || s.EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) !== 1 ||
        await s.EVP_PKEY_keygen(ctx, made) !== 1 || made[0] === 0n
      ) {
        throw fail(s, "EVP_PKEY_keygen");
      }
    } finally {
      s.EVP_PKEY_CTX_free(ctx);
    }
    const address = made[0]!;
    let der: Uint8Array;
    try {
      der = this.#pkcs8At(address);
    } finally {
      s.EVP_PKEY_free_at(address);
    }
    try {
      return this.parsePrivateKey(der);
    } finally {
      der.fill(0);
    }
  }

  /** PKCS#8 DER of the EVP_PKEY at `address`, through a memory BIO. */
  #pkcs8At(address: bigint): Uint8Array {
    const s = this.#s;
    const bio = s.BIO_new(s.BIO_s_mem());
    if (bio === null) throw fail(s, "BIO_new");
    try {
      if (s.i2d_PKCS8PrivateKey_bio_at(bio, address, null, null, 0, null, null) !== 1) {
        throw fail(s, "i2d_PKCS8PrivateKey_bio");
      }
      const pending = Number(s.BIO_ctrl(bio, BIO_CTRL_PENDING, 0n, null));
      if (!(pending > 0 && pending <= MAX_PKCS8_BYTES)) throw fail(s, "BIO_ctrl_pending");
      const der = new Uint8Array(pending);
      if (s.BIO_read(bio, der, der.length) !== der.length) {
        der.fill(0);
        throw fail(s, "BIO_read");
      }
      return der;
    } finally {
      s.BIO_free(bio);
    }
  }

  /**
   * base^exponent mod modulus as exactly len(modulus) bytes, in constant time in the
   * exponent (BN_FLG_CONSTTIME); the exponent and the result are cleared when freed.
   */
  modExp(modulus: Uint8Array, base: Uint8Array, exponent: Uint8Array): Uint8Array {
    const s = this.#s;
    const { p, mont } = this.#montgomery(modulus);
    const a = s.BN_bin2bn(base, base.length, null);
    const x = s.BN_bin2bn(exponent, exponent.length, null);
    const r = s.BN_new();
    try {
      if (a === null || x === null || r === null) throw fail(s, "BN_bin2bn");
      s.BN_set_flags(x, BN_FLG_CONSTTIME);
      const out = new Uint8Array(modulus.length);
      if (
        s.BN_mod_exp_mont_consttime(r, a, x, p, this.#bnCtx, mont) !== 1 ||
        s.BN_bn2binpad(r, out, out.length) !== out.length
      ) {
        throw fail(s, "BN_mod_exp_mont_consttime");
      }
      return out;
    } finally {
      s.BN_free(a);
      s.BN_clear_free(x);
      s.BN_clear_free(r);
    }
  }

  #montgomery(modulus: Uint8Array): { p: Pointer; mont: Pointer } {
    // By array first (a group passes the same pBytes every time), then by value.
    const known = this.#montByArray.get(modulus);
    if (known !== undefined) return known;
    const id = toHex(modulus);
    let entry = this.#mont.get(id);
    if (entry === undefined) {
      const s = this.#s;
      const p = s.BN_bin2bn(modulus, modulus.length, null);
      const mont = s.BN_MONT_CTX_new();
      if (p === null || mont === null || s.BN_MONT_CTX_set(mont, p, this.#bnCtx) !== 1) {
        throw fail(s, "BN_MONT_CTX_set");
      }
      entry = { p, mont };
      this.#mont.set(id, entry);
    }
    this.#montByArray.set(modulus, entry);
    return entry;
  }
}

function setPss(s: Symbols, ctx: Pointer): boolean {
  const sha256 = s.EVP_sha256();
  return s.EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) === 1 &&
    s.EVP_PKEY_CTX_set_signature_md(ctx, sha256) === 1 &&
    s.EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, sha256) === 1 &&
    s.EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, PSS_SALT_LENGTH) === 1;
}

/**
 * Sets the OAEP label; OpenSSL takes ownership of the bytes it is given (set0), so it gets a
 * copy in its own memory. The empty label is the default and needs no call.
 */
function setOaepLabel(s: Symbols, ctx: Pointer, label: Uint8Array): boolean {
  if (label.length === 0) return true;
  if (label.length > MAX_OAEP_LABEL) return false;
  const copy = s.CRYPTO_memdup(label, BigInt(label.length), null, 0);
  if (copy === null) return false;
  if (s.EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, label.length) === 1) return true;
  s.CRYPTO_free(copy, null, 0);
  return false;
}

/** Parses a DER key (PKCS#8 private or SPKI public) into an EVP_PKEY the caller frees. */
function readKey(s: Symbols, der: Uint8Array, kind: "private" | "public"): Pointer {
  const bio = s.BIO_new_mem_buf(der, der.length);
  if (bio === null) throw fail(s, "BIO_new_mem_buf");
  const pkey = kind === "private" ? s.d2i_PrivateKey_bio(bio, null) : s.d2i_PUBKEY_bio(bio, null);
  s.BIO_free(bio);
  if (pkey === null) throw fail(s, `reading the ${kind} key`);
  return pkey;
}

/** An error for a failed libcrypto call; OpenSSL's error queue is cleared, never shown. */
function fail(s: Symbols, what: string): NativeCryptoError {
  s.ERR_clear_error();
  return new NativeCryptoError(`libcrypto: ${what} failed`);
}

/** Refuses a libcrypto outside OpenSSL 3.x, whose ABI this file is written against. */
export function checkOpenSslVersion(version: bigint): void {
  if (version < MIN_OPENSSL_VERSION || version >= MAX_OPENSSL_VERSION_EXCLUSIVE) {
    throw new NativeCryptoError(
      `libcrypto reports version 0x${version.toString(16)}; only OpenSSL 3.x is supported`,
    );
  }
}

/** SHA256_Init's initial hash words (FIPS 180-4 §5.3.3). */
const SHA256_IV = [
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
];
/** Bytes past the struct that must stay untouched while the library works on it. */
const GUARD_BYTES = 16;
const GUARD = 0xa5;

/**
 * Proves, before JS allocates any SHA256_CTX, that the library's struct is OpenSSL 3's 112
 * bytes: SHA256_Init clears the whole struct and sets h[0..7] and md_len (the last word), so
 * a larger struct would write past the guard and a different layout would misplace the words;
 * an update and a final must leave the guard alone too. A mismatch would otherwise be a heap
 * overflow in every HMAC.
 */
export function checkSha256Ctx(
  s: Pick<Symbols, "SHA256_Init" | "SHA256_Update" | "SHA256_Final">,
): void {
  const probe = new Uint8Array(SHA256_CTX_BYTES + GUARD_BYTES).fill(GUARD);
  const words = new Uint32Array(probe.buffer, 0, SHA256_CTX_BYTES / 4);
  const guardKept = () => probe.subarray(SHA256_CTX_BYTES).every((b) => b === GUARD);
  const last = words.length - 1;
  let ok = s.SHA256_Init(probe) === 1 && guardKept() &&
    SHA256_IV.every((word, i) => words[i] === word) &&
    words.subarray(SHA256_IV.length, last).every((word) => word === 0) && words[last] === 32;
  const data = new Uint8Array(3 * SHA256_BLOCK).fill(1);
  ok &&= s.SHA256_Update(probe, data, BigInt(data.length)) === 1 &&
    s.SHA256_Final(data, probe) === 1 && guardKept();
  if (!ok) {
    throw new NativeCryptoError(
      `libcrypto's SHA256_CTX is not OpenSSL 3's ${SHA256_CTX_BYTES}-byte struct`,
    );
  }
}

/**
 * Known answers checked once when the library loads, so a libcrypto with a different ABI or
 * a broken build is refused before it touches traffic: AES-256-CBC from NIST SP 800-38A
 * F.2.5 (first block), HMAC-SHA-256 from RFC 4231 test case 2, and 2^x mod p against BigInt.
 */
function selfTest(native: NativeCrypto): void {
  const block = new Uint8Array(16);
  const cbc = native.cbc(
    fromHex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"),
    true,
  );
  try {
    cbc.run(
      fromHex("000102030405060708090a0b0c0d0e0f"),
      fromHex("6bc1bee22e409f96e93d7e117393172a"),
      block,
    );
  } finally {
    cbc.dispose();
  }
  const tag = new Uint8Array(32);
  const hmac = native.hmac(new TextEncoder().encode("Jefe"));
  try {
    hmac.macInto(tag, new TextEncoder().encode("what do ya want for nothing?"));
  } finally {
    hmac.dispose();
  }
  // 2^(2^64 + 3) mod (2^127 - 1) is 2^((2^64 + 3) mod 127) = 2^5, since 2^127 = 1 there and
  // 2^64 mod 127 = 2^(64 mod 7) = 2: a check with an odd modulus and a multi-word exponent.
  const power = native.modExp(
    fromHex("7fffffffffffffffffffffffffffffff"),
    new Uint8Array([2]),
    fromHex("010000000000000003"),
  );
  if (
    toHex(block) !== "f58c4c04d6e5f1ba779eabfb5f7bfbd6" ||
    toHex(tag) !== "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" ||
    bytesToBigInt(power) !== 32n
  ) {
    throw new NativeCryptoError("libcrypto failed its known-answer self-test");
  }
}

/** The OS's usual places for libcrypto (LIBRARY_CANDIDATES), this CPU's directories first. */
export function libraryCandidates(
  os: string = Deno.build.os,
  arch: string = Deno.build.arch,
): readonly string[] {
  const all = LIBRARY_CANDIDATES[os] ?? [];
  const other = arch === "x86_64" ? "aarch64" : "x86_64";
  return [...all.filter((path) => !path.includes(`/${other}-`))];
}

/**
 * Opens libcrypto at `library`, else at the first of the OS's usual paths that loads, and
 * self-tests it. Only absolute paths, and only those the FFI permission grants by path (so a
 * program run with --allow-ffi=PATH finds it, and one without never stops at a prompt).
 */
export function loadNativeCrypto(library?: string): NativeCrypto {
  if (library !== undefined && !isAbsolute(library)) {
    throw new NativeCryptoError(`libcrypto path "${library}" is not absolute`);
  }
  const candidates = library !== undefined ? [library] : libraryCandidates();
  if (candidates.length === 0) {
    throw new NativeCryptoError(`no libcrypto path known for ${Deno.build.os}`);
  }
  const notPermitted: string[] = [];
  const reasons: string[] = [];
  for (const path of candidates) {
    if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") {
      notPermitted.push(path);
      continue;
    }
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (err) {
      reasons.push(`${path}: ${(err as Error).message}`);
      continue;
    }
    try {
      const native = new NativeCrypto(lib.symbols, path);
      selfTest(native);
      return native;
    } catch (err) {
      lib.close();
      throw err;
    }
  }
  if (reasons.length === 0) {
    throw new NativeCryptoError(
      `FFI is not permitted (run with --allow-ffi) for ${notPermitted.join(", ")}`,
    );
  }
  if (notPermitted.length > 0) reasons.push(`FFI not permitted for ${notPermitted.join(", ")}`);
  throw new NativeCryptoError(`cannot load libcrypto (${reasons.join("; ")})`);
}
