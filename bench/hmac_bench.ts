// Micro benchmark of one record's HMAC-SHA-256 (seq, then IV || C) on OpenSSL, three ways: the
// native engine's (SHA-256 block functions over pad states kept in JS memory, the struct size
// checked at load), OpenSSL 3's EVP_MAC re-initialised per MAC, and the legacy HMAC_CTX; beside
// the portable engine's (@noble). It is what decided how the native engine computes record MACs.
//
//   deno bench --allow-all bench/hmac_bench.ts
import { loadNativeCrypto } from "../crypto/native.ts";
import { portableCrypto } from "../crypto/portable.ts";

const native = loadNativeCrypto();
const lib = Deno.dlopen(native.path, {
  EVP_MAC_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_MAC_CTX_new: { parameters: ["pointer"], result: "pointer" },
  EVP_MAC_init: { parameters: ["pointer", "buffer", "usize", "pointer"], result: "i32" },
  EVP_MAC_update: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  EVP_MAC_final: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32" },
  OSSL_PARAM_BLD_new: { parameters: [], result: "pointer" },
  OSSL_PARAM_BLD_push_utf8_string: {
    parameters: ["pointer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  OSSL_PARAM_BLD_to_param: { parameters: ["pointer"], result: "pointer" },
  HMAC_CTX_new: { parameters: [], result: "pointer" },
  HMAC_Init_ex: { parameters: ["pointer", "buffer", "i32", "pointer", "pointer"], result: "i32" },
  HMAC_Update: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  HMAC_Final: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_sha256: { parameters: [], result: "pointer" },
});
const s = lib.symbols;
const cString = (text: string) => new TextEncoder().encode(text + "\0");

const key = crypto.getRandomValues(new Uint8Array(32));
const seq = new Uint8Array(8);
const out = new Uint8Array(32);
const outLength = new BigUint64Array(1);
const outLength32 = new Uint32Array(1);

const evpMac = s.EVP_MAC_CTX_new(s.EVP_MAC_fetch(null, cString("HMAC"), null));
const builder = s.OSSL_PARAM_BLD_new();
s.OSSL_PARAM_BLD_push_utf8_string(builder, cString("digest"), cString("SHA256"), 0n);
if (s.EVP_MAC_init(evpMac, key, 32n, s.OSSL_PARAM_BLD_to_param(builder)) !== 1) {
  throw new Error("EVP_MAC_init failed");
}
/** EVP_MAC: init with no key re-initialises under the kept one. */
function evpMacInto(data: Uint8Array): void {
  if (
    s.EVP_MAC_init(evpMac, null, 0n, null) !== 1 || s.EVP_MAC_update(evpMac, seq, 8n) !== 1 ||
    s.EVP_MAC_update(evpMac, data, BigInt(data.length)) !== 1 ||
    s.EVP_MAC_final(evpMac, out, outLength, 32n) !== 1
  ) throw new Error("EVP_MAC failed");
}

const hmacCtx = s.HMAC_CTX_new();
s.HMAC_Init_ex(hmacCtx, key, 32, s.EVP_sha256(), null);
/** HMAC_CTX (deprecated in OpenSSL 3): init with no key re-initialises likewise. */
function hmacCtxInto(data: Uint8Array): void {
  if (
    s.HMAC_Init_ex(hmacCtx, null, 0, null, null) !== 1 || s.HMAC_Update(hmacCtx, seq, 8n) !== 1 ||
    s.HMAC_Update(hmacCtx, data, BigInt(data.length)) !== 1 ||
    s.HMAC_Final(hmacCtx, out, outLength32) !== 1
  ) throw new Error("HMAC_CTX failed");
}

const engineMac = native.hmac(key);
const portableMac = portableCrypto.hmac(key);

for (const [label, size] of [["64 B", 64], ["1 KiB", 1024], ["16 KiB", 16384]] as const) {
  // IV || C of a record sealing `size` bytes.
  const ivAndC = crypto.getRandomValues(new Uint8Array(16 + size + 16));
  // Every way must give the same MAC, or the comparison means nothing.
  const macs = [
    () => engineMac.macInto(out, seq, ivAndC),
    () => evpMacInto(ivAndC),
    () => hmacCtxInto(ivAndC),
    () => portableMac.macInto(out, seq, ivAndC),
  ].map((mac) => {
    mac();
    return out.join();
  });
  if (new Set(macs).size !== 1) throw new Error("the HMAC implementations disagree");
  const group = `record HMAC ${label}`;
  Deno.bench({
    name: `native engine (SHA256 block functions) ${label}`,
    group,
    baseline: true,
    fn: () => engineMac.macInto(out, seq, ivAndC),
  });
  Deno.bench({ name: `EVP_MAC ${label}`, group, fn: () => evpMacInto(ivAndC) });
  Deno.bench({ name: `HMAC_CTX ${label}`, group, fn: () => hmacCtxInto(ivAndC) });
  Deno.bench({
    name: `portable engine (@noble) ${label}`,
    group,
    fn: () => portableMac.macInto(out, seq, ivAndC),
  });
}
