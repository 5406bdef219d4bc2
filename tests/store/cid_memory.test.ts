import assert from "node:assert/strict";
import { CID_MEMORY } from "../../protocol/limits.ts";
import { CidMemory, type RememberedCid } from "../../store/mod.ts";
import { between, prng } from "./_helpers.ts";

for (const seed of [1, 2, 3]) {
  Deno.test(`CidMemory answers like the list of its last CID_MEMORY cids, oldest match first (seed ${seed})`, () => {
    const random = prng(seed);
    const memory = new CidMemory();
    const model: [string, RememberedCid][] = [];
    for (let step = 0; step < 6 * CID_MEMORY; step++) {
      if (random() < 0.7) {
        // A small cid space, so cids come back both while remembered and after being forgotten.
        const cid = `c${between(random, 0, 2 * CID_MEMORY)}`;
        const ack = { msg: `m${step}`, ts: step };
        memory.remember(cid, ack.msg, ack.ts);
        model.push([cid, ack]);
        if (model.length > CID_MEMORY) model.shift();
      } else {
        const cid = `c${between(random, 0, 2 * CID_MEMORY)}`;
        assert.deepEqual(memory.get(cid), model.find(([c]) => c === cid)?.[1], `step ${step}`);
      }
      assert.equal(memory.size, model.length);
    }
    assert.deepEqual([...memory.entries()], model);
  });
}
