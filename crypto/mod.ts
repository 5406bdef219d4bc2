// Public API of the crypto library: the engine interface and its selection, DH groups and
// shares, HKDF key schedule, RSA identity and keys, record sealing, password hashing, byte
// helpers. The engines' internals (native.ts, portable.ts) are imported from their files.
export * from "./bytes.ts";
export * from "./engine.ts";
export * from "./select.ts";
export * from "./groups.ts";
export * from "./dh.ts";
export * from "./hkdf.ts";
export * from "./rsa.ts";
export * from "./record.ts";
export * from "./password.ts";
export { NativeCryptoError } from "./native.ts";
