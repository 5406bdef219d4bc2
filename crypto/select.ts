// Which engine a program runs on (engine.ts): "native" (OpenSSL's libcrypto over FFI) or
// "portable" (@noble and node:crypto, needing no permission and no library). Programs choose
// once at start-up and pass the engine down; nothing here is global but the loaded libraries.
import { type CryptoEngine } from "./engine.ts";
import { loadNativeCrypto, type NativeCrypto } from "./native.ts";
import { portableCrypto } from "./portable.ts";

/** `auto` takes native when it loads and passes its self-test, else portable. */
export type CryptoMode = "auto" | "native" | "portable";
export const CRYPTO_MODES: readonly CryptoMode[] = ["auto", "native", "portable"];

/** The mode named by a flag's value, or undefined if it names none. */
export function cryptoModeOf(value: string): CryptoMode | undefined {
  return CRYPTO_MODES.find((mode) => mode === value);
}

/** The engine a program got, and for its log what it runs on and, under `auto`, why not native. */
export interface CryptoSelection {
  readonly engine: CryptoEngine;
  /** The engine's detail, and under a fallback the reason too. */
  readonly detail: string;
  /** Under `auto`, why the native engine could not be had (the portable one runs instead). */
  readonly fallback?: string;
}

/**
 * What running on the portable engine costs, for the warning a server logs when `auto` falls
 * back: Deno's node:crypto does RSA in the RustCrypto `rsa` crate, whose private-key operations
 * are not constant time (the Marvin attack, RUSTSEC-2023-0071: the identity key is exposed to
 * a patient timing attacker), noble's AES looks up T-tables (cache timing), and both are
 * several times slower than OpenSSL.
 */
export const PORTABLE_ENGINE_COST =
  "RSA signing on node:crypto (RustCrypto rsa: not constant time, Marvin timing attack " +
  "RUSTSEC-2023-0071), AES on @noble T-tables (cache timing), 3-10x slower handshakes and records";

/** Loaded libraries by path (the empty string for the OS's usual ones): each is loaded once. */
const loaded = new Map<string, NativeCrypto>();

/**
 * The engine for `mode`. `native` throws NativeCryptoError when libcrypto cannot be used;
 * `auto` falls back to portable and says why. FFI is tried only where already permitted (by
 * path), so a program never stops at a prompt.
 */
export function selectCrypto(mode: CryptoMode, library?: string): CryptoSelection {
  if (mode === "portable") return { engine: portableCrypto, detail: portableCrypto.detail };
  try {
    const key = library ?? "";
    let native = loaded.get(key);
    if (native === undefined) {
      native = loadNativeCrypto(library);
      loaded.set(key, native);
    }
    return { engine: native, detail: native.detail };
  } catch (err) {
    if (mode === "native") throw err;
    const reason = (err as Error).message;
    return {
      engine: portableCrypto,
      detail: `${portableCrypto.detail}; native unavailable: ${reason}`,
      fallback: reason,
    };
  }
}
