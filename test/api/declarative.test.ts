import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { declarativeConfigId } from '../../src/domain/declarative.js';
import type { GatewayOptions } from '../../src/gateway.js';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/test-database.js';
import { ADMIN_AUTH, errorBody, startTestGateway, trustIssuer, type TestGateway } from '../fixtures/test-gateway.js';

const POLL: GatewayOptions = { declarativePollIntervalMs: 100 };
/** docs/reference.md §6.5: a change is applied within 5 s. */
const WITHIN_MS = 5000;

let ca: TestCa;
let issuer: FakeIssuer;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  ca = await createTestCa();
  issuer = await startFakeIssuer(ca);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await issuer.close();
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function gatewayOn(dir: string, database?: TestDatabase): Promise<TestGateway> {
  const gateway = await startTestGateway({ DECLARATIVE_CONFIG_DIR: dir }, { ca, database, options: POLL });
  cleanups.push(async () => {
    await gateway.close();
    if (!database) await gateway.database.drop();
  });
  return gateway;
}

const admin = (gateway: TestGateway) => ({
  get: (url: string) => request(gateway.app).get(url).set('Authorization', ADMIN_AUTH),
  put: (url: string) => request(gateway.app).put(url).set('Authorization', ADMIN_AUTH),
  post: (url: string) => request(gateway.app).post(url).set('Authorization', ADMIN_AUTH),
  delete: (url: string) => request(gateway.app).delete(url).set('Authorization', ADMIN_AUTH),
});

/** Polls until `check` passes; fails after docs/reference.md §6.5's 5 s. */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < WITHIN_MS) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not seen within ${WITHIN_MS} ms`);
}

const roleYaml = `kind: Role
name: Deployer
description: Deploys from CI
permissions:
  Deployment: READ_WRITE_ACCESS
`;

const configYaml = (
  issuerUrl: string,
  { duration = '5m', sub = 'ci-bot', audience = '' } = {},
) => `kind: AuthMachineToMachineConfig
type: GENERIC
issuer: ${issuerUrl}
audience: '${audience}'
tokenExpirationDuration: ${duration}
mappings:
  - key: sub
    valueExpression: ${sub}
    role: Deployer
tests:
  - name: the CI bot deploys
    claims: { sub: ${sub} }
    roles: [Deployer]
