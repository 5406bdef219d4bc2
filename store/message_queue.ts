// A recipient's queue of undelivered messages (PROTOCOL §4.3: oldest first, removed on DAK).
import type { Content } from "../protocol/messages.ts";

/**
 * A message waiting for its recipient's `DAK`: the fields of a `DLV` push (PROTOCOL §4.2), its
 * `text` or its `sealed` envelope (§8).
 */
export type QueuedMessage = {
  msg: string;
  from: string;
  to: string;
  ts: number;
  /** UTF-8 bytes of the text or the envelope: what the queue quotas count (see `utf8Bytes`). */
  bytes: number;
} & Content;

/** Cleared slots tolerated before the array is rebased (a memory bound, amortised O(1)). */
const REBASE_SLACK = 1024;
/** Live messages from the oldest looked at before an id index is built (see #find). */
const NEAR_HEAD = 16;

/**
 * Messages in arrival order. Adding is an array push, and removing the oldest (the usual
 * `DAK`) clears a slot, so a million-message replay hashes nothing; removing any other
 * message goes through a msg → slot index, built on first need and kept up from then on.
 */
export class MessageQueue {
  #slots: (QueuedMessage | undefined)[] = [];
  #head = 0; // first slot that may be occupied
  #size = 0;
  #bytes = 0;
  #index: Map<string, number> | undefined;
  #duplicates = false; // some msg was queued twice: the index then needs care on removal

  /** Messages queued. */
  get size(): number {
    return this.#size;
  }

  /** UTF-8 bytes of the texts queued. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Queues `message` last. A msg already queued (never written by the server) is kept twice. */
  push(message: QueuedMessage): void {
    this.#slots.push(message);
    this.#size++;
    this.#bytes += message.bytes;
    if (!this.#index) return;
    if (this.#index.has(message.msg)) this.#duplicates = true;
    else this.#index.set(message.msg, this.#slots.length - 1);
  }

  /** Removes the oldest message with id `msg` and returns it; undefined if none is queued. */
  remove(msg: string): QueuedMessage | undefined {
    const slots = this.#slots;
    const slot = this.#find(msg);
    if (slot === undefined) return undefined;
    const removed = slots[slot]!;
    slots[slot] = undefined;
    this.#size--;
    this.#bytes -= removed.bytes;
    if (this.#index) {
      this.#index.delete(msg);
      // Only a queue holding a msg twice has another slot to point at now.
      for (let i = slot + 1; this.#duplicates && i < slots.length; i++) {
        if (slots[i]?.msg === msg) {
          this.#index.set(msg, i);
          break;
        }
      }
    }
    while (this.#head < slots.length && slots[this.#head] === undefined) this.#head++;
    // Rebase once most of the array is cleared slots: at the front (the usual, oldest-first
    // DAKs), or anywhere (a client that acknowledges all but one old message).
    const live = slots.length - this.#head;
    if (
      (this.#head > REBASE_SLACK && this.#head * 2 > slots.length) ||
      (live > REBASE_SLACK && this.#size * 4 < live)
    ) {
      this.#slots = slots.filter((m, i) => i >= this.#head && m !== undefined);
      this.#head = 0;
      this.#index = undefined; // slot numbers moved; rebuilt on next need
    }
    return removed;
  }

  /** The queued message with id `msg`, if any. */
  get(msg: string): QueuedMessage | undefined {
    const slot = this.#find(msg);
    return slot === undefined ? undefined : this.#slots[slot];
  }

  /**
   * The slot of the oldest message with id `msg`. A DAK is nearly always for one of the
   * oldest few messages (receipts wait for their group commit, so several may be in flight):
   * those are looked at first, and the index is built only when that fails: kept up on every
   * push, the index was a visible share of the server's time under bench/load.ts.
   */
  #find(msg: string): number | undefined {
    const slots = this.#slots;
    if (slots[this.#head]?.msg === msg) return this.#head;
    if (this.#index) return this.#index.get(msg);
    for (let i = this.#head + 1, live = 1; i < slots.length && live < NEAR_HEAD; i++) {
      const message = slots[i];
      if (message === undefined) continue;
      if (message.msg === msg) return i;
      live++;
    }
    return slots.length - this.#head <= NEAR_HEAD ? undefined : this.#indexed().get(msg);
  }

  /** The queued messages, oldest first. */
  *values(): IterableIterator<QueuedMessage> {
    const slots = this.#slots;
    for (let i = this.#head; i < slots.length; i++) {
      const message = slots[i];
      if (message) yield message;
    }
  }

  [Symbol.iterator](): IterableIterator<QueuedMessage> {
    return this.values();
  }

  #indexed(): Map<string, number> {
    if (!this.#index) {
      const index = new Map<string, number>();
      for (let i = this.#head; i < this.#slots.length; i++) {
        const message = this.#slots[i];
        if (!message) continue;
        if (index.has(message.msg)) this.#duplicates = true;
        else index.set(message.msg, i);
      }
      this.#index = index;
    }
    return this.#index;
  }
}
