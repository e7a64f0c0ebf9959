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
    expect(await used.isClaimed('https://a', 'expired')).toBe(false);
    expect(await used.isClaimed('https://a', 'live')).toBe(true);
    expect(await used.isClaimed('https://b', 'live')).toBe(true);
    const rows = await query<{ jti: string }>(gateway.database.url, 'SELECT jti FROM used_id_tokens');
    expect(rows.map((row) => row.jti)).toEqual([
      expect.stringMatching(/^[0-9a-f]{64}$/),
      expect.stringMatching(/^[0-9a-f]{64}$/),
    ]);
  });

  it('store any jti, and never mistake one for another that UTF-8 would make equal', async () => {
    const used = createUsedTokenRepository(database.db);
    const later = new Date(Date.now() + 60_000);
    for (const jti of ['a\u0000b', '\ud800', '\udbff', '\ufffd', 'x'.repeat(20_000)]) {
      expect(await used.claimOnce('https://c', jti, later)).toBe(true);
    }
    expect(await used.claimOnce('https://c', '\ud800', later)).toBe(false);
  });
});
