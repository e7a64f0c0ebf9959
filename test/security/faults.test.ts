import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { pino } from 'pino';
import request from 'supertest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded-postgres.js';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa } from '../fixtures/test-ca.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

const silent = pino({ level: 'silent' });
let dataDir: string;
let database: EmbeddedDatabase;
let gateway: TestGateway;
let issuer: FakeIssuer;
const configId = '0d5e7a4c-6f5e-4c1f-9d7e-2b3c4d5e6f70';

const config = (overrides: Record<string, unknown> = {}) => ({
  type: 'GENERIC',
  tokenExpirationDuration: '10m',
  issuer: issuer.issuer,
  mappings: [{ key: 'sub', valueExpression: 'worker', role: 'Analyst' }],
  ...overrides,
});

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-faults-'));
  database = await startEmbeddedPostgres(dataDir, silent);
  const ca = await createTestCa();
  issuer = await startFakeIssuer(ca);
  gateway = await startTestGateway({}, { ca, database: { url: database.url, drop: async () => undefined } });
  await request(gateway.app)
    .put(`/v1/auth/m2m/${configId}`)
    .set('Authorization', ADMIN_AUTH)
    .send({ config: config() })
    .expect(200);
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await database.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const exchange = async () =>
  request(gateway.app)
    .post('/v1/auth/m2m/exchange')
    .send({ idToken: await issuer.sign({ sub: 'worker' }) });

describe('the database going away and coming back', () => {
  it('keeps exchanging for cached configs, answers admin calls with 503, and recovers', async () => {
    expect((await exchange()).status).toBe(200);
    await database.stop();

    const during = await exchange();
    expect(during.status).toBe(200);
    const write = await request(gateway.app)
      .put(`/v1/auth/m2m/${configId}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: config({ tokenExpirationDuration: '20m' }) });
    expect(write.status).toBe(503);
    expect(write.body).toEqual(errorBody(14, 'the database is unavailable; try again'));
    await request(gateway.app).get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(503);
    await request(gateway.app).get('/readyz').expect(503);

    database = await startEmbeddedPostgres(dataDir, silent, { port: database.port });
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      status = (
        await request(gateway.app)
          .put(`/v1/auth/m2m/${configId}`)
          .set('Authorization', ADMIN_AUTH)
          .send({ config: config({ tokenExpirationDuration: '20m' }) })
      ).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(200);
    await request(gateway.app).get('/readyz').expect(200);

    const { body } = await request(gateway.app)
      .get(`/v1/audit?configId=${configId}&outcome=minted`)
      .set('Authorization', ADMIN_AUTH)
      .expect(200);
    const outageEvent = body.events.find(
      (event: { requestId: string }) => event.requestId === during.headers['x-request-id'],
    );
    expect(outageEvent).toMatchObject({ action: 'exchange', outcome: 'minted', configId });
  });
});

describe('a write that fails half-way', () => {
  it('leaves the old config intact', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    // A fault injected into the second statement of the write's transaction.
    await client.query(`
      CREATE FUNCTION fail_on_explode() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.key = 'explode' THEN RAISE EXCEPTION 'injected fault'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_on_explode BEFORE INSERT ON m2m_mappings FOR EACH ROW EXECUTE FUNCTION fail_on_explode();
    `);
    await client.end();

    const before = (
      await request(gateway.app).get(`/v1/auth/m2m/${configId}`).set('Authorization', ADMIN_AUTH).expect(200)
    ).body;
    const response = await request(gateway.app)
      .put(`/v1/auth/m2m/${configId}`)
      .set('Authorization', ADMIN_AUTH)
      .send({
        config: config({
          tokenExpirationDuration: '1h',
          mappings: [
            { key: 'sub', valueExpression: 'other', role: 'Admin' },
            { key: 'explode', valueExpression: 'x', role: 'Admin' },
          ],
        }),
      });
    expect(response.status).toBe(500);
    expect(response.body.message).toMatch(/^internal error \(request id [0-9a-f-]{36}\)$/);
    expect(JSON.stringify(response.body)).not.toContain('injected fault');
    await request(gateway.app)
      .get(`/v1/auth/m2m/${configId}`)
      .set('Authorization', ADMIN_AUTH)
      .expect(200)
      .expect(before);
    expect((await exchange()).status).toBe(200);
  });
});
