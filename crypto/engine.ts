// Which engine does the heavy primitives: "native" (OpenSSL's libcrypto over FFI, see
// native.ts) or "portable" (@noble and node:crypto, needing no permission and no library).
// Programs choose once at start-up; library code asks activeNative() when it sets up keys.
import { loadNativeCrypto, type NativeCrypto } from "./native.ts";

/** `auto` takes native when it loads and passes its self-test, else portable. */
export type CryptoMode = "auto" | "native" | "portable";
export const CRYPTO_MODES: readonly CryptoMode[] = ["auto", "native", "portable"];

/** The mode named by a flag's value, or undefined if it names none. */
export function cryptoModeOf(value: string): CryptoMode | undefined {
  return CRYPTO_MODES.find((mode) => mode === value);
}

/** The engine in use, said in a sentence for logs and `--help` output. */
export interface CryptoEngineInfo {
  readonly engine: "native" | "portable";
  readonly detail: string;
  /** Under `auto`, why the native engine could not be had (the portable one runs instead). */
  readonly fallback?: string;
}

const PORTABLE = "@noble AES/HMAC, node:crypto RSA-PSS and DH";

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

/** Until a program selects, the portable engine: library use needs no FFI permission. */
let active: NativeCrypto | null = null;
/** Loaded libraries by path (the empty string for the OS default), so reselecting is cheap. */
const loaded = new Map<string, NativeCrypto>();

/**
 * Selects the engine for keys set up from now on (sessions already open keep theirs).
 * `native` throws NativeCryptoError when libcrypto cannot be used; `auto` falls back and says
 * why. FFI is tried only where already permitted (by path), so a program never stops at a prompt.
 */
export function selectCrypto(mode: CryptoMode, library?: string): CryptoEngineInfo {
  if (mode === "portable") {
    active = null;
    return { engine: "portable", detail: PORTABLE };
  }
  try {
    const key = library ?? "";
    let native = loaded.get(key);
    if (native === undefined) {
      native = loadNativeCrypto(library);
      loaded.set(key, native);
    }
    active = native;
    return { engine: "native", detail: `${native.version} (libcrypto over FFI)` };
  } catch (err) {
    if (mode === "native") throw err;
    active = null;
    const reason = (err as Error).message;
    return {
      engine: "portable",
      detail: `${PORTABLE}; native unavailable: ${reason}`,
      fallback: reason,
    };
  }
}

/** The native engine if selected, else null (use the portable code). */
export function activeNative(): NativeCrypto | null {
  return active;
}
