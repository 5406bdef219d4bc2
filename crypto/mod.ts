// Public API of the crypto library: DH groups and shares, HKDF key schedule, RSA identity,
// record sealing, password hashing, byte helpers.
export * from "./bytes.ts";
export * from "./groups.ts";
export * from "./dh.ts";
export * from "./hkdf.ts";
export * from "./rsa.ts";
export * from "./record.ts";
export * from "./password.ts";
export * from "./engine.ts";
export * from "./native.ts";
