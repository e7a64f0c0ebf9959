/**
 * Revocation that cannot silently fail: a config that cannot load, a dead
 * change feed, a signing-algorithm change or a re-created config never keeps
 * a revoked token alive, and issuer keys expire.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { query } from '../fixtures/sql.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { createTestDatabase } from '../fixtures/test-database.js';
import { startTcpProxy } from '../fixtures/tcp-proxy.js';
import { ADMIN_AUTH, errorBody, startTestGateway, trustIssuer, type TestGateway } from '../fixtures/test-gateway.js';

let ca: TestCa;
let issuer: FakeIssuer;

beforeAll(async () => {
  ca = await createTestCa();
  issuer = await startFakeIssuer(ca);
});

afterAll(async () => {
  await issuer.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds or `ms` have passed; returns whether it held. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  do {
    if (await check()) return true;
    await sleep(50);
  } while (Date.now() < deadline);
  return false;
}

const exchange = (gateway: TestGateway, idToken: string) =>
  request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken });

async function mint(gateway: TestGateway, claims: Record<string, unknown> = { sub: 'ci-bot' }): Promise<string> {
  const { body } = await exchange(gateway, await issuer.sign(claims)).expect(200);
  return body.accessToken;
}

const status = async (gateway: TestGateway, token: string) =>
  (await request(gateway.app).get('/v1/auth/status').set('Authorization', `Bearer ${token}`)).status;

const admin = (gateway: TestGateway) => ({
  put: (id: string, config: Record<string, unknown>) =>
    request(gateway.app).put(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).send({ config }),
  delete: (id: string) => request(gateway.app).delete(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH),
  list: async () =>
    (await request(gateway.app).get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200)).body.configs as {
      id: string;
      issuer: string;
    }[],
});

const configFor = (issuerUrl: string, overrides: Record<string, unknown> = {}) => ({
  type: 'GENERIC',
  tokenExpirationDuration: '10m',
  issuer: issuerUrl,
  mappings: [{ key: 'sub', valueExpression: 'ci-bot', role: 'Admin' }],
  ...overrides,
});

/** Expressions that compile one by one but not as one RE2 set on the same claim key. */
const POISON_MAPPINGS = Array.from({ length: 50 }, () => ({
  key: 'sub',
  valueExpression: '(?:ab|cd){500}',
  role: 'Admin',
}));

describe('a config that cannot be compiled', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway({}, { ca });
  });
  afterAll(async () => {
    await gateway.close();
    await gateway.database.drop();
  });

  it('is refused on write with every problem named, and nothing is stored', async () => {
    const poisoned = await startFakeIssuer(ca);
    try {
      const response = await request(gateway.app)
        .post('/v1/auth/m2m')
        .set('Authorization', ADMIN_AUTH)
        .send({ config: configFor(poisoned.issuer, { mappings: POISON_MAPPINGS }) })
        .expect(400);
      expect(response.body.code).toBe(3);
      expect(response.body.message).toMatch(/^invalid machine-to-machine config: the mappings on claim "sub" /);
      expect((await admin(gateway).list()).map((c) => c.issuer)).not.toContain(poisoned.issuer);
    } finally {
      await poisoned.close();
    }
  });

  it('when already stored, never stops the other configs, a deletion or a start', async () => {
    const poisoned = await startFakeIssuer(ca);
    try {
      const good = await trustIssuer(gateway, issuer.issuer, { role: 'Admin' });
      const token = await mint(gateway);
      // As if written by an older version that validated less: straight into the tables.
      const poisonId = '7b0c6d1e-0000-4000-8000-00000000d00d';
      await query(
        gateway.database.url,
        `INSERT INTO m2m_configs (id, type, token_expiration_duration, issuer) VALUES ($1, 'GENERIC', '5m', $2)`,
        [poisonId, poisoned.issuer],
      );
      for (const [position, mapping] of POISON_MAPPINGS.entries()) {
        await query(
          gateway.database.url,
          'INSERT INTO m2m_mappings (config_id, position, key, value_expression, role_name) VALUES ($1, $2, $3, $4, $5)',
          [poisonId, position, mapping.key, mapping.valueExpression, mapping.role],
        );
      }
      await gateway.refresh();

      await exchange(gateway, await issuer.sign({ sub: 'ci-bot' })).expect(200);
      await exchange(gateway, await poisoned.sign({ sub: 'ci-bot' }))
        .expect(503)
        .expect(errorBody(14, `the config of issuer "${poisoned.issuer}" cannot be used; see the gateway's log`));

      await admin(gateway).delete(good.id).expect(200);
      expect(await status(gateway, token)).toBe(401);

      const restarted = await startTestGateway({}, { ca, database: gateway.database });
      await restarted.close();
    } finally {
      await poisoned.close();
    }
  });
});

