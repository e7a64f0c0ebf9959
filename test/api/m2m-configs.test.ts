import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa } from '../fixtures/test-ca.js';
import { ADMIN_AUTH, asAnswered, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let gateway: TestGateway;
let issuer: FakeIssuer;
let otherIssuer: FakeIssuer;

beforeAll(async () => {
  gateway = await startTestGateway({ GITHUB_ACTIONS_ISSUERS: 'https://ghes.example.com/_services/token' });
  issuer = await startFakeIssuer(gateway.ca);
  otherIssuer = await startFakeIssuer(gateway.ca, { path: '/tenant-a' });
});

afterAll(async () => {
  await issuer.close();
  await otherIssuer.close();
  await gateway.close();
  await gateway.database.drop();
});

beforeEach(async () => {
  issuer.discovery = {};
  otherIssuer.discovery = {};
  const { body } = await api().get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH);
  for (const config of body.configs as { id: string }[]) {
    await api().delete(`/v1/auth/m2m/${config.id}`).set('Authorization', ADMIN_AUTH).expect(200);
  }
});

const api = () => request(gateway.app);

const genericConfig = (overrides: Record<string, unknown> = {}) => ({
  type: 'GENERIC',
  tokenExpirationDuration: '1h30m',
  mappings: [{ key: 'sub', valueExpression: 'repo:octo-org/.*', role: 'Continuous Integration' }],
  issuer: issuer.issuer,
  ...overrides,
});

