/**
 * Strangers cannot lock out the admin or a workload: only wrong passwords
 * count as guesses, per client address and before the slow check, and only
 * verified tokens spend an issuer's budget.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, errorBody, startTestGateway, trustIssuer, type TestGateway } from '../fixtures/test-gateway.js';

const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;

let gateway: TestGateway;
let issuer: FakeIssuer;
let adminToken: string;
let clientNumber = 0;
/** A fresh client address per test: the gateway believes one proxy hop (TRUST_PROXY=1). */
const nextClient = () => `198.51.100.${++clientNumber}`;

beforeAll(async () => {
  gateway = await startTestGateway({ TRUST_PROXY: '1', EXCHANGE_RATE_LIMIT: '0' });
  issuer = await startFakeIssuer(gateway.ca);
  await trustIssuer(gateway, issuer.issuer, { role: 'Admin' });
  const { body } = await request(gateway.app)
    .post('/v1/auth/m2m/exchange')
    .send({ idToken: await issuer.sign({ sub: 'ci-bot' }) })
    .expect(200);
  adminToken = body.accessToken;
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

const adminCall = (client: string, authorization?: string) => {
  const call = request(gateway.app).get('/v1/roles').set('X-Forwarded-For', client);
  return authorization === undefined ? call : call.set('Authorization', authorization);
};

describe('admin password guessing', () => {
  it('never counts requests without credentials, with malformed ones or with Bearer tokens', async () => {
    const client = nextClient();
    for (let attempt = 0; attempt < 12; attempt++) {
      await adminCall(client).expect(401);
      await adminCall(client, 'Basic !!!').expect(401);
      await adminCall(client, 'Bearer not-a-token').expect(401);
      await adminCall(client, 'Digest whatever').expect(401);
    }
    await adminCall(client, ADMIN_AUTH).expect(200);
  });

  it('refuses Basic attempts over 10 wrong passwords a minute with 429 and Retry-After', async () => {
    const client = nextClient();
    for (let attempt = 0; attempt < 10; attempt++) await adminCall(client, basic(`guess-${attempt}`)).expect(401);
    const refused = await adminCall(client, basic('guess-10'))
      .expect(429)
      .expect(errorBody(8, 'too many failed logins from this address'));
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('never refuses a valid Bearer token because of guesses from its address', async () => {
    const client = nextClient();
    for (let attempt = 0; attempt < 11; attempt++) await adminCall(client, basic(`guess-${attempt}`));
    await adminCall(client, basic('guess')).expect(429);
    await adminCall(client, `Bearer ${adminToken}`).expect(200);
  });

  it('keeps the guesses of one address from affecting another', async () => {
    const attacker = nextClient();
    for (let attempt = 0; attempt < 11; attempt++) await adminCall(attacker, basic(`guess-${attempt}`));
    await adminCall(attacker, basic('guess')).expect(429);
    await adminCall(nextClient(), ADMIN_AUTH).expect(200);
  });

  it('counts a guess before its slow check, so a concurrent burst cannot overrun the budget', async () => {
    const client = nextClient();
    const burst = Array.from({ length: 40 }, (_, index) =>
      adminCall(client, index === 30 ? ADMIN_AUTH : basic(`burst-${index}`)).then((response) => response.status),
    );
    const statuses = await Promise.all(burst);
    const checked = statuses.filter((status) => status !== 429);
    expect(checked.length).toBeLessThanOrEqual(10);
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(30);
  });

  it('does not count the right password as a guess', async () => {
    const client = nextClient();
    for (let attempt = 0; attempt < 9; attempt++) await adminCall(client, basic(`guess-${attempt}`)).expect(401);
    for (let attempt = 0; attempt < 5; attempt++) await adminCall(client, ADMIN_AUTH).expect(200);
    await adminCall(client, basic('guess-9')).expect(401);
    await adminCall(client, basic('guess-10')).expect(429);
  });
});

describe('the per-issuer exchange budget', () => {
  it('is not spent by genuine tokens that get no role, which anyone may have an issuer sign', async () => {
    const limited = await startTestGateway({ TRUST_PROXY: '1', EXCHANGE_RATE_LIMIT: '1' });
    const shared = await startFakeIssuer(limited.ca);
    try {
      await trustIssuer(limited, shared.issuer);
      for (let client = 0; client < 25; client++) {
        await request(limited.app)
          .post('/v1/auth/m2m/exchange')
          .set('X-Forwarded-For', `203.0.113.${client}`)
          .send({ idToken: await shared.sign({ sub: `stranger-${client}` }) })
          .expect(401);
      }
      await request(limited.app)
        .post('/v1/auth/m2m/exchange')
        .set('X-Forwarded-For', '203.0.113.201')
        .send({ idToken: await shared.sign({ sub: 'ci-bot' }) })
        .expect(200);
    } finally {
      await shared.close();
      await limited.close();
      await limited.database.drop();
    }
  });

  it('is spent only by tokens whose signature verified, so forgeries cannot cut off real clients', async () => {
    const limited = await startTestGateway({ TRUST_PROXY: '1', EXCHANGE_RATE_LIMIT: '1' });
    const real = await startFakeIssuer(limited.ca);
    const forger = await startFakeIssuer(limited.ca);
    try {
      await trustIssuer(limited, real.issuer);
      // The forger signs with its own keys but names the configured issuer and a kid the issuer publishes.
      const kid = real.publicKeys()[0]!.kid!;
      for (let client = 0; client < 25; client++) {
        const forged = await forger.sign({ iss: real.issuer, sub: 'ci-bot' }, { kid });
        await request(limited.app)
          .post('/v1/auth/m2m/exchange')
          .set('X-Forwarded-For', `203.0.113.${client}`)
          .send({ idToken: forged })
          .expect(401)
          .expect(errorBody(16, 'ID token is invalid: signature'));
      }
      await request(limited.app)
        .post('/v1/auth/m2m/exchange')
        .set('X-Forwarded-For', '203.0.113.200')
        .send({ idToken: await real.sign({ sub: 'ci-bot' }) })
        .expect(200);
    } finally {
      await forger.close();
      await real.close();
      await limited.close();
      await limited.database.drop();
    }
  });
});
