// When appends are committed, shared by the file log and the PostgreSQL store: an urgent
// append starts a commit at once, and a deferred one waits to ride along with the next.

/**
 * Longest wait of a deferred append (see `appendDeferred`) for another append's group commit
 * before it gets one of its own.
 */
export const DEFERRED_COMMIT_MS = 20;

/** What the queue holds: an append of the store, whatever else it carries. */
export interface Queued {
  /** Starts a group commit (false for appendDeferred). */
  readonly urgent: boolean;
}

/** How a store commits: what one batch is, and how it is committed. */
export interface Committer<P extends Queued> {
  /** Removes the first appends of `queue` (at least one) that go in one batch. */
  takeBatch(queue: P[]): P[];
  /**
   * Commits `batch` and settles it. On a failure that should fail what waits too, it calls
   * `GroupCommit.drop` and rejects what that returns.
   */
  commit(batch: P[]): Promise<void>;
}

/**
 * The append queue and its schedule. An urgent append starts a commit that takes everything
 * queued, deferred appends included, one batch after another while urgent ones wait; a
 * deferred append alone gets a commit after DEFERRED_COMMIT_MS. Appends made while a batch
 * is being committed go together in the next one, so batches grow with the load.
 */
export class GroupCommit<P extends Queued> {
  /** The appends not yet taken into a batch, in order. */
  readonly queue: P[] = [];
  readonly #committer: Committer<P>;
  /** Queued appends that start a commit; when 0, the queue holds only deferred ones. */
  #urgent = 0;
  #flushing: Promise<void> | undefined;
  #deferTimer: ReturnType<typeof setTimeout> | undefined;
  #closing = false;

  constructor(committer: Committer<P>) {
    this.#committer = committer;
  }

  /** Queues an append and starts its commit, or arms the deferred commit's timer. */
  push(append: P): void {
    this.queue.push(append);
    if (append.urgent) {
      this.#urgent++;
      this.#flushing ??= this.#flush();
    } else if (this.#flushing === undefined) {
      this.#armTimer();
    }
  }

  /** Empties the queue (after a failed commit) and returns what was in it, to be rejected. */
  drop(): P[] {
    this.#urgent = 0;
    return this.queue.splice(0);
  }

  /** Commits everything queued, deferred appends included, and waits for it. */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    await this.#flushing;
    // Deferred appends still queued are committed now (#closing makes the flush take all).
    if (this.queue.length > 0) await (this.#flushing = this.#flush());
  }

  /**
   * Commits one batch after another while urgent appends wait, or while anything does if
   * `all` (the first batch) or once closing. Deferred appends left over get the timer again.
   */
  async #flush(all = false): Promise<void> {
    await undefined; // let the appends of the current task join the first batch
    clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    while (this.queue.length > 0 && (all || this.#urgent > 0 || this.#closing)) {
      all = false;
      const batch = this.#committer.takeBatch(this.queue);
      for (const p of batch) if (p.urgent) this.#urgent--;
      await this.#committer.commit(batch);
    }
    this.#flushing = undefined;
    if (this.queue.length > 0) this.#armTimer();
  }

  #armTimer(): void {
    this.#deferTimer ??= setTimeout(() => {
      this.#deferTimer = undefined;
      this.#flushing ??= this.#flush(true);
    }, DEFERRED_COMMIT_MS);
  }
}
