/**
 * Nothing leaks: a scenario that exercises every path that handles a secret,
 * then a scan of everything the service printed (its logs at trace level),
 * every error it answered and every audit record it kept.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import request, { type Response } from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { query } from '../fixtures/sql.js';
import { createTestCa } from '../fixtures/test-ca.js';
import {
  ADMIN_AUTH,
  ADMIN_PASSWORD,
  errorBody,
  KEY_ENCRYPTION_KEY,
  startTestGateway,
  trustIssuer,
  type TestGateway,
} from '../fixtures/test-gateway.js';

const lines: string[] = [];
const responses: Response[] = [];
const secrets = new Set<string>([ADMIN_PASSWORD, KEY_ENCRYPTION_KEY]);
const WRONG_PASSWORD = 'wrong-password-7f3a9c';
let gateway: TestGateway;
let issuer: FakeIssuer;

/** A token and its signature segment, both of which must never show up. */
function remember(token: string): string {
  secrets.add(token);
  secrets.add(token.split('.')[2]!);
  return token;
}

async function call(test: request.Test): Promise<Response> {
  const response = await test;
  responses.push(response);
  return response;
}

beforeAll(async () => {
  secrets.add(WRONG_PASSWORD);
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  gateway = await startTestGateway({ EXCHANGE_RATE_LIMIT: '0' }, { logger });
  issuer = await startFakeIssuer(gateway.ca);
  const api = () => request(gateway.app);

  await trustIssuer(gateway, issuer.issuer, { role: 'Admin' });
  await call(
    api()
      .get('/v1/roles')
      .set('Authorization', `Basic ${Buffer.from(`admin:${WRONG_PASSWORD}`).toString('base64')}`),
  );

  const good = remember(await issuer.sign({ sub: 'ci-bot' }));
  const minted = await call(api().post('/v1/auth/m2m/exchange').send({ idToken: good }));
  const accessToken = remember(minted.body.accessToken);
  const oauth = await call(
    api().post('/oauth2/token').type('form').send({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: good,
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
    }),
  );
  remember(oauth.body.access_token);
  await call(api().get('/v1/auth/status').set('Authorization', `Bearer ${accessToken}`));

  const refusedTokens = [
    await issuer.sign({ sub: 'ci-bot', exp: 1 }),
    await issuer.sign({ sub: 'stranger' }),
    await issuer.sign({ sub: 'ci-bot', iss: 'https://unconfigured.example' }),
    await issuer.sign({ sub: 'ci-bot' }, { kid: 'unknown' }),
    `${good.split('.').slice(0, 2).join('.')}.${'A'.repeat(342)}`,
  ].map(remember);
  for (const idToken of refusedTokens) await call(api().post('/v1/auth/m2m/exchange').send({ idToken }));
  await call(api().get('/v1/auth/status').set('Authorization', `Bearer ${accessToken}x`));
  await call(
    api().post('/oauth2/token').type('form').send({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: refusedTokens[0],
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
    }),
  );
  await call(api().get('/v1/audit?limit=1000').set('Authorization', ADMIN_AUTH));
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

const leaked = (text: string) => [...secrets].filter((secret) => text.includes(secret));

describe('what the gateway prints, answers and records', () => {
  it('logs the scenario at all (the scan is not vacuous)', () => {
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.some((line) => line.includes('"outcome":"refused"'))).toBe(true);
  });

  it('never logs a token, a signature, a password or a key', () => {
    expect(lines.flatMap(leaked)).toEqual([]);
    expect(lines.join('\n')).not.toMatch(/PRIVATE KEY|authorization/i);
  });

  it('never answers an error with a token, a password, a stack trace or SQL', () => {
    const errors = responses.filter((response) => response.status >= 400);
    expect(errors.length).toBeGreaterThanOrEqual(8);
    for (const response of errors) {
      expect(leaked(response.text)).toEqual([]);
      expect(response.text).not.toMatch(/\n\s+at |SELECT|INSERT|prisma|node_modules/i);
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('keeps token hashes, never tokens, in the audit trail', () => {
    const audit = responses.at(-1)!;
    expect(audit.status).toBe(200);
    expect(
      audit.body.events.filter((event: { action: string }) => event.action === 'exchange').length,
    ).toBeGreaterThanOrEqual(7);
    const minted = audit.body.events.find((event: { outcome: string }) => event.outcome === 'minted');
    expect(minted.details.tokenSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(leaked(audit.text)).toEqual([]);
  });
});

describe('error answers to strangers', () => {
  it('say that a TLS certificate is not trusted, without addresses, ports or socket codes', async () => {
    const stranger = await startFakeIssuer(await createTestCa());
    try {
      // Stored behind the API's back: a write refuses an issuer whose certificate it does not trust.
      await query(
        gateway.database.url,
        `INSERT INTO m2m_configs (id, type, token_expiration_duration, issuer) VALUES ($1, 'GENERIC', '5m', $2)`,
        ['6a0c5b2e-1111-4c1f-9d7e-2b3c4d5e6f71', stranger.issuer],
      );
      await query(
        gateway.database.url,
        `INSERT INTO m2m_mappings (config_id, position, key, value_expression, role_name) VALUES ($1, 0, 'sub', 'ci-bot', 'None')`,
        ['6a0c5b2e-1111-4c1f-9d7e-2b3c4d5e6f71'],
      );
      await gateway.refresh();
      const response = await request(gateway.app)
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: await stranger.sign({ sub: 'ci-bot' }) })
        .expect(503);
      expect(response.body).toEqual(
        errorBody(
          14,
          `issuer "${stranger.issuer}" is unavailable: the issuer's TLS certificate is not trusted (set ISSUER_CA_FILE)`,
        ),
      );
      expect(response.text).not.toMatch(/UNABLE_TO_VERIFY|well-known|jwks/);
    } finally {
      await stranger.close();
    }
  });
});
