// Child of full_disk.test.ts: appends to the log at Deno.args[0] until a write fails (the parent
// runs it under a file-size limit), then tries once more, and prints what happened as JSON.
import { openEventLog, StoreError } from "../../store/mod.ts";
import { message } from "./_helpers.ts";

const { log } = await openEventLog(Deno.args[0]!);
let acknowledged = 0;
let failure: unknown;
for (let n = 0; n < 100_000 && failure === undefined; n++) {
  try {
    await log.append(message(n, "alice", "bob", "x".repeat(300)));
    acknowledged++;
  } catch (err) {
    failure = err;
  }
}
let after: unknown;
try {
  await log.append(message(1_000_000));
} catch (err) {
  after = err;
}
const code = (err: unknown) => (err instanceof StoreError ? err.code : String(err));
// The log refuses later appends with the very error of the failed write, without writing again.
console.log(
  JSON.stringify({
    acknowledged,
    failure: code(failure),
    after: code(after),
    sameError: after === failure,
  }),
);
await log.close().catch(() => {});
