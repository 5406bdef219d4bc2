import assert from "node:assert/strict";
import { crc32c } from "../../store/_crc32c.ts";

// Known answers: the CRC catalogue's check value for "123456789" (CRC-32/ISCSI), and the
// four 32-byte vectors of RFC 3720 §B.4.
const VECTORS: [string, Uint8Array, number][] = [
  ["check string 123456789", new TextEncoder().encode("123456789"), 0xe3069283],
  ["32 bytes of zeros", new Uint8Array(32), 0x8a9136aa],
  ["32 bytes of 0xff", new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ["32 incrementing bytes", Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  ["32 decrementing bytes", Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  ["empty input", new Uint8Array(0), 0],
];

for (const [name, input, expected] of VECTORS) {
  Deno.test(`crc32c() matches the known answer for ${name}`, () => {
    assert.deepEqual(crc32c(input), expected);
  });
}

Deno.test("crc32c() of a sub-range equals crc32c() of a copy of it, at every alignment", () => {
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
  for (let start = 0; start < 20; start++) {
    for (const end of [start, start + 1, start + 7, start + 8, start + 9, 250, 300]) {
      assert.deepEqual(crc32c(bytes, start, end), crc32c(bytes.slice(start, end)));
    }
  }
});

Deno.test("crc32c() refuses a range outside the buffer", () => {
  assert.throws(() => crc32c(new Uint8Array(4), 0, 5), RangeError);
  assert.throws(() => crc32c(new Uint8Array(4), 3, 2), RangeError);
});