describe('a replica whose change feed was silently cut', () => {
  it('still applies a deletion through its periodic full reload', async () => {
    const database = await createTestDatabase();
    const proxy = await startTcpProxy(database.url);
    const writer = await startTestGateway({}, { ca, database });
    const reader = await startTestGateway(
      { DATABASE_URL: proxy.url },
      { ca, database, options: { fullReloadIntervalMs: 500, feedHealthIntervalMs: 3_600_000 } },
    );
    try {
      const config = await trustIssuer(writer, issuer.issuer, { role: 'Admin' });
      await reader.refresh();
      const token = await mint(reader);
      expect(proxy.blackholeListeners()).toBe(1);

      await admin(writer).delete(config.id).expect(200);
      expect(await eventually(async () => (await status(reader, token)) === 401, 5000)).toBe(true);
      await exchange(reader, await issuer.sign({ sub: 'ci-bot' })).expect(401);
    } finally {
      await reader.close();
      await writer.close();
      await proxy.close();
      await database.drop();
    }
  });

  it('notices that the feed is dead and listens again', async () => {
    const database = await createTestDatabase();
    const proxy = await startTcpProxy(database.url);
    const writer = await startTestGateway({}, { ca, database });
    const reader = await startTestGateway(
      { DATABASE_URL: proxy.url },
      { ca, database, options: { fullReloadIntervalMs: 3_600_000, feedHealthIntervalMs: 300 } },
    );
    try {
      const config = await trustIssuer(writer, issuer.issuer, { role: 'Admin' });
      await reader.refresh();
      const token = await mint(reader);
      expect(proxy.blackholeListeners()).toBe(1);
      await sleep(1500);

      await admin(writer).delete(config.id).expect(200);
      expect(await eventually(async () => (await status(reader, token)) === 401, 3000)).toBe(true);
    } finally {
      await reader.close();
      await writer.close();
      await proxy.close();
      await database.drop();
    }
  });

  it('reports not ready when it could not reload for too long, and ready again once it can', async () => {
    const gateway = await startTestGateway({}, { ca, options: { fullReloadIntervalMs: 200, maxReloadAgeMs: 1000 } });
    try {
      await request(gateway.app).get('/readyz').expect(200);
      await query(gateway.database.url, 'ALTER TABLE roles RENAME TO roles_away');
      expect(await eventually(async () => (await request(gateway.app).get('/readyz')).status === 503, 5000)).toBe(true);
      await query(gateway.database.url, 'ALTER TABLE roles_away RENAME TO roles');
      expect(await eventually(async () => (await request(gateway.app).get('/readyz')).status === 200, 5000)).toBe(true);
    } finally {
      await gateway.close();
      await gateway.database.drop();
    }
  });
});

describe('replicas with different signing algorithms during a rolling change', () => {
  it("keep verifying each other's tokens and keep applying config changes", async () => {
    const database = await createTestDatabase();
    const es256 = await startTestGateway({}, { ca, database });
    const config = await trustIssuer(es256, issuer.issuer, { role: 'Admin' });
    const rs256 = await startTestGateway({ TOKEN_SIGNING_ALG: 'RS256' }, { ca, database });
    try {
      await es256.refresh();
      const fromEs256 = await mint(es256);
      const fromRs256 = await mint(rs256);
      expect(decodeProtectedHeader(fromEs256).alg).toBe('ES256');
      expect(decodeProtectedHeader(fromRs256).alg).toBe('RS256');
      expect(await status(rs256, fromEs256)).toBe(200);
      expect(await status(es256, fromRs256)).toBe(200);

      await admin(rs256)
        .put(
          config.id,
          configFor(issuer.issuer, { mappings: [{ key: 'sub', valueExpression: 'ci-bot', role: 'Analyst' }] }),
        )
        .expect(200);
      expect(
        await eventually(async () => {
          const { body } = await exchange(es256, await issuer.sign({ sub: 'ci-bot' }));
          return body.accessToken !== undefined && JSON.stringify(decodeRoles(body.accessToken)) === '["Analyst"]';
        }, 2000),
      ).toBe(true);
      await request(es256.app).get('/readyz').expect(200);
    } finally {
      await rs256.close();
      await es256.close();
      await database.drop();
    }
  });
});

const decodeRoles = (token: string): unknown =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { roles: unknown }).roles;

