/**
 * Policies that say what admins mean: conditions, several configs per
 * issuer, token hygiene, stored tests, and updates that keep what they omit.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let gateway: TestGateway;
let issuer: FakeIssuer;

beforeAll(async () => {
  gateway = await startTestGateway();
  issuer = await startFakeIssuer(gateway.ca);
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

beforeEach(async () => {
  const { body } = await api().get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH);
  for (const config of body.configs as { id: string }[]) {
    await api().delete(`/v1/auth/m2m/${config.id}`).set('Authorization', ADMIN_AUTH).expect(200);
  }
});

const api = () => request(gateway.app);
const exchange = (idToken: string) => api().post('/v1/auth/m2m/exchange').send({ idToken });
const roles = (accessToken: string): unknown =>
  JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()).roles;

/** A GitHub Actions ID token's claims, from `repository` in `owner/name` form. */
const github = (repository: string, extra: Record<string, unknown> = {}) => {
  const [owner] = repository.split('/');
  return {
    sub: `repo:${repository}:ref:refs/heads/main`,
    repository,
    repository_owner: owner,
    repository_owner_id: owner === 'acme' ? '12345678' : '999',
    ref: 'refs/heads/main',
    actor: 'octocat',
    actor_id: '1',
    ...extra,
  };
};

const config = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: 'GENERIC',
  tokenExpirationDuration: '5m',
  issuer: issuer.issuer,
  mappings: [{ key: 'ref', valueExpression: 'refs/heads/main', role: 'Admin' }],
  ...overrides,
});

