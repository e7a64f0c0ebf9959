import { describe, expect, it } from '@jest/globals';
import { lintConfig } from '../../src/domain/lint.js';
import { GITHUB_ACTIONS_ISSUER, type M2mConfigFields, type RoleMapping } from '../../src/domain/m2m-config.js';
import { BUILT_IN_ROLES } from '../../src/domain/roles.js';

const OWNER_ID = { key: 'repository_owner_id', valueExpression: '12345678' };
const MAIN = { key: 'ref', valueExpression: 'refs/heads/main' };

/** The config every rule must find nothing in; overrides make one thing risky. */
const github = (overrides: Partial<M2mConfigFields> = {}): M2mConfigFields => ({
  type: 'GITHUB_ACTIONS',
  issuer: GITHUB_ACTIONS_ISSUER,
  audience: 'https://github.com/acme',
  tokenExpirationDuration: '5m',
  conditions: [OWNER_ID, MAIN],
  mappings: [{ key: 'repository_id', valueExpression: '555', role: 'Admin' }],
  maxTokenAge: '',
  singleUse: false,
  tests: [],
  ...overrides,
});

const generic = (overrides: Partial<M2mConfigFields> = {}): M2mConfigFields =>
  github({ type: 'GENERIC', issuer: 'https://issuer.example.com', ...overrides });

const lint = (config: M2mConfigFields) => lintConfig(config, BUILT_IN_ROLES);
const fieldsOf = (config: M2mConfigFields) => lint(config).map((warning) => warning.field);
const mapping = (key: string, valueExpression: string, role = 'Admin'): RoleMapping => ({ key, valueExpression, role });

