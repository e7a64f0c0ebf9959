import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { declarativeConfigId } from '../../src/domain/declarative.js';
import { runNode } from '../fixtures/run-node.js';

/** Runs `m2m-gateway ARGS` from the sources, as `npx m2m-gateway` does in a checkout that was not built. */
const cli = (...args: string[]) => runNode(['--import', 'tsx', 'src/cli/m2m-gateway.ts', ...args]);

const lines = (text: string) => text.trimEnd().split('\n');

const GITHUB = 'https://token.actions.githubusercontent.com';

const githubYaml = `# Deployments of acme/app from its main branch.
kind: AuthMachineToMachineConfig
type: GITHUB_ACTIONS
audience: https://github.com/acme
tokenExpirationDuration: 15m
conditions:
  - key: repository_owner_id
    valueExpression: "12345678"
  - key: ref
    valueExpression: refs/heads/main
mappings:
  - key: repository_id
    valueExpression: "555555555"
    role: Deployer
tests:
  - name: acme/app on main
    claims: { repository_owner_id: "12345678", repository_id: "555555555", ref: refs/heads/main }
    roles: [Deployer]
---
kind: Role
name: Deployer
description: Deploys from CI
permissions:
  Deployment: READ_WRITE_ACCESS
`;

const kubernetesJson = JSON.stringify(
  {
    kind: 'AuthMachineToMachineConfig',
    id: '3f1c9a0e-5b7d-4c2a-9e8f-1a2b3c4d5e6f',
    type: 'KUBE_SERVICE_ACCOUNT',
    issuer: 'https://kubernetes.default.svc',
    tokenExpirationDuration: '1h',
    mappings: [{ key: 'sub', valueExpression: 'system:serviceaccount:ci:builder', role: 'Continuous Integration' }],
  },
  null,
  2,
);

const brokenYaml = `kind: AuthMachineToMachineConfig
type: KUBE_SERVICE_ACCOUNT
issuer: https://kubernetes.default.svc
audience: m2m-gateway
tokenExpirationDuration: 2h
mappings:
  - key: kubernetes.io.namespace
    valueExpression: ci
    role: Deployr
tests:
  - name: the ci namespace
    claims: { kubernetes.io: { namespace: ci } }
    roles: [Deployers]
---
kind: AuthMachineToMachineConfig
issuer: https://issuer.example
tokenExpirationDuration: 1h
mappings:
  - key: sub
    valueExpression: builder
    role: Continuous Integration
tests:
  - name: the builder
    claims: { sub: builder }
    roles: []
`;

let good: string;
let bad: string;

beforeAll(async () => {
  good = await mkdtemp(path.join(os.tmpdir(), 'm2m-cli-good-'));
  await writeFile(path.join(good, 'github.yaml'), githubYaml);
  await writeFile(path.join(good, 'kubernetes.json'), kubernetesJson);
  bad = await mkdtemp(path.join(os.tmpdir(), 'm2m-cli-bad-'));
  await writeFile(path.join(bad, 'github.yaml'), githubYaml);
  await writeFile(path.join(bad, 'kubernetes.yaml'), brokenYaml);
});

afterAll(async () => {
  await rm(good, { recursive: true, force: true });
  await rm(bad, { recursive: true, force: true });
});

