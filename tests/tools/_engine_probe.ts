// A program for tests/crypto/permissions.test.ts: selects the engine named by its first argument
// under whatever permissions it was started with, and prints what it got as one JSON line.
import { cryptoModeOf, selectCrypto } from "../../crypto/mod.ts";

const mode = cryptoModeOf(Deno.args[0] ?? "auto");
if (mode === undefined) throw new TypeError(`not a crypto mode: ${Deno.args[0]}`);
const { engine, detail, fallback } = selectCrypto(mode);
console.log(JSON.stringify({ engine: engine.name, detail, fallback }));
