// Record layer (PROTOCOL §3) against records.json, both directions, plus negative vectors.
import assert from "node:assert/strict";
import { fromHex, RecordCipher, RecordError, sealedLength, toHex } from "../../crypto/mod.ts";
import { recordKeys, recordVectors } from "../_vectors.ts";
import { open, seal } from "./_record.ts";
import { testEachEngine } from "../_engines.ts";

testEachEngine("seal() reproduces every record vector byte for byte", (engine) => {
  for (const v of recordVectors.records) {
    assert.equal(
      toHex(seal(engine, recordKeys, v.seq, fromHex(v.plaintext), fromHex(v.iv))),
      v.record,
    );
    // The frame is the record behind its u32 length.
    assert.equal(v.frame, (v.record.length / 2).toString(16).padStart(8, "0") + v.record);
  }
});

testEachEngine("open() recovers the plaintext of every record vector", (engine) => {
  for (const v of recordVectors.records) {
    assert.equal(toHex(open(engine, recordKeys, v.seq, fromHex(v.record))), v.plaintext);
  }
});

testEachEngine(
  "open() refuses every negative record vector with the same RecordError",
  (engine) => {
    for (const v of recordVectors.negative) {
      assert.throws(
        () => open(engine, recordKeys, v.seq, fromHex(v.record)),
        (err) => err instanceof RecordError && err.message === "record rejected",
        v.why,
      );
    }
  },
);

testEachEngine(
  "open() refuses a record whose MAC is one bit off, at every bit of the tag",
  (engine) => {
    const v = recordVectors.records[5]!;
    const good = fromHex(v.record);
    for (let bit = 0; bit < 256; bit++) {
      const bad = good.slice();
      bad[bad.length - 32 + (bit >> 3)]! ^= 1 << (bit & 7);
      assert.throws(() => open(engine, recordKeys, v.seq, bad), RecordError);
    }
  },
);

testEachEngine("seal() draws a fresh IV for every record", (engine) => {
  const plaintext = new TextEncoder().encode('PNG{"id":1}');
  const a = seal(engine, recordKeys, 0, plaintext);
  const b = seal(engine, recordKeys, 0, plaintext);
  assert.notEqual(toHex(a.subarray(0, 16)), toHex(b.subarray(0, 16)));
  assert.equal(toHex(open(engine, recordKeys, 0, a)), toHex(plaintext));
});

testEachEngine(
  "seal() and open() round trip every length from 0 to 100 bytes and 16 KiB",
  (engine) => {
    for (const n of [...Array(101).keys(), 16384]) {
      const plaintext = crypto.getRandomValues(new Uint8Array(n));
      const record = seal(engine, recordKeys, n, plaintext);
      assert.equal(record.length, 16 + (Math.floor(n / 16) + 1) * 16 + 32);
      assert.equal(toHex(open(engine, recordKeys, n, record)), toHex(plaintext));
    }
  },
);

testEachEngine("seal() refuses keys and IVs of the wrong size", (engine) => {
  assert.throws(
    () => seal(engine, { enc: new Uint8Array(16), mac: recordKeys.mac }, 0, new Uint8Array(1)),
    RangeError,
  );
  assert.throws(
    () => seal(engine, recordKeys, 0, new Uint8Array(1), new Uint8Array(8)),
    RangeError,
  );
});

testEachEngine(
  "open() refuses records below IV + one block + MAC and with a partial block",
  (engine) => {
    // The vectors' short records are 63 bytes; check the 64-byte floor and block rule directly.
    for (const n of [0, 16, 48, 63, 65, 79]) {
      assert.throws(
        () => open(engine, recordKeys, 0, new Uint8Array(n)),
        RecordError,
        `${n} bytes`,
      );
    }
  },
);

testEachEngine(
  "open() leaves the record as it was; openInPlace() decrypts inside it, or leaves it untouched when the MAC fails",
  (engine) => {
    const cipher = new RecordCipher(engine, recordKeys);
    const plaintext = new TextEncoder().encode('DLV{"msg":"m1","from":"a","to":"b","text":"hi"}');
    const record = cipher.seal(3, plaintext);
    const before = toHex(record);
    assert.equal(toHex(cipher.open(3, record)), toHex(plaintext));
    assert.equal(toHex(record), before);
    const tampered = record.slice();
    tampered[20]! ^= 1;
    const tamperedHex = toHex(tampered);
    assert.throws(() => cipher.openInPlace(3, tampered), RecordError);
    assert.equal(toHex(tampered), tamperedHex);
    const view = cipher.openInPlace(3, record);
    assert.equal(view.buffer, record.buffer);
    assert.equal(view.byteOffset, record.byteOffset + 16);
    assert.equal(toHex(view), toHex(plaintext));
    // sealInto() writes exactly sealedLength() bytes and refuses any other size.
    const into = new Uint8Array(sealedLength(plaintext.length));
    cipher.sealInto(4, plaintext, into);
    assert.equal(toHex(cipher.open(4, into)), toHex(plaintext));
    assert.throws(
      () => cipher.sealInto(5, plaintext, new Uint8Array(into.length + 16)),
      RangeError,
    );
    cipher.dispose();
  },
);
