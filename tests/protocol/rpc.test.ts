// The request table every client shares (protocol/rpc.ts): ids given in turn, never two alike in
// flight, wrapping at 2^31 − 1; responses matched to their request, pushes passed on.
import assert from "node:assert/strict";
import { MAX_REQUEST_ID } from "../../protocol/limits.ts";
import { messageText, type ServerMessage } from "../../protocol/messages.ts";
import { PendingRequests } from "../../protocol/rpc.ts";

const record = (m: ServerMessage) => new TextEncoder().encode(messageText(m));

Deno.test("ids run from 1 in turn, wrap after 2^31 - 1, and skip one still in flight", () => {
  const p = new PendingRequests<string>();
  assert.deepEqual([p.add("PNG", "a"), p.add("PNG", "b")], [1, 2]);
  const top = new PendingRequests<string>(MAX_REQUEST_ID - 1);
  top.expect(2, "GSR", "raw");
  assert.deepEqual(
    [top.add("PNG", "x"), top.add("PNG", "y"), top.add("PNG", "z")],
    [MAX_REQUEST_ID - 1, MAX_REQUEST_ID, 1],
  );
  assert.equal(top.add("PNG", "w"), 3, "id 2 is in flight: skipped");
  assert.equal(top.next, 4, "next: where a table for the next connection may start");
  assert.equal(new PendingRequests<string>(top.next).add("PNG", "v"), 4);
  top.take(1);
  assert.equal(top.codeOf(1), undefined);
  assert.equal(top.codeOf(2), "GSR");
});

Deno.test("a response reaches its request's waiter, with the request's code; a push does not", () => {
  const p = new PendingRequests<string>();
  const id = p.add("MSG", "the MSG");
  const ack = p.read(record({ code: "ACK", id, request: "MSG", msg: "m1", ts: 5 }));
  assert.equal(ack.kind, "response");
  assert.ok(ack.kind === "response" && ack.waiter === "the MSG" && ack.code === "MSG");
  assert.equal(p.size, 0);
  const push = p.read(record({ code: "BYE", reason: "idle" }));
  assert.deepEqual(push, { kind: "other", message: { code: "BYE", reason: "idle" } });
});

Deno.test("an answer to an id nobody asked is malformed; the table is drained at the end", () => {
  const p = new PendingRequests<string>();
  p.add("PNG", "a");
  p.add("GSR", "b");
  const stray = p.read(record({ code: "ACK", id: 99, request: "PNG" }));
  assert.equal(stray.kind, "malformed");
  assert.deepEqual(p.drain().sort(), ["a", "b"]);
  assert.equal(p.size, 0);
});
