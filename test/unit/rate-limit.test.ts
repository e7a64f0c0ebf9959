import { describe, expect, it } from '@jest/globals';
import { createWindowLimiter } from '../../src/http/rate-limit.js';

/** A clock the test moves by hand, in milliseconds. */
const aClock = (start = 1_000_000) => {
  let ms = start;
  return { now: () => ms, at: (seconds: number) => void (ms = start + seconds * 1000) };
};

describe('createWindowLimiter', () => {
  it('admits at most 10 in any 60 s, however the attempts are spread', () => {
    const clock = aClock();
    const limiter = createWindowLimiter(10, clock.now);
    const admitted: number[] = [];
    // One attempt every 250 ms for ten minutes: a token bucket of 10 a minute admits 19 in the first 60 s.
    for (let ms = 0; ms < 600_000; ms += 250) {
      clock.at(ms / 1000);
      if (limiter.take('203.0.113.7') === 0) admitted.push(ms);
    }
    for (const start of admitted) {
      expect(admitted.filter((ms) => ms >= start && ms < start + 60_000).length).toBeLessThanOrEqual(10);
    }
    expect(admitted.filter((ms) => ms < 60_000)).toHaveLength(10);
    expect(admitted).toHaveLength(10 * 10);
  });

  it('says to retry when the oldest admission leaves the window', () => {
    const clock = aClock();
    const limiter = createWindowLimiter(10, clock.now);
    for (let second = 0; second < 10; second++) {
      clock.at(second);
      expect(limiter.take('a')).toBe(0);
    }
    clock.at(30);
    expect(limiter.take('a')).toBe(30);
    clock.at(59.5);
    expect(limiter.take('a')).toBe(1);
    clock.at(60);
    expect(limiter.take('a')).toBe(0);
    // The oldest is now the one taken at 1 s.
    expect(limiter.take('a')).toBe(1);
    clock.at(60.2);
    expect(limiter.take('a')).toBe(1);
  });

  it('gives back the most recent take on refund, and never more than was taken', () => {
    const clock = aClock();
    const limiter = createWindowLimiter(10, clock.now);
    limiter.refund('a');
    for (let second = 0; second < 10; second++) {
      clock.at(second);
      expect(limiter.take('a')).toBe(0);
    }
    clock.at(9.5);
    limiter.refund('a');
    clock.at(10);
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(50);
    // Had the refund given back the take at 0 s, the one at 1 s would be the oldest now.
    clock.at(60);
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(1);
  });

  it('calls a key fresh until something of it is admitted, and again once that has left the window', () => {
    const clock = aClock();
    const limiter = createWindowLimiter(10, clock.now);
    expect(limiter.isFresh('a')).toBe(true);
    limiter.take('a');
    expect(limiter.isFresh('a')).toBe(false);
    expect(limiter.isFresh('b')).toBe(true);
    limiter.refund('a');
    expect(limiter.isFresh('a')).toBe(true);
    limiter.take('a');
    clock.at(59.9);
    expect(limiter.isFresh('a')).toBe(false);
    clock.at(60);
    expect(limiter.isFresh('a')).toBe(true);
  });

  it('keeps the budgets of keys apart', () => {
    const clock = aClock();
    const limiter = createWindowLimiter(2, clock.now);
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 60]);
    expect([limiter.take('b'), limiter.take('b'), limiter.take('b')]).toEqual([0, 0, 60]);
  });

  it('admits everything when the budget is 0 (off)', () => {
    const limiter = createWindowLimiter(0, aClock().now);
    for (let i = 0; i < 100; i++) expect(limiter.take('a')).toBe(0);
  });

  it('caps the number of keys, forgetting the least recently admitted when none is idle', () => {
    const clock = aClock();
    const limiter = createWindowLimiter(1, clock.now, 2);
    expect(limiter.take('a')).toBe(0);
    clock.at(1);
    expect(limiter.take('b')).toBe(0);
    clock.at(2);
    expect(limiter.take('c')).toBe(0);
    expect(limiter.take('b')).toBe(59);
    expect(limiter.take('a')).toBe(0);
  });

  it('forgets idle keys first when the cap is reached', () => {
    const clock = aClock();
    const limiter = createWindowLimiter(2, clock.now, 2);
    expect(limiter.take('a')).toBe(0);
    clock.at(1);
    expect(limiter.take('b')).toBe(0);
    clock.at(2);
    expect(limiter.take('a')).toBe(0);
    clock.at(3);
    // 'a' is now the more recently admitted key, but after this refund its only take is the one at 0 s.
    limiter.refund('a');
    clock.at(60.5);
    expect(limiter.take('c')).toBe(0);
    // 'b' (taken at 1 s) is remembered: one more is admitted, not two.
    expect(limiter.take('b')).toBe(0);
    expect(limiter.take('b')).toBe(1);
  });
});
