/**
 * The audit trail (docs/reference.md §4): every config or role change and every exchange,
 * append-only but for the retention job, queryable by admins.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import pg from 'pg';
import { pino } from 'pino';
import request from 'supertest';
import { deleteAuditEventsBefore } from '../../src/db/audit-retention.js';
import { applyMigrations, defaultMigrationsDir, readMigrations } from '../../src/db/migrate.js';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { query } from '../fixtures/sql.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/test-database.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let gateway: TestGateway;
let issuer: FakeIssuer;
const configId = '5b8d2c1e-7a3f-4e6d-9c0b-1a2b3c4d5e6f';

const api = () => request(gateway.app);
const audit = (query = '') => api().get(`/v1/audit${query}`).set('Authorization', ADMIN_AUTH);
const config = (duration: string) => ({
  type: 'GENERIC',
  tokenExpirationDuration: duration,
  issuer: issuer.issuer,
  mappings: [{ key: 'sub', valueExpression: 'ci-bot', role: 'Analyst' }],
});

beforeAll(async () => {
  gateway = await startTestGateway({ EXCHANGE_RATE_LIMIT: '0' });
  issuer = await startFakeIssuer(gateway.ca);
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

describe('config and role changes', () => {
  it('records create, update and delete with actor, request id and before/after', async () => {
    const created = await api()
      .put(`/v1/auth/m2m/${configId}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: config('5m') })
      .expect(200);
    const updated = await api()
      .put(`/v1/auth/m2m/${configId}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: config('10m') })
      .expect(200);

    const { body } = await audit(`?configId=${configId}&outcome=applied`).expect(200);
    const [update, create] = body.events;
    expect(create).toEqual({
      id: expect.any(String),
      time: expect.any(String),
      requestId: created.headers['x-request-id'],
      action: 'config.create',
      actor: 'admin',
      configId,
      outcome: 'applied',
      reason: '',
      details: {
        before: null,
        after: {
          ...config('5m'),
          id: configId,
          audience: '',
          conditions: [],
          maxTokenAge: '',
          singleUse: false,
          tests: [],
        },
      },
    });
    expect(update).toMatchObject({
      requestId: updated.headers['x-request-id'],
      action: 'config.update',
      details: { before: { tokenExpirationDuration: '5m' }, after: { tokenExpirationDuration: '10m' } },
    });
  });

  it('records role changes', async () => {
    await api()
      .post('/v1/roles/auditor')
      .set('Authorization', ADMIN_AUTH)
      .send({ permissions: { Alert: 'READ_ACCESS' } })
      .expect(200);
    await api().delete('/v1/roles/auditor').set('Authorization', ADMIN_AUTH).expect(200);
    const { body } = await audit('?outcome=applied&limit=2').expect(200);
    expect(body.events.map((event: { action: string }) => event.action)).toEqual(['role.delete', 'role.create']);
    expect(body.events[0].details).toEqual({
      before: { name: 'auditor', description: '', permissions: { Alert: 'READ_ACCESS' } },
      after: null,
    });
  });
});

describe('exchanges', () => {
  it('stores a refused token whose subject jsonb cannot hold, and keeps writing what follows', async () => {
    const hostile = await issuer.sign({ sub: 'nul\u0000 and lone \ud800' });
    const refused = await api().post('/v1/auth/m2m/exchange').send({ idToken: hostile }).expect(401);
    const after = await api()
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: await issuer.sign({ sub: 'ci-bot' }) })
      .expect(200);
    const { body } = await audit(`?configId=${configId}&limit=2`).expect(200);
    expect(body.events.map((event: { requestId: string }) => event.requestId)).toEqual([
      after.headers['x-request-id'],
      refused.headers['x-request-id'],
    ]);
    expect(body.events[1].details.subject).toBe('nul\ufffd and lone \ufffd');
  });

  it('records a minted token: issuer, subject, token hash, kid, alg, roles, jti and exp', async () => {
    const idToken = await issuer.sign({ sub: 'ci-bot' }, { alg: 'ES256' });
    const response = await api().post('/v1/auth/m2m/exchange').send({ idToken }).expect(200);
    const { body } = await audit(`?configId=${configId}&outcome=minted&limit=1`).expect(200);
    const [event] = body.events;
    const minted = JSON.parse(Buffer.from(response.body.accessToken.split('.')[1], 'base64url').toString());
    expect(event).toEqual({
      id: expect.any(String),
      time: expect.any(String),
      requestId: response.headers['x-request-id'],
      action: 'exchange',
      actor: '',
      configId,
      outcome: 'minted',
      reason: '',
      details: {
        tokenSha256: createHash('sha256').update(idToken).digest('hex'),
        issuer: issuer.issuer,
        subject: 'ci-bot',
        kid: decodeProtectedHeader(idToken).kid,
        alg: 'ES256',
        roles: ['Analyst'],
        jti: minted.jti,
        exp: minted.exp,
        accessTokenSubject: minted.sub,
        accessTokenKid: decodeProtectedHeader(response.body.accessToken).kid,
      },
    });
  });

  it('records a refusal with its reason', async () => {
    const idToken = await issuer.sign({ sub: 'stranger' });
    const response = await api().post('/v1/auth/m2m/exchange').send({ idToken }).expect(401);
    const { body } = await audit(`?configId=${configId}&outcome=refused&limit=1`).expect(200);
    expect(body.events[0]).toMatchObject({
      requestId: response.headers['x-request-id'],
      outcome: 'refused',
      reason: 'no mapping matches the claims',
      details: {
        code: 'UNAUTHENTICATED',
        subject: 'stranger',
        verified: true,
        tokenSha256: createHash('sha256').update(idToken).digest('hex'),
      },
    });
  });

  it("says when a refused token's subject is the caller's word only: its signature did not verify", async () => {
    const [header, , signature] = (await issuer.sign({ sub: 'ci-bot' })).split('.');
    const forged = `${header}.${Buffer.from(JSON.stringify({ iss: issuer.issuer, sub: 'admin', exp: 4102444800 })).toString('base64url')}.${signature}`;
    const response = await api().post('/v1/auth/m2m/exchange').send({ idToken: forged }).expect(401);
    const { body } = await audit(`?configId=${configId}&outcome=refused&limit=1`).expect(200);
    expect(body.events[0]).toMatchObject({
      requestId: response.headers['x-request-id'],
      details: { subject: 'admin', verified: false, step: 'signature' },
    });
    expect(body.events[0].details.claims).toBeUndefined();
  });
});

describe('GET /v1/audit', () => {
  it('pages through events newest first without repeating one', async () => {
    for (let i = 0; i < 5; i++) {
      await api()
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: await issuer.sign({ sub: 'ci-bot' }) })
        .expect(200);
    }
    const seen: string[] = [];
    let pageToken = '';
    do {
      const { body } = await audit(`?outcome=minted&limit=2&pageToken=${pageToken}`).expect(200);
      seen.push(...body.events.map((event: { id: string }) => event.id));
      pageToken = body.nextPageToken;
    } while (pageToken !== '');
    expect(seen.length).toBeGreaterThanOrEqual(6);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort((a, b) => Number(BigInt(b) - BigInt(a)))).toEqual(seen);
  });

  it('filters by time', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    await audit(`?since=${future}`).expect(200).expect({ events: [], nextPageToken: '' });
  });

  it.each([
    ['?limit=0', 'limit must be a whole number from 1 to 1000'],
    ['?limit=1001', 'limit must be a whole number from 1 to 1000'],
    ['?configId=nope', 'configId must be a UUID'],
    ['?outcome=maybe', 'outcome must be one of applied, minted, refused'],
    ['?since=yesterday', 'since must be an RFC 3339 time'],
    ['?pageToken=!!', 'pageToken is not one this server gave'],
  ])('refuses %s', async (query, problem) => {
    await audit(query)
      .expect(400)
      .expect(errorBody(3, `invalid audit query: ${problem}`));
  });

  it('is for admins only', async () => {
    await api().get('/v1/audit').expect(401);
  });

  it('is append-only in the database', async () => {
    const client = new pg.Client({ connectionString: gateway.database.url });
    await client.connect();
    try {
      await expect(client.query('UPDATE audit_events SET outcome = $1', ['minted'])).rejects.toThrow(
        'audit_events is append-only',
      );
      await expect(client.query('DELETE FROM audit_events')).rejects.toThrow('audit_events is append-only');
    } finally {
      await client.end();
    }
  });
});

/** Inserts one exchange event per age (a PostgreSQL interval, e.g. `91 days`), as if it had occurred that long ago. */
async function insertEventsAged(url: string, ages: readonly string[]): Promise<void> {
  await query(
    url,
    `INSERT INTO audit_events (occurred_at, action, outcome, details)
     SELECT now() - age::interval, 'exchange', 'refused', jsonb_build_object('age', age) FROM unnest($1::text[]) AS age`,
    [ages],
  );
}