describe('lintConfig', () => {
  it.each(['Admin', 'Continuous Integration'])(
    'finds nothing in a GitHub config that pins the owner id and the ref and maps a repository id to %s',
    (role) => {
      expect(lint(github({ mappings: [mapping('repository_id', '555', role)] }))).toEqual([]);
    },
  );

  describe('an issuer shared by many tenants', () => {
    it('warns when neither a condition nor a mapping pins the owner, suggesting repository_owner_id', () => {
      expect(lint(github({ conditions: [], mappings: [mapping('ref', 'refs/heads/main')] }))[0]).toEqual({
        field: 'conditions',
        message:
          'no condition pins the repository owner, and mappings[0] (ref = "refs/heads/main" → Admin) does not pin it ' +
          'either: this issuer signs tokens for any repository on GitHub, and each of them would get Admin. ' +
          "Add a condition on repository_owner_id, your organization's numeric id (gh api users/<owner> --jq .id), " +
          'e.g. {"key": "repository_owner_id", "valueExpression": "12345678"}.',
      });
    });

    it('names every mapping that leaves the owner open, and no mapping that pins it', () => {
      const [warning] = lint(
        github({
          conditions: [MAIN],
          mappings: [
            mapping('workflow', 'release', 'Analyst'),
            mapping('repository_id', '555', 'Admin'),
            mapping('environment', 'production', 'None'),
          ],
        }),
      );
      expect(warning?.message).toContain(
        'and mappings[0] (workflow = "release" → Analyst), mappings[2] (environment = "production" → None) do not pin it either',
      );
      expect(warning?.message).toContain('each of them would get Analyst, None.');
    });

    it('says "any organization this issuer serves" for a GitHub Enterprise Cloud issuer', () => {
      const [warning] = lint(
        github({ issuer: `${GITHUB_ACTIONS_ISSUER}/acme-enterprise`, conditions: [], mappings: [mapping('ref', 'x')] }),
      );
      expect(warning?.field).toBe('conditions');
      expect(warning?.message).toContain('any repository of any organization this issuer serves');
    });

    it('also warns for a GENERIC config of the GitHub issuer', () => {
      expect(
        fieldsOf(generic({ issuer: GITHUB_ACTIONS_ISSUER, conditions: [], mappings: [mapping('ref', 'x', 'None')] })),
      ).toEqual(['conditions']);
    });

    it.each([
      ['repository_owner_id', '12345678'],
      ['repository_owner_id', '^(?i)12345678$'],
      ['repository_owner', 'acme'],
      ['repository_owner', 'acme|acme-labs'],
      ['repository_id', '555'],
      ['repository', 'acme/app'],
      ['repository', 'acme/.*'],
      ['sub', 'repo:acme/.*'],
      ['sub', 'repo:acme@12345678/app@555:.*'],
    ])('is quiet when a condition %s = %s pins the owner', (key, valueExpression) => {
      const config = github({ conditions: [{ key, valueExpression }], mappings: [mapping('run_id', '1', 'None')] });
      expect(fieldsOf(config)).not.toContain('conditions');
    });

    it('is quiet when every mapping pins the owner itself', () => {
      const config = github({
        conditions: [],
        mappings: [
          mapping('repository_id', '555', 'None'),
          mapping('sub', 'repo:acme/app:ref:refs/heads/main', 'None'),
        ],
      });
      expect(fieldsOf(config)).toEqual([]);
    });

    it.each([
      ['repository_owner_id', '1234.*'],
      ['repository_owner', 'acme|.*'],
      ['repository', '.*/app'],
      ['repository', 'acme.*'],
      ['sub', 'repo:.*'],
      ['sub', 'repo:acme/.*|repo:.*'],
      ['job_workflow_ref', 'acme/workflows/\\.github/workflows/deploy\\.yml@refs/heads/main'],
    ])('does not count %s = %s as pinning the owner', (key, valueExpression) => {
      const config = github({ conditions: [{ key, valueExpression }], mappings: [mapping('run_id', '1', 'None')] });
      expect(fieldsOf(config)).toContain('conditions');
    });

    it('ignores issuers that serve one tenant', () => {
      expect(fieldsOf(generic({ conditions: [], mappings: [mapping('ref', 'x', 'None')] }))).toEqual([]);
    });
  });

  describe('a privileged role from one broad claim', () => {
    it.each([
      'ref',
      'ref_type',
      'ref_protected',
      'environment',
      'workflow',
      'actor_id',
      'event_name',
      'runner_environment',
    ])('warns when %s alone gives Admin, even with the owner pinned', (key) => {
      expect(fieldsOf(github({ mappings: [mapping(key, 'main')] }))).toEqual(['mappings[0]']);
    });

    it('says what the claim fails to name and what to map instead', () => {
      expect(lint(github({ mappings: [mapping('environment', 'production')] }))).toEqual([
        {
          field: 'mappings[0]',
          message:
            'mappings[0] gives Admin, which can change access control, to every token whose environment matches ' +
            '"production", but environment names no workload: every repository can have that environment, even when ' +
            'conditions pin the owner. Give Admin by an immutable id of the workload (repository_id, or ' +
            'job_workflow_ref for a reusable workflow), and make environment a condition.',
        },
      ]);
    });

    it.each(['.*', '.+', '(.*)', '[\\s\\S]*', '(?s).*', '.*?', '\\S+', '(?:.*)'])(
      'warns when %s on any claim gives Admin',
      (valueExpression) => {
        const [warning] = lint(generic({ mappings: [mapping('groups', valueExpression)] }));
        expect(warning).toEqual({
          field: 'mappings[0]',
          message:
            `mappings[0] gives Admin, which can change access control, to every token with a groups claim: ` +
            `${JSON.stringify(valueExpression)} matches any value. Give Admin by an immutable id of the workload ` +
            '(repository_id, or job_workflow_ref for a reusable workflow), matching one exact value.',
        });
      },
    );

    it('is quiet for roles that cannot write Access', () => {
      const config = generic({
        mappings: [mapping('ref', 'refs/heads/main', 'Continuous Integration'), mapping('groups', '.*', 'Analyst')],
      });
      expect(lint(config)).toEqual([]);
    });

    it('is quiet for narrow expressions on other claims', () => {
      const config = generic({ mappings: [mapping('groups', 'gateway-admins'), mapping('sub', '[a-z]+-bot')] });
      expect(lint(config)).toEqual([]);
    });
  });

  describe('names where GitHub has immutable ids', () => {
    it.each([
      ['repository', 'repository_id', 'acme/app'],
      ['repository_owner', 'repository_owner_id', 'acme'],
      ['actor', 'actor_id', 'octocat'],
    ])('warns about %s in conditions and mappings, suggesting %s', (key, id, valueExpression) => {
      const warnings = lint(
        github({ conditions: [OWNER_ID, { key, valueExpression }], mappings: [mapping(key, valueExpression, 'None')] }),
      );
      expect(warnings.map((warning) => warning.field)).toEqual(['conditions[1].key', 'mappings[0].key']);
      expect(warnings[0]?.message).toMatch(
        new RegExp(`^${key} is a name: it can be renamed, .* Match ${id} instead, GitHub's immutable numeric id`),
      );
    });

    it('ignores configs of other issuers', () => {
      expect(lint(generic({ mappings: [mapping('repository', 'acme/app', 'None')] }))).toEqual([]);
    });
  });

  describe('an empty audience', () => {
    it('warns on GitHub configs, pointing at the audience central-login requests', () => {
      expect(lint(github({ audience: '' }))).toEqual([
        {
          field: 'audience',
          message:
            'audience is empty, so a token your workflows obtained for another service (e.g. sts.amazonaws.com) is ' +
            'accepted here too, and that service could replay it. Set audience to the one your workflows request: ' +
            "https://github.com/<owner> (GitHub's default, which stackrox/central-login uses), or your own with " +
            'core.getIDToken(audience).',
        },
      ]);
    });

    it('warns on Kubernetes configs', () => {
      const config = generic({
        type: 'KUBE_SERVICE_ACCOUNT',
        issuer: 'https://kubernetes.default.svc.cluster.local',
        audience: '',
        mappings: [mapping('sub', 'system:serviceaccount:ci:deployer', 'None')],
      });
      const warnings = lint(config);
      expect(warnings.map((warning) => warning.field)).toEqual(['audience']);
      expect(warnings[0]?.message).toContain('serviceAccountToken.audience');
    });

    it('is quiet on GENERIC configs', () => {
      expect(lint(generic({ audience: '' }))).toEqual([]);
    });
  });

  describe('pull_request runs given write roles', () => {
    it.each([
      ['sub', 'repo:acme/app:pull_request'],
      ['sub', 'repo:acme/app:.*'],
      ['sub', 'repo:acme/app:(pull_request|ref:refs/heads/main)'],
      ['sub', 'repo:acme/[^:]+:.+'],
      ['event_name', 'pull_request'],
      ['event_name', 'pull_request_target'],
      ['event_name', 'pull.*'],
    ])('warns when %s = %s gives a role that writes', (key, valueExpression) => {
      const warnings = lint(github({ mappings: [mapping(key, valueExpression, 'Continuous Integration')] }));
      expect(warnings.map((warning) => warning.field)).toEqual(['mappings[0]']);
      expect(warnings[0]?.message).toMatch(
        /^mappings\[0\] gives Continuous Integration, which can write, to pull_request.* a pull request runs code nobody has reviewed yet\. /,
      );
    });

    it.each([
      ['sub', 'repo:acme/app:ref:refs/heads/main', 'Continuous Integration'],
      ['sub', 'repo:acme/app:environment:production', 'Continuous Integration'],
      ['event_name', 'push', 'Continuous Integration'],
      ['sub', 'repo:acme/app:pull_request', 'Analyst'],
    ])('is quiet for %s = %s → %s', (key, valueExpression, role) => {
      expect(lint(github({ mappings: [mapping(key, valueExpression, role)] }))).toEqual([]);
    });
  });

  describe('expressions that cannot match as meant', () => {
    it.each([
      ['refs/heads/^main', '^'],
      ['a$b', '$'],
      ['\\pL^', '^'],
      ['a|', 'empty'],
      ['|a', 'empty'],
      ['(|x)', 'empty'],
      ['(x|)', 'empty'],
      ['a||b', 'empty'],
      ['(?i)|a', 'empty'],
    ])('warns about %s (%s)', (valueExpression, what) => {
      const warnings = lint(generic({ mappings: [mapping('groups', valueExpression, 'None')] }));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.field).toBe('mappings[0].valueExpression');
      expect(warnings[0]?.message).toContain(
        what === 'empty'
          ? 'has an empty alternative'
          : `has a ${what} ${what === '^' ? 'after the start' : 'before the end'}`,
      );
    });

    it('tells how to fix it', () => {
      expect(lint(generic({ conditions: [{ key: 'ref', valueExpression: 'refs/heads/^main' }] }))).toEqual([
        {
          field: 'conditions[0].valueExpression',
          message:
            '"refs/heads/^main" has a ^ after the start, where it can never match: expressions match whole values ' +
            'already, so drop it (or write \\^ for a literal caret).',
        },
      ]);
    });

    it('names each mistake of one expression once', () => {
      const warnings = lint(generic({ mappings: [mapping('groups', 'a^b^c||d', 'None')] }));
      expect(warnings.map((warning) => warning.message.split(',')[0])).toEqual([
        '"a^b^c||d" has a ^ after the start',
        '"a^b^c||d" has an empty alternative (a | at the start or end',
      ]);
    });

    it.each([
      '^refs/heads/main$',
      '(^a|^b)',
      'a$|b$',
      '(?:^a$)',
      '(?P<name>^a)',
      '(?i)^a',
      '^^a$$',
      '\\^a\\$b',
      '[^a]b',
      '[]^]x',
      'a[|]b',
      'a\\|b',
      '[[:alpha:]^$|]',
      'a\\Q^|$\\E',
      '(?m)a\\n^b',
      'acme/app.web',
      '()',
    ])('is quiet about %s', (valueExpression) => {
      expect(lint(generic({ mappings: [mapping('groups', valueExpression, 'None')] }))).toEqual([]);
    });
  });
});
