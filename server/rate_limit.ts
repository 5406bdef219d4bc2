// Rate limiting for PROTOCOL §5: a token bucket for MSG, a sliding-window counter for
// sign-ups, and a failure throttle with exponential back-off for logins. Time comes in as
// an argument (ms), so tests are deterministic.

/** Burst `capacity`, refilled at `perSecond`; `take()` says how long to wait when empty. */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(readonly capacity: number, readonly perSecond: number, now: number) {
    this.#tokens = capacity;
    this.#last = now;
  }

  /** Takes one token; returns 0 on success, else the ms until one is available. */
  take(now: number): number {
    this.#tokens = Math.min(
      this.capacity,
      this.#tokens + ((now - this.#last) / 1000) * this.perSecond,
    );
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) / this.perSecond) * 1000);
  }
}

/**
 * At most `limit` events per key in any `windowMs`. Keeps only timestamps inside the window,
 * and forgets keys whose window is empty, so memory follows recent activity.
 */
export class WindowCounter {
  readonly #events = new Map<string, number[]>();

  constructor(readonly limit: number, readonly windowMs: number) {}

  #recent(key: string, now: number): number[] {
    const list = this.#events.get(key);
    if (!list) return [];
    let drop = 0;
    while (drop < list.length && list[drop]! <= now - this.windowMs) drop++;
    if (drop > 0) list.splice(0, drop);
    if (list.length === 0) this.#events.delete(key);
    return list;
  }

  /** Ms until `key` may act again (0 = now), without recording anything. */
  wait(key: string, now: number): number {
    const list = this.#recent(key, now);
    return list.length < this.limit ? 0 : list[list.length - this.limit]! + this.windowMs - now;
  }

  /** Events of `key` inside the window, and the time of the latest. */
  recent(key: string, now: number): { count: number; latest: number | undefined } {
    const list = this.#recent(key, now);
    return { count: list.length, latest: list.at(-1) };
  }

  /** Records one event for `key`. */
  record(key: string, now: number): void {
    const list = this.#recent(key, now);
    list.push(now);
    if (list.length > this.limit * 2) list.splice(0, list.length - this.limit * 2);
    this.#events.set(key, list);
  }

  /** Forgets `key` (a successful login clears its failures). */
  clear(key: string): void {
    this.#events.delete(key);
  }

  /** Drops keys with nothing left in the window (called by the server's sweeper). */
  sweep(now: number): void {
    for (const key of [...this.#events.keys()]) this.#recent(key, now);
  }

  get size(): number {
    return this.#events.size;
  }
}

/**
 * Login failure throttle (§5): up to `free` failures per key in `windowMs` cost nothing; after
 * that each further attempt must wait `baseMs · 2^(failures − free)`, capped at `maxMs`, counted
 * from the latest failure. Never a permanent lockout: failures age out of the window.
 */
export class FailureThrottle {
  readonly #failures: WindowCounter;

  constructor(
    readonly free: number,
    readonly windowMs: number,
    readonly baseMs: number,
    readonly maxMs: number,
  ) {
    // Remember enough failures to keep doubling up to the cap.
    this.#failures = new WindowCounter(free + 32, windowMs);
  }

  /** Ms until `key` may try again (0 = now). */
  wait(key: string, now: number): number {
    const { count, latest } = this.#failures.recent(key, now);
    if (count < this.free || latest === undefined) return 0;
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** (count - this.free));
    return Math.max(0, latest + delay - now);
  }

  /** Records a failed attempt for `key`. */
  recordFailure(key: string, now: number): void {
    this.#failures.record(key, now);
  }

  /** Forgets `key`'s failures (after a successful login). */
  clear(key: string): void {
    this.#failures.clear(key);
  }

  /** Drops keys whose failures have aged out. */
  sweep(now: number): void {
    this.#failures.sweep(now);
  }
}
