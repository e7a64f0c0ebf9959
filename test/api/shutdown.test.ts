/** Graceful shutdown: what SIGTERM finishes, refuses and stops, and what closing writes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { ADMIN_AUTH, ADMIN_PASSWORD, startTestGateway, trustIssuer } from '../fixtures/test-gateway.js';

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
    const gateway = launch('node', dataDir, port);
    const { child } = gateway;
    try {
      await untilReady(port, child);
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
      expect(await gateway.exited).toBe(0);
      expect(gateway.output).toContain('"msg":"stopped"');
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    } finally {
      issuer.delayMs = 0;
      gateway.killAll();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** A gateway process on an embedded database in a fresh DATA_DIR: `npm start`, or node on the sources. */
function launch(how: 'npm start' | 'node', dataDir: string, port: number, { detached = false } = {}) {
  const [command, args] =
    how === 'npm start' ? ['npm', ['start']] : [process.execPath, ['--import', 'tsx', 'src/main.ts']];
  const child = spawn(command as string, args as string[], {
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
    detached,
  });
  const gateway = {
    child,
    output: '',
    exited: new Promise<number | null>((resolve) => child.once('exit', resolve)),
    /** After a failure: SIGKILL to npm, node and PostgreSQL, whatever is left of them. */
    killAll: () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      for (const pid of [child.pid!, ...descendantsOf(child.pid!)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    },
  };
  child.stdout!.on('data', (chunk: Buffer) => (gateway.output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (gateway.output += chunk.toString()));
  return gateway;
}

async function untilReady(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 300 && child.exitCode === null; attempt++) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the gateway did not become ready');
}

async function until(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  for (const start = Date.now(); !condition();) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Linux /proc: a process's state, parent and process group. */
function statOf(pid: number): { state: string; ppid: number; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid), pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
}

/** Running: a process that exited but was not reaped yet (a zombie) is not. */
const alive = (pid: number) => ![undefined, 'Z', 'X'].includes(statOf(pid)?.state);

const pids = () =>
  readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
const childrenOf = (pid: number) => pids().filter((candidate) => statOf(candidate)?.ppid === pid);
const descendantsOf = (pid: number): number[] => childrenOf(pid).flatMap((child) => [child, ...descendantsOf(child)]);

/** Every PostgreSQL process of a cluster: they all work in its directory. */
function processesIn(clusterDir: string): number[] {
  const dir = realpathSync(clusterDir);
  return pids().filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/cwd`) === dir;
    } catch {
      return false;
    }
  });
}

const postmaster = async (dataDir: string) => {
  const [pid, , , port] = (await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n');
  return { pid: Number(pid), port: Number(port) };
};

describe('npm start', () => {
  it('stops node and the embedded PostgreSQL when npm itself gets SIGTERM, as docker stop sends it', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-npm-'));
    const port = await freePort();
    const npm = launch('npm start', dataDir, port);
    try {
      await untilReady(port, npm.child);
      const [node] = childrenOf(npm.child.pid!);
      const database = await postmaster(dataDir);
      // PostgreSQL runs in a process group of its own: a terminal's Ctrl-C reaches node, which drains first.
      expect(statOf(database.pid)!.pgrp).not.toBe(statOf(node!)!.pgrp);

      // The embedded database's address is logged at start, without its password.
      const logged = npm.output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.msg === 'embedded PostgreSQL is running');
      expect(logged).toMatchObject({
        level: 30,
        host: '127.0.0.1',
        port: database.port,
        user: 'postgres',
        database: 'gateway',
      });
      const password = (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim();
      expect(npm.output).not.toContain(password);

      npm.child.kill('SIGTERM');
      await npm.exited;
      await until(() => !alive(node!));
      expect(npm.output).toContain('"msg":"stopped"');
      expect(alive(database.pid)).toBe(false);
      expect(processesIn(path.join(dataDir, 'postgres'))).toEqual([]);
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    } finally {
      npm.killAll();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it("stops as gracefully on SIGINT to npm's whole process group, as a terminal's Ctrl-C sends it", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-npm-'));
    const port = await freePort();
    const npm = launch('npm start', dataDir, port, { detached: true });
    try {
      await untilReady(port, npm.child);
      const [node] = childrenOf(npm.child.pid!);
      process.kill(-npm.child.pid!, 'SIGINT');
      await npm.exited;
      await until(() => !alive(node!));
      expect(npm.output).toContain('"signal":"SIGINT","msg":"shutting down"');
      expect(npm.output).toContain('"msg":"stopped"');
      expect(npm.output).not.toContain('stopped unexpectedly');
      expect(processesIn(path.join(dataDir, 'postgres'))).toEqual([]);
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    } finally {
      npm.killAll();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** Starts the gateway again on `dataDir`, runs `check` against it, and stops it with SIGTERM: exit code 0. */
async function startsAgainAndStops(
  dataDir: string,
  port: number,
  check: () => Promise<unknown> = async () => undefined,
) {
  const again = launch('node', dataDir, port);
  try {
    await untilReady(port, again.child);
    await check();
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  } finally {
    again.killAll();
  }
}

describe('SIGKILL', () => {
  it('of node takes the embedded PostgreSQL down with it, and the next start finds everything', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-sigkill-'));
    const port = await freePort();
    const first = launch('node', dataDir, port);
    try {
      await untilReady(port, first.child);
      const config = await trustIssuer({ app: `http://127.0.0.1:${port}` }, issuer.issuer);
      const database = await postmaster(dataDir);
      first.child.kill('SIGKILL');
      await first.exited;
      await until(() => processesIn(path.join(dataDir, 'postgres')).length === 0);
      expect(alive(database.pid)).toBe(false);
      // A fast shutdown: PostgreSQL removed its postmaster.pid itself.
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);

      await startsAgainAndStops(dataDir, port, () =>
        request(`http://127.0.0.1:${port}`)
          .get(`/v1/auth/m2m/${config.id}`)
          .set('Authorization', ADMIN_AUTH)
          .expect(200),
      );
    } finally {
      first.killAll();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  it('of node and PostgreSQL together leaves a stale postmaster.pid, which the next start gets past', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-sigkill-'));
    const port = await freePort();
    const first = launch('node', dataDir, port);
    try {
      await untilReady(port, first.child);
      const database = await postmaster(dataDir);
      process.kill(database.pid, 'SIGKILL');
      first.child.kill('SIGKILL');
      await first.exited;
      await until(() => processesIn(path.join(dataDir, 'postgres')).length === 0);
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(true);

      await startsAgainAndStops(dataDir, port);
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    } finally {
      first.killAll();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
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
