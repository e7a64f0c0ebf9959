import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from '@jest/globals';
import { onDemand } from '../../src/keys/signing-keys.js';

const clock = () => performance.now();

/** A task that records when each run starts and takes `ms`. */
function slowTask(ms: number) {
  const starts: number[] = [];
  return {
    starts,
    run: async () => {
      starts.push(clock());
      await sleep(ms);
    },
  };
}

describe('onDemand (reading the keys again for an unknown kid)', () => {
  it('shares one run between callers that ask before it starts', async () => {
    const task = slowTask(20);
    const ask = onDemand(task.run, 1000, clock);
    await Promise.all([ask(), ask(), ask()]);
    expect(task.starts).toHaveLength(1);
  });

  it('answers a caller that asks during a run with a run that starts after it asked', async () => {
    const task = slowTask(50);
    const ask = onDemand(task.run, 0, clock);
    const first = ask();
    await sleep(10);
    const askedAt = clock();
    await Promise.all([ask(), ask()]);
    await first;
    expect(task.starts).toHaveLength(2);
    expect(task.starts[1]).toBeGreaterThanOrEqual(askedAt);
  });

  it('starts at most one run per cooldown, however often it is asked, and makes late callers wait rather than refusing them', async () => {
    const task = slowTask(1);
    const ask = onDemand(task.run, 100, clock);
    const started = clock();
    for (let i = 0; i < 10; i++) {
      await ask();
    }
    const elapsed = clock() - started;
    expect(task.starts).toHaveLength(10);
    for (let i = 1; i < task.starts.length; i++) {
      expect(task.starts[i]! - task.starts[i - 1]!).toBeGreaterThanOrEqual(95); // timers may fire a little early
    }
    expect(elapsed).toBeGreaterThanOrEqual(850);
  });

  it('goes on after a failed run', async () => {
    let calls = 0;
    const ask = onDemand(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('database away');
      },
      0,
      clock,
    );
    await expect(ask()).rejects.toThrow('database away');
    await expect(ask()).resolves.toBeUndefined();
  });
});
