/**
 * POST /v1/auth/m2m/explain: why a token passes or fails, step by step, for a
 * token, for claims against a stored or unsaved config, and for a refused
 * exchange found in the audit log.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let gateway: TestGateway;
let issuer: FakeIssuer;
let configId: string;

const OWNER = { key: 'repository_owner_id', valueExpression: '12345678' };
const policy = {
  type: 'GENERIC',
  tokenExpirationDuration: '5m',
  audience: 'https://github.com/acme',
  conditions: [OWNER],
  mappings: [
    { key: 'repository', valueExpression: 'acme/app', role: 'Admin' },
    { key: 'repository', valueExpression: 'acme/.*', role: 'Analyst' },
  ],
  maxTokenAge: '10m',
  singleUse: true,
};

const claims = (overrides: Record<string, unknown> = {}) => ({
  sub: 'repo:acme/app:ref:refs/heads/main',
  repository: 'acme/app',
  repository_owner_id: '12345678',
  aud: 'https://github.com/acme',
  jti: `jti-${Math.random()}`,
  ...overrides,
});

beforeAll(async () => {
  gateway = await startTestGateway({ EXCHANGE_RATE_LIMIT: '0' });
  issuer = await startFakeIssuer(gateway.ca);
  const { body } = await request(gateway.app)
    .post('/v1/auth/m2m')
    .set('Authorization', ADMIN_AUTH)
    .send({ config: { ...policy, issuer: issuer.issuer } })
    .expect(200);
  configId = body.config.id;
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

const explain = (body: Record<string, unknown>) =>
  request(gateway.app).post('/v1/auth/m2m/explain').set('Authorization', ADMIN_AUTH).send(body);

type Step = { name: string; ok: boolean; detail: string };
const failedStep = (steps: Step[]) => steps.find((step) => !step.ok);

describe('explaining a token', () => {
  it('walks a granted token through every step, without minting it or spending its single use', async () => {
    const idToken = await issuer.sign(claims());
    const { body } = await explain({ idToken }).expect(200);
    expect(body.decision).toBe('GRANTED');
    expect(body.reason).toBe('');
    expect(body.configId).toBe(configId);
    expect(body.steps.map((step: Step) => step.name)).toEqual([
      'token',
      'issuer',
      'config',
      'signature',
      'exp',
      'nbf',
      'iat',
      'audience',
      'claims',
      'conditions',
      'mappings',
      'identity',
      'maxTokenAge',
      'singleUse',
    ]);
    expect(body.steps.every((step: Step) => step.ok && step.detail !== '')).toBe(true);
    expect(body.steps.find((step: Step) => step.name === 'audience').detail).toBe(
      'expected "https://github.com/acme", token has ["https://github.com/acme"]',
    );
    expect(body.conditions).toEqual([{ ...OWNER, matched: true, value: '12345678' }]);
    expect(body.mappings).toEqual([
      { ...policy.mappings[0], matched: true, value: 'acme/app' },
      { ...policy.mappings[1], matched: true, value: 'acme/app' },
    ]);
    expect(body.roles).toEqual(['Admin', 'Analyst']);
    expect(body.claims.repository).toEqual(['acme/app']);
    expect(body.accessToken).toMatchObject({ roles: ['Admin', 'Analyst'], aud: [configId] });
    // Explaining spent nothing: the token still exchanges, once.
    await request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken }).expect(200);
  });

  it.each([
    [
      'an issuer nobody configured',
      async () => issuer.sign(claims({ iss: 'https://nobody.example' })),
      'issuer',
      'issuer "https://nobody.example" is not configured',
    ],
    [
      'a token for another audience',
      async () => issuer.sign(claims({ aud: 'https://github.com/other' })),
      'audience',
      'ID token is invalid: audience mismatch: expected "https://github.com/acme", token has ["https://github.com/other"]',
    ],
    [
      'a forged signature',
      async () => {
        const forger = await startFakeIssuer(gateway.ca);
        try {
          return await forger.sign(claims({ iss: issuer.issuer }), { kid: issuer.publicKeys()[0]!.kid });
        } finally {
          await forger.close();
        }
      },
      'signature',
      'ID token is invalid: signature',
    ],
    [
      'a repository of another owner',
      async () => issuer.sign(claims({ repository: 'evil/app', repository_owner_id: '999' })),
      'conditions',
      'condition repository_owner_id: value ["999"] does not match "12345678"',
    ],
    [
      'a repository no mapping names',
      async () => issuer.sign(claims({ repository: 'other/app' })),
      'mappings',
      'no mapping matches the claims',
    ],
  ])('names the failing step for %s', async (_what, token, step, reason) => {
    const { body } = await explain({ idToken: await token() }).expect(200);
    expect(body.decision).toBe('REFUSED');
    expect(failedStep(body.steps)).toEqual({ name: step, ok: false, detail: reason });
    expect(body.reason).toBe(reason);
  });

  it.each([
    [
      'a token not valid yet',
      () => issuer.sign(claims({ nbf: Math.floor(Date.now() / 1000) + 3600 })),
      'nbf',
      /^ID token is invalid: not yet valid: valid from \S+Z \(in (59m\d+s|1h0m0s)\)$/,
    ],
    [
      'a token issued in the future',
      () => issuer.sign(claims({ iat: Math.floor(Date.now() / 1000) + 3600 })),
      'iat',
      /^ID token is invalid: issued in the future \(\S+Z, (59m\d+s|1h0m0s) ahead\)$/,
    ],
    [
      'claims that flatten to one key twice',
      () => issuer.sign(claims({ a: { b: 'user' }, 'a.b': 'admin' })),
      'claims',
      /^ID token is invalid: ambiguous claim "a\.b"$/,
    ],
    [
      'a token without sub',
      () => issuer.sign(claims({ sub: undefined })),
      'identity',
      /^ID token is invalid: the ID token has no sub$/,
    ],
  ])('names the failing step for %s', async (_what, token, step, detail) => {
    const { body } = await explain({ idToken: await token() }).expect(200);
    expect(body.decision).toBe('REFUSED');
    expect(failedStep(body.steps)).toMatchObject({ name: step, ok: false, detail: expect.stringMatching(detail) });
  });

  it('says how long ago an expired token expired', async () => {
    const exp = Math.floor(Date.now() / 1000) - 192;
    const { body } = await explain({ idToken: await issuer.sign(claims({ iat: exp - 60, exp })) }).expect(200);
    const step = failedStep(body.steps)!;
    expect(step.name).toBe('exp');
    expect(step.detail).toMatch(/^ID token is invalid: expired 3m1\ds ago \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/);
    expect(body.steps.find((s: Step) => s.name === 'signature')).toMatchObject({ ok: true });
  });

  it('names the hygiene rule a token breaks', async () => {
    const old = Math.floor(Date.now() / 1000) - 3600;
    const tooOld = await explain({ idToken: await issuer.sign(claims({ iat: old })) }).expect(200);
    expect(failedStep(tooOld.body.steps)).toMatchObject({
      name: 'maxTokenAge',
      detail: expect.stringMatching(/^too old: issued 1h0m\d+s ago/),
    });

    const idToken = await issuer.sign(claims({ jti: 'used-once' }));
    await request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken }).expect(200);
    const used = await explain({ idToken }).expect(200);
    expect(failedStep(used.body.steps)).toEqual({
      name: 'singleUse',
      ok: false,
      detail: 'single use: jti "used-once" was exchanged before',
    });
  });
});

describe('explaining claims', () => {
  it('judges claims against a stored config', async () => {
    const { body } = await explain({ claims: claims({ repository: 'acme/web' }), configId }).expect(200);
    expect(body).toMatchObject({ decision: 'GRANTED', configId, roles: ['Analyst'] });
  });

  it('judges claims against an unsaved config, validated as Add would', async () => {
    const unsaved = { ...policy, issuer: issuer.issuer, conditions: [] };
    const { body } = await explain({ claims: claims({ repository_owner_id: '999' }), config: unsaved }).expect(200);
    expect(body).toMatchObject({ decision: 'GRANTED', configId: '', roles: ['Admin', 'Analyst'] });
    await explain({ claims: claims(), config: { ...unsaved, mappings: [] } })
      .expect(400)
      .expect(errorBody(3, 'invalid machine-to-machine config: at least one mapping is required'));
  });

  it('answers 404 for an unknown config', async () => {
    await explain({ claims: claims(), configId: '00000000-0000-4000-8000-000000000000' }).expect(404);
  });
});

describe('explaining an exchange from the audit log', () => {
  it('replays a refused exchange from the claims its audit record kept', async () => {
    const refused = await request(gateway.app)
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: await issuer.sign(claims({ repository: 'evil/app', repository_owner_id: '999' })) })
      .expect(401);
    const requestId = refused.headers['x-request-id'];
    const { body: audit } = await request(gateway.app)
      .get('/v1/audit?outcome=refused&limit=100')
      .set('Authorization', ADMIN_AUTH)
      .expect(200);
    const event = audit.events.find((e: { requestId: string }) => e.requestId === requestId);
    expect(event.details.claims).toMatchObject({ repository: ['evil/app'], repository_owner_id: ['999'] });
    expect(event.details.step).toBe('conditions');
    expect(JSON.stringify(event)).not.toContain('eyJ');

    const { body } = await explain({ auditEventId: event.id }).expect(200);
    expect(body.decision).toBe('REFUSED');
    expect(failedStep(body.steps)).toEqual({
      name: 'conditions',
      ok: false,
      detail: 'condition repository_owner_id: value ["999"] does not match "12345678"',
    });
  });

  it('keeps no claims larger than 8 KiB, and says so', async () => {
    const refused = await request(gateway.app)
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: await issuer.sign(claims({ repository_owner_id: '999', padding: 'x'.repeat(9000) })) })
      .expect(401);
    const { body: audit } = await request(gateway.app)
      .get('/v1/audit?outcome=refused&limit=100')
      .set('Authorization', ADMIN_AUTH)
      .expect(200);
    const event = audit.events.find((e: { requestId: string }) => e.requestId === refused.headers['x-request-id']);
    expect(event.details.claims).toBeUndefined();
    expect(event.details.claimsOmitted).toBe('larger than 8192 bytes');
  });

  it('refuses events that keep no claims, and unknown ids', async () => {
    const { body: audit } = await request(gateway.app)
      .get('/v1/audit?limit=100')
      .set('Authorization', ADMIN_AUTH)
      .expect(200);
    const create = audit.events.find((e: { action: string }) => e.action === 'config.create');
    await explain({ auditEventId: create.id }).expect(404);
    await explain({ auditEventId: '999999999' }).expect(404);
  });

  it('is itself audited with its actor', async () => {
    await explain({ claims: claims(), configId }).expect(200);
    const { body } = await request(gateway.app).get('/v1/audit?limit=5').set('Authorization', ADMIN_AUTH).expect(200);
    expect(body.events.find((e: { action: string }) => e.action === 'config.explain')).toMatchObject({
      actor: 'admin',
      configId,
      details: { request: 'claims', decision: 'GRANTED' },
    });
  });
});

describe('hostile but validly signed tokens (found by review)', () => {
  const exchange = (idToken: string) => request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken });

  it('a claim name the database cannot store does not stop the audit of later exchanges', async () => {
    const poison = await exchange(
      await issuer.sign(claims({ repository_owner_id: '999', 'a\u0000b': 'x', '\ud800': 'y' })),
    ).expect(401);
    const later = await exchange(await issuer.sign(claims())).expect(200);
    const { body } = await request(gateway.app).get('/v1/audit?limit=20').set('Authorization', ADMIN_AUTH).expect(200);
    const ids = body.events.map((event: { requestId: string }) => event.requestId);
    expect(ids).toContain(later.headers['x-request-id']);
    const refused = body.events.find(
      (event: { requestId: string }) => event.requestId === poison.headers['x-request-id'],
    );
    expect(Object.keys(refused.details.claims)).toEqual(expect.arrayContaining(['a\ufffdb', '\ufffd']));
  });

  it.each([
    ['nbf', { nbf: 1e300 }, 401],
    ['exp in the far past', { exp: -1e300 }, 401],
    ['iat far ahead', { iat: 1e300 }, 401],
    ['iat far behind, with maxTokenAge', { iat: -1e300 }, 401],
    ['exp far ahead, with singleUse', { exp: 1e300 }, 200],
  ])('times no date can hold (%s) are judged, never a 500', async (_what, times, status) => {
    const idToken = await issuer.sign(claims(times));
    await exchange(idToken).expect(status);
    const { body } = await explain({ idToken }).expect(200);
    expect(body.decision).toBe('REFUSED');
  });

  it('any jti is a single-use id: NUL, lone surrogates, kilobytes', async () => {
    for (const jti of ['a\u0000b', '\udbff', 'z'.repeat(9000)]) {
      const idToken = await issuer.sign(claims({ jti }));
      await exchange(idToken).expect(200);
      await exchange(idToken).expect(401).expect(errorBody(16, 'ID token is invalid: already used'));
    }
    await exchange(await issuer.sign(claims({ jti: '\ufffd' }))).expect(200);
  });

  it('an explain that cannot be answered is audited too', async () => {
    await explain({ claims: claims(), configId: '00000000-0000-4000-8000-0000000000aa' }).expect(404);
    const { body } = await request(gateway.app)
      .get('/v1/audit?outcome=refused&limit=50')
      .set('Authorization', ADMIN_AUTH)
      .expect(200);
    expect(body.events.find((e: { action: string }) => e.action === 'config.explain')).toMatchObject({
      outcome: 'refused',
      actor: 'admin',
      reason: 'machine-to-machine config "00000000-0000-4000-8000-0000000000aa" not found',
    });
  });
});

describe('requests explain refuses', () => {
  it.each([
    [{}, 'give one of idToken, claims with configId or config, or auditEventId'],
    [{ idToken: 'x', auditEventId: '1' }, 'give one of idToken, claims with configId or config, or auditEventId'],
    [{ claims: {} }, 'claims go with either configId or config'],
    [{ claims: [], configId }, 'claims must be a JSON object'],
    [{ auditEventId: 'abc' }, 'auditEventId must be the id of an audit event'],
  ])('%j', async (body, message) => {
    await explain(body).expect(400).expect(errorBody(3, message));
  });

  it('needs Access READ', async () => {
    await request(gateway.app).post('/v1/auth/m2m/explain').send({ claims: {}, configId }).expect(401);
  });
});
