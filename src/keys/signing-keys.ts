import { createPrivateKey, randomUUID } from 'node:crypto';
import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';
import type { TokenSigningAlg } from '../config.js';
import type { AccessTokenClaims, ConsoleSessionClaims } from '../domain/access-token.js';
import type { TokenSigner } from '../domain/exchange.js';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../domain/m2m-config.js';
import { createJwsSigner, jwsKey } from './jws-node-crypto.js';
import { decryptPrivateKey, encryptPrivateKey } from './key-encryption.js';

export interface StoredSigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly publicJwk: JWK;
  readonly encryptedPrivateKey: string;
  readonly createdAt: Date;
  readonly retiredAt: Date | null;
}

export interface SigningKeyStore {
  list(): Promise<StoredSigningKey[]>;
  /**
   * Runs `change` while holding the cluster-wide key lock, then stores what it
   * returns: at most one new key, and the kids it retires.
   */
  update(
    change: (keys: StoredSigningKey[]) => Promise<{ add?: StoredSigningKey; retire: string[] }>,
    retiredAt: Date,
  ): Promise<void>;
}

export interface KeyRingOptions {
  readonly store: SigningKeyStore;
  readonly keyEncryptionKey: Buffer;
  readonly alg: TokenSigningAlg;
  readonly now: () => Date;
  readonly clockSkewSeconds: number;
  /** How soon an unknown kid may make the keys be read again (1 s). */
  readonly reloadCooldownMs?: number;
  /** A monotonic clock in milliseconds, for that cooldown. */
  readonly monotonicMs?: () => number;
}

/** An RFC 7638 SHA-256 thumbprint, as every kid of this gateway is: anything else is not worth a reload. */
const THUMBPRINT = /^[\w-]{43}$/;

/**
 * Runs `task` on demand, at most once per `cooldownMs`; callers that ask
 * before a run starts share it. Each caller's promise settles with a run
 * that started after it asked, so what that run read is at least as new as
 * the caller's question.
 */
export function onDemand(task: () => Promise<void>, cooldownMs: number, monotonicMs: () => number) {
  let latest: Promise<void> = Promise.resolve();
  let waiting: Promise<void> | undefined;
  let lastStart = -Infinity;
  return (): Promise<void> => {
    waiting ??= (async () => {
      await latest.catch(() => undefined);
      const wait = lastStart + cooldownMs - monotonicMs();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait).unref());
      waiting = undefined;
      lastStart = monotonicMs();
      latest = task();
      return latest;
    })();
    return waiting;
  };
}

interface PublishedKey {
  readonly jwk: JWK;
  readonly key: CryptoKey;
  /** After this, no token it signed can still be live (docs/reference.md §3.6). */
  readonly publishedUntil: number;
}

/**
 * The gateway's signing keys, shared by every replica through the database.
 * The active key signs; every key whose tokens may still be live is published
 * in the JWKS and accepted on the admin API.
 */
