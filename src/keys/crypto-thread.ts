import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { messageOf } from '../errors.js';

/**
 * The thread's code: plain CommonJS evaluated from a string, as the password
 * worker's (src/keys/password-hasher.ts), so that it loads alike under jest,
 * tsx and dist/. Keys arrive once each; jobs name them by number. Data and
 * signatures travel as strings: a small Buffer is a view of Node's shared
 * 8 KiB pool, and postMessage would copy all of it.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { sign, verify } = require('node:crypto');
const keys = new Map();
parentPort.on('message', (message) => {
  if (message.forget !== undefined) return void keys.delete(message.forget);
  if (message.key !== undefined) return void keys.set(message.keyId, message.key);
  const { id, hash, data, keyId, options, signature } = message;
  try {
    const key = keys.get(keyId);
    const withKey = options ? { ...options, key } : key;
    const signed = Buffer.from(data, 'latin1');
    const result = signature === undefined
      ? sign(hash, signed, withKey).toString('base64url')
      : verify(hash, signed, withKey, Buffer.from(signature, 'base64url'));
    parentPort.postMessage({ id, result });
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) });
  }
});
`;

/** node:crypto's options beside the key: RSA-PSS padding and salt, ECDSA's signature encoding. */
export interface SignatureOptions {
  readonly padding?: number;
  readonly saltLength?: number;
  readonly dsaEncoding?: 'der' | 'ieee-p1363';
}

export interface CryptoThread {
  /** node:crypto `sign` of `data` (latin1), the signature in base64url. */
  sign(hash: string | null, data: string, key: KeyObject, options?: SignatureOptions): Promise<string>;
  /** node:crypto `verify` of `data` (latin1) against a base64url signature. */
  verify(
    hash: string | null,
    data: string,
    key: KeyObject,
    signature: string,
    options?: SignatureOptions,
  ): Promise<boolean>;
  /** Ends the thread; what it was doing, and whatever comes later, is refused with CryptoThreadError. */
  close(): Promise<void>;
}

/**
 * The thread, not the job, failed: it stopped, or it was closed.
 * Not a verdict on a token or a key, which node:crypto's own errors are.
 */
export class CryptoThreadError extends Error {
  override readonly name = 'CryptoThreadError';
}

interface Job {
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
}

interface Thread {
  readonly worker: Worker;
  readonly jobs: Map<number, Job>;
  /** The ids of the keys this thread holds. */
  readonly keys: Set<number>;
}

/**
 * Signatures and verifications on a worker thread of their own, beside the
 * main thread that serves HTTP (docs/performance.md, lever 6). Not libuv's
 * thread pool, which node:crypto's callback forms use: strangers can queue
 * work there (the inflation of a compressed request body, DNS lookups) that
 * exchanges would wait behind, as docs/reference.md §2 already rules for
 * password checks. A thread that dies fails its jobs and is replaced by the
 * next job.
 *
 * One thread: one main thread spends about three times as long on an
 * exchange as the arithmetic takes, so it keeps about a third of one thread
 * busy, and a second thread only adds hand-offs (measured: 0.88× the CPU per
 * exchange and 1.14× the exchanges/s with one thread than with two).
 */
export function createCryptoThread(): CryptoThread {
  let thread: Thread | undefined;
  const keyIds = new WeakMap<KeyObject, number>();
  /** A key no longer referenced here is dropped by the thread too (keys are replaced on rotation and JWKS refresh). */
  const forgotten = new FinalizationRegistry<number>((keyId) => {
    if (thread?.keys.delete(keyId)) thread.worker.postMessage({ forget: keyId });
  });
  let nextKeyId = 0;
  let nextJobId = 0;
  let closed = false;

  function start(): Thread {
    // No inherited flags: --input-type=module or a loader would change how the source is read.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
    worker.unref();
    const started: Thread = { worker, jobs: new Map(), keys: new Set() };
    worker.on('message', ({ id, result, error }: { id: number; result?: unknown; error?: string }) => {
      const job = started.jobs.get(id);
      started.jobs.delete(id);
      // Referenced only while it works: an idle thread never keeps the process alive.
      if (started.jobs.size === 0) worker.unref();
      if (error === undefined) job?.resolve(result);
      else job?.reject(new Error(error));
    });
    const fail = (reason: string) => {
      if (thread === started) thread = undefined;
      for (const job of started.jobs.values()) job.reject(new CryptoThreadError(reason));
      started.jobs.clear();
    };
    // An 'error' is always followed by 'exit'.
    worker.on('error', (error) => fail(`the crypto thread failed: ${messageOf(error)}`));
    worker.on('exit', () => fail('the crypto thread stopped'));
    return started;
  }

  function run<T>(key: KeyObject, job: Record<string, unknown>): Promise<T> {
    if (closed) return Promise.reject(new CryptoThreadError('the crypto thread is closed'));
    const current = (thread ??= start());
    let keyId = keyIds.get(key);
    if (keyId === undefined) {
      keyIds.set(key, (keyId = nextKeyId++));
      forgotten.register(key, keyId);
    }
    if (!current.keys.has(keyId)) {
      current.worker.postMessage({ keyId, key });
      current.keys.add(keyId);
    }
    const id = nextJobId++;
    if (current.jobs.size === 0) current.worker.ref();
    return new Promise<T>((resolve, reject) => {
      current.jobs.set(id, { resolve: resolve as (result: unknown) => void, reject });
      try {
        current.worker.postMessage({ ...job, id, keyId });
      } catch (error) {
        // A job that never reached the thread must not stay in hand, or the thread would stay referenced.
        current.jobs.delete(id);
        if (current.jobs.size === 0) current.worker.unref();
        reject(error as Error);
      }
    });
  }

  return {
    sign: (hash, data, key, options) => run(key, { hash, data, options }),
    verify: (hash, data, key, signature, options) => run(key, { hash, data, options, signature }),
    async close() {
      closed = true;
      await thread?.worker.terminate();
    },
  };
}