`;

describe('DECLARATIVE_CONFIG_DIR', () => {
  let dir: string;
  let gateway: TestGateway;
  let id: string;
  const configPath = () => `/v1/auth/m2m/${id}`;

  beforeAll(async () => {
    dir = await tempDir('m2m-declarative-');
    await writeFile(path.join(dir, 'roles.yaml'), roleYaml);
    await writeFile(path.join(dir, 'configs.yaml'), configYaml(issuer.issuer));
    await writeFile(path.join(dir, 'README.md'), 'not read');
    gateway = await gatewayOn(dir);
    id = declarativeConfigId(issuer.issuer, '');
  });

  it('applies the files at start: a config under an id derived from its issuer, and a role, both DECLARATIVE', async () => {
    const { body } = await admin(gateway).get(configPath()).expect(200);
    expect(body.config).toMatchObject({
      id,
      issuer: issuer.issuer,
      tokenExpirationDuration: '5m',
      traits: { mutabilityMode: 'ALLOW_MUTATE', visibility: 'VISIBLE', origin: 'DECLARATIVE' },
      mappings: [{ key: 'sub', valueExpression: 'ci-bot', role: 'Deployer' }],
    });
    await admin(gateway)
      .get('/v1/roles/Deployer')
      .expect(200)
      .expect({ name: 'Deployer', description: 'Deploys from CI', permissions: { Deployment: 'READ_WRITE_ACCESS' } });

    const idToken = await issuer.sign({ sub: 'ci-bot' });
    await request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken }).expect(200);

    const audit = await admin(gateway).get(`/v1/audit?configId=${id}`).expect(200);
    const create = audit.body.events.find((event: { action: string }) => event.action === 'config.create');
    expect(create).toMatchObject({ actor: 'declarative', outcome: 'applied' });
    expect(create.details.source).toEqual({ file: 'configs.yaml', document: 1 });

    await admin(gateway)
      .get('/v1/declarative/status')
      .expect(200)
      .expect((res) =>
        expect(res.body).toEqual({ directory: dir, lastApplied: expect.any(String), documents: 2, errors: [] }),
      );
  });

  it('refuses API changes to declarative configs and roles with 403, and their (issuer, audience) with 409', async () => {
    const input = {
      config: {
        issuer: issuer.issuer,
        tokenExpirationDuration: '1h',
        mappings: [{ key: 'sub', valueExpression: 'x', role: 'None' }],
      },
    };
    await admin(gateway)
      .put(configPath())
      .send(input)
      .expect(403)
      .expect(errorBody(7, `config ${id} is declarative; change its file`));
    await admin(gateway)
      .delete(configPath())
      .expect(403)
      .expect(errorBody(7, `config ${id} is declarative; change its file`));
    await admin(gateway)
      .post('/v1/auth/m2m')
      .send(input)
      .expect(409)
      .expect(errorBody(6, `a machine-to-machine config for issuer ${JSON.stringify(issuer.issuer)} already exists`));
    await admin(gateway)
      .put('/v1/roles/Deployer')
      .send({ permissions: {} })
      .expect(403)
      .expect(errorBody(7, 'role Deployer is declarative; change its file'));
    await admin(gateway)
      .delete('/v1/roles/Deployer')
      .expect(403)
      .expect(errorBody(7, 'role Deployer is declarative; change its file'));
    expect((await admin(gateway).get(configPath()).expect(200)).body.config.tokenExpirationDuration).toBe('5m');
  });

  it('applies a changed file within the poll interval', async () => {
    await writeFile(path.join(dir, 'configs.yaml'), configYaml(issuer.issuer, { duration: '10m' }));
    await eventually(
      async () => (await admin(gateway).get(configPath())).body.config?.tokenExpirationDuration === '10m',
    );
    const audit = await admin(gateway).get(`/v1/audit?configId=${id}`).expect(200);
    expect(audit.body.events[0]).toMatchObject({ action: 'config.update', actor: 'declarative' });
  });

  it('keeps the applied version of an invalid document, lists it in the status and counts it in /metrics', async () => {
    const broken = configYaml(issuer.issuer, { duration: '48h' }).replace('role: Deployer', 'role: Nobody');
    await writeFile(path.join(dir, 'configs.yaml'), `# a comment\n${broken}`);
    let status: request.Response | undefined;
    await eventually(async () => {
      status = await admin(gateway).get('/v1/declarative/status');
      return status.body.errors.length > 0;
    });
    expect(status!.body).toEqual({
      directory: dir,
      lastApplied: expect.any(String),
      documents: 2,
      errors: [
        {
          file: 'configs.yaml',
          document: 1,
          line: 2,
          problems: [
            'tokenExpirationDuration "48h" must be between 1m and 24h',
            'mappings[0].role "Nobody" does not exist',
          ],
        },
      ],
    });
    expect((await admin(gateway).get(configPath()).expect(200)).body.config).toMatchObject({
      tokenExpirationDuration: '10m',
      mappings: [{ key: 'sub', valueExpression: 'ci-bot', role: 'Deployer' }],
    });
    const metrics = (await request(gateway.app).get('/metrics').expect(200)).text;
    expect(metrics).toContain('m2m_declarative_errors_total 1');
    expect(metrics).toContain('m2m_declarative_errors 1');

    // Fixed: applied, and the error is gone.
    await writeFile(path.join(dir, 'configs.yaml'), configYaml(issuer.issuer, { duration: '15m' }));
    await eventually(async () => (await admin(gateway).get('/v1/declarative/status')).body.errors.length === 0);
    expect((await admin(gateway).get(configPath()).expect(200)).body.config.tokenExpirationDuration).toBe('15m');
    expect((await request(gateway.app).get('/metrics').expect(200)).text).toContain('m2m_declarative_errors 0');
  });

  it('does not take an (issuer, audience) that a config made through the API has', async () => {
    const other = await startFakeIssuer(ca);
    cleanups.push(() => other.close());
    const imperative = await trustIssuer(gateway, other.issuer);
    await writeFile(
      path.join(dir, 'other.yaml'),
      configYaml(other.issuer).replace('type: GENERIC\n', 'type: GENERIC\nid: 0f4c6a52-7d3e-4d47-9f0e-6b1de1a1c001\n'),
    );
    await eventually(async () => (await admin(gateway).get('/v1/declarative/status')).body.errors.length > 0);
    expect((await admin(gateway).get('/v1/declarative/status')).body.errors).toEqual([
      {
        file: 'other.yaml',
        document: 1,
        line: 1,
        problems: [
          `issuer ${JSON.stringify(other.issuer)} (no audience): config ${imperative.id}, made through the API, has them`,
        ],
      },
    ]);
    await admin(gateway).get('/v1/auth/m2m/0f4c6a52-7d3e-4d47-9f0e-6b1de1a1c001').expect(404);
    await rm(path.join(dir, 'other.yaml'));
    await eventually(async () => (await admin(gateway).get('/v1/declarative/status')).body.errors.length === 0);
    expect((await admin(gateway).get(`/v1/auth/m2m/${imperative.id}`).expect(200)).body.config.traits.origin).toBe(
      'IMPERATIVE',
    );
  });

  it('deletes the object of a document removed from the files, and only declarative ones', async () => {
    await writeFile(path.join(dir, 'configs.yaml'), '# nothing declared here any more\n');
    await eventually(async () => (await admin(gateway).get(configPath())).status === 404);
    await rm(path.join(dir, 'roles.yaml'));
    await eventually(async () => (await admin(gateway).get('/v1/roles/Deployer')).status === 404);
    const { body } = await admin(gateway).get('/v1/auth/m2m').expect(200);
    expect(body.configs.map((config: { traits: { origin: string } }) => config.traits.origin)).toEqual(['IMPERATIVE']);
    const audit = await admin(gateway).get(`/v1/audit?configId=${id}`).expect(200);
    expect(audit.body.events[0]).toMatchObject({ action: 'config.delete', actor: 'declarative' });
  });
});

