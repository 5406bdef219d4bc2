// The key per-address limits count under: IPv4 as is, IPv6 per /64, IPv4-mapped as IPv4.
import assert from "node:assert/strict";
import { addressKey } from "../../server/address.ts";

Deno.test("addressKey keeps an IPv4 address as it is", () => {
  assert.equal(addressKey("203.0.113.7"), "203.0.113.7");
  assert.equal(addressKey("127.0.0.1"), "127.0.0.1");
});

Deno.test("addressKey puts every address of one IPv6 /64 under one key, whatever its spelling", () => {
  const key = "2001:db8:1:2::/64";
  for (
    const a of [
      "2001:db8:1:2::1",
      "2001:db8:1:2:ffff:ffff:ffff:ffff",
      "2001:0DB8:0001:0002:0:0:0:9",
      "[2001:db8:1:2::abcd]",
      "2001:db8:1:2:a:b:1.2.3.4",
      "2001:db8:1:2::1%eth0",
    ]
  ) {
    assert.equal(addressKey(a), key, a);
  }
  assert.notEqual(addressKey("2001:db8:1:3::1"), key);
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
});

Deno.test("addressKey reads an IPv4-mapped IPv6 address as its IPv4 address", () => {
  assert.equal(addressKey("::ffff:198.51.100.4"), "198.51.100.4");
  assert.equal(addressKey("::ffff:c633:6404"), "198.51.100.4");
});

Deno.test("addressKey leaves what is not an IP address as its own key", () => {
  for (const a of ["localhost", "1:2:3", "::1::2", "2001:db8::g", "1:2:3:4:5:6:7:8:9"]) {
    assert.equal(addressKey(a), a);
  }
});
