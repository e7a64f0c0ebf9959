/** Graceful shutdown: what SIGTERM finishes, refuses and stops, and what closing writes. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { ADMIN_PASSWORD, startTestGateway, trustIssuer } from '../fixtures/test-gateway.js';

let ca: TestCa;
let issuer: FakeIssuer;

beforeAll(async () => {
  ca = await createTestCa();
  issuer = await startFakeIssuer(ca);
});

afterAll(async () => {
  await issuer.close();
});

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });

describe('SIGTERM', () => {
  it('finishes the exchange in flight, refuses new connections, and stops the embedded database', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-shutdown-'));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: new URL('../..', import.meta.url),
      env: {
        ...process.env,
        DATABASE_URL: '',
        DATA_DIR: dataDir,
        PORT: String(port),
        ADMIN_PASSWORD,
        ISSUER_CA_FILE: ca.file,
        ISSUER_ALLOW_PRIVATE_NETWORKS: '127.0.0.1',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      for (let attempt = 0; attempt < 300; attempt++) {
        const ready = await fetch(`${url}/readyz`).then(
          (response) => response.ok,
          () => false,
        );
        if (ready) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await trustIssuer({ app: url }, issuer.issuer);

      // The first exchange fetches discovery and JWKS; each answer waits, so it is still in flight at SIGTERM.
      issuer.delayMs = 1000;
      const inFlight = fetch(`${url}/v1/auth/m2m/exchange`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ idToken: await issuer.sign({ sub: 'ci-bot' }) }),
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 200));

      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(await answer.json()).toEqual({ accessToken: expect.any(String) });
      expect(await exited).toBe(0);
      expect(output).toContain('"msg":"stopped"');
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    } finally {
      issuer.delayMs = 0;
      child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('closing', () => {
  it('writes the exchange records still queued', async () => {
    const gateway = await startTestGateway({ EXCHANGE_RATE_LIMIT: '0' }, { ca });
    try {
      await trustIssuer(gateway, issuer.issuer);
      const response = await request(gateway.app)
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: await issuer.sign({ sub: 'ci-bot' }) })
        .expect(200);
      await gateway.close();

      const client = new pg.Client({ connectionString: gateway.database.url });
      await client.connect();
      const { rows } = await client.query('SELECT outcome FROM audit_events WHERE request_id = $1', [
        response.headers['x-request-id'],
      ]);
      await client.end();
      expect(rows).toEqual([{ outcome: 'minted' }]);
    } finally {
      await gateway.database.drop();
    }
  });
});
