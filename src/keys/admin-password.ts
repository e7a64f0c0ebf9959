import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ADMIN_USERNAME } from '../domain/principal.js';
import type { PasswordHasher } from './password-hasher.js';

/** Where the admin's password hash lives (only the hash is ever stored, docs/reference.md §2). */
export interface AdminCredentialStore {
  getHash(username: string): Promise<string | undefined>;
  setHash(username: string, hash: string): Promise<void>;
  /** @returns false when a hash was already stored (another replica won the race) */
  insertHash(username: string, hash: string): Promise<boolean>;
}

/** What the admin password needs of a hasher (src/keys/password-hasher.ts). */
export type PasswordHashing = Pick<PasswordHasher, 'hash' | 'verify'>;

/**
 * Makes sure the admin has a password. ADMIN_PASSWORD, when set, is the
 * password from now on; otherwise the stored hash is kept, and on the very
 * first start a random password is generated.
 *
 * @returns the generated password, which the caller prints once; undefined otherwise
 */
export async function bootstrapAdminPassword(
  store: AdminCredentialStore,
  passwords: PasswordHashing,
  configured: string | undefined,
): Promise<string | undefined> {
  if (configured !== undefined) {
    const stored = await store.getHash(ADMIN_USERNAME);
    if (!stored || !(await passwords.verify(configured, stored))) {
      await store.setHash(ADMIN_USERNAME, await passwords.hash(configured));
    }
    return undefined;
  }
  if (await store.getHash(ADMIN_USERNAME)) return undefined;
  const generated = randomBytes(18).toString('base64url');
  return (await store.insertHash(ADMIN_USERNAME, await passwords.hash(generated))) ? generated : undefined;
}

/**
 * Checks admin credentials against the stored hash. scrypt is deliberately
 * slow, so a password once proven is remembered by its SHA-256 (in memory
 * only) until the stored hash changes.
 */
export function createAdminPasswordVerifier(store: AdminCredentialStore, passwords: PasswordHashing) {
  let proven: { hash: string; digest: Buffer } | undefined;
  return async function verifyAdmin(username: string, password: string, priority = false): Promise<boolean> {
    const stored = username === ADMIN_USERNAME ? await store.getHash(username) : undefined;
    const digest = createHash('sha256').update(password).digest();
    if (!stored) return false;
    if (proven?.hash === stored) return timingSafeEqual(proven.digest, digest);
    if (!(await passwords.verify(password, stored, { priority }))) return false;
    proven = { hash: stored, digest };
    return true;
  };
}

/**
 * What a console session signed in with the password is bound to: a digest of
 * the stored hash, so that a new admin password ends every such session.
 */
export async function adminCredentialFingerprint(store: AdminCredentialStore): Promise<string | undefined> {
  const stored = await store.getHash(ADMIN_USERNAME);
  return stored && createHash('sha256').update(`console-session\0${stored}`).digest('base64url');
}
