import { randomUUID } from 'node:crypto';
import {
  CompactSign,
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  importPKCS8,
  type CryptoKey,
  type JWK,
  type CompactJWSHeaderParameters,
} from 'jose';
import type { TokenSigningAlg } from '../config.js';
import type { AccessTokenClaims } from '../domain/access-token.js';
import type { TokenSigner } from '../domain/exchange.js';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../domain/m2m-config.js';
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
}

const utf8 = new TextEncoder();

interface PublishedKey {
  readonly jwk: JWK;
  readonly key: CryptoKey;
  /** After this, no token it signed can still be live (SPEC §3.6). */
  readonly publishedUntil: number;
}

/**
 * The gateway's signing keys, shared by every replica through the database.
 * The active key signs; every key whose tokens may still be live is published
 * in the JWKS and accepted on the admin API.
 */
export function createKeyRing(options: KeyRingOptions) {
  const { store, keyEncryptionKey, alg, now } = options;
  let active: { kid: string; alg: string; privateKey: CryptoKey; header: CompactJWSHeaderParameters } | undefined;
  let published = new Map<string, PublishedKey>();
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
    if (active?.kid !== signing.kid) {
      const pem = decryptPrivateKey(keyEncryptionKey, signing.kid, signing.encryptedPrivateKey);
      active = {
        kid: signing.kid,
        alg: signing.alg,
        privateKey: await importPKCS8(pem, signing.alg),
        header: { alg: signing.alg, kid: signing.kid, typ: 'JWT' },
      };
    }
    published = nextPublished;
  }

  return {
    /** Makes sure an active key of the configured algorithm exists and is loaded. */
    ensureActiveKey: reload,

    /** A new active key; the old ones, of every algorithm, stay published until their tokens have expired. */
    async rotate(): Promise<string> {
      let kid = '';
      await store.update(async (keys) => {
        const add = await createKey(keys);
        kid = add.kid;
        return { add, retire: keys.filter((k) => k.retiredAt === null).map((k) => k.kid) };
      }, now());
      await reload();
      return kid;
    },

    reload,

    jwks(): { keys: JWK[] } {
      const at = now().getTime();
      return { keys: [...published.values()].filter((k) => k.publishedUntil > at).map((k) => k.jwk) };
    },

    /** The public key for a kid that is still published. */
    verificationKey(kid: unknown): CryptoKey | undefined {
      const key = typeof kid === 'string' ? published.get(kid) : undefined;
      return key && key.publishedUntil > now().getTime() ? key.key : undefined;
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
       * A JWS of the claims (RFC 7519 §7.1). CompactSign rather than SignJWT:
       * the domain builds and types the claims, and SignJWT's structuredClone
       * of them was the largest cost of minting after the signature itself.
       */
      async sign(claims: AccessTokenClaims) {
        const key = active!;
        const token = await new CompactSign(utf8.encode(JSON.stringify(claims)))
          .setProtectedHeader(key.header)
          .sign(key.privateKey);
        return { token, kid: key.kid, alg: key.alg };
      },
    } satisfies TokenSigner,
  };
}

export type KeyRing = ReturnType<typeof createKeyRing>;

export const newJti = (): string => randomUUID();
