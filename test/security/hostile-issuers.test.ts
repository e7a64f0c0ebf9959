/**
 * Issuers that misbehave, by accident or on purpose, and requests that try to
 * make the gateway reach where it must not (SSRF).
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair } from 'jose';
import request from 'supertest';
import { isNonPublicAddress } from '../../src/oidc/network-policy.js';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let ca: TestCa;
let gateway: TestGateway;
let hostile: FakeIssuer;
let steady: FakeIssuer;
const mappings = [{ key: 'sub', valueExpression: 'ci-bot', role: 'Analyst' }];

async function configure(issuer: FakeIssuer) {
  await request(gateway.app)
    .post('/v1/auth/m2m')
    .set('Authorization', ADMIN_AUTH)
    .send({ config: { type: 'GENERIC', tokenExpirationDuration: '5m', issuer: issuer.issuer, mappings } })
    .expect(200);
}

const exchange = (idToken: string) => request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken });
const tokenOf = (issuer: FakeIssuer) => issuer.sign({ sub: 'ci-bot' });

beforeAll(async () => {
  ca = await createTestCa();
  gateway = await startTestGateway(
    { EXCHANGE_RATE_LIMIT: '0' },
    { ca, options: { jwksRefetchCooldownMs: 0, outboundTimeoutMs: 500, keyFetchDeadlineMs: 700 } },
  );
  hostile = await startFakeIssuer(ca);
  steady = await startFakeIssuer(ca);
  await configure(hostile);
  await configure(steady);
});

afterAll(async () => {
  await hostile.close();
  await steady.close();
  await gateway.close();
  await gateway.database.drop();
});

beforeEach(() => {
  hostile.delayMs = 0;
  hostile.jwksBody = undefined;
  hostile.intercept = undefined;
  hostile.discovery = {};
});

const unavailable = (reason: string) => errorBody(14, `issuer "${hostile.issuer}" is unavailable: ${reason}`);

describe('a hostile JWKS is refused whole, never a crash', () => {
  const jwk = async () => ({
    ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey)),
    kid: 'k',
  });

  it.each([
    [
      '10 000 keys',
      async () => ({ keys: Array.from({ length: 10_000 }, (_, i) => ({ kty: 'EC', kid: `k${i}` })) }),
      'the JWKS has 10000 keys; at most 100 are accepted',
    ],
    [
      'private key material',
      async () => ({ keys: [await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey)] }),
      'the JWKS contains private or symmetric key material',
    ],
    [
      'a symmetric key',
      async () => ({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k' }] }),
      'the JWKS contains private or symmetric key material',
    ],
    ['duplicate kids', async () => ({ keys: [await jwk(), await jwk()] }), 'the JWKS has the kid "k" twice'],
    [
      'a 1024-bit RSA key',
      async () => ({ keys: [generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' })] }),
      'the JWKS has an RSA key shorter than 2048 bits',
    ],
    ['no keys list', async () => ({ jwks: [] }), 'the JWKS has no keys list'],
    ['keys that are not objects', async () => ({ keys: ['x'] }), 'the JWKS has a key that is not an object'],
  ])('%s', async (_what, body, reason) => {
    hostile.jwksBody = await body();
    await exchange(await tokenOf(hostile))
      .expect(503)
      .expect(unavailable(reason));
  });

  it('a 50 MB JWKS is cut off at 1 MiB', async () => {
    hostile.intercept = (path, res) => {
      if (path !== '/jwks') return false;
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 50 && res.write(chunk)) sent += 1;
        if (sent < 50) res.once('drain', pump);
        else res.end('{}');
      };
      pump();
      return true;
    };
    const before = process.memoryUsage().rss;
    await exchange(await tokenOf(hostile))
      .expect(503)
      .expect(unavailable('its answer is larger than 1048576 bytes'));
    expect(process.memoryUsage().rss - before).toBeLessThan(40 * 1024 * 1024);
  });

  it('a JWKS announced as larger than 1 MiB is not read at all', async () => {
    hostile.intercept = (path, res) => {
      if (path !== '/jwks') return false;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(50 * 1024 * 1024) });
      res.write('{"keys":[');
      return true;
    };
    await exchange(await tokenOf(hostile))
      .expect(503)
      .expect(unavailable('its answer is larger than 1048576 bytes'));
  });

  it('a JWKS that is not JSON', async () => {
    hostile.intercept = (path, res) => {
      if (path !== '/jwks') return false;
      res.writeHead(200).end('<html>');
      return true;
    };
    await exchange(await tokenOf(hostile))
      .expect(503)
      .expect(unavailable('it did not answer JSON'));
  });

  it('a redirect to elsewhere is not followed', async () => {
    hostile.intercept = (path, res) => {
      if (path !== '/jwks') return false;
      res.writeHead(302, { location: 'https://169.254.169.254/latest/meta-data/' }).end();
      return true;
    };
    await exchange(await tokenOf(hostile))
      .expect(503)
      .expect(unavailable('it answered with a redirect, which is not followed'));
  });
});

describe('keys that cannot be used', () => {
  it.each([
    ['an RSA key without e', 'RS256', (jwk: Record<string, unknown>) => ({ ...jwk, e: undefined })],
    ['an RSA key whose n is empty', 'RS256', (jwk: Record<string, unknown>) => ({ ...jwk, n: '' })],
    ['an EC key without y', 'ES256', (jwk: Record<string, unknown>) => ({ ...jwk, y: undefined })],
  ] as const)(
    '%s is left out: a token naming it is refused as signed by an unknown key, never a 500',
    async (_what, alg, damage) => {
      const careless = await startFakeIssuer(ca);
      try {
        await configure(careless);
        const token = await careless.sign({ sub: 'ci-bot' }, { alg });
        const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid;
        careless.jwksBody = {
          keys: careless.publicKeys().map((jwk) => (jwk.kid === kid ? damage(jwk as Record<string, unknown>) : jwk)),
        };
        await exchange(token).expect(401).expect(errorBody(16, 'ID token is invalid: unknown key'));
        await exchange(await careless.sign({ sub: 'ci-bot' }, { alg: 'EdDSA' })).expect(200);
      } finally {
        await careless.close();
      }
    },
  );
});

describe('slow and dead issuers', () => {
  it('a hanging issuer is cut off by the timeout and never blocks another issuer', async () => {
    hostile.intercept = (path) => path === '/jwks';
    const started = Date.now();
    const slowToken = await tokenOf(hostile);
    const fastToken = await tokenOf(steady);
    const slow = exchange(slowToken).then((response) => response);
    const fast = await exchange(fastToken);
    expect(fast.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(400);
    const response = await slow;
    expect(response.status).toBe(503);
    expect(response.body.message).toBe(`issuer "${hostile.issuer}" is unavailable: it did not answer in time`);
  });

  it('an issuer slow on every call is cut off by the deadline on its keys as a whole', async () => {
    const slow = await startFakeIssuer(ca);
    await configure(slow);
    slow.delayMs = 400;
    const started = Date.now();
    await exchange(await tokenOf(slow))
      .expect(503)
      .expect(errorBody(14, `issuer "${slow.issuer}" is unavailable: its keys took longer than 0.7 s`));
    expect(Date.now() - started).toBeLessThan(790);
    await slow.close();
  });
});

describe('metrics', () => {
  it('count the failed fetches per issuer', async () => {
    const { text } = await request(gateway.app).get('/metrics').expect(200);
    const failed = text
      .split('\n')
      .find((line) =>
        line.startsWith(`m2m_issuer_fetches_total{issuer="${hostile.issuer}",document="jwks",result="error"} `),
      );
    expect(Number(failed?.split(' ').at(-1))).toBeGreaterThan(0);
  });
});

describe('server-side request forgery', () => {
  let strict: TestGateway;
  let local: FakeIssuer;

  beforeAll(async () => {
    strict = await startTestGateway({ ISSUER_ALLOW_PRIVATE_NETWORKS: '' }, { ca });
    local = await startFakeIssuer(ca);
  });
  afterAll(async () => {
    await local.close();
    await strict.close();
    await strict.database.drop();
  });

  const add = (issuer: string) =>
    request(strict.app)
      .post('/v1/auth/m2m')
      .set('Authorization', ADMIN_AUTH)
      .send({ config: { type: 'GENERIC', tokenExpirationDuration: '5m', issuer, mappings } });

  it.each([
    ['a loopback address', () => local.issuer],
    ['a host name that resolves to loopback', () => local.issuer.replace('127.0.0.1', 'localhost')],
    ['the IPv6 loopback', () => 'https://[::1]:1'],
    ['the cloud metadata address', () => 'https://169.254.169.254'],
    ['a private network address', () => 'https://10.0.0.1'],
    ['an IPv4-mapped IPv6 private address', () => 'https://[::ffff:192.168.1.1]'],
  ])('refuses an issuer on %s without connecting', async (_what, issuer) => {
    const requestsBefore = local.requests.length;
    const response = await add(issuer()).expect(400);
    expect(response.body.code).toBe(9);
    expect(response.body.message).toContain(
      'resolves to a non-public address; allow it with ISSUER_ALLOW_PRIVATE_NETWORKS',
    );
    expect(local.requests.length).toBe(requestsBefore);
  });

  it('checks every URL the issuer hands out, not only the issuer', async () => {
    hostile.discovery = { jwks_uri: 'https://169.254.169.254/latest/meta-data/iam' };
    const other = await startTestGateway(
      { ISSUER_ALLOW_PRIVATE_NETWORKS: `127.0.0.1` },
      { ca, options: { jwksRefetchCooldownMs: 0 } },
    );
    try {
      await request(other.app)
        .post('/v1/auth/m2m')
        .set('Authorization', ADMIN_AUTH)
        .send({ config: { type: 'GENERIC', tokenExpirationDuration: '5m', issuer: hostile.issuer, mappings } })
        .expect(200);
      const response = await request(other.app)
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: await hostile.sign({ sub: 'ci-bot' }) })
        .expect(503);
      // Strangers learn that the address is refused, not which address it is.
      expect(response.body.message).toBe(
        `issuer "${hostile.issuer}" is unavailable: it resolves to an address that is not allowed (ISSUER_ALLOW_PRIVATE_NETWORKS)`,
      );
    } finally {
      await other.close();
      await other.database.drop();
    }
  });

  it.each([
    ['127.0.0.1', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['192.168.0.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['0.0.0.0', true],
    ['::1', true],
    ['fd00::1', true],
    ['fe80::1', true],
    ['::ffff:10.0.0.1', true],
    ['64:ff9b::a00:1', true],
    ['8.8.8.8', false],
    ['2606:4700:4700::1111', false],
  ])('classifies %s as non-public: %s', (address, expected) => {
    expect(isNonPublicAddress(address)).toBe(expected);
  });
});