const add = (body: Record<string, unknown>) =>
  api().post('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).send({ config: body });
const put = (id: string, body: Record<string, unknown>) =>
  api().put(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).send({ config: body });
const get = async (id: string) =>
  (await api().get(`/v1/auth/m2m/${id}`).set('Authorization', ADMIN_AUTH).expect(200)).body.config;

describe('conditions', () => {
  it('refuse the evil/repo token that a lone ref mapping would make Admin, once they pin the owner', async () => {
    const { body } = await add(config()).expect(200);
    const evil = await issuer.sign(github('evil/repo'));
    expect(roles((await exchange(evil).expect(200)).body.accessToken)).toEqual(['Admin']);

    await put(
      body.config.id,
      config({ conditions: [{ key: 'repository_owner_id', valueExpression: '12345678' }] }),
    ).expect(200);
    await exchange(evil)
      .expect(401)
      .expect(errorBody(16, 'no valid role: no mapping of the config matches the ID token'));
    const good = await exchange(await issuer.sign(github('acme/app'))).expect(200);
    expect(roles(good.body.accessToken)).toEqual(['Admin']);
  });

  it('must all hold: one failing condition refuses whatever the mappings say', async () => {
    await add(
      config({
        conditions: [
          { key: 'repository_owner_id', valueExpression: '12345678' },
          { key: 'ref', valueExpression: 'refs/heads/main' },
        ],
      }),
    ).expect(200);
    await exchange(await issuer.sign(github('acme/app', { ref: 'refs/heads/feature' }))).expect(401);
    await exchange(await issuer.sign(github('acme/app'))).expect(200);
  });

  it('are validated like mappings, every problem at once', async () => {
    const response = await add(
      config({
        conditions: [
          { key: '', valueExpression: 'a(' },
          { key: 'x', valueExpression: '' },
        ],
      }),
    ).expect(400);
    expect(response.body.message).toBe(
      'invalid machine-to-machine config: conditions[0].key is empty; ' +
        'conditions[0].valueExpression is not a valid RE2 expression: missing ): a(; ' +
        'conditions[1].valueExpression is empty',
    );
  });
});

describe('several configs per issuer', () => {
  it('choose the config whose audience the token names, else the one without audience', async () => {
    const analysts = (
      await add(
        config({ audience: 'analysts', mappings: [{ key: 'sub', valueExpression: '.*', role: 'Analyst' }] }),
      ).expect(200)
    ).body.config;
    const admins = (
      await add(
        config({ audience: 'admins', mappings: [{ key: 'sub', valueExpression: '.*', role: 'Admin' }] }),
      ).expect(200)
    ).body.config;
    await add(config({ mappings: [{ key: 'sub', valueExpression: '.*', role: 'None' }] })).expect(200);

    const viaAnalysts = await exchange(await issuer.sign({ sub: 'x', aud: 'analysts' })).expect(200);
    expect(roles(viaAnalysts.body.accessToken)).toEqual(['Analyst']);
    const viaAdmins = await exchange(await issuer.sign({ sub: 'x', aud: ['other', 'admins'] })).expect(200);
    expect(roles(viaAdmins.body.accessToken)).toEqual(['Admin']);
    const viaDefault = await exchange(await issuer.sign({ sub: 'x', aud: 'other' })).expect(200);
    expect(roles(viaDefault.body.accessToken)).toEqual([]);
    expect([analysts.id, admins.id]).not.toContain(
      JSON.parse(Buffer.from(viaDefault.body.accessToken.split('.')[1], 'base64url').toString()).aud[0],
    );
  });

  it('refuse a token that two configs with audiences would accept', async () => {
    await add(config({ audience: 'a' })).expect(200);
    await add(config({ audience: 'b' })).expect(200);
    await exchange(await issuer.sign(github('acme/app', { aud: ['a', 'b'] })))
      .expect(401)
      .expect(errorBody(16, `several configs of issuer "${issuer.issuer}" accept this token`));
    // No config for its audience, and none without one: as if the issuer were not configured.
    await exchange(await issuer.sign(github('acme/app', { aud: 'c' })))
      .expect(401)
      .expect(errorBody(16, `issuer "${issuer.issuer}" is not configured`));
  });

  it('answer 409 for an (issuer, audience) pair that is taken', async () => {
    await add(config({ audience: 'a' })).expect(200);
    await add(config({ audience: 'a' }))
      .expect(409)
      .expect(
        errorBody(6, `a machine-to-machine config for issuer "${issuer.issuer}" and audience "a" already exists`),
      );
    await add(config()).expect(200);
    await add(config())
      .expect(409)
      .expect(errorBody(6, `a machine-to-machine config for issuer "${issuer.issuer}" already exists`));
  });
});

describe('token hygiene', () => {
  it('maxTokenAge refuses ID tokens issued longer ago, or without iat', async () => {
    await add(config({ maxTokenAge: '5m' })).expect(200);
    const now = Math.floor(Date.now() / 1000);
    await exchange(await issuer.sign(github('acme/app', { iat: now - 60 }))).expect(200);
    await exchange(await issuer.sign(github('acme/app', { iat: now - 600 })))
      .expect(401)
      .expect(errorBody(16, 'ID token is invalid: too old'));
    await exchange(await issuer.sign(github('acme/app', { iat: undefined })))
      .expect(401)
      .expect(errorBody(16, 'ID token is invalid: too old'));
  });

  it('singleUse exchanges each ID token once across replicas, and refuses one without jti', async () => {
    await add(config({ singleUse: true })).expect(200);
    const second = await startTestGateway({}, { ca: gateway.ca, database: gateway.database });
    try {
      const token = await issuer.sign(github('acme/app', { jti: 'once-1' }));
      await exchange(token).expect(200);
      await request(second.app)
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: token })
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: already used'));
      await exchange(token).expect(401).expect(errorBody(16, 'ID token is invalid: already used'));
      await exchange(await issuer.sign(github('acme/app')))
        .expect(401)
        .expect(errorBody(16, 'ID token is invalid: no jti'));
    } finally {
      await second.close();
    }
  });
});

