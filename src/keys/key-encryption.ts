import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Private signing keys at rest: AES-256-GCM under KEY_ENCRYPTION_KEY, with the
 * key id as additional data so that a ciphertext cannot be moved to another
 * row. Format: `v1.<iv>.<tag>.<ciphertext>`, base64url parts.
 */
export function encryptPrivateKey(kek: Buffer, kid: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv).setAAD(Buffer.from(kid));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), ciphertext]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

/** @throws Error when the key encryption key is not the one the key was stored with */
export function decryptPrivateKey(kek: Buffer, kid: string, encoded: string): string {
  const [version, iv, tag, ciphertext] = encoded.split('.');
  if (version !== 'v1' || !iv || !tag || ciphertext === undefined)
    throw new Error(`signing key ${kid} has an unknown format`);
  const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(iv, 'base64url'))
    .setAAD(Buffer.from(kid))
    .setAuthTag(Buffer.from(tag, 'base64url'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  } catch (error) {
    throw new Error(`signing key ${kid} cannot be decrypted: is KEY_ENCRYPTION_KEY the one it was stored with?`, {
      cause: error,
    });
  }
}
