// Public API of the crypto library: key-exchange groups (finite-field DH, X25519, ML-KEM-768
// and their hybrid), HKDF key schedule, RSA identity, record sealing, password hashing, bytes.
export * from "./bytes.ts";
export * from "./groups.ts";
export * from "./dh.ts";
export * from "./x25519.ts";
export * from "./mlkem.ts";
export * from "./kex.ts";
export * from "./hkdf.ts";
export * from "./rsa.ts";
export * from "./record.ts";
export * from "./password.ts";
export * from "./engine.ts";
export * from "./native.ts";
export * from "./user_key.ts";
