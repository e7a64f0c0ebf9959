import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer, type SigningAlg } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

const GATEWAY_ISSUER = 'https://gateway.example.com';
let gateway: TestGateway;
let issuer: FakeIssuer;
let configId: string;

const api = () => request(gateway.app);

const mappings = [
  { key: 'sub', valueExpression: 'ci-bot', role: 'Admin' },
  { key: 'team', valueExpression: 'analysts', role: 'Analyst' },
  { key: 'sub', valueExpression: 'nobody-special', role: 'None' },
];

async function putConfig(id: string, config: Record<string, unknown>) {
  await api().put(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).send({ config }).expect(200);
}

beforeAll(async () => {
  gateway = await startTestGateway({ GATEWAY_ISSUER }, { options: { jwksRefetchCooldownMs: 0 } });
  issuer = await startFakeIssuer(gateway.ca);
  configId = '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e01';
  await putConfig(configId, { type: 'GENERIC', tokenExpirationDuration: '1h30m', issuer: issuer.issuer, mappings });
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

beforeEach(() => {
  issuer.discovery = {};
  issuer.jwksStatus = 200;
});

const exchange = (idToken: unknown) => api().post('/v1/auth/m2m/exchange').send({ idToken });

async function gatewayKeys() {
  const { body } = await api().get('/.well-known/jwks.json').expect(200);
  return createLocalJWKSet(body);
}

async function verifyMinted(accessToken: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(accessToken, await gatewayKeys(), { issuer: GATEWAY_ISSUER, typ: 'JWT' });
  return payload;
}

describe('POST /v1/auth/m2m/exchange', () => {
  it.each<SigningAlg>(['RS256', 'ES256', 'EdDSA'])(
    'exchanges an %s ID token for a token that verifies against our JWKS',
    async (alg) => {
      const idToken = await issuer.sign({ sub: 'ci-bot', email: 'ci@example.com', team: ['analysts', 'ops'] }, { alg });
      const response = await exchange(idToken).expect(200);
      expect(Object.keys(response.body)).toEqual(['accessToken']);

      const header = decodeProtectedHeader(response.body.accessToken);
      expect(header).toEqual({ alg: 'ES256', kid: expect.any(String), typ: 'JWT' });
      const claims = await verifyMinted(response.body.accessToken);
      expect(claims).toEqual({
        iss: GATEWAY_ISSUER,
        sub: `sso:${configId}:ci-bot|ci@example.com`,
        aud: [configId],
        jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
        iat: expect.any(Number),
        exp: (claims.iat as number) + 5400,
        name: 'ci@example.com',
        roles: ['Admin', 'Analyst'],
        config_incarnation: expect.stringMatching(/^[0-9a-f-]{36}$/),
        external_user: {
          user_id: 'ci-bot|ci@example.com',
          full_name: 'ci@example.com',
          attributes: {
            sub: ['ci-bot'],
            email: ['ci@example.com'],
            team: ['analysts', 'ops'],
            iss: [issuer.issuer],
            // The ID token's own iat, which may be a second before the minted token's.
            iat: [String(decodeJwt(idToken).iat)],
            exp: [expect.any(String)],
          },
        },
      });
    },
  );

  it('accepts snake_case id_token and any Content-Type', async () => {
    const idToken = await issuer.sign({ sub: 'ci-bot' });
    await api()
      .post('/v1/auth/m2m/exchange')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send(JSON.stringify({ id_token: idToken }))
      .expect(200);
  });

  it('answers alike whether the route skips the router (a plain body) or not (gzip, a query, a trailing slash)', async () => {
    const body = async () => JSON.stringify({ idToken: await issuer.sign({ sub: 'ci-bot' }) });
    const plain = await api()
      .post('/v1/auth/m2m/exchange')
      .set('Content-Type', 'application/json')
      .send(await body());
    const gzipped = await api()
      .post('/v1/auth/m2m/exchange')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .serialize((bytes: Buffer) => bytes as unknown as string)
      .send(gzipSync(await body()));
    const query = await api()
      .post('/v1/auth/m2m/exchange?via=router')
      .send(await body());
    const slash = await api()
      .post('/v1/auth/m2m/exchange/')
      .send(await body());
    for (const response of [plain, gzipped, query, slash]) {
      expect(response.status).toBe(200);
      expect(Object.keys(response.body)).toEqual(['accessToken']);
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.headers['cache-control']).toBe('no-store');
    }
    const refused = (path: string) => api().post(path).send({ idToken: 'not-a-jws' }).expect(400);
    const expected = errorBody(3, 'the ID token is not a compact JWS: not a compact JWS');
    for (const path of ['/v1/auth/m2m/exchange', '/v1/auth/m2m/exchange?via=router']) {
      const response = await refused(path);
      expect(response.body).toEqual(expected);
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    }
  });

  it('mints a token without permissions when only None matches', async () => {
    const response = await exchange(await issuer.sign({ sub: 'nobody-special' })).expect(200);
    expect((await verifyMinted(response.body.accessToken)).roles).toEqual([]);
  });

  describe('refuses, with the status and reason of docs/reference.md §3.1', () => {
    it('a missing idToken', async () => {
      await api().post('/v1/auth/m2m/exchange').send({}).expect(400).expect(errorBody(3, 'idToken is required'));
    });

    it.each([
      ['a plain string', 'not-a-jwt', 'the ID token is not a compact JWS: not a compact JWS'],
      ['a JWE-shaped token', 'a.b.c.d.e', 'the ID token is not a compact JWS: not a compact JWS'],
      [
        'a header that is not JSON',
        'bm90IGpzb24.e30.c2ln',
        'the ID token is not a compact JWS: the header is not JSON',
      ],
    ])('%s → 400', async (_what, token, message) => {
      await exchange(token).expect(400).expect(errorBody(3, message));
    });

    it('a token over 16 KiB → 400', async () => {
      const idToken = await issuer.sign({ sub: 'ci-bot', padding: 'x'.repeat(17 * 1024) });
      await exchange(idToken).expect(400).expect(errorBody(3, 'idToken is larger than 16384 bytes'));
    });

    it('a token without iss → 400', async () => {
      const idToken = await issuer.sign({ sub: 'ci-bot', iss: undefined });
      await exchange(idToken).expect(400).expect(errorBody(3, 'the ID token has no iss'));
    });

    it('a duplicated iss member → 400', async () => {
      const genuine = await issuer.sign({ sub: 'ci-bot' });
      const [header, , signature] = genuine.split('.');
      const payload = Buffer.from(
        `{"iss":"https://evil.example.com","sub":"ci-bot","iss":"${issuer.issuer}","exp":${Math.floor(Date.now() / 1000) + 60}}`,
      ).toString('base64url');
      await exchange(`${header}.${payload}.${signature}`)
        .expect(400)
        .expect(errorBody(3, 'the ID token is not a compact JWS: the payload has a duplicated member name'));
    });

    it.each([
      ['an unconfigured issuer', 'https://other.example.com'],
      ['the configured issuer with a trailing slash', () => `${issuer.issuer}/`],
      ['the configured issuer in another case', () => issuer.issuer.toUpperCase()],
    ])('%s → 401', async (_what, iss) => {
      const value = typeof iss === 'function' ? iss() : iss;
      await exchange(await issuer.sign({ sub: 'ci-bot', iss: value }))
        .expect(401)
        .expect(errorBody(16, `issuer "${value}" is not configured`));
    });

    it('an expired token → 401 expired, saying since when', async () => {
      const past = Math.floor(Date.now() / 1000) - 3600;
      const { body } = await exchange(await issuer.sign({ sub: 'ci-bot', iat: past - 60, exp: past })).expect(401);
      expect(body.message).toBe(
        `ID token is invalid: expired ${body.message.match(/expired (\S+) ago/)[1]} ago (${new Date(past * 1000).toISOString().replace('.000Z', 'Z')})`,
      );
      expect(body.message).toMatch(/^ID token is invalid: expired 1h0m\d+s ago \(/);
    });

    it('a token without exp → 401', async () => {
      await exchange(await issuer.sign({ sub: 'ci-bot', exp: undefined }))
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: no exp'));
    });

    it('a tampered payload → 401 signature', async () => {
      const [header, payload, signature] = (await issuer.sign({ sub: 'someone' })).split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
      const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'ci-bot' })).toString('base64url');
      await exchange(`${header}.${forged}.${signature}`)
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: signature'));
    });

    it('a kid the issuer never published → 401 unknown key', async () => {
      await exchange(await issuer.sign({ sub: 'ci-bot' }, { kid: 'no-such-key' }))
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: unknown key'));
    });

    it('an HS256 token → 401', async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ iss: issuer.issuer, sub: 'ci-bot', exp: now + 60 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode('a-shared-secret-of-32-bytes-long!'));
      await exchange(token).expect(401).expect(errorBody(16, 'ID token is invalid: algorithm not allowed'));
    });

    it('an algorithm the issuer does not advertise → 401', async () => {
      const other = await startFakeIssuer(gateway.ca);
      other.discovery = { id_token_signing_alg_values_supported: ['ES256'] };
      try {
        await putConfig('3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e09', {
          type: 'GENERIC',
          tokenExpirationDuration: '5m',
          issuer: other.issuer,
          mappings,
        });
        await exchange(await other.sign({ sub: 'ci-bot' }, { alg: 'ES256' })).expect(200);
        await exchange(await other.sign({ sub: 'ci-bot' }, { alg: 'RS256' }))
          .expect(401)
          .expect(errorBody(16, 'ID token is invalid: algorithm not allowed'));
      } finally {
        await api().delete('/v1/auth/m2m/3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e09').set('Authorization', ADMIN_AUTH);
        await other.close();
      }
    });

    it('a token typed at+jwt → 401', async () => {
      await exchange(await issuer.sign({ sub: 'ci-bot' }, { header: { typ: 'at+jwt' } }))
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: access tokens are not ID tokens'));
    });

    it("the gateway's own access token → 401", async () => {
      const minted = (await exchange(await issuer.sign({ sub: 'ci-bot' })).expect(200)).body.accessToken;
      await exchange(minted).expect(401).expect(errorBody(16, 'ID token is invalid: access tokens are not ID tokens'));
    });

    it('a token that no mapping matches → 401 no valid role', async () => {
      await exchange(await issuer.sign({ sub: 'stranger' }))
        .expect(401)
        .expect(errorBody(16, 'no valid role: no mapping of the config matches the ID token'));
    });

    it('a token without sub → 401', async () => {
      await exchange(await issuer.sign({ team: 'analysts' }))
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: the ID token has no sub'));
    });
  });

  describe('audience', () => {
    const id = '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e02';
    let aud: FakeIssuer;

    beforeAll(async () => {
      aud = await startFakeIssuer(gateway.ca);
      await putConfig(id, {
        type: 'GENERIC',
        tokenExpirationDuration: '5m',
        issuer: aud.issuer,
        audience: 'm2m-gateway',
        mappings,
      });
    });
    afterAll(() => aud.close());

    it('accepts a token whose aud contains the configured audience', async () => {
      await exchange(await aud.sign({ sub: 'ci-bot', aud: ['other', 'm2m-gateway'] })).expect(200);
    });

    it('refuses a token whose aud lacks the configured audience, naming expected and actual', async () => {
      await exchange(await aud.sign({ sub: 'ci-bot', aud: 'other' }))
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: audience mismatch: expected "m2m-gateway", token has ["other"]'));
      await exchange(await aud.sign({ sub: 'ci-bot' }))
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: audience mismatch: expected "m2m-gateway", token has []'));
    });
  });

  describe('issuer keys', () => {
    it('follows a key rotation at the issuer, and forgets a retired key it had used', async () => {
      const signedBefore = await issuer.sign({ sub: 'ci-bot' });
      await exchange(signedBefore).expect(200);
      await issuer.rotate({ retire: true });
      await exchange(await issuer.sign({ sub: 'ci-bot' })).expect(200);
      await exchange(signedBefore).expect(401).expect(errorBody(16, 'ID token is invalid: unknown key'));
    });

    it('keeps verifying with cached keys while the issuer is down, and answers 503 when a key must be fetched', async () => {
      const token = await issuer.sign({ sub: 'ci-bot' });
      await exchange(token).expect(200);
      issuer.discovery = { status: 503 };
      issuer.jwksStatus = 503;
      await exchange(await issuer.sign({ sub: 'ci-bot' })).expect(200);
      const response = await exchange(await issuer.sign({ sub: 'ci-bot' }, { kid: 'rotated-while-down' })).expect(503);
      expect(response.body.code).toBe(14);
      expect(response.body.message).toBe(`issuer "${issuer.issuer}" is unavailable: it answered with an error`);
    });

    it('answers 503 for an issuer that cannot be reached at all, without its addresses or socket codes', async () => {
      const gone = await startFakeIssuer(gateway.ca);
      const id = '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e03';
      await putConfig(id, { type: 'GENERIC', tokenExpirationDuration: '5m', issuer: gone.issuer, mappings });
      const token = await gone.sign({ sub: 'ci-bot' });
      await gone.close();
      const response = await exchange(token).expect(503);
      expect(response.body).toEqual(errorBody(14, `issuer "${gone.issuer}" is unavailable: it could not be reached`));
      await api().delete(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).expect(200);
    });

    it('fetches the JWKS once for many concurrent requests', async () => {
      const fresh = await startFakeIssuer(gateway.ca);
      const id = '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e04';
      try {
        await putConfig(id, { type: 'GENERIC', tokenExpirationDuration: '5m', issuer: fresh.issuer, mappings });
        const tokens = await Promise.all(Array.from({ length: 20 }, () => fresh.sign({ sub: 'ci-bot' })));
        const responses = await Promise.all(tokens.map((token) => exchange(token)));
        expect(responses.map((r) => r.status)).toEqual(tokens.map(() => 200));
        expect(fresh.requests.filter((path) => path === '/jwks')).toHaveLength(1);
      } finally {
        await api().delete(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH);
        await fresh.close();
      }
    });
  });
});

