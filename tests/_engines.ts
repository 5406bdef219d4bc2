// Runs a test once per crypto engine (crypto/engine.ts), so every vector and property is
// checked on OpenSSL over FFI as well as on the portable code. The native run fails when
// libcrypto cannot be loaded, unless HYBRID_CRYPTO=portable says this machine has none.
import { selectCrypto } from "../crypto/mod.ts";

export const NATIVE_SKIPPED = Deno.env.get("HYBRID_CRYPTO") === "portable";

/** Registers `name` as "name [portable]" and "name [native]", each with its engine selected. */
export function testEachEngine(name: string, fn: () => void | Promise<void>): void {
  for (const engine of ["portable", "native"] as const) {
    Deno.test({
      name: `${name} [${engine}]`,
      ignore: engine === "native" && NATIVE_SKIPPED,
      fn: async () => {
        selectCrypto(engine);
        try {
          await fn();
        } finally {
          selectCrypto("portable");
        }
      },
    });
  }
}
