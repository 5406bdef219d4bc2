// Checks both engines (native.ts, portable.ts) apply to what they are given, so that the two
// accept and refuse the same calls.

const BLOCK = 16;

/**
 * Checks the CBC contract both engines keep: a 16-byte IV, whole blocks, output as long as the
 * input, and input and output either the same bytes or apart (OpenSSL's rule; a partial overlap
 * would feed already-written blocks back in).
 */
export function checkCbcBuffers(iv: Uint8Array, input: Uint8Array, output: Uint8Array): void {
  if (iv.length !== BLOCK || input.length % BLOCK !== 0 || output.length !== input.length) {
    throw new RangeError(`CBC needs a 16-byte IV and whole blocks, got ${input.length} bytes`);
  }
  if (
    input.buffer === output.buffer && input.byteOffset !== output.byteOffset &&
    Math.abs(input.byteOffset - output.byteOffset) < input.length
  ) {
    throw new RangeError("CBC input and output overlap without being the same bytes");
  }
}
