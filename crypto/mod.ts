// Public API of the crypto library: the engine interface and its selection, key-exchange groups
// (finite-field DH, X25519, ML-KEM-768 and their hybrid), HKDF key schedule, RSA identity and
// users' keys, record sealing, password hashing, byte helpers. The engines' internals
// (native.ts, portable.ts) are imported from their files.
export * from "./bytes.ts";
export * from "./engine.ts";
export * from "./select.ts";
export * from "./groups.ts";
export * from "./dh.ts";
export * from "./x25519.ts";
export * from "./mlkem.ts";
export * from "./kex.ts";
export * from "./hkdf.ts";
export * from "./rsa.ts";
export * from "./record.ts";
export * from "./password.ts";
export * from "./user_key.ts";
export { NativeCryptoError } from "./native.ts";
