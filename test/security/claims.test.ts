/**
 * Claims that a careless flattening would misread: one key produced twice
 * (a literal dotted member beside a nested object), and numbers that
 * JSON.parse rounds to a neighbour that a mapping names. Tokens are signed
 * from raw payload text where a JOSE library would re-serialise it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

const AUDIENCE = 'm2m-gateway';
const KUBE_AUDIENCE = 'm2m-gateway-kube';

let gateway: TestGateway;
let issuer: FakeIssuer;
let kubeIssuer: FakeIssuer;

const exchange = (idToken: string) => request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken });

async function addConfig(config: Record<string, unknown>) {
  await request(gateway.app).post('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).send({ config }).expect(200);
}

/** A token of `issuer` whose payload is exactly `members` after the usual claims, as written. */
function rawToken(members: string, from = issuer) {
  const now = Math.floor(Date.now() / 1000);
  const head = JSON.stringify({ iss: from.issuer, sub: 'ci-bot', aud: AUDIENCE, iat: now, exp: now + 300 });
  return from.signRaw({ alg: 'RS256', typ: 'JWT' }, `${head.slice(0, -1)},${members}}`);
}

const rolesOf = (accessToken: string) => decodeJwt(accessToken).roles;
const noValidRole = errorBody(16, 'no valid role: no mapping of the config matches the ID token');

beforeAll(async () => {
  gateway = await startTestGateway({ EXCHANGE_RATE_LIMIT: '0' });
  issuer = await startFakeIssuer(gateway.ca, { algs: ['RS256'] });
  kubeIssuer = await startFakeIssuer(gateway.ca, { algs: ['RS256'] });
  await addConfig({
    type: 'GENERIC',
    tokenExpirationDuration: '5m',
    issuer: issuer.issuer,
    audience: AUDIENCE,
    mappings: [
      { key: 'a.b', valueExpression: 'user', role: 'Analyst' },
      { key: 'a.b', valueExpression: 'admin', role: 'Admin' },
      { key: 'n', valueExpression: '9007199254740992', role: 'Admin' },
      { key: 'n', valueExpression: '9007199254740991', role: 'Analyst' },
      { key: 'd', valueExpression: '1\\.5', role: 'Analyst' },
      { key: 'd', valueExpression: '0\\.1', role: 'Admin' },
      { key: 'inf', valueExpression: 'null', role: 'Admin' },
    ],
  });
  await addConfig({
    type: 'KUBE_SERVICE_ACCOUNT',
    tokenExpirationDuration: '5m',
    issuer: kubeIssuer.issuer,
    audience: KUBE_AUDIENCE,
    mappings: [
      { key: 'kubernetes.io.namespace', valueExpression: 'ci', role: 'Continuous Integration' },
      { key: 'kubernetes.io.serviceaccount.name', valueExpression: 'deployer', role: 'Admin' },
    ],
  });
});

afterAll(async () => {
  await issuer.close();
  await kubeIssuer.close();
  await gateway.close();
  await gateway.database.drop();
});

describe('a claim key produced twice', () => {
  it('maps the nested claim alone', async () => {
    const { body } = await exchange(rawToken('"a":{"b":"user"}')).expect(200);
    expect(rolesOf(body.accessToken)).toEqual(['Analyst']);
  });

  it('refuses a literal "a.b" member after a nested {"a":{"b"}}', async () => {
    await exchange(rawToken('"a":{"b":"user"},"a.b":"admin"')).expect(401).expect({
      code: 16,
      message: 'ID token is invalid: ambiguous claim "a.b"',
      details: [],
      error: 'ID token is invalid: ambiguous claim "a.b"',
    });
  });

  it('refuses a literal "a.b" member before a nested {"a":{"b"}}', async () => {
    await exchange(rawToken('"a.b":"admin","a":{"b":"user"}'))
      .expect(401)
      .expect(errorBody(16, 'ID token is invalid: ambiguous claim "a.b"'));
  });

  it('refuses a KUBE_SERVICE_ACCOUNT token with literal kubernetes.io.serviceaccount.* members beside the nested claim', async () => {
    const now = Math.floor(Date.now() / 1000);
    const genuine = {
      iss: kubeIssuer.issuer,
      sub: 'system:serviceaccount:ci:builder',
      aud: [KUBE_AUDIENCE],
      iat: now,
      nbf: now,
      exp: now + 600,
      'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'builder', uid: 'uid-builder' } },
    };
    const { body } = await exchange(await kubeIssuer.sign(genuine)).expect(200);
    expect(rolesOf(body.accessToken)).toEqual(['Continuous Integration']);

    const smuggled = await kubeIssuer.sign({
      ...genuine,
      'kubernetes.io.serviceaccount.uid': 'uid-of-someone-else',
      'kubernetes.io.serviceaccount.name': 'deployer',
    });
    await exchange(smuggled)
      .expect(401)
      .expect(errorBody(16, 'ID token is invalid: ambiguous claim "kubernetes.io.serviceaccount.uid"'));
  });
});

describe('numbers that JSON.parse rounds', () => {
  it('does not match 9007199254740993 against a mapping for 9007199254740992', async () => {
    expect(JSON.parse('9007199254740993')).toBe(9007199254740992);
    await exchange(rawToken('"n":9007199254740993')).expect(401).expect(noValidRole);
  });

  it('does not match 9007199254740992 itself: past 2^53 - 1 a number names several integers', async () => {
    await exchange(rawToken('"n":9007199254740992')).expect(401).expect(noValidRole);
  });

  it('matches 9007199254740991, the largest safe integer', async () => {
    const { body } = await exchange(rawToken('"n":9007199254740991')).expect(200);
    expect(rolesOf(body.accessToken)).toEqual(['Analyst']);
    expect((decodeJwt(body.accessToken).external_user as { attributes: unknown }).attributes).toMatchObject({
      n: ['9007199254740991'],
    });
  });

  it.each(['1.5', '1.50', '15e-1'])('matches the decimal %s as "1.5"', async (text) => {
    const { body } = await exchange(rawToken(`"d":${text}`)).expect(200);
    expect(rolesOf(body.accessToken)).toEqual(['Analyst']);
  });

  it('does not match 0.1000000000000000000001 against a mapping for 0.1', async () => {
    expect(JSON.parse('0.1000000000000000000001')).toBe(0.1);
    await exchange(rawToken('"d":0.1000000000000000000001')).expect(401).expect(noValidRole);
  });

  it('does not match 1e400 (Infinity, whose JSON text is null) against a mapping for null', async () => {
    await exchange(rawToken('"inf":1e400')).expect(401).expect(noValidRole);
  });

  it('leaves an inexact number out of the minted attributes, keeping the rest of the token', async () => {
    const { body } = await exchange(rawToken('"d":[1.5,0.1000000000000000000001],"big":9007199254740993')).expect(200);
    const { attributes } = decodeJwt(body.accessToken).external_user as { attributes: Record<string, unknown> };
    expect(attributes.d).toEqual(['1.5']);
    expect(attributes).not.toHaveProperty('big');
  });
});
