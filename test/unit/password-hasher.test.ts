import { afterEach, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { pbkdf2, randomBytes, scryptSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { GatewayError } from '../../src/errors.js';
import { createPasswordHasher, type PasswordHasher } from '../../src/keys/password-hasher.js';

/** A hash in the stored format, made here without the code under test. */
function storedHash(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 32, { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 });
  return ['scrypt', 2 ** 17, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** A task for libuv's thread pool, where jose's WebCrypto work runs: PBKDF2 of one iteration. */
const poolTask = () =>
  new Promise<void>((resolve, reject) =>
    pbkdf2('x', 'salt', 1, 32, 'sha256', (error) => (error ? reject(error) : resolve())),
  );

/** libuv's thread pool size (4 unless UV_THREADPOOL_SIZE says otherwise). */
const POOL_SIZE = Number(process.env.UV_THREADPOOL_SIZE) || 4;

/** This process's threads at nice 19, which only the hasher's workers set (Linux). */
const lowPriorityThreads = () =>
  readdirSync('/proc/self/task').filter((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16] === '19';
    } catch {
      return false; // the thread ended meanwhile
    }
  }).length;

const hashers: PasswordHasher[] = [];
const hasher = (options?: Parameters<typeof createPasswordHasher>[0]) => {
  const created = createPasswordHasher(options);
  hashers.push(created);
  return created;
};

afterEach(async () => {
  await Promise.all(hashers.splice(0).map((created) => created.close()));
});

describe('createPasswordHasher', () => {
  it('verifies the password it hashed and refuses another', async () => {
    const passwords = hasher();
    const encoded = await passwords.hash('correct horse');
    expect(encoded).toMatch(/^scrypt\$131072\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
    expect(await passwords.verify('correct horse', encoded)).toBe(true);
    expect(await passwords.verify('correct horse!', encoded)).toBe(false);
  });

  it('verifies a stored hash made with crypto.scryptSync', async () => {
    const encoded = storedHash('from an earlier release');
    const passwords = hasher();
    expect(await passwords.verify('from an earlier release', encoded)).toBe(true);
    expect(await passwords.verify('something else', encoded)).toBe(false);
  });

  it('answers false for a hash in another format, without hashing', async () => {
    const passwords = hasher({ maxConcurrent: 1, maxQueued: 0 });
    expect(await passwords.verify('x', 'bcrypt$2b$10$abc')).toBe(false);
    expect(await passwords.verify('x', 'scrypt$131072$8$1$$')).toBe(false);
  });

  it('runs at most maxConcurrent checks and refuses the rest with RESOURCE_EXHAUSTED once the queue is full', async () => {
    const encoded = storedHash('right');
    const passwords = hasher({ maxConcurrent: 2, maxQueued: 1, maxWaitMs: 60_000 });
    const linux = process.platform === 'linux';
    let mostThreads = 0;
    const sample = () => {
      if (linux) mostThreads = Math.max(mostThreads, lowPriorityThreads());
    };
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        passwords.verify(`wrong-${i}`, encoded).then(
          (ok) => {
            sample();
            return ok;
          },
          (error: unknown) => {
            sample();
            return error;
          },
        ),
      ),
    );
    const refused = outcomes.filter((outcome) => outcome instanceof GatewayError);
    expect(outcomes.filter((outcome) => outcome === false)).toHaveLength(3);
    expect(refused).toHaveLength(5);
    for (const error of refused) {
      expect(error).toMatchObject({
        code: 'RESOURCE_EXHAUSTED',
        message: 'password checks are busy; try again shortly',
      });
      expect((error as GatewayError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    }
    if (linux) {
      expect(mostThreads).toBeGreaterThanOrEqual(1);
      expect(mostThreads).toBeLessThanOrEqual(2);
    }
  });

  it('checks a priority caller ahead of ordinary waiters, displacing the newest when the queue is full', async () => {
    const encoded = storedHash('right');
    const passwords = hasher({ maxConcurrent: 1, maxQueued: 2, maxWaitMs: 60_000 });
    const order: string[] = [];
    const check = (name: string, priority = false) =>
      passwords.verify(name, encoded, { priority }).then(
        () => void order.push(name),
        () => void order.push(`${name} refused`),
      );
    const running = check('running');
    const queued = [check('first'), check('second')];
    const admin = check('admin', true);
    await Promise.all([running, ...queued, admin]);
    expect(order).toEqual(['second refused', 'running', 'admin', 'first']);
  });

  it('refuses a check that waits longer than maxWaitMs', async () => {
    const encoded = storedHash('right');
    const passwords = hasher({ maxConcurrent: 1, maxQueued: 1, maxWaitMs: 0 });
    const [first, second] = await Promise.allSettled([passwords.verify('a', encoded), passwords.verify('b', encoded)]);
    expect(first).toEqual({ status: 'fulfilled', value: false });
    expect(second).toMatchObject({ status: 'rejected', reason: { code: 'RESOURCE_EXHAUSTED', retryAfterSeconds: 1 } });
  });

  it('never makes a thread-pool task wait behind password checks', async () => {
    // As many checks as libuv has pool threads: scrypt on the pool would hold all of them.
    const encoded = storedHash('right');
    const passwords = hasher({ maxQueued: POOL_SIZE, maxWaitMs: 60_000 });
    const events: string[] = [];
    const checks = Array.from({ length: POOL_SIZE }, (_, i) =>
      passwords.verify(`wrong-${i}`, encoded).then(
        () => events.push('password check'),
        () => events.push('password check'),
      ),
    );
    const tasks = Array.from({ length: 4 }, () => poolTask().then(() => events.push('pool task')));
    await Promise.all([...checks, ...tasks]);
    expect(events.slice(0, 4)).toEqual(['pool task', 'pool task', 'pool task', 'pool task']);
  });

  it('refuses checks after close', async () => {
    const passwords = createPasswordHasher();
    await passwords.verify('x', storedHash('y'));
    await passwords.close();
    await expect(passwords.verify('x', storedHash('y'))).rejects.toThrow('the password hasher is closed');
  });

  it('does not keep the process alive once its checks are done', async () => {
    const script = `
      import { createPasswordHasher } from './src/keys/password-hasher.ts';
      const passwords = createPasswordHasher();
      console.log(await passwords.verify('x', await passwords.hash('x')));`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '--eval', script],
      { timeout: 25_000 },
    );
    expect(stdout.trim()).toBe('true');
  });
});