describe('m2m-gateway check', () => {
  it('passes a good directory with exit code 0, printing its lint warnings', async () => {
    const { code, stdout, stderr } = await cli('check', good);
    expect(lines(stdout)).toEqual([
      'kubernetes.json:1: warning: audience: audience is empty, so any token of the issuer is accepted, including the ' +
        'default token every pod mounts (audience: the API server), which every service a pod talks to may receive. ' +
        'Set audience (e.g. "m2m-gateway") and have workloads mount a projected service-account token requested for ' +
        'it (serviceAccountToken.audience).',
      '2 files, 3 documents: 2 valid configs, 1 valid role; 0 problems, 1 warning',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('prints every problem as file:line: problem, failing tests included, with exit code 1', async () => {
    const { code, stdout, stderr } = await cli('check', bad);
    expect(lines(stdout)).toEqual([
      'kubernetes.yaml:9: mappings[0].role "Deployr" does not exist',
      'kubernetes.yaml:13: tests[0].roles: role "Deployers" does not exist',
      'kubernetes.yaml:23: test "the builder": expected [], got ["Continuous Integration"]',
      '2 files, 4 documents: 1 valid config, 1 valid role; 3 problems, 0 warnings',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(1);
  });

  it('answers --json with the ids the gateway would give', async () => {
    const { code, stdout } = await cli('check', good, '--json');
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.configs).toEqual([
      {
        file: 'github.yaml',
        document: 1,
        line: 2,
        id: declarativeConfigId(GITHUB, 'https://github.com/acme'),
        issuer: GITHUB,
        audience: 'https://github.com/acme',
      },
      {
        file: 'kubernetes.json',
        document: 1,
        line: 1,
        id: '3f1c9a0e-5b7d-4c2a-9e8f-1a2b3c4d5e6f',
        issuer: 'https://kubernetes.default.svc',
        audience: '',
      },
    ]);
    expect(result.problems).toEqual([]);
    expect(result.warnings).toHaveLength(1);
  });

  it('answers a usage mistake with exit code 2 on standard error', async () => {
    const { code, stdout, stderr } = await cli('check');
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(lines(stderr)[0]).toBe('m2m-gateway: check takes one directory');
    expect(stderr).toContain('Exit codes: 0 no problem');
    expect((await cli('check', good, '--frobnicate')).code).toBe(2);
    expect((await cli('deploy')).code).toBe(2);
  });
});

describe('the m2m-gateway command', () => {
  it("is package.json's bin, and runs", async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8'));
    expect(pkg.bin).toEqual({ 'm2m-gateway': 'bin/m2m-gateway.mjs' });
    const { code, stdout } = await runNode([pkg.bin['m2m-gateway'], 'check', good]);
    expect(lines(stdout).at(-1)).toBe('2 files, 3 documents: 2 valid configs, 1 valid role; 0 problems, 1 warning');
    expect(code).toBe(0);
  });
});

describe('m2m-gateway explain', () => {
  const claims = {
    iss: GITHUB,
    aud: 'https://github.com/acme',
    sub: 'repo:acme/app:ref:refs/heads/main',
    repository_owner_id: '12345678',
    repository_id: '555555555',
    ref: 'refs/heads/main',
    actor: 'octocat',
    actor_id: '583231',
  };

  it('explains claims offline against a config file', async () => {
    const file = path.join(good, '..', `claims-${path.basename(good)}.json`);
    await writeFile(file, JSON.stringify(claims));
    try {
      const { code, stdout } = await cli('explain', '--config', path.join(good, 'github.yaml'), '--claims', file);
      const id = declarativeConfigId(GITHUB, 'https://github.com/acme');
      expect(lines(stdout)).toEqual([
        `config ${id} (github.yaml document 1)`,
        'decision: GRANTED',
        'steps:',
        `  ok   config: config ${id}`,
        '  ok   claims: 8 claims',
        '  ok   conditions: all 2 hold',
        '  ok   mappings: roles ["Deployer"]',
        '  ok   identity: user "583231|octocat"',
        'conditions:',
        '  ok   repository_owner_id ~ "12345678" (matched "12345678")',
        '  ok   ref ~ "refs/heads/main" (matched "refs/heads/main")',
        'mappings:',
        '  ok   repository_id ~ "555555555" -> Deployer (matched "555555555")',
        'roles: Deployer',
      ]);
      expect(code).toBe(0);
    } finally {
      await rm(file, { force: true });
    }
  });

  it("judges a token's claims without verifying it, says so, and exits 1 when refused", async () => {
    const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const token = `${segment({ alg: 'RS256', kid: 'k1' })}.${segment({ ...claims, ref: 'refs/heads/dev' })}.c2lnbmF0dXJl`;
    const file = path.join(good, '..', `token-${path.basename(good)}.jwt`);
    await writeFile(file, `${token}\n`);
    try {
      const { code, stdout } = await cli('explain', '--config', good, '--token', file, '--json');
      const explanation = JSON.parse(stdout);
      expect(explanation).toMatchObject({
        decision: 'REFUSED',
        reason: 'condition ref: value ["refs/heads/dev"] does not match "refs/heads/main"',
        configId: declarativeConfigId(GITHUB, 'https://github.com/acme'),
        file: 'github.yaml',
        verified: false,
        notes: [
          'offline: the token was decoded, not verified — its signature, exp, nbf, iat and audience were not ' +
            'checked; only its claims were judged',
        ],
        roles: [],
      });
      expect(explanation.steps.at(-1)).toMatchObject({ name: 'conditions', ok: false });
      expect(code).toBe(1);
    } finally {
      await rm(file, { force: true });
    }
  });
});
