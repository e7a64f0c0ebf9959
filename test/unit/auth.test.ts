import { describe, expect, it } from '@jest/globals';
import { tooManyRequests } from '../../src/errors.js';
import { createAuthenticator, type GuessBudget } from '../../src/http/auth.js';

const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;

/** Ten attempts a minute per key, counted exactly, with a clock that never moves. */
function tenAMinute(): GuessBudget & { taken(key: string): number } {
  const counts = new Map<string, number>();
  return {
    take(key) {
      const count = counts.get(key) ?? 0;
      if (count >= 10) return 60;
      counts.set(key, count + 1);
      return 0;
    },
    refund(key) {
      counts.set(key, (counts.get(key) ?? 1) - 1);
    },
    isFresh: (key) => (counts.get(key) ?? 0) === 0,
    taken: (key) => counts.get(key) ?? 0,
  };
}

const noBearer = async () => undefined;

describe('createAuthenticator', () => {
  it('counts an attempt refused because every password check was busy, so retrying at once costs the budget', async () => {
    const guesses = tenAMinute();
    const authenticate = createAuthenticator(
      async () => {
        throw tooManyRequests('password checks are busy; try again shortly', 1);
      },
      noBearer,
      guesses,
    );
    for (let attempt = 0; attempt < 10; attempt++) {
      await expect(authenticate.header(basic(`guess-${attempt}`), '198.51.100.1')).rejects.toThrow(
        'password checks are busy; try again shortly',
      );
    }
    await expect(authenticate.header(basic('guess'), '198.51.100.1')).rejects.toThrow(
      'too many failed logins from this address',
    );
  });

  it('checks an address with a clean record ahead of the others, and gives back a right password', async () => {
    const guesses = tenAMinute();
    const priorities: boolean[] = [];
    const authenticate = createAuthenticator(
      async (_user, password, priority = false) => {
        priorities.push(priority);
        return password === 'right';
      },
      noBearer,
      guesses,
    );
    await authenticate.header(basic('wrong'), '198.51.100.2');
    await authenticate.header(basic('wrong'), '198.51.100.2');
    expect(await authenticate.header(basic('right'), '198.51.100.3')).toBeDefined();
    expect(priorities).toEqual([true, false, true]);
    expect(guesses.taken('198.51.100.3')).toBe(0);
    expect(guesses.taken('198.51.100.2')).toBe(2);
  });
});