describe('tokens of an earlier incarnation of their config', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway({}, { ca });
  });
  beforeEach(async () => {
    for (const { id } of await admin(gateway).list()) await admin(gateway).delete(id).expect(200);
  });
  afterAll(async () => {
    await gateway.close();
    await gateway.database.drop();
  });

  it('stay revoked when a deleted config is created again under the same id', async () => {
    const id = '3f1d2c4b-5a69-4788-9a0b-c1d2e3f40001';
    await admin(gateway).put(id, configFor(issuer.issuer)).expect(200);
    const token = await mint(gateway);
    expect(await status(gateway, token)).toBe(200);
    await admin(gateway).delete(id).expect(200);
    await admin(gateway).put(id, configFor(issuer.issuer)).expect(200);
    expect(await status(gateway, token)).toBe(401);
    await admin(gateway).delete(id).expect(200);
  });

  it('are revoked when the config gets an audience the ID token did not have', async () => {
    const id = '3f1d2c4b-5a69-4788-9a0b-c1d2e3f40002';
    await admin(gateway).put(id, configFor(issuer.issuer)).expect(200);
    const token = await mint(gateway, { sub: 'ci-bot', aud: 'something-else' });
    expect(await status(gateway, token)).toBe(200);
    await admin(gateway)
      .put(id, configFor(issuer.issuer, { audience: 'gateway' }))
      .expect(200);
    expect(await status(gateway, token)).toBe(401);
    await admin(gateway).delete(id).expect(200);
  });

  it('keep working when only the mappings change, with their roles evaluated again', async () => {
    const id = '3f1d2c4b-5a69-4788-9a0b-c1d2e3f40003';
    await admin(gateway).put(id, configFor(issuer.issuer)).expect(200);
    const token = await mint(gateway);
    const both = [
      { key: 'sub', valueExpression: 'ci-bot', role: 'Admin' },
      { key: 'sub', valueExpression: 'ci-.*', role: 'Analyst' },
    ];
    await admin(gateway)
      .put(id, configFor(issuer.issuer, { mappings: both }))
      .expect(200);
    const { body } = await request(gateway.app)
      .get('/v1/auth/status')
      .set('Authorization', `Bearer ${token}`)
      .expect(200);
    expect(body.userInfo.roles.map((role: { name: string }) => role.name).sort()).toEqual(['Admin', 'Analyst']);
    await admin(gateway).delete(id).expect(200);
  });
});

describe("an issuer's keys", () => {
  it('expire as the key set says (Cache-Control max-age), so a removed key stops working', async () => {
    const rotating = await startFakeIssuer(ca);
    const gateway = await startTestGateway({}, { ca, options: { jwksRefetchCooldownMs: 0 } });
    try {
      rotating.jwksHeaders = { 'cache-control': 'public, max-age=1' };
      await trustIssuer(gateway, rotating.issuer);
      const oldKeyToken = await rotating.sign({ sub: 'ci-bot' });
      await exchange(gateway, oldKeyToken).expect(200);
      await rotating.rotate({ retire: true });
      await sleep(1200);
      await exchange(gateway, oldKeyToken).expect(401).expect(errorBody(16, 'ID token is invalid: unknown key'));
      await exchange(gateway, await rotating.sign({ sub: 'ci-bot' })).expect(200);
    } finally {
      await gateway.close();
      await gateway.database.drop();
      await rotating.close();
    }
  });

  it('expire within the hour when the issuer says nothing', async () => {
    const rotating = await startFakeIssuer(ca);
    let offsetMs = 0;
    const gateway = await startTestGateway({}, { ca, options: { now: () => new Date(Date.now() + offsetMs) } });
    try {
      await trustIssuer(gateway, rotating.issuer);
      const exp = Math.floor(Date.now() / 1000) + 3 * 3600;
      const oldKeyToken = await rotating.sign({ sub: 'ci-bot', exp });
      await exchange(gateway, oldKeyToken).expect(200);
      await rotating.rotate({ retire: true });
      offsetMs = 61 * 60 * 1000;
      await exchange(gateway, oldKeyToken).expect(401).expect(errorBody(16, 'ID token is invalid: unknown key'));
    } finally {
      await gateway.close();
      await gateway.database.drop();
      await rotating.close();
    }
  });

  it('are forgotten with the last config of their issuer', async () => {
    const rotating = await startFakeIssuer(ca);
    const gateway = await startTestGateway({}, { ca });
    try {
      const config = await trustIssuer(gateway, rotating.issuer);
      const oldKeyToken = await rotating.sign({ sub: 'ci-bot' });
      await exchange(gateway, oldKeyToken).expect(200);
      await rotating.rotate({ retire: true });
      await admin(gateway).delete(config.id).expect(200);
      await trustIssuer(gateway, rotating.issuer);
      await exchange(gateway, oldKeyToken).expect(401).expect(errorBody(16, 'ID token is invalid: unknown key'));
    } finally {
      await gateway.close();
      await gateway.database.drop();
      await rotating.close();
    }
  });
});
