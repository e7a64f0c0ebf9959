import { describe, expect, it } from '@jest/globals';
import {
  declarativeConfigId,
  formatDeclarativeErrors,
  planDeclarative,
  type SourceFile,
  type StoredObjects,
} from '../../src/domain/declarative.js';
import type { StoredM2mConfig } from '../../src/domain/m2m-config.js';
import { BUILT_IN_ROLES, type StoredRole } from '../../src/domain/roles.js';

const policy = { githubActionsIssuers: [], kubeServiceAccountIssuer: () => undefined };
const builtIns: StoredRole[] = BUILT_IN_ROLES.map((role) => ({ ...role, origin: 'IMPERATIVE' }));
const offline: StoredObjects = { configs: [], roles: builtIns };
const GITHUB = 'https://token.actions.githubusercontent.com';

const file = (name: string, text: string): SourceFile => ({ name, text });

const githubConfig = `kind: AuthMachineToMachineConfig
type: GITHUB_ACTIONS
audience: https://github.com/acme
tokenExpirationDuration: 15m
conditions:
  - key: repository_owner_id
    valueExpression: "12345678"
mappings:
  - key: repository_id
    valueExpression: "555555555"
    role: Continuous Integration
tests:
  - name: acme/app
    claims: { repository_owner_id: "12345678", repository_id: "555555555" }
    roles: [Continuous Integration]
`;

const stored = (config: Omit<StoredM2mConfig, 'incarnation' | 'origin'>, origin: 'IMPERATIVE' | 'DECLARATIVE') => ({
  ...config,
  incarnation: '00000000-0000-4000-8000-000000000000',
  origin,
});

describe('declarativeConfigId', () => {
  it('is the UUID v5 of the issuer and audience in the documented namespace', () => {
    // python3 -c "import uuid; print(uuid.uuid5(uuid.UUID('7a6ae0da-8162-4db7-874d-68577caa72d1'), 'https://token.actions.githubusercontent.com https://github.com/acme'))"
    expect(declarativeConfigId(GITHUB, 'https://github.com/acme')).toBe('98d1a315-440d-5917-8b59-df0927de677b');
    expect(declarativeConfigId(GITHUB, '')).not.toBe(declarativeConfigId(GITHUB, 'x'));
  });
});

