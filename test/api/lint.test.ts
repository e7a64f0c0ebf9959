import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway.close();
  await gateway.database.drop();
});

const lint = (config: unknown) =>
  request(gateway.app).post('/v1/auth/m2m/lint').set('Authorization', ADMIN_AUTH).send({ config });

describe('POST /v1/auth/m2m/lint', () => {
  it('warns that a GitHub config pinning no owner gives Admin to any repository, without discovery or storing', async () => {
    // No internet here: lint validates as Add does but never fetches the issuer's discovery document.
    const response = await lint({
      type: 'GITHUB_ACTIONS',
      tokenExpirationDuration: '5m',
      mappings: [{ key: 'ref', valueExpression: 'refs/heads/main', role: 'Admin' }],
    }).expect(200);

    expect(response.body).toEqual({
      problems: [],
      warnings: [
        {
          field: 'conditions',
          message:
            'no condition pins the repository owner, and mappings[0] (ref = "refs/heads/main" → Admin) does not pin ' +
            'it either: this issuer signs tokens for any repository on GitHub, and each of them would get Admin. ' +
            "Add a condition on repository_owner_id, your organization's numeric id (gh api users/<owner> --jq .id), " +
            'e.g. {"key": "repository_owner_id", "valueExpression": "12345678"}.',
        },
        {
          field: 'audience',
          message:
            'audience is empty, so a token your workflows obtained for another service (e.g. sts.amazonaws.com) is ' +
            'accepted here too, and that service could replay it. Set audience to the one your workflows request: ' +
            "https://github.com/<owner> (GitHub's default, which stackrox/central-login uses), or your own with " +
            'core.getIDToken(audience).',
        },
        {
          field: 'mappings[0]',
          message:
            'mappings[0] gives Admin, which can change access control, to every token whose ref matches ' +
            '"refs/heads/main", but ref names no workload: every repository can have that ref, even when conditions ' +
            'pin the owner. Give Admin by an immutable id of the workload (repository_id, or job_workflow_ref for a ' +
            'reusable workflow), and make ref a condition.',
        },
      ],
    });
    await request(gateway.app).get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).expect(200).expect({ configs: [] });
  });

  it('answers no warnings for a GitHub config that pins the owner id, the ref, the audience and a repository id', async () => {
    await lint({
      type: 'GITHUB_ACTIONS',
      tokenExpirationDuration: '5m',
      audience: 'https://github.com/acme',
      conditions: [
        { key: 'repository_owner_id', valueExpression: '12345678' },
        { key: 'ref', valueExpression: 'refs/heads/main' },
      ],
      mappings: [{ key: 'repository_id', valueExpression: '555', role: 'Admin' }],
    })
      .expect(200)
      .expect({ problems: [], warnings: [] });
  });

  it('lists every problem Add would refuse, and no warnings', async () => {
    await lint({
      type: 'GITHUB_ACTIONS',
      issuer: 'https://evil.example.com',
      tokenExpirationDuration: '90',
      mappings: [{ key: 'ref', valueExpression: '(', role: 'Nobody' }],
    })
      .expect(200)
      .expect({
        problems: [
          'tokenExpirationDuration: missing unit in duration "90"',
          'mappings[0].valueExpression is not a valid RE2 expression: missing ): (',
          'mappings[0].role "Nobody" does not exist',
          'issuer "https://evil.example.com" is not a GitHub Actions issuer: use https://token.actions.githubusercontent.com, ' +
            'https://token.actions.githubusercontent.com/<enterprise-slug>, or one listed in GITHUB_ACTIONS_ISSUERS',
        ],
        warnings: [],
      });
  });

  it('lists the tests a config would fail', async () => {
    await lint({
      type: 'GITHUB_ACTIONS',
      tokenExpirationDuration: '5m',
      audience: 'https://github.com/acme',
      conditions: [{ key: 'repository_owner_id', valueExpression: '12345678' }],
      mappings: [{ key: 'repository_id', valueExpression: '555', role: 'Admin' }],
      tests: [{ name: 'a token with no claims', claims: {}, roles: ['Admin'] }],
    })
      .expect(200)
      .expect({ problems: ['test "a token with no claims": expected ["Admin"], got []'], warnings: [] });
  });

  it('still warns about a config that fails its tests, so that the console shows both while it is edited', async () => {
    const { body } = await lint({
      type: 'GITHUB_ACTIONS',
      tokenExpirationDuration: '5m',
      conditions: [{ key: 'repository_owner_id', valueExpression: '12345678' }],
      mappings: [{ key: 'repository_id', valueExpression: '555', role: 'Admin' }],
      tests: [{ name: 'a token with no claims', claims: {}, roles: ['Admin'] }],
    }).expect(200);
    expect(body.problems).toEqual(['test "a token with no claims": expected ["Admin"], got []']);
    expect(body.warnings.map((warning: { field: string }) => warning.field)).toEqual(['audience']);
  });

  it('answers 401 without credentials', async () => {
    await request(gateway.app)
      .post('/v1/auth/m2m/lint')
      .send({ config: { type: 'GITHUB_ACTIONS' } })
      .expect(401)
      .expect(errorBody(16, 'credentials are missing or invalid'));
  });
});
