import type { AdminCredentialStore } from '../keys/admin-password.js';
import type { Database } from './prisma.js';

export function createAdminCredentialRepository(db: Database): AdminCredentialStore {
  return {
    async getHash(username) {
      return (await db.adminCredential.findUnique({ where: { username } }))?.passwordHash;
    },
    async setHash(username, passwordHash) {
      await db.adminCredential.upsert({
        where: { username },
        create: { username, passwordHash },
        update: { passwordHash },
      });
    },
    async insertHash(username, passwordHash) {
      const { count } = await db.adminCredential.createMany({
        data: [{ username, passwordHash }],
        skipDuplicates: true,
      });
      return count === 1;
    },
  };
}
