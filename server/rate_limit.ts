// Rate limiting for PROTOCOL §5 as plain data: a token bucket (MSG, GUL, handshakes), a
// sliding-window counter (sign-ups) and a failure throttle with exponential back-off and
// in-flight reservations (logins, CPW). Readers never change what they read, so the decider
// can ask "may this go ahead?" purely; only `evolve` (server/state.ts) calls the writers.
// Time comes in as an argument (ms), so tests are deterministic.

/** A token bucket: burst `capacity`, refilled at `perSecond`. */
export interface Bucket {
  tokens: number;
  last: number;
}

/** A full bucket at `now`. */
export function newBucket(capacity: number, now: number): Bucket {
  return { tokens: capacity, last: now };
}

/** Tokens in `bucket` at `now`. */
export function bucketTokens(
  bucket: Bucket,
  capacity: number,
  perSecond: number,
  now: number,
): number {
  return Math.min(capacity, bucket.tokens + (Math.max(0, now - bucket.last) / 1000) * perSecond);
}

/** Ms until `bucket` holds one token (0 = one is there now). */
export function bucketWait(
  bucket: Bucket,
  capacity: number,
  perSecond: number,
  now: number,
): number {
  const tokens = bucketTokens(bucket, capacity, perSecond, now);
  return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) / perSecond) * 1000);
}

/** Takes one token (the caller checked `bucketWait` first). */
export function takeToken(bucket: Bucket, capacity: number, perSecond: number, now: number): void {
  bucket.tokens = Math.max(0, bucketTokens(bucket, capacity, perSecond, now) - 1);
  bucket.last = Math.max(bucket.last, now);
}

/**
 * At most `limit` events per key in any `windowMs`: per key, the times of its recent events,
 * oldest first. Keys whose window is empty are dropped by `sweepWindows`, so memory follows
 * recent activity.
 */
export type Windows = Map<string, number[]>;

function countInWindow(list: readonly number[] | undefined, windowMs: number, now: number): {
  count: number;
  first: number;
} {
  if (!list) return { count: 0, first: 0 };
  let first = 0;
  while (first < list.length && list[first]! <= now - windowMs) first++;
  return { count: list.length - first, first };
}

/** Ms until `key` may act again under `limit` per `windowMs` (0 = now). */
export function windowWait(
  windows: Windows,
  key: string,
  limit: number,
  windowMs: number,
  now: number,
): number {
  const list = windows.get(key);
  const { count } = countInWindow(list, windowMs, now);
  return count < limit ? 0 : list![list!.length - limit]! + windowMs - now;
}

/** Records one event of `key` at `now`, keeping at most `keep` of its latest. */
export function recordInWindow(
  windows: Windows,
  key: string,
  windowMs: number,
  keep: number,
  now: number,
): void {
  const list = windows.get(key) ?? [];
  const { first } = countInWindow(list, windowMs, now);
  if (first > 0) list.splice(0, first);
  list.push(now);
  if (list.length > keep) list.splice(0, list.length - keep);
  windows.set(key, list);
}

/** Drops keys with nothing left in their window. */
export function sweepWindows(windows: Windows, windowMs: number, now: number): void {
  for (const [key, list] of windows) {
    if (countInWindow(list, windowMs, now).count === 0) windows.delete(key);
  }
}

/** The back-off rule of a failure throttle (§5). */
export interface ThrottleRule {
  /** Failures per window that cost nothing. */
  readonly free: number;
  readonly windowMs: number;
  /** First back-off once throttled; doubles with each further failure. */
  readonly baseMs: number;
  /** Longest back-off: throttling slows guessing, it never locks an account for good. */
  readonly maxMs: number;
}

/**
 * Failures per key, and attempts in flight per key. An attempt is counted as a failure from
 * the moment it is admitted until its verdict (a reservation), so that attempts sent together
 * cannot all pass the check before the first failure is recorded; a success gives its
 * reservation back.
 */
export interface FailureThrottle {
  readonly failures: Windows;
  readonly inFlight: Map<string, number>;
}

export function newFailureThrottle(): FailureThrottle {
  return { failures: new Map(), inFlight: new Map() };
}

/**
 * Ms until `key` may try again (0 = now): up to `free` failures (settled or in flight) cost
 * nothing; past that each further attempt waits `baseMs · 2^(n − free)`, capped at `maxMs`,
 * counted from the latest settled failure (or from now while every one is still in flight).
 */
export function throttleWait(
  t: FailureThrottle,
  key: string,
  rule: ThrottleRule,
  now: number,
): number {
  const list = t.failures.get(key);
  const { count } = countInWindow(list, rule.windowMs, now);
  const n = count + (t.inFlight.get(key) ?? 0);
  if (n < rule.free) return 0;
  const delay = Math.min(rule.maxMs, rule.baseMs * 2 ** (n - rule.free));
  // While every counted attempt is still in flight, the wait runs from now.
  return count > 0 ? Math.max(0, list!.at(-1)! + delay - now) : delay;
}

/** Reserves one attempt of `key`. */
export function beginAttempt(t: FailureThrottle, key: string): void {
  t.inFlight.set(key, (t.inFlight.get(key) ?? 0) + 1);
}

/**
 * Settles an attempt of `key`: a failure is recorded at `now`; a success only gives the
 * reservation back, or, with `clear`, also forgets the key's settled failures.
 */
export function endAttempt(
  t: FailureThrottle,
  key: string,
  rule: ThrottleRule,
  outcome: "failed" | "succeeded" | "cleared",
  now: number,
): void {
  const left = (t.inFlight.get(key) ?? 1) - 1;
  if (left > 0) t.inFlight.set(key, left);
  else t.inFlight.delete(key);
  // Enough failures are remembered to keep doubling up to the cap.
  if (outcome === "failed") recordInWindow(t.failures, key, rule.windowMs, rule.free + 32, now);
  if (outcome === "cleared") t.failures.delete(key);
}

/** Drops keys whose failures have aged out and that have nothing in flight. */
export function sweepThrottle(t: FailureThrottle, rule: ThrottleRule, now: number): void {
  sweepWindows(t.failures, rule.windowMs, now);
}
