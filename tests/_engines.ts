// The crypto engines for tests (crypto/engine.ts): testEachEngine runs a test once per engine,
// handing it the engine, so every vector and property is checked on OpenSSL over FFI as well
// as on the portable code. The native run fails when libcrypto cannot be loaded, unless
// HYBRID_CRYPTO=portable says this machine has none.
import {
  type CryptoEngine,
  type RsaPrivateKey,
  type RsaPublicKey,
  selectCrypto,
} from "../crypto/mod.ts";
import { portableCrypto } from "../crypto/portable.ts";

export const NATIVE_SKIPPED = Deno.env.get("HYBRID_CRYPTO") === "portable";

export { portableCrypto };

/** The native engine on the OS's libcrypto (loaded once per process, as programs load it). */
export function nativeCrypto(): CryptoEngine {
  return selectCrypto("native").engine;
}

/** Registers `name` as "name [portable]" and "name [native]", each given its engine. */
export function testEachEngine(
  name: string,
  fn: (engine: CryptoEngine) => void | Promise<void>,
): void {
  for (const engine of ["portable", "native"] as const) {
    Deno.test({
      name: `${name} [${engine}]`,
      ignore: engine === "native" && NATIVE_SKIPPED,
      fn: () => fn(engine === "native" ? nativeCrypto() : portableCrypto),
    });
  }
}

/** RSA outputs a known-answer test fixes: an OAEP ciphertext, a PSS signature. */
export interface InjectedRsaOutputs {
  /** What every encryptOaep returns (it must be the modulus' length). */
  readonly wrapped?: Uint8Array;
  /** What every signPss returns (it must verify over the message signed). */
  readonly signature?: Uint8Array;
}

/**
 * `engine` with RSA outputs fixed, for vectors made with a chosen OAEP seed or PSS salt, which
 * neither OpenSSL nor node:crypto lets a caller choose. PROTOCOL §7: reproduce everything else
 * byte for byte and inject `wrapped` and `sig`; never hand-write an OAEP or PSS encoding. An
 * injected signature must verify over what is signed, so a vector cannot hide a wrong message;
 * that `wrapped` decrypts to the key is the test's to check, with the recipient's private key.
 */
export function withInjectedRsaOutputs(
  engine: CryptoEngine,
  outputs: InjectedRsaOutputs,
): CryptoEngine {
  const publicKey = (key: RsaPublicKey): RsaPublicKey => ({
    spkiDer: key.spkiDer,
    bits: key.bits,
    publicExponent: key.publicExponent,
    verifyPss: (message, signature) => key.verifyPss(message, signature),
    encryptOaep: (plaintext, label) => {
      if (outputs.wrapped === undefined) return key.encryptOaep(plaintext, label);
      if (outputs.wrapped.length !== Math.ceil(key.bits / 8)) {
        throw new RangeError(`injected OAEP output of ${outputs.wrapped.length} bytes`);
      }
      return outputs.wrapped.slice();
    },
  });
  const privateKey = (key: RsaPrivateKey): RsaPrivateKey => ({
    publicKey: publicKey(key.publicKey),
    signPss: (message) => {
      if (outputs.signature === undefined) return key.signPss(message);
      if (!key.publicKey.verifyPss(message, outputs.signature)) {
        throw new Error("the injected signature does not verify over the message signed");
      }
      return outputs.signature.slice();
    },
    decryptOaep: (ciphertext, label) => key.decryptOaep(ciphertext, label),
    exportPkcs8: () => key.exportPkcs8(),
    dispose: () => key.dispose(),
  });
  return {
    name: engine.name,
    detail: `${engine.detail}, RSA outputs injected for a test`,
    cbc: (key, encrypt) => engine.cbc(key, encrypt),
    hmac: (key) => engine.hmac(key),
    modExp: (modulus, base, exponent) => engine.modExp(modulus, base, exponent),
    parsePublicKey: (spkiDer) => publicKey(engine.parsePublicKey(spkiDer)),
    parsePrivateKey: (der) => privateKey(engine.parsePrivateKey(der)),
    generateRsaKey: async (bits) => privateKey(await engine.generateRsaKey(bits)),
  };
}
