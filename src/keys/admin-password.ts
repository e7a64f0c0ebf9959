import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** Where the admin's password hash lives (only the hash is ever stored, SPEC §2). */
export interface AdminCredentialStore {
  getHash(username: string): Promise<string | undefined>;
  setHash(username: string, hash: string): Promise<void>;
  /** @returns false when a hash was already stored (another replica won the race) */
  insertHash(username: string, hash: string): Promise<boolean>;
}

export const ADMIN_USERNAME = 'admin';

/** OWASP's scrypt floor (N=2^17, r=8, p=1). */
const SCRYPT = { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 } as const;
const KEY_LENGTH = 32;

const derive = (password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LENGTH, options, (error, key) => (error ? reject(error) : resolve(key))),
  );

/** `scrypt$N$r$p$salt$hash`, salt and hash in base64url. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = encoded.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await derive(password, Buffer.from(salt, 'base64url'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: SCRYPT.maxmem,
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * Makes sure the admin has a password. ADMIN_PASSWORD, when set, is the
 * password from now on; otherwise the stored hash is kept, and on the very
 * first start a random password is generated.
 *
 * @returns the generated password, which the caller prints once; undefined otherwise
 */
export async function bootstrapAdminPassword(
  store: AdminCredentialStore,
  configured: string | undefined,
): Promise<string | undefined> {
  if (configured !== undefined) {
    const stored = await store.getHash(ADMIN_USERNAME);
    if (!stored || !(await verifyPassword(configured, stored))) {
      await store.setHash(ADMIN_USERNAME, await hashPassword(configured));
    }
    return undefined;
  }
  if (await store.getHash(ADMIN_USERNAME)) return undefined;
  const generated = randomBytes(18).toString('base64url');
  return (await store.insertHash(ADMIN_USERNAME, await hashPassword(generated))) ? generated : undefined;
}

/**
 * Checks admin credentials against the stored hash. scrypt is deliberately
 * slow, so a password once proven is remembered by its SHA-256 (in memory
 * only) until the stored hash changes.
 */
export function createAdminPasswordVerifier(store: AdminCredentialStore) {
  let proven: { hash: string; digest: Buffer } | undefined;
  return async function verifyAdmin(username: string, password: string): Promise<boolean> {
    const stored = username === ADMIN_USERNAME ? await store.getHash(username) : undefined;
    const digest = createHash('sha256').update(password).digest();
    if (!stored) return false;
    if (proven?.hash === stored) return timingSafeEqual(proven.digest, digest);
    if (!(await verifyPassword(password, stored))) return false;
    proven = { hash: stored, digest };
    return true;
  };
}
