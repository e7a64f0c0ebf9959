/** The audit trail (SPEC §4): every config or role change and every exchange, append-only, queryable by admins. */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import pg from 'pg';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
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
        tokenSha256: createHash('sha256').update(idToken).digest('hex'),
      },
    });
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