export function createKeyRing(options: KeyRingOptions) {
  const { store, keyEncryptionKey, alg, now } = options;
  let active: { kid: string; alg: string; createdAt: Date; sign: (payload: string) => Promise<string> } | undefined;
  let published = new Map<string, PublishedKey>();
  /** Reloads may overlap (the change feed, a rotation, an unknown kid); an older read never replaces a newer one. */
  let reloadsStarted = 0;
  let reloadApplied = 0;
  const retention = (MAX_TOKEN_LIFETIME_SECONDS + options.clockSkewSeconds) * 1000;

  /**
   * A new key of this replica's algorithm. When keys exist, one of them (of
   * any algorithm) is decrypted first: a replica given the wrong
   * KEY_ENCRYPTION_KEY and an algorithm with no key yet would otherwise store
   * a key that no correctly configured replica can read, and those would then
   * fail to start.
   *
   * @throws Error when an existing key cannot be decrypted with KEY_ENCRYPTION_KEY
   */
  async function createKey(existing: readonly StoredSigningKey[]): Promise<StoredSigningKey> {
    const [proof] = existing;
    if (proof) decryptPrivateKey(keyEncryptionKey, proof.kid, proof.encryptedPrivateKey);
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    const publicJwk = { ...jwk, kid, alg, use: 'sig' };
    const encryptedPrivateKey = encryptPrivateKey(keyEncryptionKey, kid, await exportPKCS8(privateKey));
    return { kid, alg, publicJwk, encryptedPrivateKey, createdAt: now(), retiredAt: null };
  }

  const current = (keys: StoredSigningKey[]) =>
    keys.filter((key) => key.retiredAt === null && key.alg === alg).sort((a, b) => +b.createdAt - +a.createdAt)[0];

  /**
   * Loads every key and signs with the newest active one of this replica's
   * algorithm, creating it when there is none: on first start, after
   * TOKEN_SIGNING_ALG changed, or after another replica rotated. Keys of
   * other algorithms are left active, since replicas still configured for
   * them sign with them during a rolling change; the next rotation retires them.
   */
  async function reload(): Promise<void> {
    const generation = ++reloadsStarted;
    let keys = await store.list();
    if (!current(keys)) {
      await store.update(
        async (locked) => (current(locked) ? { retire: [] } : { add: await createKey(locked), retire: [] }),
        now(),
      );
      keys = await store.list();
    }
    const signing = current(keys)!;
    const nextPublished = new Map<string, PublishedKey>();
    for (const key of keys) {
      const publishedUntil = key.retiredAt ? key.retiredAt.getTime() + retention : Infinity;
      if (publishedUntil <= now().getTime()) continue;
      const reuse = published.get(key.kid);
      nextPublished.set(
        key.kid,
        reuse ?? { jwk: key.publicJwk, key: (await importJWK(key.publicJwk, key.alg)) as CryptoKey, publishedUntil },
      );
    }
    // Its creation time as stored, which decides when it is due for rotation.
    let nextActive = active && { ...active, createdAt: signing.createdAt };
    if (active?.kid !== signing.kid) {
      const pem = decryptPrivateKey(keyEncryptionKey, signing.kid, signing.encryptedPrivateKey);
      nextActive = {
        kid: signing.kid,
        alg: signing.alg,
        createdAt: signing.createdAt,
        sign: createJwsSigner(jwsKey(createPrivateKey(pem), signing.alg, 'private'), {
          alg: signing.alg,
          kid: signing.kid,
          typ: 'JWT',
        }),
      };
    }
    if (generation < reloadApplied) return;
    reloadApplied = generation;
    active = nextActive;
    published = nextPublished;
  }

  /**
   * A new active key when `due` says so of the newest active key of this
   * replica's algorithm, decided under the cluster-wide key lock, so that of
   * several replicas deciding at once only the first rotates. Every other
   * active key, of any algorithm, is retired: it stays published until its
   * tokens have expired.
   */
  async function rotateWhen(due: (newest: StoredSigningKey | undefined) => boolean): Promise<string | undefined> {
    let kid: string | undefined;
    await store.update(async (keys) => {
      if (!due(current(keys))) return { retire: [] };
      const add = await createKey(keys);
      kid = add.kid;
      return { add, retire: keys.filter((k) => k.retiredAt === null).map((k) => k.kid) };
    }, now());
    if (kid !== undefined) await reload();
    return kid;
  }

  const olderThan = (maxAgeMs: number) => (key: { createdAt: Date } | undefined) =>
    key === undefined || now().getTime() - key.createdAt.getTime() >= maxAgeMs;

  const reloadOnDemand = onDemand(
    reload,
    options.reloadCooldownMs ?? 1000,
    options.monotonicMs ?? performance.now.bind(performance),
  );

  const publishedKey = (kid: unknown): CryptoKey | undefined => {
    const key = typeof kid === 'string' ? published.get(kid) : undefined;
    return key && key.publishedUntil > now().getTime() ? key.key : undefined;
  };

  return {
    /** Makes sure an active key of the configured algorithm exists and is loaded. */
    ensureActiveKey: reload,

    /** A new active key; the old ones, of every algorithm, stay published until their tokens have expired. */
    async rotate(): Promise<string> {
      return (await rotateWhen(() => true))!;
    },

    /**
     * Rotates when the newest active key of this replica's algorithm is
     * `maxAgeMs` old (SIGNING_KEY_ROTATION). Cheap when it is not: the loaded
     * key is looked at first, and the database only when it looks due.
     *
     * @returns the new kid, or undefined when no rotation was due
     */
    async rotateIfOlderThan(maxAgeMs: number): Promise<string | undefined> {
      if (!olderThan(maxAgeMs)(active)) return undefined;
      const kid = await rotateWhen(olderThan(maxAgeMs));
      // Another replica rotated first: sign with its key now rather than at the next reload.
      if (kid === undefined) await reload();
      return kid;
    },

    reload,

    jwks(): { keys: JWK[] } {
      const at = now().getTime();
      return { keys: [...published.values()].filter((k) => k.publishedUntil > at).map((k) => k.jwk) };
    },

    /** The public key for a kid that is still published. */
    verificationKey: publishedKey,

    /**
     * The public key for a kid that is still published, reading the keys
     * again when the kid is not known: another replica may have rotated a
     * moment ago, and its tokens must be accepted here at once, not after
     * the change feed's reload (docs/operator-guide.md). The reads are
     * shared and at most one a second (`reloadCooldownMs`), so tokens with
     * made-up kids cannot load the database; a token with a real new kid
     * waits for the next read rather than being refused.
     */
    async findVerificationKey(kid: unknown): Promise<CryptoKey | undefined> {
      const key = publishedKey(kid);
      if (key || typeof kid !== 'string' || !THUMBPRINT.test(kid)) return key;
      await reloadOnDemand();
      return publishedKey(kid);
    },

    /** Whether a signing key is loaded (readiness). */
    get hasActiveKey(): boolean {
      return active !== undefined;
    },

    get publishedAlgs(): string[] {
      return [...new Set([...published.values()].map((k) => k.jwk.alg!))];
    },

    signer: {
      /**
       * A JWS of the claims (RFC 7519 §7.1), signed with node:crypto on the
       * crypto thread (src/keys/crypto-thread.ts). Not jose's SignJWT: the domain builds and types the claims, and
       * SignJWT's structuredClone of them cost more than anything but the signature.
       */
      async sign(claims: AccessTokenClaims | ConsoleSessionClaims) {
        const key = active!;
        return { token: await key.sign(JSON.stringify(claims)), kid: key.kid, alg: key.alg };
      },
    } satisfies TokenSigner,
  };
}

export type KeyRing = ReturnType<typeof createKeyRing>;

export const newJti = (): string => randomUUID();
