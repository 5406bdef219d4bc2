// A sender's recent cids and the first ACK each got (PROTOCOL §4.3: at least the last
// CID_MEMORY are remembered, so a retried MSG gets its first ACK again).

import { CID_MEMORY } from "../protocol/limits.ts";

/** The first `ACK` a sender got for a `cid`, repeated on a retried `MSG` (PROTOCOL §4.3). */
export interface RememberedCid {
  msg: string;
  ts: number;
}

/**
 * The last CID_MEMORY cids of one sender, in a ring: remembering one overwrites the oldest,
 * so a replay of a million sends hashes nothing. Lookups go through a cid → slot index,
 * built on the first lookup and kept up from then on. A cid remembered twice (the server
 * never writes that: it looks the cid up first) answers with its oldest remembered ACK.
 * Compare memories by their `entries()`: the ring's offset and the index are internal.
 */
export class CidMemory {
  // Parallel arrays that grow to CID_MEMORY: no object per cid, nothing allocated for idle senders.
  #cids: string[] = [];
  #msgs: string[] = [];
  #ts: number[] = [];
  #count = 0; // cids ever remembered; the next goes to slot #count % CID_MEMORY
  #index: Map<string, number> | undefined;
  #duplicates = false;

  /** Cids remembered (at most CID_MEMORY). */
  get size(): number {
    return Math.min(this.#count, CID_MEMORY);
  }

  /**
   * Remembers `cid` → `{msg, ts}`, forgetting the oldest beyond CID_MEMORY. A cid already
   * remembered is stored again but keeps answering with its older ACK; it is not skipped,
   * so the state never depends on whether a lookup has built the index yet.
   */
  remember(cid: string, msg: string, ts: number): void {
    const slot = this.#count % CID_MEMORY;
    const evicted = this.#cids[slot]; // undefined while the ring is still growing
    this.#cids[slot] = cid;
    this.#msgs[slot] = msg;
    this.#ts[slot] = ts;
    this.#count++;
    const index = this.#index;
    if (!index) return;
    if (evicted !== undefined && index.get(evicted) === slot) {
      index.delete(evicted);
      if (this.#duplicates) this.#reindex(evicted);
    }
    if (index.has(cid)) this.#duplicates = true;
    else index.set(cid, slot);
  }

  /** The first ACK for `cid`, if it is remembered. */
  get(cid: string): RememberedCid | undefined {
    if (!this.#index) {
      const index = new Map<string, number>();
      for (const slot of this.#slotsOldestFirst()) {
        const c = this.#cids[slot]!;
        if (index.has(c)) this.#duplicates = true;
        else index.set(c, slot);
      }
      this.#index = index;
    }
    const slot = this.#index.get(cid);
    return slot === undefined ? undefined : { msg: this.#msgs[slot]!, ts: this.#ts[slot]! };
  }

  /** The remembered cids, oldest first, with their ACKs. */
  *entries(): IterableIterator<[string, RememberedCid]> {
    for (const slot of this.#slotsOldestFirst()) {
      yield [this.#cids[slot]!, { msg: this.#msgs[slot]!, ts: this.#ts[slot]! }];
    }
  }

  [Symbol.iterator](): IterableIterator<[string, RememberedCid]> {
    return this.entries();
  }

  *#slotsOldestFirst(): IterableIterator<number> {
    const n = this.size;
    const first = this.#count - n;
    for (let i = first; i < this.#count; i++) yield i % CID_MEMORY;
  }

  /** Points the index at the oldest remaining slot holding `cid`, if any. */
  #reindex(cid: string): void {
    for (const slot of this.#slotsOldestFirst()) {
      if (this.#cids[slot] === cid) {
        this.#index!.set(cid, slot);
        return;
      }
    }
  }
}
