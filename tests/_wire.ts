// A §4 message as record plaintext, for tests that hand-feed parsers and sessions (the programs
// encode straight into a scratch buffer instead: SecureSession.sendMessage).
import { type ClientMessage, messageText, type ServerMessage } from "../protocol/messages.ts";

const encoder = new TextEncoder();

/** `code || JSON` as UTF-8 (PROTOCOL §4). */
export function encodeMessage(m: ClientMessage | ServerMessage): Uint8Array {
  return encoder.encode(messageText(m));
}
