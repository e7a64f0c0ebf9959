import type { ReplayGuard } from '../domain/exchange.js';
import type { Database } from './prisma.js';

/**
 * Single-use ID tokens in PostgreSQL, so that every replica agrees: a token
 * is claimed by the one INSERT that finds no row for its issuer and jti.
 */
export function createUsedTokenRepository(db: Database): ReplayGuard & { forgetExpired(now: Date): Promise<number> } {
  return {
    async claimOnce(issuer, jti, forgetAfter) {
      const inserted = await db.$executeRaw`
        INSERT INTO "used_id_tokens" (issuer, jti, expires_at) VALUES (${issuer}, ${jti}, ${forgetAfter})
        ON CONFLICT DO NOTHING`;
      return inserted === 1;
    },

    async isClaimed(issuer, jti) {
      return (await db.usedIdToken.count({ where: { issuer, jti } })) > 0;
    },

    /** Deletes the ids of tokens that no clock accepts any more. */
    async forgetExpired(now) {
      return (await db.usedIdToken.deleteMany({ where: { expiresAt: { lt: now } } })).count;
    },
  };
}