describe('planDeclarative', () => {
  it('reads configs and roles from multi-document YAML and JSON, naming an id-less config after its resolved issuer', () => {
    const plan = planDeclarative(
      [
        file('github.yaml', `---\n${githubConfig}---\n# an empty document is skipped\n---\n`),
        file(
          'roles.json',
          JSON.stringify({ kind: 'Role', name: 'Deployer', permissions: { Deployment: 'READ_WRITE_ACCESS' } }),
        ),
      ],
      offline,
      policy,
    );
    expect(plan.errors).toEqual([]);
    expect(plan.documents).toBe(2);
    expect(plan.configs.map(({ ref, config }) => [ref, config.id, config.issuer])).toEqual([
      [{ file: 'github.yaml', document: 1, line: 2 }, declarativeConfigId(GITHUB, 'https://github.com/acme'), GITHUB],
    ]);
    expect(plan.roles.map(({ role }) => role)).toEqual([
      { name: 'Deployer', description: '', permissions: { Deployment: 'READ_WRITE_ACCESS' } },
    ]);
    expect(plan.changes.saveConfigs).toHaveLength(1);
    expect(plan.changes.saveRoles).toHaveLength(1);
  });

  it('reports every problem of a document with the line of the field at fault', () => {
    const plan = planDeclarative(
      [
        file(
          'bad.yaml',
          `kind: AuthMachineToMachineConfig
issuer: https://issuer.example
tokenExpirationDuration: 48h
condition:
  - { key: ref, valueExpression: refs/heads/main }
mappings:
  - key: sub
    valueExpression: "a("
    role: Deployer
---
kind: Role
name: Admin
---
kind: Team
---
foo: [
`,
        ),
      ],
      offline,
      policy,
    );
    expect(formatDeclarativeErrors(plan.errors)).toEqual([
      'bad.yaml:4: unknown field "condition" (the fields of AuthMachineToMachineConfig are kind, id, type, ' +
        'tokenExpirationDuration, mappings, issuer, audience, conditions, maxTokenAge, singleUse, tests)',
      'bad.yaml:3: tokenExpirationDuration "48h" must be between 1m and 24h',
      'bad.yaml:8: mappings[0].valueExpression is not a valid RE2 expression: missing ): a(',
      'bad.yaml:9: mappings[0].role "Deployer" does not exist',
      'bad.yaml:12: name: role "Admin" is built in and cannot be declared',
      'bad.yaml:14: kind must be AuthMachineToMachineConfig or Role, got "Team"',
      'bad.yaml:17: not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(plan.errors.map((error) => error.document)).toEqual([1, 2, 3, 4]);
    expect(plan.configs).toEqual([]);
  });

  it('runs the stored tests of a config, naming the line of the failing test', () => {
    const failing = githubConfig.replace('roles: [Continuous Integration]', 'roles: []');
    const plan = planDeclarative([file('github.yaml', failing)], offline, policy);
    expect(formatDeclarativeErrors(plan.errors)).toEqual([
      'github.yaml:13: test "acme/app": expected [], got ["Continuous Integration"]',
    ]);
  });

  it('writes nothing when the store already holds what the files say, whatever order jsonb keeps', () => {
    const first = planDeclarative([file('github.yaml', githubConfig)], offline, policy);
    const config = first.configs[0]!.config;
    const reordered = {
      ...config,
      tests: config.tests.map((test) => ({
        roles: test.roles,
        claims: { repository_id: '555555555', repository_owner_id: '12345678' },
        name: test.name,
      })),
    };
    const plan = planDeclarative(
      [file('github.yaml', githubConfig)],
      { configs: [stored(reordered, 'DECLARATIVE')], roles: builtIns },
      policy,
    );
    expect(plan.changes).toEqual({ saveRoles: [], removeConfigs: [], saveConfigs: [], removeRoles: [] });
  });

  it('deletes declarative objects without a document, never imperative ones', () => {
    const declarative = stored(
      {
        id: '0f4c6a52-7d3e-4d47-9f0e-6b1de1a1c001',
        type: 'GENERIC',
        tokenExpirationDuration: '5m',
        issuer: 'https://gone.example',
        audience: '',
        mappings: [{ key: 'sub', valueExpression: 'x', role: 'Deployer' }],
        conditions: [],
        maxTokenAge: '',
        singleUse: false,
        tests: [],
      },
      'DECLARATIVE',
    );
    const imperative = {
      ...declarative,
      id: '0f4c6a52-7d3e-4d47-9f0e-6b1de1a1c002',
      issuer: 'https://api.example',
      origin: 'IMPERATIVE' as const,
    };
    const deployer: StoredRole = { name: 'Deployer', description: '', permissions: {}, origin: 'DECLARATIVE' };
    const plan = planDeclarative(
      [file('empty.yaml', '# nothing\n')],
      { configs: [declarative, imperative], roles: [...builtIns, deployer] },
      policy,
    );
    expect(plan.changes.removeConfigs).toEqual([declarative]);
    // The imperative config still maps Deployer: the role stays, and says why.
    expect(plan.changes.removeRoles).toEqual([]);
    expect(formatDeclarativeErrors(plan.errors)).toEqual([
      `role "Deployer" is no longer declared, but config ${imperative.id} still uses it, so it stays`,
    ]);
  });

  it('deletes nothing while a document cannot be told apart: it might be the one that declares it', () => {
    const declarative = stored(
      { ...planDeclarative([file('g.yaml', githubConfig)], offline, policy).configs[0]!.config },
      'DECLARATIVE',
    );
    const plan = planDeclarative(
      [file('github.yaml', 'kind: AuthMachineToMachineConfig\ntype: GITHUB_ACTIONS\naudience: [\n')],
      { configs: [declarative], roles: builtIns },
      policy,
    );
    expect(plan.errors).toHaveLength(1);
    expect(plan.changes.removeConfigs).toEqual([]);
  });

  it('refuses an id, a name or an (issuer, audience) that the API made, and duplicates across files', () => {
    const imperative = stored(
      {
        ...planDeclarative([file('g.yaml', githubConfig)], offline, policy).configs[0]!.config,
        id: '0f4c6a52-7d3e-4d47-9f0e-6b1de1a1c003',
      },
      'IMPERATIVE',
    );
    const plan = planDeclarative(
      [
        file('a.yaml', githubConfig),
        file('b.yaml', `id: ${imperative.id}\n${githubConfig.replace('https://github.com/acme', 'other')}`),
        file('c.yaml', 'kind: Role\nname: Ops\n---\nkind: Role\nname: Ops\n'),
        file('d.yaml', 'kind: Role\nname: Legacy\n'),
      ],
      {
        configs: [imperative],
        roles: [...builtIns, { name: 'Legacy', description: '', permissions: {}, origin: 'IMPERATIVE' }],
      },
      policy,
    );
    expect(formatDeclarativeErrors(plan.errors)).toEqual([
      `a.yaml:1: issuer "${GITHUB}" and audience "https://github.com/acme": config ${imperative.id}, made through the API, has them`,
      `b.yaml:1: id: config ${imperative.id} was made through the API; delete it there to declare it here`,
      'c.yaml:5: name: role "Ops" is declared in c.yaml document 1 already',
      'd.yaml:2: name: role "Legacy" was made through the API; delete it there to declare it here',
    ]);
  });
});