const agesIn = async (url: string) =>
  (await query<{ age: string }>(url, `SELECT details->>'age' AS age FROM audit_events WHERE details ? 'age'`))
    .map((row) => row.age)
    .sort();

describe('retention (AUDIT_RETENTION)', () => {
  let retaining: TestGateway;
  /** Migrated, with no gateway (and so no retention job) on it. */
  let bare: TestDatabase;

  beforeAll(async () => {
    retaining = await startTestGateway({ AUDIT_RETENTION: '720h' }, { options: { auditRetentionIntervalMs: 50 } });
    bare = await createTestDatabase();
    await applyMigrations(bare.url, await readMigrations(defaultMigrationsDir()), pino({ level: 'silent' }));
  });

  afterAll(async () => {
    await retaining.close();
    await retaining.database.drop();
    await bare.drop();
  });

  it('deletes the events older than AUDIT_RETENTION in the background, and keeps the others', async () => {
    await insertEventsAged(retaining.database.url, ['400 days', '31 days', '29 days', '1 minute']);
    const deadline = Date.now() + 5000;
    while ((await agesIn(retaining.database.url)).length > 2 && Date.now() < deadline) await sleep(20);
    expect(await agesIn(retaining.database.url)).toEqual(['1 minute', '29 days']);
    // What the gateway itself recorded (the built-in roles, nothing older) is all still there.
    await request(retaining.app)
      .post('/v1/roles/kept')
      .set('Authorization', ADMIN_AUTH)
      .send({ permissions: {} })
      .expect(200);
    await sleep(200);
    const { body } = await request(retaining.app).get('/v1/audit?outcome=applied').set('Authorization', ADMIN_AUTH);
    expect(body.events.map((event: { action: string }) => event.action)).toContain('role.create');
  });

  it('deletes a backlog in batches, one replica at a time', async () => {
    const ages = Array.from({ length: 2500 }, (_, i) => `${100 + (i % 50)} days`);
    await insertEventsAged(bare.url, [...ages, '1 hour']);
    const pool = new pg.Pool({ connectionString: bare.url });
    const holder = new pg.Client({ connectionString: bare.url });
    await holder.connect();
    try {
      const before = new Date(Date.now() - 90 * 86_400_000);
      // Another replica is deleting: this one leaves it to that one.
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(72707371)');
      expect(await deleteAuditEventsBefore(pool, before)).toBe(0);
      await holder.query('ROLLBACK');

      expect(await deleteAuditEventsBefore(pool, before, { batchSize: 1000, pauseMs: 1 })).toBe(2500);
      expect(await agesIn(bare.url)).toEqual(['1 hour']);
    } finally {
      await holder.end();
      await pool.end();
    }
  });

  it('refuses every other change: UPDATE, TRUNCATE, DELETE without the floor, and DELETE of a row not older than it', async () => {
    await insertEventsAged(bare.url, ['200 days', '1 minute']);
    const client = new pg.Client({ connectionString: bare.url });
    await client.connect();
    try {
      await expect(client.query(`DELETE FROM audit_events WHERE details->>'age' = '200 days'`)).rejects.toThrow(
        'audit_events is append-only: rows are deleted only by the retention job',
      );
      await expect(client.query('DELETE FROM audit_events WHERE false')).rejects.toThrow('audit_events is append-only');
      await expect(client.query(`UPDATE audit_events SET outcome = 'minted'`)).rejects.toThrow(
        'audit_events is append-only',
      );
      await expect(client.query('TRUNCATE audit_events')).rejects.toThrow('audit_events is append-only');

      const floor = new Date(Date.now() - 86_400_000).toISOString();
      await client.query('BEGIN');
      await client.query(`SELECT set_config('m2m_gateway.audit_retention_before', $1, true)`, [floor]);
      await expect(client.query('DELETE FROM audit_events')).rejects.toThrow(
        /^audit_events is append-only: event \d+ is not older than the retention floor /,
      );
      await client.query('ROLLBACK');
      // The floor holds for its transaction only.
      await client.query('BEGIN');
      await client.query(`SELECT set_config('m2m_gateway.audit_retention_before', $1, true)`, [floor]);
      await client.query(`DELETE FROM audit_events WHERE occurred_at < $1`, [floor]);
      await client.query('COMMIT');
      await expect(client.query('DELETE FROM audit_events')).rejects.toThrow(
        'audit_events is append-only: rows are deleted only by the retention job',
      );
      const left = await agesIn(bare.url);
      expect(left).toContain('1 minute');
      expect(left).not.toContain('200 days');
    } finally {
      await client.end();
    }
  });
});
