// The client's half of §4's request/response rule, once for every client (the REPL's
// connection, the test and torture link, the load generator): ids from 1 to 2^31 − 1, given out
// in turn and never to two requests in flight at once, and each response matched to the request
// with its id. What a request waits with (a promise's resolver, a timer) is the caller's.
import { MAX_REQUEST_ID } from "./limits.ts";
import {
  parseServerMessage,
  type Request,
  type RequestCode,
  type Response,
  type ServerMessage,
  type ServerParse,
} from "./messages.ts";

/** A request without its id (distributes over the union). */
export type RequestBody = Request extends infer R ? R extends Request ? Omit<R, "id"> : never
  : never;

/** The requests of one connection that still wait for their response. */
export class PendingRequests<Waiter> {
  readonly #waiting = new Map<number, { code: RequestCode; waiter: Waiter }>();
  #next: number;

  /** `first` is the first id to give out: 1, but for tests of the wrap. */
  constructor(first = 1) {
    if (!Number.isInteger(first) || first < 1 || first > MAX_REQUEST_ID) {
      throw new RangeError(`first id ${first} is outside 1..${MAX_REQUEST_ID}`);
    }
    this.#next = first;
  }

  /** Requests waiting. */
  get size(): number {
    return this.#waiting.size;
  }

  /** The id add() tries next: where a table for the same client's next connection may start. */
  get next(): number {
    return this.#next;
  }

  /**
   * Gives the next free id to a `code` request waiting with `waiter`. Ids run 1 … 2^31 − 1 (§4)
   * and wrap; an id still waiting is skipped, so two requests in flight never share one.
   */
  add(code: RequestCode, waiter: Waiter): number {
    if (this.#waiting.size >= MAX_REQUEST_ID) {
      throw new RangeError(`${MAX_REQUEST_ID} requests in flight: no id is free`);
    }
    let id = this.#next;
    while (this.#waiting.has(id)) id = id >= MAX_REQUEST_ID ? 1 : id + 1;
    this.#next = id >= MAX_REQUEST_ID ? 1 : id + 1;
    this.#waiting.set(id, { code, waiter });
    return id;
  }

  /** Waits under a given id (a test that sends a raw request with an id of its own). */
  expect(id: number, code: RequestCode, waiter: Waiter): void {
    this.#waiting.set(id, { code, waiter });
  }

  /** The code of the request waiting under `id`: how parseServerMessage reads its response. */
  codeOf(id: number): RequestCode | undefined {
    return this.#waiting.get(id)?.code;
  }

  /** Takes out the request waiting under `id`, if any. */
  take(id: number): { code: RequestCode; waiter: Waiter } | undefined {
    const entry = this.#waiting.get(id);
    this.#waiting.delete(id);
    return entry;
  }

  /** Takes out every waiting request (the connection ended). */
  drain(): Waiter[] {
    const waiters = [...this.#waiting.values()].map((e) => e.waiter);
    this.#waiting.clear();
    return waiters;
  }

  /** Every waiting request, left in place (to look at, or to time out). */
  values(): IterableIterator<{ code: RequestCode; waiter: Waiter }> {
    return this.#waiting.values();
  }

  /**
   * Reads a record's plaintext as a server message (parseServerMessage, knowing what each id
   * asked) and splits it: a response to a waiting request (taken out), or anything else.
   */
  read(plaintext: Uint8Array):
    | { kind: "response"; response: Response; code: RequestCode; waiter: Waiter }
    | { kind: "other"; message: ServerMessage }
    | { kind: "malformed"; reason: string } {
    const parsed: ServerParse = parseServerMessage(plaintext, (id) => this.codeOf(id));
    if (!parsed.ok) return { kind: "malformed", reason: parsed.reason };
    const m = parsed.value;
    if ((m.code === "ACK" || m.code === "ERR") && m.id !== 0) {
      const entry = this.take(m.id)!;
      return { kind: "response", response: m, code: entry.code, waiter: entry.waiter };
    }
    return { kind: "other", message: m };
  }
}