describe('stored tests', () => {
  const pinned = {
    conditions: [{ key: 'repository_owner_id', valueExpression: '12345678' }],
    mappings: [{ key: 'repository', valueExpression: 'acme/app', role: 'Admin' }],
    tests: [
      { name: 'the deploy job', claims: github('acme/app'), roles: ['Admin'] },
      { name: 'another owner', claims: github('evil/app'), roles: [] },
    ],
  };

  it('are stored with the config and answered with it', async () => {
    const { body } = await add(config(pinned)).expect(200);
    expect((await get(body.config.id)).tests).toEqual(pinned.tests);
  });

  it('refuse a write that would resolve any of them differently, naming expected and actual roles', async () => {
    const { body } = await add(config(pinned)).expect(200);
    const widened = {
      ...pinned,
      conditions: [],
      mappings: [{ key: 'repository', valueExpression: '.*/app', role: 'Admin' }],
    };
    await put(body.config.id, config(widened))
      .expect(400)
      .expect(
        errorBody(
          9,
          'the config fails its tests, so it was not stored: test "another owner": expected [], got ["Admin"]',
        ),
      );
    expect((await get(body.config.id)).mappings).toEqual(pinned.mappings);
    await add(
      config({
        ...pinned,
        issuer: issuer.issuer,
        audience: 'x',
        mappings: [{ key: 'repository', valueExpression: 'acme/web', role: 'Admin' }],
      }),
    )
      .expect(400)
      .expect(
        errorBody(
          9,
          'the config fails its tests, so it was not stored: test "the deploy job": expected ["Admin"], got []',
        ),
      );
  });
});

describe('stored tests cannot be dropped by the write they would refuse', () => {
  it('refuses a policy change that removes the tests it breaks; removing them alone is fine', async () => {
    const guarded = config({
      conditions: [{ key: 'repository_owner_id', valueExpression: '12345678' }],
      mappings: [{ key: 'repository', valueExpression: 'acme/app', role: 'Admin' }],
      tests: [{ name: 'another owner', claims: github('evil/app'), roles: [] }],
    });
    const { body } = await add(guarded).expect(200);
    const widened = {
      ...guarded,
      conditions: [],
      mappings: [{ key: 'repository', valueExpression: '.*/app', role: 'Admin' }],
      tests: [],
    };
    await put(body.config.id, widened)
      .expect(400)
      .expect(
        errorBody(
          9,
          'the config fails tests this write removes; remove them in a write of their own: test "another owner": expected [], got ["Admin"]',
        ),
      );
    await put(body.config.id, { ...guarded, tests: [] }).expect(200);
    await put(body.config.id, widened).expect(200);
  });
});

describe('updates never widen trust by omission', () => {
  it('keep the stored audience, conditions, hygiene and tests when a PUT leaves them out, and clear them when given empty', async () => {
    const full = config({
      audience: 'gateway',
      conditions: [{ key: 'repository_owner_id', valueExpression: '12345678' }],
      maxTokenAge: '10m',
      singleUse: true,
      tests: [{ name: 'ok', claims: github('acme/app'), roles: ['Admin'] }],
    });
    const { body } = await add(full).expect(200);
    const id = body.config.id;
    // What a StackRox client sends back: the five fields it knows.
    await put(id, {
      id,
      type: 'GENERIC',
      issuer: issuer.issuer,
      tokenExpirationDuration: '15m',
      mappings: full.mappings,
    }).expect(200);
    const kept = await get(id);
    expect(kept).toMatchObject({
      tokenExpirationDuration: '15m',
      audience: 'gateway',
      conditions: full.conditions,
      maxTokenAge: '10m',
      singleUse: true,
      tests: full.tests,
    });
    await put(id, { ...full, audience: '', conditions: [], maxTokenAge: '', singleUse: false, tests: [] }).expect(200);
    expect(await get(id)).toMatchObject({ audience: '', conditions: [], maxTokenAge: '', singleUse: false, tests: [] });
  });

  it('reads null as a field left out, as protojson does, so null never clears a stored value', async () => {
    const full = config({
      audience: 'gateway',
      conditions: [{ key: 'repository_owner_id', valueExpression: '12345678' }],
      maxTokenAge: '10m',
      singleUse: true,
    });
    const { body } = await add(full).expect(200);
    await put(body.config.id, {
      ...full,
      audience: null,
      conditions: null,
      maxTokenAge: null,
      singleUse: null,
      tests: null,
    }).expect(200);
    expect(await get(body.config.id)).toMatchObject({
      audience: 'gateway',
      conditions: full.conditions,
      maxTokenAge: '10m',
      singleUse: true,
    });
  });

  it('takes a missing or empty type as GENERIC, as StackRox does', async () => {
    const { body } = await add({ ...config(), type: undefined }).expect(200);
    expect(body.config.type).toBe('GENERIC');
    await put(body.config.id, { ...config(), type: '' }).expect(200);
    expect((await get(body.config.id)).type).toBe('GENERIC');
  });
});
