import type { JWK } from 'jose';
import type { SigningKeyStore, StoredSigningKey } from '../keys/signing-keys.js';
import type { Database } from './prisma.js';

/** Serialises key creation and rotation across replicas (any constant distinct from Prisma's 72707369). */
const SIGNING_KEY_LOCK = 72707370;

const toKey = (row: {
  kid: string;
  alg: string;
  publicJwk: unknown;
  encryptedPrivateKey: string;
  createdAt: Date;
  retiredAt: Date | null;
}): StoredSigningKey => ({ ...row, publicJwk: row.publicJwk as JWK });

export function createSigningKeyRepository(db: Database): SigningKeyStore {
  return {
    async list() {
      return (await db.signingKey.findMany({ orderBy: { createdAt: 'asc' } })).map(toKey);
    },

    async update(change, retiredAt) {
      await db.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT pg_advisory_xact_lock(${SIGNING_KEY_LOCK})::text`;
        const { add, retire } = await change((await tx.signingKey.findMany()).map(toKey));
        if (retire.length > 0) await tx.signingKey.updateMany({ where: { kid: { in: retire } }, data: { retiredAt } });
        if (add) {
          await tx.signingKey.create({
            data: { ...add, publicJwk: add.publicJwk as object, retiredAt: add.retiredAt },
          });
        }
      });
    },
  };
}