const addConfig = (config: Record<string, unknown>) =>
  api().post('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).send({ config });

describe('POST /v1/auth/m2m', () => {
  it('stores a config under a new id and answers it with every field', async () => {
    const response = await addConfig(genericConfig({ id: 'ignored-id' })).expect(200);
    const { config } = response.body;
    expect(config.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(response.body).toEqual({
      config: asAnswered({
        id: config.id,
        type: 'GENERIC',
        tokenExpirationDuration: '1h30m',
        mappings: [{ key: 'sub', valueExpression: 'repo:octo-org/.*', role: 'Continuous Integration' }],
        issuer: issuer.issuer,
        audience: '',
      }),
    });
    await api().get(`/v1/auth/m2m/${config.id}`).set('Authorization', ADMIN_AUTH).expect(200).expect({ config });
  });

  it('reads the body as JSON whatever the Content-Type, with snake_case names (curl -d)', async () => {
    const body = JSON.stringify({
      config: {
        type: 'GENERIC',
        token_expiration_duration: '45m',
        mappings: [{ key: 'sub', value_expression: '.*', role: 'None' }],
        issuer: issuer.issuer,
        audience: 'm2m-gateway',
      },
    });
    const response = await api()
      .post('/v1/auth/m2m')
      .set('Authorization', ADMIN_AUTH)
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send(body)
      .expect(200);
    expect(response.body.config).toMatchObject({
      tokenExpirationDuration: '45m',
      mappings: [{ key: 'sub', valueExpression: '.*', role: 'None' }],
      audience: 'm2m-gateway',
    });
  });

  it('refuses a field given under both of its names', async () => {
    await addConfig(genericConfig({ token_expiration_duration: '1h' }))
      .expect(400)
      .expect(errorBody(3, 'field "tokenExpirationDuration" is given twice'));
  });

  it('reports every problem of the config at once and stores nothing', async () => {
    await addConfig({
      type: 'GENERIC',
      tokenExpirationDuration: '5',
      mappings: [{ key: 'sub', valueExpression: 'a(b', role: 'Ghost' }],
      issuer: 'http://insecure.example.com',
    })
      .expect(400)
      .expect(
        errorBody(
          3,
          'invalid machine-to-machine config: tokenExpirationDuration: missing unit in duration "5"; ' +
            'mappings[0].valueExpression is not a valid RE2 expression: missing ): a(b; ' +
            'mappings[0].role "Ghost" does not exist; issuer "http://insecure.example.com" must use https',
        ),
      );
    await api().get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200).expect({ configs: [] });
  });

  it.each([
    ['not JSON', '{"config":', 'request body is not valid JSON'],
    ['a JSON array', '[]', 'request body must be a JSON object'],
    ['a JSON string', '"config"', 'request body must be a JSON object'],
  ])('answers 400 to a body that is %s', async (_what, body, message) => {
    await api()
      .post('/v1/auth/m2m')
      .set('Authorization', ADMIN_AUTH)
      .set('Content-Type', 'application/json')
      .send(body)
      .expect(400)
      .expect(errorBody(3, message));
  });

  it('answers 400 when the config is missing', async () => {
    await api()
      .post('/v1/auth/m2m')
      .set('Authorization', ADMIN_AUTH)
      .send({})
      .expect(400)
      .expect(errorBody(3, 'invalid machine-to-machine config: config must be a JSON object'));
  });

  it('answers 413 to a body over the admin limit', async () => {
    const response = await addConfig(genericConfig({ audience: 'a'.repeat(300 * 1024) })).expect(413);
    expect(response.body).toEqual(errorBody(3, 'request body is larger than 262144 bytes'));
  });

  it('refuses a second config for the same issuer with 409', async () => {
    await addConfig(genericConfig()).expect(200);
    await addConfig(genericConfig({ tokenExpirationDuration: '2h' }))
      .expect(409)
      .expect(errorBody(6, `a machine-to-machine config for issuer "${issuer.issuer}" already exists`));
  });

  it('treats an issuer with a trailing slash as another issuer', async () => {
    await addConfig(genericConfig()).expect(200);
    issuer.discovery = { issuer: `${issuer.issuer}/` };
    await addConfig(genericConfig({ issuer: `${issuer.issuer}/` })).expect(200);
  });

  it('accepts an issuer with a path', async () => {
    await addConfig(genericConfig({ issuer: otherIssuer.issuer })).expect(200);
    expect(otherIssuer.requests).toContain('/tenant-a/.well-known/openid-configuration');
  });

  describe('discovery before the write', () => {
    it('refuses an issuer whose discovery document cannot be fetched, storing nothing', async () => {
      issuer.discovery = { status: 500 };
      const url = `${issuer.issuer}/.well-known/openid-configuration`;
      await addConfig(genericConfig())
        .expect(400)
        .expect(errorBody(9, `discovery of issuer "${issuer.issuer}" failed: ${url} answered HTTP 500`));
      await api().get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect({ configs: [] });
    });

    it('refuses an issuer whose discovery document names another issuer', async () => {
      issuer.discovery = { issuer: 'https://evil.example.com' };
      await addConfig(genericConfig())
        .expect(400)
        .expect(
          errorBody(
            9,
            `discovery of issuer "${issuer.issuer}" failed: the discovery document names issuer ` +
              `"https://evil.example.com", not "${issuer.issuer}"`,
          ),
        );
    });

    it('refuses a discovery document without an https jwks_uri', async () => {
      issuer.discovery = { jwks_uri: 'http://127.0.0.1/jwks' };
      const response = await addConfig(genericConfig()).expect(400);
      expect(response.body.message).toBe(
        `discovery of issuer "${issuer.issuer}" failed: the discovery document has no https jwks_uri`,
      );
    });

    it('does not follow redirects', async () => {
      issuer.discovery = { status: 302 };
      const response = await addConfig(genericConfig()).expect(400);
      expect(response.body.message).toContain('answered 302; redirects are not followed');
    });

    it('refuses an issuer that nobody answers for', async () => {
      const response = await addConfig(genericConfig({ issuer: 'https://127.0.0.1:1' })).expect(400);
      expect(response.body).toEqual(
        errorBody(
          9,
          'discovery of issuer "https://127.0.0.1:1" failed: ' +
            'https://127.0.0.1:1/.well-known/openid-configuration could not be reached (ECONNREFUSED)',
        ),
      );
    });

    it('refuses an issuer whose certificate is not trusted', async () => {
      const stranger = await startFakeIssuer(await createTestCa());
      try {
        const response = await addConfig(genericConfig({ issuer: stranger.issuer })).expect(400);
        expect(response.body.message).toBe(
          `discovery of issuer "${stranger.issuer}" failed: ${stranger.issuer}/.well-known/openid-configuration: ` +
            "the issuer's TLS certificate is not trusted (set ISSUER_CA_FILE): UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        );
        expect(stranger.requests).toEqual([]);
      } finally {
        await stranger.close();
      }
    });
  });

  it('refuses an empty Kubernetes issuer when the gateway runs outside a cluster', async () => {
    await addConfig(genericConfig({ type: 'KUBE_SERVICE_ACCOUNT', issuer: '' }))
      .expect(400)
      .expect(
        errorBody(
          3,
          'invalid machine-to-machine config: issuer is required for KUBE_SERVICE_ACCOUNT configs when the gateway ' +
            'does not run in a cluster (no service-account token to take the issuer from)',
        ),
      );
  });

  describe('GitHub Actions', () => {
    it('defaults the issuer to GitHub and checks it by discovery', async () => {
      const response = await addConfig({
        type: 'GITHUB_ACTIONS',
        tokenExpirationDuration: '10m',
        mappings: genericConfig().mappings,
      });
      // No network here: discovery of the real GitHub issuer fails, which proves it was tried.
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(
        /^discovery of issuer "https:\/\/token\.actions\.githubusercontent\.com" failed: /,
      );
    });

    it('refuses a foreign issuer before any discovery', async () => {
      const before = issuer.requests.length;
      await addConfig(genericConfig({ type: 'GITHUB_ACTIONS' }))
        .expect(400)
        .expect(
          errorBody(
            3,
            `invalid machine-to-machine config: issuer "${issuer.issuer}" is not a GitHub Actions issuer: use ` +
              'https://token.actions.githubusercontent.com, https://token.actions.githubusercontent.com/<enterprise-slug>, ' +
              'or one listed in GITHUB_ACTIONS_ISSUERS',
          ),
        );
      expect(issuer.requests.length).toBe(before);
    });
  });
});

describe('PUT /v1/auth/m2m/{id}', () => {
  const id = '6f0b5a3e-4f5d-4e8b-9a53-5d7f6c0a9b11';

  it('creates a config under an unknown id (upsert) and answers {}', async () => {
    await api()
      .put(`/v1/auth/m2m/${id}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig() })
      .expect(200)
      .expect({});
    const { body } = await api().get(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).expect(200);
    expect(body.config).toEqual(asAnswered({ ...genericConfig(), id, audience: '' }));
  });

  it('replaces a config and all its mappings', async () => {
    await api()
      .put(`/v1/auth/m2m/${id}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig() })
      .expect(200);
    const mappings = [
      { key: 'repository', valueExpression: 'octo-org/app', role: 'Analyst' },
      { key: 'ref', valueExpression: 'refs/heads/main', role: 'None' },
    ];
    await api()
      .put(`/v1/auth/m2m/${id}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig({ id, mappings, tokenExpirationDuration: '24h', audience: 'aud' }) })
      .expect(200)
      .expect({});
    const { body } = await api().get(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).expect(200);
    expect(body.config).toEqual(
      asAnswered({ ...genericConfig(), id, mappings, tokenExpirationDuration: '24h', audience: 'aud' }),
    );
  });

  it('leaves the stored config untouched when the update is invalid', async () => {
    await api()
      .put(`/v1/auth/m2m/${id}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig() })
      .expect(200);
    await api()
      .put(`/v1/auth/m2m/${id}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig({ mappings: [{ key: 'sub', valueExpression: '(?=x)', role: 'Admin' }] }) })
      .expect(400);
    issuer.discovery = { status: 503 };
    await api()
      .put(`/v1/auth/m2m/${id}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig({ tokenExpirationDuration: '2h' }) })
      .expect(400);
    const { body } = await api().get(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).expect(200);
    expect(body.config).toEqual(asAnswered({ ...genericConfig(), id, audience: '' }));
  });

  it('refuses a body id that differs from the path', async () => {
    await api()
      .put(`/v1/auth/m2m/${id}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig({ id: '11111111-2222-4333-8444-555555555555' }) })
      .expect(400)
      .expect(errorBody(3, `id "11111111-2222-4333-8444-555555555555" in the body differs from "${id}" in the path`));
  });

  it('refuses an id that is not a UUID', async () => {
    await api()
      .put('/v1/auth/m2m/not-a-uuid')
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig() })
      .expect(400)
      .expect(errorBody(3, 'id "not-a-uuid" is not a UUID'));
  });

  it('refuses taking the issuer of another config', async () => {
    await addConfig(genericConfig()).expect(200);
    await api()
      .put(`/v1/auth/m2m/${id}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: genericConfig() })
      .expect(409);
  });
});

