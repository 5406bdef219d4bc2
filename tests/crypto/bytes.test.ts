// The byte helpers' base64 (crypto/bytes.ts) against the WHATWG atob/btoa they have always
// matched: what they accept and refuse must not change under another implementation.
import assert from "node:assert/strict";
import { fromBase64, toBase64 } from "../../crypto/mod.ts";

/** atob's answer as bytes, or undefined where it refuses. */
function atobBytes(text: string): Uint8Array | undefined {
  let s: string;
  try {
    s = atob(text);
  } catch {
    return undefined;
  }
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function fromBase64OrUndefined(text: string): Uint8Array | undefined {
  try {
    return fromBase64(text);
  } catch (e) {
    assert.ok(e instanceof TypeError, `${JSON.stringify(text)}: ${e}`);
    assert.equal(e.message, "invalid base64");
    return undefined;
  }
}

Deno.test("fromBase64 accepts exactly what atob accepts, with the same bytes, and TypeError otherwise", () => {
  // Every string of up to 5 characters over letters, padding, white space and outsiders: '='
  // in every place, missing and extra padding, lengths 1 mod 4, the base64url alphabet.
  const alphabet = ["A", "Q", "/", "=", " ", "\n", "-"];
  let strings = [""];
  let accepted = 0;
  for (let length = 0; length <= 5; length++) {
    for (const text of strings) {
      const want = atobBytes(text);
      assert.deepEqual(fromBase64OrUndefined(text), want, JSON.stringify(text));
      if (want !== undefined) accepted++;
    }
    strings = strings.flatMap((s) => alphabet.map((c) => s + c));
  }
  // Both kinds are there in numbers (3,672 of the 19,608 strings are base64 to atob).
  assert.equal(accepted, 3672);
  for (
    const text of [
      "QUJD\tRA==\r\n", // white space anywhere, as atob skips it
      "QR==", // non-zero bits after the last byte, which atob ignores
      "QUJD\vRA==", // \v is not white space to atob
      "QUJD\u00a0RA==",
      "QUJDRA==\0",
      "QUJDR\u00e9==",
      "QUJD=RA=",
      "Q===",
    ]
  ) {
    assert.deepEqual(fromBase64OrUndefined(text), atobBytes(text), JSON.stringify(text));
  }
});

Deno.test("toBase64 is btoa of the bytes, padded, for every length up to 70 and a long array", () => {
  const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7919) >> 3);
  for (let length = 0; length <= 70; length++) {
    const part = bytes.subarray(length, 2 * length);
    assert.equal(toBase64(part), btoa(String.fromCharCode(...part)));
  }
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  assert.equal(toBase64(bytes), btoa(binary));
  assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
});