describe('DECLARATIVE_CONFIG_DIR on two replicas of one database', () => {
  it('is applied once, and both replicas serve it', async () => {
    const dir = await tempDir('m2m-declarative-replicas-');
    await writeFile(path.join(dir, 'all.yaml'), `${roleYaml}---\n${configYaml(issuer.issuer)}`);
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const [first, second] = await Promise.all([gatewayOn(dir, database), gatewayOn(dir, database)]);
    const id = declarativeConfigId(issuer.issuer, '');
    const idToken = await issuer.sign({ sub: 'ci-bot' });
    for (const replica of [first!, second!]) {
      expect((await admin(replica).get(`/v1/auth/m2m/${id}`).expect(200)).body.config.traits.origin).toBe(
        'DECLARATIVE',
      );
      await request(replica.app).post('/v1/auth/m2m/exchange').send({ idToken }).expect(200);
    }
    const audit = await admin(first!).get('/v1/audit?limit=1000').expect(200);
    const changes = audit.body.events
      .filter((event: { actor: string }) => event.actor === 'declarative')
      .map((event: { action: string }) => event.action)
      .sort();
    expect(changes).toEqual(['config.create', 'role.create']);

    // A change to the files is written by one of them and seen by both.
    await writeFile(path.join(dir, 'all.yaml'), `${roleYaml}---\n${configYaml(issuer.issuer, { duration: '20m' })}`);
    for (const replica of [first!, second!]) {
      await eventually(
        async () => (await admin(replica).get(`/v1/auth/m2m/${id}`)).body.config?.tokenExpirationDuration === '20m',
      );
    }
    const declarativeUpdates = async () =>
      (await admin(second!).get('/v1/audit?limit=1000').expect(200)).body.events.filter(
        (event: { action: string; actor: string }) => event.actor === 'declarative' && event.action === 'config.update',
      );
    // The writer records the change just after storing it, so the other replica may see the config first.
    await eventually(async () => (await declarativeUpdates()).length > 0);
    // Both replicas have polled the new files several times by now.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await declarativeUpdates()).toHaveLength(1);
  });
});

describe('DECLARATIVE_CONFIG_DIR mounted from a Kubernetes ConfigMap', () => {
  it('picks up an atomic swap of the ..data symlink', async () => {
    const dir = await tempDir('m2m-declarative-configmap-');
    // The layout kubelet writes: a timestamped directory, `..data` pointing at it, and one link per key.
    const first = '..2026_12_02_10_00_00.000000001';
    await mkdir(path.join(dir, first));
    await writeFile(path.join(dir, first, 'configs.yaml'), `${roleYaml}---\n${configYaml(issuer.issuer)}`);
    await symlink(first, path.join(dir, '..data'));
    await symlink(path.join('..data', 'configs.yaml'), path.join(dir, 'configs.yaml'));
    const gateway = await gatewayOn(dir);
    const id = declarativeConfigId(issuer.issuer, '');
    expect((await admin(gateway).get(`/v1/auth/m2m/${id}`).expect(200)).body.config.tokenExpirationDuration).toBe('5m');

    // An update: a new directory, then `..data` replaced by rename(2) of a fresh link, as kubelet's AtomicWriter does.
    const second = '..2026_12_02_10_05_00.000000002';
    await mkdir(path.join(dir, second));
    await writeFile(
      path.join(dir, second, 'configs.yaml'),
      `${roleYaml}---\n${configYaml(issuer.issuer, { duration: '30m', sub: 'release-bot' })}`,
    );
    await symlink(second, path.join(dir, '..data_tmp'));
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await rm(path.join(dir, first), { recursive: true });

    await eventually(
      async () => (await admin(gateway).get(`/v1/auth/m2m/${id}`)).body.config?.tokenExpirationDuration === '30m',
    );
    // The admin API reads the database; exchanges read the configs held in memory, reloaded just after the write.
    const idToken = await issuer.sign({ sub: 'release-bot' });
    await eventually(
      async () => (await request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken })).status === 200,
    );
    expect((await admin(gateway).get('/v1/declarative/status')).body).toMatchObject({ documents: 2, errors: [] });
  });
});