describe('role mapping', () => {
  const id = '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e05';
  let stackrox: FakeIssuer;

  beforeAll(async () => {
    stackrox = await startFakeIssuer(gateway.ca);
    await api()
      .post('/v1/roles/roxctl')
      .set('Authorization', ADMIN_AUTH)
      .send({ permissions: { Image: 'READ_ACCESS' } })
      .expect(200);
    // StackRox's role_mapper_test case, with whole-value matching (docs/reference.md §3.5).
    await putConfig(id, {
      type: 'GENERIC',
      tokenExpirationDuration: '5m',
      issuer: stackrox.issuer,
      mappings: [
        { key: 'sub', valueExpression: 'something', role: 'Admin' },
        { key: 'aud', valueExpression: 'somewhere', role: 'Analyst' },
        { key: 'aud', valueExpression: 'something', role: 'Analyst' },
        { key: 'aud', valueExpression: 'elsewhere', role: 'Continuous Integration' },
        { key: 'repository', valueExpression: 'github.com/sample-org/sample-repo.*', role: 'roxctl' },
        { key: 'iss', valueExpression: '.*', role: 'None' },
        { key: 'groups', valueExpression: 'system:admins', role: 'Analyst' },
      ],
    });
  });
  afterAll(() => stackrox.close());

  it('gives exactly the union of the roles whose mappings match (StackRox role mapper case)', async () => {
    const token = await stackrox.sign({
      sub: 'something',
      aud: ['something', 'somewhere'],
      repository: 'github.com/sample-org/sample-repo:main:062348SHA',
      groups: ['system:admins'],
    });
    const { body } = await exchange(token).expect(200);
    expect(((await verifyMinted(body.accessToken)).roles as string[]).sort()).toEqual(['Admin', 'Analyst', 'roxctl']);
  });

  it('matches whole values only: sample-repo does not match evil-sample-repo', async () => {
    const trapId = '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e06';
    const trap = await startFakeIssuer(gateway.ca);
    try {
      await putConfig(trapId, {
        type: 'GENERIC',
        tokenExpirationDuration: '5m',
        issuer: trap.issuer,
        mappings: [{ key: 'repository', valueExpression: 'sample-repo', role: 'Admin' }],
      });
      await exchange(await trap.sign({ sub: 'x', repository: 'evil-sample-repo' })).expect(401);
      await exchange(await trap.sign({ sub: 'x', repository: 'sample-repo-evil' })).expect(401);
      await exchange(await trap.sign({ sub: 'x', repository: 'sample-repo' })).expect(200);
    } finally {
      await trap.close();
    }
  });
});

