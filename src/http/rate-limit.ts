/** A budget of requests per key (a client address, an issuer). */
export interface RateLimiter {
  /**
   * Takes one request from `key`'s budget.
   *
   * @returns 0 when admitted, else the whole seconds to wait (for Retry-After)
   */
  take(key: string): number;
  /** Gives back the most recent request taken by `take`, when it turned out not to count. */
  refund(key: string): void;
}

/**
 * Token buckets per key (a client address, an issuer): `perMinute` requests a
 * minute, in bursts of up to `perMinute`. In memory, so each replica counts
 * for itself. Idle buckets are forgotten, and the number of keys is capped so
 * that spoofed keys cannot grow memory without bound.
 */
export function createRateLimiter(perMinute: number, now: () => number = Date.now, maxKeys = 100_000): RateLimiter {
  const ratePerMs = perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();

  const tokensOf = (key: string, at: number) => {
    const bucket = buckets.get(key);
    return bucket ? Math.min(perMinute, bucket.tokens + (at - bucket.at) * ratePerMs) : perMinute;
  };
  const secondsUntilOne = (tokens: number) => Math.max(1, Math.ceil((1 - tokens) / ratePerMs / 1000));

  return {
    take(key: string): number {
      if (perMinute <= 0) return 0;
      const at = now();
      const tokens = tokensOf(key, at);
      if (tokens < 1) {
        buckets.set(key, { tokens, at });
        return secondsUntilOne(tokens);
      }
      if (!buckets.has(key) && buckets.size >= maxKeys) evictFull(at);
      buckets.delete(key);
      buckets.set(key, { tokens: tokens - 1, at });
      return 0;
    },

    refund(key: string): void {
      const bucket = buckets.get(key);
      if (bucket) bucket.tokens = Math.min(perMinute, bucket.tokens + 1);
    },
  };

  /** Drops the buckets that have refilled (their keys are idle); failing that, the oldest. */
  function evictFull(at: number): void {
    for (const [key, bucket] of buckets) {
      if (bucket.tokens + (at - bucket.at) * ratePerMs >= perMinute) buckets.delete(key);
    }
    if (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value!);
  }
}

const WINDOW_MS = 60_000;

/**
 * At most `perMinute` admissions per key in any 60 seconds: a sliding window
 * of the admission times themselves. Where a budget must hold exactly (wrong
 * admin passwords), a token bucket is too generous: it admits its full burst
 * and then its refill, almost twice the budget in the first minute. Each key
 * keeps at most `perMinute` times, and the number of keys is capped as in
 * createRateLimiter.
 */
export function createWindowLimiter(
  perMinute: number,
  now: () => number = Date.now,
  maxKeys = 100_000,
): RateLimiter & { isFresh(key: string): boolean } {
  // Admission times per key, oldest first; a Map keeps the least recently admitted key first.
  const windows = new Map<string, number[]>();

  const dropExpired = (times: number[], at: number) => {
    while (times.length > 0 && times[0]! <= at - WINDOW_MS) times.shift();
  };

  return {
    take(key: string): number {
      if (perMinute <= 0) return 0;
      const at = now();
      const times = windows.get(key) ?? [];
      dropExpired(times, at);
      if (times.length >= perMinute) return Math.max(1, Math.ceil((times[0]! + WINDOW_MS - at) / 1000));
      if (!windows.has(key) && windows.size >= maxKeys) evictIdle(at);
      windows.delete(key);
      times.push(at);
      windows.set(key, times);
      return 0;
    },

    refund(key: string): void {
      const times = windows.get(key);
      times?.pop();
      if (times?.length === 0) windows.delete(key);
    },

    /** Whether `key` has had nothing admitted (and kept) within the last 60 seconds. */
    isFresh(key: string): boolean {
      const last = windows.get(key)?.at(-1);
      return last === undefined || last <= now() - WINDOW_MS;
    },
  };

  /** Drops the keys with nothing left in their window; failing that, the least recently admitted. */
  function evictIdle(at: number): void {
    for (const [key, times] of windows) {
      if (times.every((time) => time <= at - WINDOW_MS)) windows.delete(key);
    }
    if (windows.size >= maxKeys) windows.delete(windows.keys().next().value!);
  }
}