describe('GET and DELETE /v1/auth/m2m/{id}', () => {
  it('answers 404 for an unknown id', async () => {
    await api()
      .get('/v1/auth/m2m/0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f')
      .set('Authorization', ADMIN_AUTH)
      .expect(404)
      .expect(errorBody(5, 'machine-to-machine config "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f" not found'));
    await api().get('/v1/auth/m2m/nope').set('Authorization', ADMIN_AUTH).expect(404);
  });

  it('deletes a config, and answers {} for an unknown one too', async () => {
    const { body } = await addConfig(genericConfig()).expect(200);
    await api().delete(`/v1/auth/m2m/${body.config.id}`).set('Authorization', ADMIN_AUTH).expect(200).expect({});
    await api().get(`/v1/auth/m2m/${body.config.id}`).set('Authorization', ADMIN_AUTH).expect(404);
    await api().delete(`/v1/auth/m2m/${body.config.id}`).set('Authorization', ADMIN_AUTH).expect(200).expect({});
    await api().delete('/v1/auth/m2m/not-a-uuid').set('Authorization', ADMIN_AUTH).expect(200).expect({});
  });

  it('lists configs in the order they were added', async () => {
    const first = (await addConfig(genericConfig()).expect(200)).body.config;
    const second = (await addConfig(genericConfig({ issuer: otherIssuer.issuer })).expect(200)).body.config;
    await api()
      .get('/v1/auth/m2m')
      .set('Authorization', ADMIN_AUTH)
      .expect(200)
      .expect({ configs: [first, second] });
  });
});

