import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { pino } from 'pino';
import request from 'supertest';
import { loadConfig } from '../../src/config.js';
import { applyMigrations, defaultMigrationsDir, readMigrations } from '../../src/db/migrate.js';
import { startGateway } from '../../src/gateway.js';
import { startFakeIssuer } from '../fixtures/fake-issuer.js';
import { runNode } from '../fixtures/run-node.js';
import { createTestCa } from '../fixtures/test-ca.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/test-database.js';
import { ADMIN_AUTH, startTestGateway } from '../fixtures/test-gateway.js';

const silent = pino({ level: 'silent' });
const databases: TestDatabase[] = [];

async function freshDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase();
  databases.push(database);
  return database;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  for (const database of databases) await database.drop();
});

const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;

const config = (issuer: string) => ({
  type: 'GENERIC',
  tokenExpirationDuration: '1h',
  issuer,
  mappings: [{ key: 'sub', valueExpression: '.*', role: 'None' }],
});

describe('migrations', () => {
  it('records each migration in _prisma_migrations as Prisma does', async () => {
    const database = await freshDatabase();
    const gateway = await startTestGateway({}, { database });
    await gateway.close();

    const rows = await query<{
      migration_name: string;
      checksum: string;
      finished_at: Date;
      applied_steps_count: number;
      rolled_back_at: Date | null;
    }>(
      database.url,
      'SELECT migration_name, checksum, finished_at, applied_steps_count, rolled_back_at FROM "_prisma_migrations" ORDER BY migration_name',
    );
    const dir = defaultMigrationsDir();
    const expected = await readMigrations(dir);
    expect(rows.map((row) => row.migration_name)).toEqual(expected.map((m) => m.name));
    for (const row of rows) {
      const sql = await readFile(path.join(dir, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.applied_steps_count).toBe(1);
      expect(row.rolled_back_at).toBeNull();
    }
  });

  it('lets only one of several replicas starting together apply them', async () => {
    const database = await freshDatabase();
    const migrations = await readMigrations(defaultMigrationsDir());
    const results = await Promise.all([1, 2, 3].map(() => applyMigrations(database.url, migrations, silent)));
    expect(results.flat()).toEqual(migrations.map((m) => m.name));
    const [row] = await query<{ count: string }>(database.url, 'SELECT count(*) FROM "_prisma_migrations"');
    expect(Number(row!.count)).toBe(migrations.length);
  });

  it('reports ready once the database is migrated', async () => {
    const gateway = await startTestGateway({}, { database: await freshDatabase() });
    try {
      await request(gateway.app).get('/readyz').expect(200).expect({ status: 'ready' });
      await request(gateway.app).get('/healthz').expect(200).expect({ status: 'ok' });
    } finally {
      await gateway.close();
    }
  });
});

describe('restarts', () => {
  it('finds every config again after a restart on the same database', async () => {
    const ca = await createTestCa();
    const issuer = await startFakeIssuer(ca);
    const database = await freshDatabase();
    try {
      const first = await startTestGateway({}, { ca, database });
      const { body } = await request(first.app)
        .post('/v1/auth/m2m')
        .set('Authorization', ADMIN_AUTH)
        .send({ config: config(issuer.issuer) })
        .expect(200);
      await first.close();

      const second = await startTestGateway({}, { ca, database });
      await request(second.app)
        .get('/v1/auth/m2m')
        .set('Authorization', ADMIN_AUTH)
        .expect(200)
        .expect({ configs: [body.config] });
      await second.close();
    } finally {
      await issuer.close();
    }
  });
});

describe('the bootstrap admin password', () => {
  it('is generated once when ADMIN_PASSWORD is unset, and only its hash is stored', async () => {
    const database = await freshDatabase();
    const first = await startTestGateway({ ADMIN_PASSWORD: '' }, { database });
    const generated = first.generatedAdminPassword;
    expect(generated).toMatch(/^[A-Za-z0-9_-]{24}$/);
    await request(first.app).get('/v1/roles').set('Authorization', basic(generated!)).expect(200);
    await first.close();

    const [row] = await query<{ password_hash: string }>(database.url, 'SELECT password_hash FROM admin_credentials');
    expect(row!.password_hash).toMatch(/^scrypt\$/);
    expect(row!.password_hash).not.toContain(generated);

    const second = await startTestGateway({ ADMIN_PASSWORD: '' }, { database });
    expect(second.generatedAdminPassword).toBeUndefined();
    await request(second.app).get('/v1/roles').set('Authorization', basic(generated!)).expect(200);
    await second.close();
  });

  it('follows ADMIN_PASSWORD when it is set', async () => {
    const database = await freshDatabase();
    const first = await startTestGateway({ ADMIN_PASSWORD: 'first-password' }, { database });
    expect(first.generatedAdminPassword).toBeUndefined();
    await first.close();
    const second = await startTestGateway({ ADMIN_PASSWORD: 'second-password' }, { database });
    await request(second.app).get('/v1/roles').set('Authorization', basic('second-password')).expect(200);
    await request(second.app).get('/v1/roles').set('Authorization', basic('first-password')).expect(401);
    await second.close();
  });
});

describe('the embedded database', () => {
  it('starts in DATA_DIR without DATABASE_URL and keeps its data across restarts', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-data-'));
    const ca = await createTestCa();
    const issuer = await startFakeIssuer(ca);
    const env = {
      DATA_DIR: dataDir,
      ADMIN_PASSWORD: 'embedded-password',
      ISSUER_CA_FILE: ca.file,
      ISSUER_ALLOW_PRIVATE_NETWORKS: '127.0.0.1',
      LOG_LEVEL: 'silent',
    };
    try {
      const first = await startGateway(loadConfig(env), silent);
      const { body } = await request(first.app)
        .post('/v1/auth/m2m')
        .set('Authorization', basic('embedded-password'))
        .send({ config: config(issuer.issuer) })
        .expect(200);
      await first.close();
      expect((await stat(path.join(dataDir, 'postgres-password'))).mode & 0o777).toBe(0o600);

      const second = await startGateway(loadConfig(env), silent);
      await request(second.app)
        .get('/v1/auth/m2m')
        .set('Authorization', basic('embedded-password'))
        .expect({ configs: [body.config] });
      await second.close();
    } finally {
      await issuer.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('wrong settings', () => {
  it('stop the start before anything runs: every problem on a line of its own, exit code 2, no stack trace', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-settings-'));
    try {
      const { code, stdout, stderr } = await runNode(['--import', 'tsx', 'src/main.ts'], {
        DATA_DIR: path.join(dataDir, 'data'),
        TRUST_PROXY: 'true',
        ISSUER_CA_FILE: path.join(dataDir, 'missing.pem'),
        LOG_LEVEL: 'info',
      });
      expect(code).toBe(2);
      expect(stderr.trim().split('\n')).toEqual([
        `ISSUER_CA_FILE ${JSON.stringify(path.join(dataDir, 'missing.pem'))} cannot be read (no such file)`,
        'TRUST_PROXY=true is refused: it lets any client choose its address with X-Forwarded-For; ' +
          "give the number of proxy hops or the proxies' addresses",
      ]);
      expect(stdout).toBe('');
      await expect(stat(path.join(dataDir, 'data'))).rejects.toThrow();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
