import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { messageOf, tooManyRequests } from '../errors.js';

/** OWASP's scrypt floor (N=2^17, r=8, p=1): 128 MiB and about 0.4 s of CPU per hash. */
const SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
const MAX_MEMORY = 256 * 1024 * 1024;
const KEY_LENGTH = 32;

/**
 * The worker's code: plain CommonJS evaluated from a string, because a worker
 * file would have to load under jest's ESM VM, tsx and compiled dist/ alike.
 * `scryptSync` keeps the work on the worker's own thread; the async `scrypt`
 * would run on libuv's thread pool, where jose verifies and signs the tokens
 * of every exchange. On Linux a thread id is a pid to setpriority(2), so the
 * thread can lower its own priority and leave a busy CPU to the main thread.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
try {
  const thread = require('node:fs').readlinkSync('/proc/thread-self'); // "<pid>/task/<tid>"
  require('node:os').setPriority(Number(thread.split('/').pop()), 19);
} catch {}
parentPort.on('message', ({ password, salt, N, r, p, keyLength, maxmem }) => {
  try {
    parentPort.postMessage({ key: scryptSync(password, salt, keyLength, { N, r, p, maxmem }) });
  } catch (error) {
    parentPort.postMessage({ error: String((error && error.message) || error) });
  }
});
`;

interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

type Reply = { key: Uint8Array } | { error: string };

/** One worker thread running one scrypt at a time; referenced only while it works. */
function startScryptThread(onExit: () => void) {
  // No inherited flags: --input-type=module or a loader would change how the source is read.
  const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
  worker.unref();
  let alive = true;
  let job: { resolve: (key: Buffer) => void; reject: (error: Error) => void } | undefined;
  const finish = (reply: Reply) => {
    const current = job;
    job = undefined;
    worker.unref();
    if ('key' in reply) current?.resolve(Buffer.from(reply.key.buffer, reply.key.byteOffset, reply.key.byteLength));
    else current?.reject(new Error(reply.error));
  };
  // An 'error' is always followed by 'exit'; either ends the thread.
  worker.on('message', finish);
  worker.on('error', (error) => {
    alive = false;
    finish({ error: messageOf(error) });
  });
  worker.on('exit', () => {
    alive = false;
    finish({ error: 'the password worker stopped' });
    onExit();
  });
  return {
    get alive() {
      return alive;
    },
    run(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
      if (!alive) return Promise.reject(new Error('the password worker stopped'));
      worker.ref();
      return new Promise((resolve, reject) => {
        job = { resolve, reject };
        // A copy of the salt: a Buffer may be a view of a shared pool, and postMessage would clone all of it.
        worker.postMessage({
          password,
          salt: new Uint8Array(salt),
          ...params,
          keyLength: KEY_LENGTH,
          maxmem: MAX_MEMORY,
        });
      });
    },
    stop: () => worker.terminate(),
  };
}

type ScryptThread = ReturnType<typeof startScryptThread>;

export interface PasswordHasherOptions {
  /** How many hashes run at once, each on a worker thread of its own (2). */
  readonly maxConcurrent?: number;
  /** How many more may wait for a thread (8); beyond that they are refused at once. */
  readonly maxQueued?: number;
  /** How long one may wait for a thread before it is refused (1 000 ms). */
  readonly maxWaitMs?: number;
}

export interface PasswordHasher {
  /** A new salted hash, `scrypt$N$r$p$salt$hash` with salt and hash in base64url. */
  hash(password: string): Promise<string>;
  /** Whether `password` is the one `encoded` was made from; false for anything not in that format. */
  verify(password: string, encoded: string, options?: { readonly priority?: boolean }): Promise<boolean>;
  /** Stops the worker threads and refuses whatever waits or comes later. */
  close(): Promise<void>;
}

/**
 * scrypt on at most `maxConcurrent` low-priority worker threads, so that a
 * flood of password guesses neither takes every core nor delays an exchange.
 * A call that finds every thread busy waits briefly in a bounded queue;
 * otherwise it is refused with RESOURCE_EXHAUSTED and a Retry-After of 1 s.
 */
export function createPasswordHasher(options: PasswordHasherOptions = {}): PasswordHasher {
  const { maxConcurrent = 2, maxQueued = 8, maxWaitMs = 1000 } = options;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw new TypeError('maxConcurrent must be at least 1');
  const threads = new Set<ScryptThread>();
  const idle: ScryptThread[] = [];
  const waiting: { admit: () => void; refuse: (error: Error) => void; priority: boolean }[] = [];
  let running = 0;
  let closed = false;

  const busy = () => tooManyRequests('password checks are busy; try again shortly', 1);
  const closedError = () => new Error('the password hasher is closed');

  /**
   * Resolves once this caller holds one of the `maxConcurrent` slots. A
   * priority caller waits ahead of the others and, when the queue is full,
   * takes the place of the newest ordinary waiter: a flood of guesses cannot
   * keep a caller with a clean record from being checked.
   */
  function acquire(priority: boolean): Promise<void> {
    if (closed) return Promise.reject(closedError());
    if (running < maxConcurrent) {
      running++;
      return Promise.resolve();
    }
    if (waiting.length >= maxQueued) {
      const displaced = priority ? waiting.findLastIndex((waiter) => !waiter.priority) : -1;
      if (displaced < 0) return Promise.reject(busy());
      waiting.splice(displaced, 1)[0]!.refuse(busy());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        priority,
        admit: () => {
          clearTimeout(timer);
          resolve();
        },
        refuse: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(busy());
      }, maxWaitMs);
      const firstOrdinary = waiting.findIndex((other) => !other.priority);
      if (priority && firstOrdinary >= 0) waiting.splice(firstOrdinary, 0, waiter);
      else waiting.push(waiter);
    });
  }

  /** Hands the slot to the longest waiter, if any. */
  function release(): void {
    const next = waiting.shift();
    if (next) next.admit();
    else running--;
  }

  function startThread(): ScryptThread {
    const thread = startScryptThread(() => {
      threads.delete(thread);
      if (idle.includes(thread)) idle.splice(idle.indexOf(thread), 1);
    });
    threads.add(thread);
    return thread;
  }

  async function derive(password: string, salt: Buffer, params: ScryptParams, priority = false): Promise<Buffer> {
    await acquire(priority);
    const thread = idle.pop() ?? startThread();
    try {
      return await thread.run(password, salt, params);
    } finally {
      if (thread.alive && !closed) idle.push(thread);
      release();
    }
  }

  return {
    async hash(password) {
      const salt = randomBytes(16);
      const key = await derive(password, salt, SCRYPT);
      return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
    },

    async verify(password, encoded, { priority = false } = {}) {
      const [scheme, n, r, p, salt, hash] = encoded.split('$');
      if (scheme !== 'scrypt' || !salt || !hash) return false;
      const expected = Buffer.from(hash, 'base64url');
      const params = { N: Number(n), r: Number(r), p: Number(p) };
      const key = await derive(password, Buffer.from(salt, 'base64url'), params, priority);
      return key.length === expected.length && timingSafeEqual(key, expected);
    },

    async close() {
      closed = true;
      for (const waiter of waiting.splice(0)) waiter.refuse(closedError());
      await Promise.all([...threads].map((thread) => thread.stop()));
    },
  };
}
