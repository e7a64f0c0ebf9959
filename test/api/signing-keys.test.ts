import { afterAll, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import pg from 'pg';
import request from 'supertest';
import { startFakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa } from '../fixtures/test-ca.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/test-database.js';
import { KEY_ENCRYPTION_KEY, startTestGateway, trustIssuer } from '../fixtures/test-gateway.js';

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const database of databases) await database.drop();
});

async function storedKeys(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (
      await client.query('SELECT kid, alg, encrypted_private_key, retired_at FROM signing_keys ORDER BY created_at')
    ).rows;
  } finally {
    await client.end();
  }
}

describe('signing keys', () => {
  it.each([
    ['ES256', 'EC'],
    ['RS256', 'RSA'],
    ['EdDSA', 'OKP'],
  ])('signs with TOKEN_SIGNING_ALG=%s', async (alg, kty) => {
    const ca = await createTestCa();
    const database = await createTestDatabase();
    databases.push(database);
    const issuer = await startFakeIssuer(ca);
    const gateway = await startTestGateway({ TOKEN_SIGNING_ALG: alg }, { ca, database });
    try {
      await trustIssuer(gateway, issuer.issuer, { sub: '.*', role: 'None' });
      const { body } = await request(gateway.app)
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: await issuer.sign({ sub: 'x' }) })
        .expect(200);
      const header = decodeProtectedHeader(body.accessToken);
      expect(header.alg).toBe(alg);
      const jwks = (await request(gateway.app).get('/.well-known/jwks.json').expect(200)).body;
      expect(jwks.keys).toEqual([expect.objectContaining({ kty, alg, kid: header.kid, use: 'sig' })]);
      expect(jwks.keys[0]).not.toHaveProperty('d');
    } finally {
      await gateway.close();
      await issuer.close();
    }
  });

  it('stores private keys encrypted, keeps them across restarts, and refuses the wrong key encryption key', async () => {
    const ca = await createTestCa();
    const database = await createTestDatabase();
    databases.push(database);
    const first = await startTestGateway({}, { ca, database });
    const kid = first.keyRing.jwks().keys[0]!.kid;
    await first.close();

    const [row] = await storedKeys(database.url);
    expect(row.kid).toBe(kid);
    expect(row.encrypted_private_key).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(row.encrypted_private_key).not.toContain('PRIVATE KEY');

    const second = await startTestGateway({}, { ca, database });
    expect(second.keyRing.jwks().keys.map((k) => k.kid)).toEqual([kid]);
    await second.close();

    const wrongKey = Buffer.alloc(32, 1).toString('base64');
    expect(wrongKey).not.toBe(KEY_ENCRYPTION_KEY);
    await expect(startTestGateway({ KEY_ENCRYPTION_KEY: wrongKey }, { ca, database })).rejects.toThrow(
      `signing key ${kid} cannot be decrypted: is KEY_ENCRYPTION_KEY the one it was stored with?`,
    );
  });

  it('refuses to create a key for a new algorithm under the wrong key encryption key', async () => {
    const ca = await createTestCa();
    const database = await createTestDatabase();
    databases.push(database);
    const first = await startTestGateway({ TOKEN_SIGNING_ALG: 'ES256' }, { ca, database });
    const kid = first.keyRing.jwks().keys[0]!.kid;
    await first.close();

    // A key of its own algorithm would never be decrypted, so the replica must prove its key on another's.
    const wrongKey = Buffer.alloc(32, 1).toString('base64');
    await expect(
      startTestGateway({ TOKEN_SIGNING_ALG: 'EdDSA', KEY_ENCRYPTION_KEY: wrongKey }, { ca, database }),
    ).rejects.toThrow(`signing key ${kid} cannot be decrypted: is KEY_ENCRYPTION_KEY the one it was stored with?`);
    expect((await storedKeys(database.url)).map((row) => row.alg)).toEqual(['ES256']);
  });

  it('keeps the old algorithm signing during a rolling change of TOKEN_SIGNING_ALG, until the next rotation', async () => {
    const ca = await createTestCa();
    const database = await createTestDatabase();
    databases.push(database);
    const first = await startTestGateway({ TOKEN_SIGNING_ALG: 'ES256' }, { ca, database });
    const oldKid = first.keyRing.jwks().keys[0]!.kid;
    await first.close();
    const second = await startTestGateway({ TOKEN_SIGNING_ALG: 'EdDSA' }, { ca, database });
    try {
      const keys = second.keyRing.jwks().keys;
      expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA']);
      expect(keys.map((k) => k.kid)).toContain(oldKid);
      const rows = await storedKeys(database.url);
      expect(rows.map((r) => [r.alg, r.retired_at === null ? 'active' : 'retired'])).toEqual([
        ['ES256', 'active'],
        ['EdDSA', 'active'],
      ]);
      await second.keyRing.rotate();
      const rotated = await storedKeys(database.url);
      expect(rotated.map((r) => [r.alg, r.retired_at === null ? 'active' : 'retired'])).toEqual([
        ['ES256', 'retired'],
        ['EdDSA', 'retired'],
        ['EdDSA', 'active'],
      ]);
      expect(second.keyRing.jwks().keys.map((k) => k.kid)).toContain(oldKid);
    } finally {
      await second.close();
    }
  });
});