describe('gateway tokens on the admin API', () => {
  const id = '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e07';
  let ops: FakeIssuer;

  beforeAll(async () => {
    ops = await startFakeIssuer(gateway.ca);
  });
  afterAll(() => ops.close());

  const configWith = (role: string) => ({
    type: 'GENERIC',
    tokenExpirationDuration: '10m',
    issuer: ops.issuer,
    mappings: [{ key: 'sub', valueExpression: 'ops-bot', role }],
  });
  const mint = async () => (await exchange(await ops.sign({ sub: 'ops-bot' })).expect(200)).body.accessToken as string;

  it('describes the caller on /v1/auth/status', async () => {
    await putConfig(id, configWith('Admin'));
    const token = await mint();
    const claims = await verifyMinted(token);
    const { body } = await api().get('/v1/auth/status').set('Authorization', `Bearer ${token}`).expect(200);
    expect(body).toEqual({
      userId: `sso:${id}:ops-bot`,
      expires: new Date((claims.exp as number) * 1000).toISOString(),
      authProvider: { id, name: ops.issuer, type: 'GENERIC' },
      userInfo: { username: `sso:${id}:ops-bot`, friendlyName: 'ops-bot', roles: [{ name: 'Admin' }] },
      userAttributes: expect.arrayContaining([{ key: 'sub', values: ['ops-bot'] }]),
    });
  });

  it('grants the permissions of the roles the config maps to now, and revokes on delete', async () => {
    await putConfig(id, configWith('Admin'));
    const token = await mint();
    await api().get('/v1/auth/m2m').set('Authorization', `Bearer ${token}`).expect(200);

    await putConfig(id, configWith('Analyst'));
    await api().get('/v1/auth/m2m').set('Authorization', `Bearer ${token}`).expect(403);
    await api().get('/v1/auth/status').set('Authorization', `Bearer ${token}`).expect(200);

    await api().delete(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).expect(200);
    await api().get('/v1/auth/status').set('Authorization', `Bearer ${token}`).expect(401);
  });

  it('refuses a gateway token that was tampered with or has expired', async () => {
    await putConfig(id, configWith('Admin'));
    const token = await mint();
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, exp: claims.exp + 86400 })).toString('base64url');
    await api().get('/v1/auth/status').set('Authorization', `Bearer ${h}.${forged}.${s}`).expect(401);
  });

  it('keeps tokens of a rotated-out key valid and publishes both keys', async () => {
    await putConfig(id, configWith('Admin'));
    const before = await mint();
    const oldKid = decodeProtectedHeader(before).kid;
    const newKid = await gateway.keyRing.rotate();
    const after = await mint();
    expect(decodeProtectedHeader(after).kid).toBe(newKid);
    const { body } = await api().get('/.well-known/jwks.json').expect(200);
    expect(body.keys.map((k: { kid: string }) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    await api().get('/v1/auth/status').set('Authorization', `Bearer ${before}`).expect(200);
    await verifyMinted(before);
  });
});

