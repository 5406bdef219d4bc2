import assert from "node:assert/strict";
import { assertEvent, EVENT_TYPES, isEventType, toEvent } from "../../store/mod.ts";
import { everyEventType } from "./_helpers.ts";

Deno.test("toEvent() accepts one event of every type and copies it field for field", () => {
  for (const event of everyEventType()) {
    const copy = toEvent(event);
    assert.deepEqual(copy, event);
    assert.notEqual(copy, event);
  }
});

Deno.test("toEvent() drops properties outside the schema", () => {
  const event = { type: "logged_out", ts: 1, user: "u", sessionToken: "secret" };
  assert.deepEqual(toEvent(event), { type: "logged_out", ts: 1, user: "u" });
});

Deno.test("toEvent() leaves an absent optional cid absent", () => {
  const event = { type: "message_sent", ts: 1, msg: "m", from: "a", to: "b", text: "t" };
  assert.equal("cid" in toEvent(event), false);
  assert.equal("cid" in toEvent({ ...event, cid: undefined }), false);
});

Deno.test("assertEvent() refuses non-objects, unknown types and wrong field types", () => {
  const cases: [unknown, RegExp][] = [
    [undefined, /must be an object, got undefined/],
    [[], /must be an object, got array/],
    [{ type: "user_deleted", ts: 1 }, /unknown event type "user_deleted"/],
    [{ type: "login_failed", ts: Infinity, user: "u", addr: "a" }, /ts must be a finite number/],
    [
      { type: "login_failed", ts: 1, user: "u" },
      /login_failed\.addr must be a string, got undefined/,
    ],
    [
      { type: "message_delivered", ts: 1, msg: 7, user: "u" },
      /message_delivered\.msg must be a string, got 7/,
    ],
  ];
  for (const [value, message] of cases) assert.throws(() => assertEvent(value), message);
});

Deno.test("assertEvent() never echoes a string field's value into its error", () => {
  const secret = "scrypt$17$8$1$c2FsdA==$aGFzaA==";
  assert.throws(
    () => assertEvent({ type: "user_signed_up", ts: 1, user: 5, passwordHash: secret }),
    (e: unknown) => e instanceof TypeError && !e.message.includes(secret),
  );
});

Deno.test("isEventType() knows exactly the event types", () => {
  for (const type of EVENT_TYPES) assert.equal(isEventType(type), true);
  for (const type of ["", "toString", "__proto__", "USER_SIGNED_UP"]) {
    assert.equal(isEventType(type), false);
  }
});
