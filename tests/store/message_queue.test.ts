import assert from "node:assert/strict";
import { MessageQueue, type QueuedMessage } from "../../store/mod.ts";
import { between, prng } from "./_helpers.ts";

function queued(n: number): QueuedMessage {
  return { msg: `m${n}`, from: "a", to: "b", text: `t${n}`, ts: n, bytes: `t${n}`.length };
}

for (const seed of [1, 2, 3]) {
  Deno.test(`MessageQueue behaves like a plain array under random pushes, removals and lookups (seed ${seed})`, () => {
    const random = prng(seed);
    const queue = new MessageQueue();
    const model: QueuedMessage[] = [];
    let next = 0;
    for (let step = 0; step < 20_000; step++) {
      const r = random();
      if (r < 0.45) {
        // Now and then a msg already queued: the server never does it, the queue must cope.
        const message = random() < 0.03 && model.length > 0
          ? {
            ...model[between(random, 0, model.length - 1)]!,
            text: `dup${step}`,
            sealed: undefined,
          }
          : queued(next++);
        queue.push(message);
        model.push(message);
      } else if (r < 0.8) {
        // Mostly the oldest, as clients DAK in order.
        const i = random() < 0.7 ? 0 : between(random, 0, Math.max(0, model.length - 1));
        const msg = model[i]?.msg ?? "absent";
        const first = model.findIndex((m) => m.msg === msg);
        assert.equal(queue.remove(msg) !== undefined, first >= 0);
        if (first >= 0) model.splice(first, 1);
      } else if (r < 0.9) {
        const msg = random() < 0.9 && model.length > 0
          ? model[between(random, 0, model.length - 1)]!.msg
          : "absent";
        assert.deepEqual(queue.get(msg), model.find((m) => m.msg === msg));
      } else {
        assert.deepEqual([...queue], model);
      }
      assert.equal(queue.size, model.length);
    }
    assert.deepEqual([...queue.values()], model);
  });
}

Deno.test("MessageQueue drained oldest first by the thousand stays in order and small", () => {
  const queue = new MessageQueue();
  for (let n = 0; n < 10_000; n++) queue.push(queued(n));
  queue.get("m9000"); // builds the index before the drain, so rebasing must drop it
  for (let n = 0; n < 9_990; n++) assert.equal(queue.remove(`m${n}`)?.msg, `m${n}`);
  assert.deepEqual([...queue].map((m) => m.ts), [
    9990,
    9991,
    9992,
    9993,
    9994,
    9995,
    9996,
    9997,
    9998,
    9999,
  ]);
  assert.equal(queue.remove("m9995")?.msg, "m9995");
  assert.equal(queue.get("m9995"), undefined);
  assert.equal(queue.get("m9996")?.ts, 9996);
});

Deno.test("MessageQueue stays right across rebases when its oldest message is never acknowledged", () => {
  const queue = new MessageQueue();
  queue.push(queued(0));
  for (let n = 1; n <= 50_000; n++) {
    queue.push(queued(n));
    assert.equal(queue.remove(`m${n}`)?.msg, `m${n}`);
  }
  assert.deepEqual([...queue].map((m) => m.msg), ["m0"]);
  assert.equal(queue.size, 1);
});
