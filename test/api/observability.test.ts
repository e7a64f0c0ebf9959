import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, startTestGateway, type TestGateway, trustIssuer } from '../fixtures/test-gateway.js';

const lines: string[] = [];
let gateway: TestGateway;
let issuer: FakeIssuer;
let mintedRequestId: string;

beforeAll(async () => {
  gateway = await startTestGateway(
    { EXCHANGE_RATE_LIMIT: '2' },
    { logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }) },
  );
  issuer = await startFakeIssuer(gateway.ca);
  await trustIssuer(gateway, issuer.issuer);
  const exchange = async (sub: string) =>
    request(gateway.app)
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: await issuer.sign({ sub }) });
  const minted = await exchange('ci-bot');
  expect(minted.status).toBe(200);
  mintedRequestId = minted.headers['x-request-id']!;
  expect((await exchange('stranger')).status).toBe(401);
  expect((await exchange('ci-bot')).status).toBe(429);
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

describe('GET /metrics', () => {
  let text: string;
  beforeAll(async () => {
    const response = await request(gateway.app).get('/metrics').expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    text = response.text;
  });

  it('counts exchanges by outcome and config type, with their latency', () => {
    expect(text).toContain('m2m_exchanges_total{outcome="minted",config_type="GENERIC"} 1');
    expect(text).toContain('m2m_exchanges_total{outcome="refused",config_type="GENERIC"} 1');
    expect(text).toMatch(/m2m_exchange_duration_seconds_count\{outcome="minted"\} 1/);
  });

  it('counts discovery and JWKS fetches per issuer', () => {
    expect(text).toContain(`m2m_issuer_fetches_total{issuer="${issuer.issuer}",document="discovery",result="ok"} 1`);
    expect(text).toContain(`m2m_issuer_fetches_total{issuer="${issuer.issuer}",document="jwks",result="ok"} 1`);
  });

  it('shows cache sizes, rate-limit refusals and process metrics', () => {
    expect(text).toContain('m2m_configs 1');
    expect(text).toContain('m2m_signing_keys_published 1');
    expect(text).toContain('m2m_rate_limited_total{endpoint="exchange"} 1');
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });
});

describe('rate-limit refusals', () => {
  const refusals = async (endpoint: string) => {
    const line = (await request(gateway.app).get('/metrics')).text
      .split('\n')
      .find((l) => l.startsWith(`m2m_rate_limited_total{endpoint="${endpoint}"} `));
    return line ? Number(line.split(' ')[1]) : 0;
  };

  it('are counted as exchanges also when the request line names the whole URL (RFC 9112 §3.2.2)', async () => {
    const server = gateway.app.listen(0);
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const send = () =>
        new Promise<string>((resolve, reject) => {
          let answer = '';
          net
            .connect(port, '127.0.0.1')
            .on('data', (chunk) => (answer += String(chunk)))
            .on('close', () => resolve(answer.split('\r\n')[0]!))
            .on('error', reject)
            .end(
              'POST http://gateway.example/v1/auth/m2m/exchange HTTP/1.1\r\nHost: gateway.example\r\n' +
                'Connection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
            );
        });
      const [exchangesBefore, adminBefore] = [await refusals('exchange'), await refusals('admin')];
      let status = '';
      for (let attempt = 0; attempt < 3 && !status.includes(' 429 '); attempt++) status = await send();
      expect(status).toBe('HTTP/1.1 429 Too Many Requests');
      expect(await refusals('exchange')).toBe(exchangesBefore + 1);
      expect(await refusals('admin')).toBe(adminBefore);
    } finally {
      server.close();
    }
  });
});

describe('health', () => {
  it('answers liveness and readiness', async () => {
    await request(gateway.app).get('/healthz').expect(200).expect({ status: 'ok' });
    await request(gateway.app).get('/readyz').expect(200).expect({ status: 'ready' });
  });
});

describe('logs', () => {
  it('are JSON lines that carry the request id of the response', async () => {
    const response = await request(gateway.app).get('/v1/roles').set('Authorization', ADMIN_AUTH).expect(200);
    const id = response.headers['x-request-id'];
    const entries = lines.map((line) => JSON.parse(line) as { req?: { id?: string; path?: string }; msg: string });
    const completed = entries.find((entry) => entry.req?.id === id);
    expect(completed).toMatchObject({ msg: 'request completed', req: { id, path: '/v1/roles' } });
  });

  it('name the request on the audit line of an exchange too', () => {
    const entries = lines.map((line) => JSON.parse(line) as { req?: { id?: string }; audit?: { requestId?: string } });
    expect(entries.filter((entry) => entry.req?.id === mintedRequestId)).toHaveLength(1);
    expect(entries.filter((entry) => entry.audit?.requestId === mintedRequestId)).toEqual([
      expect.objectContaining({ audit: expect.objectContaining({ action: 'exchange', outcome: 'minted' }) }),
    ]);
  });
});
