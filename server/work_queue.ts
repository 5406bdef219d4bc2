// Bounds the password hashes in flight (§ issue: hashing never stalls relaying): at most
// `concurrency` run at once on worker threads, at most `maxQueued` wait; past that the
// caller answers `rate_limited`, so a login flood cannot queue unbounded memory or latency.

/** A FIFO of async jobs with a concurrency bound and a queue cap. */
export class WorkQueue {
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly concurrency: number, readonly maxQueued: number) {
    if (concurrency < 1 || maxQueued < 0) {
      throw new RangeError(`bad work queue bounds ${concurrency}/${maxQueued}`);
    }
  }

  /** Jobs running now. */
  get active(): number {
    return this.#active;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Whether a new job would be refused. */
  get full(): boolean {
    return this.#active >= this.concurrency && this.#waiting.length >= this.maxQueued;
  }

  /** Runs `job` when a slot is free; undefined (job not run) when the queue is full. */
  run<T>(job: () => Promise<T>): Promise<T> | undefined {
    if (this.full) return undefined;
    return this.#acquire().then(async () => {
      try {
        return await job();
      } finally {
        this.#release();
      }
    });
  }

  #acquire(): Promise<void> {
    if (this.#active < this.concurrency) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next(); // the slot passes straight to the next job
    else this.#active--;
  }
}
