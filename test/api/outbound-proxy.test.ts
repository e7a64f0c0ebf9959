/**
 * HTTPS_PROXY / NO_PROXY: issuer calls tunnel through a real CONNECT proxy,
 * TLS stays end to end, and the private-network rule still holds.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import request from 'supertest';
import { startConnectProxy, type ConnectProxy } from '../fixtures/connect-proxy.js';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { ADMIN_AUTH, errorBody, startTestGateway, trustIssuer, type TestGateway } from '../fixtures/test-gateway.js';

const PROXY_USER = 'egress-bot';
const PROXY_PASSWORD = 'pr0xy-s3cret';
const mappings = [{ key: 'sub', valueExpression: 'ci-bot', role: 'Analyst' }];

let ca: TestCa;
let proxy: ConnectProxy;
let proxied: FakeIssuer;
let bypassed: FakeIssuer;
let gateway: TestGateway;
const logs: string[] = [];

const hostOf = (issuer: FakeIssuer) => new URL(issuer.issuer).host;
const addConfig = (target: TestGateway, issuer: string) =>
  request(target.app)
    .post('/v1/auth/m2m')
    .set('Authorization', ADMIN_AUTH)
    .send({ config: { type: 'GENERIC', tokenExpirationDuration: '5m', issuer, mappings } });
const exchange = (idToken: string) => request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken });
const tokenOf = (issuer: FakeIssuer) => issuer.sign({ sub: 'ci-bot' });

beforeAll(async () => {
  ca = await createTestCa();
  proxy = await startConnectProxy();
  proxied = await startFakeIssuer(ca);
  bypassed = await startFakeIssuer(ca);
  gateway = await startTestGateway(
    {
      HTTPS_PROXY: `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${proxy.port}`,
      // Only this one issuer's port bypasses the proxy: the other issuer on 127.0.0.1 goes through it.
      NO_PROXY: `internal.example, ${hostOf(bypassed)}`,
      EXCHANGE_RATE_LIMIT: '0',
    },
    {
      ca,
      options: { outboundTimeoutMs: 1000, jwksRefetchCooldownMs: 0 },
      logger: pino({ level: 'trace' }, { write: (line: string) => void logs.push(line) }),
    },
  );
});

afterAll(async () => {
  await gateway.close();
  await gateway.database.drop();
  await Promise.all([proxied.close(), bypassed.close(), proxy.close()]);
});

beforeEach(() => {
  proxy.refuseWith = undefined;
  proxy.hang = false;
  // Kept-alive tunnels would carry the next request without a CONNECT.
  proxy.cutTunnels();
  proxy.requests.length = 0;
});

describe('HTTPS_PROXY', () => {
  it('discovers and exchanges through the proxy, with Proxy-Authorization from the URL', async () => {
    await trustIssuer(gateway, proxied.issuer);
    const response = await exchange(await tokenOf(proxied)).expect(200);
    expect(response.body.accessToken).toEqual(expect.any(String));
    expect(proxy.requests.length).toBeGreaterThan(0);
    expect(proxy.requests).toEqual(
      proxy.requests.map(() => ({
        target: hostOf(proxied),
        proxyAuthorization: `Basic ${Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64')}`,
      })),
    );
    expect(proxied.requests).toEqual(expect.arrayContaining(['/.well-known/openid-configuration', '/jwks']));
  });

  it('reaches a host matched by NO_PROXY directly', async () => {
    await trustIssuer(gateway, bypassed.issuer);
    await exchange(await tokenOf(bypassed)).expect(200);
    expect(bypassed.requests).toEqual(expect.arrayContaining(['/.well-known/openid-configuration', '/jwks']));
    expect(proxy.requests).toEqual([]);
  });

  it('refuses a config write with FAILED_PRECONDITION when the proxy refuses CONNECT, without naming the proxy', async () => {
    proxy.refuseWith = 403;
    const stranger = await startFakeIssuer(ca);
    try {
      const response = await addConfig(gateway, stranger.issuer).expect(400);
      expect(response.body).toEqual(
        errorBody(
          9,
          `discovery of issuer "${stranger.issuer}" failed: ${stranger.issuer}/.well-known/openid-configuration: ` +
            `the outbound proxy refused a tunnel to ${hostOf(stranger)} (HTTP 403)`,
        ),
      );
      expect(response.text).not.toContain(String(proxy.port));
      expect(proxy.requests.map((seen) => seen.target)).toEqual([hostOf(stranger)]);
      expect(stranger.requests).toEqual([]);
    } finally {
      await stranger.close();
    }
  });

  it('answers 503 on the exchange path when the proxy refuses CONNECT, without naming the proxy', async () => {
    const later = await startFakeIssuer(ca);
    try {
      await trustIssuer(gateway, later.issuer);
      proxy.cutTunnels();
      proxy.refuseWith = 403;
      const response = await exchange(await tokenOf(later)).expect(503);
      expect(response.body).toEqual(
        errorBody(14, `issuer "${later.issuer}" is unavailable: the outbound proxy refused to connect to it`),
      );
      expect(response.text).not.toContain(String(proxy.port));
    } finally {
      await later.close();
    }
  });

  it('still refuses an issuer whose certificate it does not trust: TLS is end to end through the tunnel', async () => {
    const stranger = await startFakeIssuer(await createTestCa());
    try {
      const response = await addConfig(gateway, stranger.issuer).expect(400);
      expect(response.body).toEqual(
        errorBody(
          9,
          `discovery of issuer "${stranger.issuer}" failed: ${stranger.issuer}/.well-known/openid-configuration: ` +
            "the issuer's TLS certificate is not trusted (set ISSUER_CA_FILE): UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        ),
      );
      // The tunnel was opened, and the handshake inside it failed: no request reached the issuer.
      expect(proxy.requests.map((seen) => seen.target)).toEqual([hostOf(stranger)]);
      expect(stranger.requests).toEqual([]);
    } finally {
      await stranger.close();
    }
  });

  it('cuts off a proxy that never answers CONNECT within the outbound timeout', async () => {
    proxy.hang = true;
    const stranger = await startFakeIssuer(ca);
    try {
      const started = Date.now();
      const response = await addConfig(gateway, stranger.issuer).expect(400);
      expect(response.body.message).toBe(
        `discovery of issuer "${stranger.issuer}" failed: ${stranger.issuer}/.well-known/openid-configuration did not answer in time`,
      );
      expect(Date.now() - started).toBeLessThan(3000);
      expect(proxy.requests.map((seen) => seen.target)).toEqual([hostOf(stranger)]);
    } finally {
      await stranger.close();
    }
  });

  it('never logs the proxy credentials', () => {
    expect(logs.length).toBeGreaterThan(0);
    const basic = Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64');
    expect(logs.filter((line) => line.includes(PROXY_PASSWORD) || line.includes(basic))).toEqual([]);
  });
});

describe('HTTPS_PROXY and the private-network rule', () => {
  let strict: TestGateway;
  let local: FakeIssuer;

  beforeAll(async () => {
    // Nothing private is allowed, yet the proxy on 127.0.0.1 is used: the operator chose it.
    strict = await startTestGateway({ HTTPS_PROXY: proxy.url, ISSUER_ALLOW_PRIVATE_NETWORKS: '' }, { ca });
    local = await startFakeIssuer(ca);
  });
  afterAll(async () => {
    await local.close();
    await strict.close();
    await strict.database.drop();
  });

  it.each([
    ['a host name that resolves to loopback', () => local.issuer.replace('127.0.0.1', 'localhost')],
    ['a loopback address', () => local.issuer],
    ['the cloud metadata address', () => 'https://169.254.169.254'],
  ])('refuses an issuer on %s before any CONNECT', async (_what, issuer) => {
    const seen = local.requests.length;
    const response = await addConfig(strict, issuer()).expect(400);
    expect(response.body.code).toBe(9);
    expect(response.body.message).toContain(
      'resolves to a non-public address; allow it with ISSUER_ALLOW_PRIVATE_NETWORKS',
    );
    expect(proxy.requests).toEqual([]);
    expect(local.requests.length).toBe(seen);
  });
});
