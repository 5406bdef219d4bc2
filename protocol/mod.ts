// Public API of the protocol library (PROTOCOL-v1.md): frames and channels (§1), the handshake
// (§2), the record layer and sessions (§3), the application messages (§4), the sealed
// envelope's layout (§8.3), and every limit of §5 in one place.
export * from "./errors.ts";
export * from "./limits.ts";
export * from "./frame.ts";
export * from "./channel.ts";
export * from "./handshake.ts";
export * from "./record_layer.ts";
export * from "./session.ts";
export * from "./messages.ts";
export * from "./envelope.ts";
export * from "./rpc.ts";
