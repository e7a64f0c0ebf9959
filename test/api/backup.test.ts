/** `npm run backup` and `npm run restore` of the embedded database, run as the operator runs them. */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rename, rm, stat, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { pino } from 'pino';
import request from 'supertest';
import { loadConfig } from '../../src/config.js';
import { findRunningEmbeddedPostgres, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { runNode, type Run } from '../fixtures/run-node.js';
import { ADMIN_AUTH, ADMIN_PASSWORD, trustIssuer } from '../fixtures/test-gateway.js';

const silent = pino({ level: 'silent' });
let ca: TestCa;
let issuer: FakeIssuer;
let work: string;

beforeAll(async () => {
  ca = await createTestCa();
  issuer = await startFakeIssuer(ca);
  work = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-backup-'));
  // As root, PostgreSQL runs as its own user, which must be able to pass through to each DATA_DIR in here.
  await chmod(work, 0o711);
});

afterAll(async () => {
  await issuer.close();
  await rm(work, { recursive: true, force: true });
});

let dirs = 0;
const newDataDir = () => path.join(work, `data-${++dirs}`);

const gatewayEnv = (dataDir: string) => ({
  DATA_DIR: dataDir,
  ADMIN_PASSWORD,
  ISSUER_CA_FILE: ca.file,
  ISSUER_ALLOW_PRIVATE_NETWORKS: '127.0.0.1',
  LOG_LEVEL: 'silent',
});

const startOn = (dataDir: string): Promise<Gateway> => startGateway(loadConfig(gatewayEnv(dataDir)), silent);

/** The command as `npm run backup|restore -- ...` runs it, from source; only DATA_DIR (and what `env` adds) set. */
function run(command: 'backup' | 'restore', args: string[], env: Record<string, string>): Promise<Run> {
  return runNode(['--import', 'tsx', `scripts/${command}.ts`, ...args], env);
}

/** Every row of every table, as JSON text, in a stable order, and where each sequence stands. */
async function contents(url: string): Promise<Record<string, string[]>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY 1`,
    );
    const result: Record<string, string[]> = {};
    for (const { name } of tables) {
      const { rows } = await client.query<{ row: string }>(`SELECT to_json(t)::text AS row FROM "${name}" t`);
      result[name] = rows.map((row) => row.row).sort();
    }
    const { rows: sequences } = await client.query<{ name: string; value: string | null }>(
      `SELECT sequencename AS name, last_value::text AS value FROM pg_sequences WHERE schemaname = 'public'`,
    );
    for (const { name, value } of sequences) result[`sequence ${name}`] = [String(value)];
    return result;
  } finally {
    await client.end();
  }
}

/** A gateway on `dataDir` with one config and one access token minted by an exchange. */
async function gatewayWithAToken(dataDir: string) {
  const gateway = await startOn(dataDir);
  await trustIssuer(gateway, issuer.issuer, { sub: 'ci-bot', role: 'Analyst' });
  const { body } = await request(gateway.app)
    .post('/v1/auth/m2m/exchange')
    .send({ idToken: await issuer.sign({ sub: 'ci-bot' }) })
    .expect(200);
  const configs = (await request(gateway.app).get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200)).body;
  return { gateway, accessToken: body.accessToken as string, configs };
}

describe('backup and restore of the embedded database', () => {
  it('bring back configs and signing keys: a token minted before the backup verifies after a restore into a wiped DATA_DIR', async () => {
    const dataDir = newDataDir();
    const file = path.join(work, 'running.backup');
    const { gateway, accessToken, configs } = await gatewayWithAToken(dataDir);
    let before: Record<string, string[]>;
    try {
      const backup = await run('backup', [file], { DATA_DIR: dataDir });
      expect(backup).toMatchObject({ code: 0, stderr: '' });
      expect(backup.stdout).toContain("from the running gateway's PostgreSQL 18");
      expect(backup.stdout).toContain(`The key encryption key is in ${file}.key-encryption-key`);
      before = await contents((await findRunningEmbeddedPostgres(dataDir))!.url);
    } finally {
      await gateway.close();
    }
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(`${file}.key-encryption-key`)).mode & 0o777).toBe(0o600);
    expect(await readFile(`${file}.key-encryption-key`, 'utf8')).toBe(
      await readFile(path.join(dataDir, 'key-encryption-key'), 'utf8'),
    );
    expect(before.m2m_configs).toHaveLength(1);
    expect(before.audit_events!.length).toBeGreaterThan(0);

    // Nothing of DATA_DIR is kept: the backup and the key file beside it are enough.
    await rm(dataDir, { recursive: true, force: true });
    const restore = await run('restore', [file], { DATA_DIR: dataDir });
    expect(restore).toMatchObject({ code: 0, stderr: '' });
    expect(restore.stdout).toContain(
      `The key encryption key was installed as ${path.join(dataDir, 'key-encryption-key')}`,
    );
    expect((await stat(path.join(dataDir, 'key-encryption-key'))).mode & 0o777).toBe(0o600);

    const database = await startEmbeddedPostgres(dataDir, silent);
    try {
      expect(await contents(database.url)).toEqual(before);
    } finally {
      await database.stop();
    }

    const restored = await startOn(dataDir);
    try {
      await request(restored.app).get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200).expect(configs);
      const status = await request(restored.app)
        .get('/v1/auth/status')
        .set('Authorization', `Bearer ${accessToken}`)
        .expect(200);
      expect(status.body.userInfo.roles).toEqual([{ name: 'Analyst' }]);
    } finally {
      await restored.close();
    }
  }, 90_000);

  describe('of a stopped gateway', () => {
    let dataDir: string;
    let file: string;
    let configs: object;

    beforeAll(async () => {
      dataDir = newDataDir();
      file = path.join(work, 'stopped.backup');
      const made = await gatewayWithAToken(dataDir);
      configs = made.configs;
      await made.gateway.close();
    }, 60_000);

    it('starts its PostgreSQL for the backup and stops it again', async () => {
      const backup = await run('backup', [file, '--without-key'], { DATA_DIR: dataDir });
      expect(backup).toMatchObject({ code: 0, stderr: '' });
      expect(backup.stdout).toContain('started for the backup and stopped again');
      expect(backup.stdout).toContain('The key encryption key was not written (--without-key)');
      expect(existsSync(`${file}.key-encryption-key`)).toBe(false);
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    }, 60_000);

    it('refuses to restore over a database that holds data, unless --force', async () => {
      const refused = await run('restore', [file], { DATA_DIR: dataDir });
      expect(refused).toMatchObject({
        code: 2,
        stderr: `the embedded database in ${dataDir} is not empty; --force replaces everything in it with the backup\n`,
      });
      const forced = await run('restore', [file, '--force'], { DATA_DIR: dataDir });
      expect(forced).toMatchObject({ code: 0, stderr: '' });
      expect(forced.stdout).toContain('replacing what was there');
      const gateway = await startOn(dataDir);
      try {
        await request(gateway.app).get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200).expect(configs);
      } finally {
        await gateway.close();
      }
    }, 60_000);

    it('refuses to restore while the gateway runs', async () => {
      const gateway = await startOn(dataDir);
      try {
        const refused = await run('restore', [file, '--force'], { DATA_DIR: dataDir });
        expect(refused.code).toBe(2);
        expect(refused.stderr).toMatch(
          /^the embedded database in .* is running \(PostgreSQL pid \d+\): stop the gateway first\n$/,
        );
      } finally {
        await gateway.close();
      }
    }, 60_000);

    it('refuses to restore without the key that encrypts its signing keys', async () => {
      const fresh = newDataDir();
      const missing = await run('restore', [file], { DATA_DIR: fresh });
      expect(missing).toMatchObject({
        code: 2,
        stderr:
          "the backup's signing keys are encrypted with a key that is not here: put it in " +
          `${file}.key-encryption-key (where the backup command writes it) or set KEY_ENCRYPTION_KEY\n`,
      });
      const wrong = await run('restore', [file], {
        DATA_DIR: fresh,
        KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
      });
      expect(wrong).toMatchObject({
        code: 2,
        stderr: "KEY_ENCRYPTION_KEY is not the key the backup's signing keys are encrypted with\n",
      });
      const right = await run('restore', [file], {
        DATA_DIR: fresh,
        KEY_ENCRYPTION_KEY: (await readFile(path.join(dataDir, 'key-encryption-key'), 'utf8')).trim(),
      });
      expect(right).toMatchObject({ code: 0, stderr: '' });
    }, 60_000);

    it('restores nothing from a truncated backup, and leaves the database empty for another try', async () => {
      const fresh = newDataDir();
      const damaged = path.join(work, 'damaged.backup');
      await run('backup', [damaged], { DATA_DIR: dataDir });
      await truncate(damaged, (await stat(damaged)).size - 40);
      const failed = await run('restore', [damaged], { DATA_DIR: fresh });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('damaged');

      await rename(`${damaged}.key-encryption-key`, `${file}.key-encryption-key`);
      const retried = await run('restore', [file], { DATA_DIR: fresh });
      expect(retried).toMatchObject({ code: 0, stderr: '' });
    }, 60_000);

    it('refuses what is not a backup', async () => {
      const notABackup = await run('restore', [ca.file], { DATA_DIR: newDataDir() });
      expect(notABackup).toMatchObject({ code: 2 });
      expect(notABackup.stderr).toContain('is not an m2m-gateway backup');
      expect(await run('restore', [], { DATA_DIR: newDataDir() })).toMatchObject({
        code: 2,
        stderr: 'usage: npm run restore -- FILE [--force]\n',
      });
      const empty = newDataDir();
      expect(await run('backup', [path.join(work, 'x.backup')], { DATA_DIR: empty })).toMatchObject({
        code: 2,
        stderr: `there is no embedded database in ${empty} (DATA_DIR)\n`,
      });
    }, 60_000);
  });
});
