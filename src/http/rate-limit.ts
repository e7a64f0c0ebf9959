/**
 * Token buckets per key (a client address, an issuer): `perMinute` requests a
 * minute, in bursts of up to `perMinute`. In memory, so each replica counts
 * for itself. Idle buckets are forgotten, and the number of keys is capped so
 * that spoofed keys cannot grow memory without bound.
 */
export function createRateLimiter(perMinute: number, now: () => number = Date.now, maxKeys = 100_000) {
  const ratePerMs = perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();

  const tokensOf = (key: string, at: number) => {
    const bucket = buckets.get(key);
    return bucket ? Math.min(perMinute, bucket.tokens + (at - bucket.at) * ratePerMs) : perMinute;
  };
  const secondsUntilOne = (tokens: number) => Math.max(1, Math.ceil((1 - tokens) / ratePerMs / 1000));

  return {
    /**
     * Takes one request from `key`'s bucket.
     *
     * @returns 0 when admitted, else the whole seconds to wait (for Retry-After)
     */
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

    /** Gives back one request taken by `take` that turned out not to count. */
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

export type RateLimiter = ReturnType<typeof createRateLimiter>;
