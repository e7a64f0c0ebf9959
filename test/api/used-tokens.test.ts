import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createDatabase } from '../../src/db/prisma.js';
import { createUsedTokenRepository } from '../../src/db/used-token-repository.js';
import { query } from '../fixtures/sql.js';
import { startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let gateway: TestGateway;
let database: ReturnType<typeof createDatabase>;

beforeAll(async () => {
  gateway = await startTestGateway();
  database = createDatabase(gateway.database.url);
});

afterAll(async () => {
  await database.db.$disconnect();
  await gateway.close();
  await gateway.database.drop();
});

describe('single-use ids in PostgreSQL', () => {
  it('are claimed once, and forgotten once no clock can accept their token', async () => {
    const used = createUsedTokenRepository(database.db);
    const now = new Date('2026-12-02T12:00:00Z');
    expect(await used.claimOnce('https://a', 'expired', new Date(now.getTime() - 1000))).toBe(true);
    expect(await used.claimOnce('https://a', 'live', new Date(now.getTime() + 60_000))).toBe(true);
    expect(await used.claimOnce('https://a', 'live', new Date(now.getTime() + 60_000))).toBe(false);
    expect(await used.claimOnce('https://b', 'live', new Date(now.getTime() + 60_000))).toBe(true);
    expect(await used.isClaimed('https://a', 'expired')).toBe(true);

    expect(await used.forgetExpired(now)).toBe(1);
    const rows = await query<{ issuer: string; jti: string }>(
      gateway.database.url,
      'SELECT issuer, jti FROM used_id_tokens ORDER BY issuer, jti',
    );
    expect(rows).toEqual([
      { issuer: 'https://a', jti: 'live' },
      { issuer: 'https://b', jti: 'live' },
    ]);
  });
});
