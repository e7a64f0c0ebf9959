/** Callers that send too much, too often, or not what a route takes. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway, trustIssuer } from '../fixtures/test-gateway.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
let gateway: TestGateway;
let issuer: FakeIssuer;

beforeAll(async () => {
  gateway = await startTestGateway({ EXCHANGE_RATE_LIMIT: '0' });
  issuer = await startFakeIssuer(gateway.ca);
  await trustIssuer(gateway, issuer.issuer);
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

const api = () => request(gateway.app);

describe('bodies', () => {
  it('caps exchange bodies at 32 KiB with 413', async () => {
    await api()
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: 'x'.repeat(33 * 1024) })
      .expect(413)
      .expect(errorBody(3, 'request body is larger than 32768 bytes'));
  });

  it('caps token-endpoint forms at 32 KiB with 413', async () => {
    const response = await api()
      .post('/oauth2/token')
      .type('form')
      .send({ grant_type: GRANT, subject_token_type: ID_TOKEN_TYPE, subject_token: 'x'.repeat(33 * 1024) })
      .expect(413);
    expect(response.body).toEqual({
      error: 'invalid_request',
      error_description: 'request body is larger than 32768 bytes',
    });
  });

  it.each([
    ['a NUL in a mapping key', { key: 'a\u0000b', valueExpression: 'x', role: 'Admin' }],
    ['a NUL in an expression', { key: 'sub', valueExpression: 'x\u0000', role: 'Admin' }],
    ['an unpaired surrogate in a mapping key', { key: 'a\ud800', valueExpression: 'x', role: 'Admin' }],
  ])('refuses a config with %s, storing nothing', async (_what, mapping) => {
    const before = await api().get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200);
    await api()
      .post('/v1/auth/m2m')
      .set('Authorization', ADMIN_AUTH)
      .send({ config: { type: 'GENERIC', tokenExpirationDuration: '5m', issuer: issuer.issuer, mappings: [mapping] } })
      .expect(400)
      .expect(errorBody(3, 'request body has a string with a NUL character or an unpaired surrogate'));
    await api().get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200).expect(before.body);
  });

  it('refuses a role whose description has a NUL, storing nothing', async () => {
    await api()
      .post('/v1/roles/nul')
      .set('Authorization', ADMIN_AUTH)
      .send({ description: 'd\u0000', permissions: {} })
      .expect(400)
      .expect(errorBody(3, 'request body has a string with a NUL character or an unpaired surrogate'));
    await api().get('/v1/roles/nul').set('Authorization', ADMIN_AUTH).expect(404);
  });

  it('caps admin bodies at 256 KiB with 413', async () => {
    await api()
      .post('/v1/roles/big')
      .set('Authorization', ADMIN_AUTH)
      .send({ description: 'd'.repeat(257 * 1024) })
      .expect(413)
      .expect(errorBody(3, 'request body is larger than 262144 bytes'));
  });

  it.each([
    ['a number', 42],
    ['a list', ['a.b.c']],
    ['an object', { token: 'a.b.c' }],
    ['null', null],
  ])('refuses an idToken that is %s', async (_what, idToken) => {
    await api().post('/v1/auth/m2m/exchange').send({ idToken }).expect(400).expect(errorBody(3, 'idToken is required'));
  });

  it('refuses a body that names a field twice', async () => {
    await api()
      .post('/v1/auth/m2m/exchange')
      .type('json')
      .send('{"idToken":"a.b.c","idToken":"d.e.f"}')
      .expect(400)
      .expect(errorBody(3, 'request body names a field twice'));
    await api()
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: 'a.b.c', id_token: 'd.e.f' })
      .expect(400)
      .expect(errorBody(3, 'field "idToken" is given twice'));
  });

  it('refuses deeply nested bodies before recursing into them', async () => {
    await api()
      .post('/v1/auth/m2m')
      .set('Authorization', ADMIN_AUTH)
      .type('json')
      .send(`{"config":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)
      .expect(400)
      .expect(errorBody(3, 'request body is nested too deeply'));
  });

  it('takes only form encoding on /oauth2/token, one value per parameter', async () => {
    await api()
      .post('/oauth2/token')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ grant_type: GRANT }))
      .expect(400)
      .expect({ error: 'invalid_request', error_description: 'the request must be application/x-www-form-urlencoded' });
    await api()
      .post('/oauth2/token')
      .type('form')
      .send(
        `grant_type=${encodeURIComponent(GRANT)}&subject_token=a&subject_token=b&subject_token_type=${encodeURIComponent(ID_TOKEN_TYPE)}`,
      )
      .expect(400)
      .expect({ error: 'invalid_request', error_description: 'parameter subject_token is given more than once' });
  });

  it('refuses audit query parameters given twice', async () => {
    await api()
      .get('/v1/audit?outcome=minted&outcome=refused')
      .set('Authorization', ADMIN_AUTH)
      .expect(400)
      .expect(errorBody(3, 'invalid audit query: outcome is given more than once'));
  });
});

describe('rate limits', () => {
  let limited: TestGateway;
  let limitedIssuer: FakeIssuer;

  beforeAll(async () => {
    limited = await startTestGateway({ EXCHANGE_RATE_LIMIT: '3', TRUST_PROXY: 'false' });
    limitedIssuer = await startFakeIssuer(limited.ca);
    await trustIssuer(limited, limitedIssuer.issuer);
  });
  afterAll(async () => {
    await limitedIssuer.close();
    await limited.close();
    await limited.database.drop();
  });

  it('limits exchanges per client address across both endpoints, refused ones included, with Retry-After', async () => {
    const token = await limitedIssuer.sign({ sub: 'ci-bot' });
    await request(limited.app).post('/v1/auth/m2m/exchange').send({ idToken: token }).expect(200);
    await request(limited.app).post('/v1/auth/m2m/exchange').send({ idToken: 'garbage' }).expect(400);
    await request(limited.app)
      .post('/oauth2/token')
      .type('form')
      .send({ grant_type: GRANT, subject_token: token, subject_token_type: ID_TOKEN_TYPE })
      .expect(200);

    const refused = await request(limited.app)
      .post('/v1/auth/m2m/exchange')
      .set('X-Forwarded-For', '203.0.113.7')
      .send({ idToken: token })
      .expect(429)
      .expect(errorBody(8, 'too many exchanges from this address'));
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    const oauth = await request(limited.app)
      .post('/oauth2/token')
      .type('form')
      .send({ grant_type: GRANT, subject_token: token, subject_token_type: ID_TOKEN_TYPE })
      .expect(429);
    expect(oauth.body).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'too many exchanges from this address',
    });
    expect(oauth.headers['retry-after']).toBeDefined();
  });

  it('limits failed admin logins per address, then refuses even the right password for a while', async () => {
    const wrong = `Basic ${Buffer.from('admin:guess').toString('base64')}`;
    for (let attempt = 0; attempt < 10; attempt++) {
      await request(limited.app).get('/v1/roles').set('Authorization', wrong).expect(401);
    }
    const blocked = await request(limited.app)
      .get('/v1/roles')
      .set('Authorization', wrong)
      .expect(429)
      .expect(errorBody(8, 'too many failed logins from this address'));
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    await request(limited.app).get('/v1/roles').set('Authorization', ADMIN_AUTH).expect(429);
  });
});

describe('the per-issuer limit', () => {
  it('bounds what one issuer gets across many client addresses', async () => {
    const gatewayBehindProxy = await startTestGateway({ EXCHANGE_RATE_LIMIT: '1', TRUST_PROXY: '1' });
    const busy = await startFakeIssuer(gatewayBehindProxy.ca);
    try {
      await trustIssuer(gatewayBehindProxy, busy.issuer);
      const token = await busy.sign({ sub: 'ci-bot' });
      const statuses: number[] = [];
      for (let client = 0; client < 21; client++) {
        const response = await request(gatewayBehindProxy.app)
          .post('/v1/auth/m2m/exchange')
          .set('X-Forwarded-For', `198.51.100.${client}`)
          .send({ idToken: token });
        statuses.push(response.status);
        if (response.status === 429)
          expect(response.body.message).toBe(`too many exchanges for issuer "${busy.issuer}"`);
      }
      expect(statuses.slice(0, 20).every((status) => status === 200)).toBe(true);
      expect(statuses[20]).toBe(429);
    } finally {
      await busy.close();
      await gatewayBehindProxy.close();
      await gatewayBehindProxy.database.drop();
    }
  });
});