describe('authentication', () => {
  const wrong = `Basic ${Buffer.from('admin:wrong-password').toString('base64')}`;
  const otherUser = `Basic ${Buffer.from('root:test-admin-password-0123456789').toString('base64')}`;

  it.each([
    ['no credentials', undefined],
    ['a wrong password', wrong],
    ['another user name', otherUser],
    ['a malformed Basic header', 'Basic !!!'],
    ['an unknown scheme', 'Digest username="admin"'],
    ['a bearer token the gateway did not mint', 'Bearer eyJhbGciOiJub25lIn0.e30.'],
    ['an empty bearer', 'Bearer '],
  ])('answers 401 to %s', async (_what, authorization) => {
    const call = api().get('/v1/auth/m2m');
    if (authorization !== undefined) call.set('Authorization', authorization);
    const response = await call.expect(401).expect(errorBody(16, 'credentials are missing or invalid'));
    expect(response.headers['www-authenticate']).toContain('Basic');
  });

  it('answers 401 before reading the body of a write', async () => {
    await api().post('/v1/auth/m2m').send('{not json').expect(401);
  });
});

describe('every response', () => {
  it('carries a request id and no-store', async () => {
    const response = await api().get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200);
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('answers an unknown route with the error body', async () => {
    const response = await api().get('/v1/nothing-here').expect(404).expect(errorBody(5, 'not found'));
    expect(response.headers['x-request-id']).toBeDefined();
  });
});
