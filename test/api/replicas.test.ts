import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa } from '../fixtures/test-ca.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/test-database.js';
import { ADMIN_AUTH, startTestGateway, type TestGateway, trustIssuer } from '../fixtures/test-gateway.js';

let database: TestDatabase;
let first: TestGateway;
let second: TestGateway;
let issuer: FakeIssuer;

beforeAll(async () => {
  const ca = await createTestCa();
  database = await createTestDatabase();
  [first, second] = await Promise.all([startTestGateway({}, { ca, database }), startTestGateway({}, { ca, database })]);
  issuer = await startFakeIssuer(ca);
});

afterAll(async () => {
  await issuer.close();
  await first.close();
  await second.close();
  await database.drop();
});

/** Polls until `check` passes or a second has gone by (docs/reference.md §4: changes are seen within one second). */
async function withinOneSecond(check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < 1000) {
    if (await check()) return Date.now() - start;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the other replica did not see the change within one second');
}

const exchangeOn = (gateway: TestGateway, idToken: string) =>
  request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken });

describe('two replicas on one database', () => {
  it('sign with the same key', async () => {
    const [a, b] = [first.keyRing.jwks().keys, second.keyRing.jwks().keys];
    expect(a).toEqual(b);
    expect(a).toHaveLength(1);
  });

  it("see each other's config changes within a second, without a restart", async () => {
    const config = await trustIssuer(first, issuer.issuer, { sub: 'worker' });
    const token = await issuer.sign({ sub: 'worker' });
    await withinOneSecond(async () => (await exchangeOn(second, token)).status === 200);

    const minted = (await exchangeOn(second, token).expect(200)).body.accessToken;
    expect(decodeProtectedHeader(minted).kid).toBe(first.keyRing.jwks().keys[0]!.kid);
    await request(first.app).get('/v1/auth/status').set('Authorization', `Bearer ${minted}`).expect(200);

    await request(second.app).delete(`/v1/auth/m2m/${config.id}`).set('Authorization', ADMIN_AUTH).expect(200);
    await withinOneSecond(async () => (await exchangeOn(first, token)).status === 401);
    await withinOneSecond(
      async () =>
        (await request(first.app).get('/v1/auth/status').set('Authorization', `Bearer ${minted}`)).status === 401,
    );
  });

  it("see each other's key rotations", async () => {
    const kid = await first.keyRing.rotate();
    await withinOneSecond(async () => second.keyRing.jwks().keys.some((key) => key.kid === kid));
  });
});
