import { createHash } from 'node:crypto';
import type { ReplayGuard } from '../domain/exchange.js';
import type { Database } from './prisma.js';

/**
 * A jti as stored: the SHA-256 of its UTF-16 code units, so that whatever an
 * issuer puts there (NUL, lone surrogates, kilobytes) has one fixed-size,
 * storable form, and no two ids that UTF-8 would make equal can collide.
 */
const digest = (jti: string) => createHash('sha256').update(Buffer.from(jti, 'utf16le')).digest('hex');

/**
 * Single-use ID tokens in PostgreSQL, so that every replica agrees: a token
 * is claimed by the one INSERT that finds no row for its issuer and jti.
 */
export function createUsedTokenRepository(db: Database): ReplayGuard & { forgetExpired(now: Date): Promise<number> } {
  return {
    async claimOnce(issuer, jti, forgetAfter) {
      const inserted = await db.$executeRaw`
        INSERT INTO "used_id_tokens" (issuer, jti, expires_at) VALUES (${issuer}, ${digest(jti)}, ${forgetAfter})
        ON CONFLICT DO NOTHING`;
      return inserted === 1;
    },

    async isClaimed(issuer, jti) {
      return (await db.usedIdToken.count({ where: { issuer, jti: digest(jti) } })) > 0;
    },

    /** Deletes the ids of tokens that no clock accepts any more. */
    async forgetExpired(now) {
      return (await db.usedIdToken.deleteMany({ where: { expiresAt: { lt: now } } })).count;
    },
  };
}