describe('the gateway as an issuer', () => {
  it('publishes its metadata', async () => {
    await api()
      .get('/.well-known/openid-configuration')
      .expect(200)
      .expect({
        issuer: GATEWAY_ISSUER,
        jwks_uri: `${GATEWAY_ISSUER}/.well-known/jwks.json`,
        token_endpoint: `${GATEWAY_ISSUER}/oauth2/token`,
        grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
        id_token_signing_alg_values_supported: ['ES256'],
      });
  });

  it('publishes only public keys', async () => {
    const { body } = await api().get('/.well-known/jwks.json').expect(200);
    for (const key of body.keys) {
      expect(key).toEqual({
        kty: 'EC',
        crv: 'P-256',
        x: expect.any(String),
        y: expect.any(String),
        kid: expect.any(String),
        alg: 'ES256',
        use: 'sig',
      });
    }
  });
});

describe('POST /oauth2/token (RFC 8693)', () => {
  const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
  const token = (form: Record<string, string>) => api().post('/oauth2/token').type('form').send(form);

  it('exchanges a subject token', async () => {
    const subject = await issuer.sign({ sub: 'ci-bot' });
    for (const type of [ID_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:jwt']) {
      const response = await token({ grant_type: GRANT, subject_token: subject, subject_token_type: type }).expect(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body).toEqual({
        access_token: expect.any(String),
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: 5400,
      });
      await verifyMinted(response.body.access_token);
    }
  });

  it.each([
    [{}, 400, 'invalid_request', 'grant_type is required'],
    [{ grant_type: 'client_credentials' }, 400, 'unsupported_grant_type', `grant_type must be ${GRANT}`],
    [{ grant_type: GRANT, subject_token_type: ID_TOKEN_TYPE }, 400, 'invalid_request', 'subject_token is required'],
    [{ grant_type: GRANT, subject_token: 'x' }, 400, 'invalid_request', 'subject_token_type is required'],
    [
      { grant_type: GRANT, subject_token: 'x', subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' },
      400,
      'invalid_request',
      'subject_token_type must be one of urn:ietf:params:oauth:token-type:id_token, urn:ietf:params:oauth:token-type:jwt',
    ],
    [
      { grant_type: GRANT, subject_token: 'x', subject_token_type: ID_TOKEN_TYPE, audience: 'https://elsewhere' },
      400,
      'invalid_target',
      'this server issues tokens only for its own audience',
    ],
    [
      { grant_type: GRANT, subject_token: 'not-a-jwt', subject_token_type: ID_TOKEN_TYPE },
      400,
      'invalid_request',
      'the ID token is not a compact JWS: not a compact JWS',
    ],
  ])('answers %j with %i %s', async (form, status, error, description) => {
    await token(form as Record<string, string>)
      .expect(status)
      .expect({ error, error_description: description });
  });

  it('refuses a subject token the exchange refuses, as invalid_request', async () => {
    const subject = await issuer.sign({ sub: 'stranger' });
    await token({ grant_type: GRANT, subject_token: subject, subject_token_type: ID_TOKEN_TYPE }).expect(400).expect({
      error: 'invalid_request',
      error_description: 'no valid role: no mapping of the config matches the ID token',
    });
  });

  it('refuses a JSON body and repeated parameters', async () => {
    await api()
      .post('/oauth2/token')
      .send({ grant_type: GRANT })
      .expect(400)
      .expect({ error: 'invalid_request', error_description: 'the request must be application/x-www-form-urlencoded' });
    await api()
      .post('/oauth2/token')
      .type('form')
      .send(`grant_type=${encodeURIComponent(GRANT)}&grant_type=${encodeURIComponent(GRANT)}`)
      .expect(400)
      .expect({ error: 'invalid_request', error_description: 'parameter grant_type is given more than once' });
  });

  it('answers 503 temporarily_unavailable when the issuer cannot be reached', async () => {
    const subject = await issuer.sign({ sub: 'ci-bot' }, { kid: 'fetch-me' });
    issuer.jwksStatus = 500;
    const response = await token({
      grant_type: GRANT,
      subject_token: subject,
      subject_token_type: ID_TOKEN_TYPE,
    }).expect(503);
    expect(response.body.error).toBe('temporarily_unavailable');
  });
});
