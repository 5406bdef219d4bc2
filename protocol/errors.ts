// Domain errors of the protocol layer, each with a stable `code` that callers switch on.

/** A peer broke the framing or message rules (§1, §4). */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  constructor(readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The handshake failed (§2). `code` is an §2.3 error code or a local reason. */
export class HandshakeError extends Error {
  override name = "HandshakeError";
  constructor(readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Record failures are defined beside seal/open (crypto/record.ts); re-exported here. */
export { RecordError } from "../crypto/record.ts";
