import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let ca: TestCa;
let ghes: FakeIssuer;
let gateway: TestGateway;
let configId: string;

/** The claims GitHub puts in an Actions ID token (docs: "About security hardening with OpenID Connect"). */
function actionsClaims(overrides: Record<string, unknown> = {}) {
  return {
    jti: 'example-id',
    sub: 'repo:octo-org/octo-repo:ref:refs/heads/main',
    aud: 'https://github.com/octo-org',
    ref: 'refs/heads/main',
    sha: 'example-sha',
    repository: 'octo-org/octo-repo',
    repository_owner: 'octo-org',
    repository_owner_id: '65',
    repository_id: '74',
    repository_visibility: 'private',
    actor_id: '12',
    actor: 'octocat',
    workflow: 'example-workflow',
    workflow_ref: 'octo-org/octo-repo/.github/workflows/oidc.yml@refs/heads/main',
    job_workflow_ref: 'octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main',
    head_ref: '',
    base_ref: '',
    event_name: 'workflow_dispatch',
    ref_type: 'branch',
    ref_protected: false,
    environment: 'prod',
    run_id: '2345',
    run_number: 42,
    run_attempt: '1',
    runner_environment: 'github-hosted',
    ...overrides,
  };
}

beforeAll(async () => {
  ca = await createTestCa();
  // A GitHub Enterprise Server issuer, allowed by GITHUB_ACTIONS_ISSUERS (docs/reference.md §1).
  ghes = await startFakeIssuer(ca, { path: '/_services/token', algs: ['RS256'] });
  gateway = await startTestGateway({ GITHUB_ACTIONS_ISSUERS: ghes.issuer }, { ca });
  const { body } = await request(gateway.app)
    .post('/v1/auth/m2m')
    .set('Authorization', ADMIN_AUTH)
    .send({
      config: {
        type: 'GITHUB_ACTIONS',
        issuer: ghes.issuer,
        tokenExpirationDuration: '15m',
        audience: 'https://github.com/octo-org',
        mappings: [
          { key: 'repository_id', valueExpression: '74', role: 'Continuous Integration' },
          {
            key: 'job_workflow_ref',
            valueExpression: 'octo-org/octo-automation/\\.github/workflows/oidc\\.yml@refs/heads/main',
            role: 'Analyst',
          },
          { key: 'run_number', valueExpression: '\\d+', role: 'None' },
          { key: 'sub', valueExpression: 'repo:octo-org@65/octo-repo@74:environment:prod', role: 'Admin' },
        ],
      },
    })
    .expect(200);
  configId = body.config.id;
});

afterAll(async () => {
  await ghes.close();
  await gateway.close();
  await gateway.database.drop();
});

const exchange = (idToken: string) => request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken });

describe('GITHUB_ACTIONS exchanges', () => {
  it('maps any claim of a classic-subject token and names the actor', async () => {
    const { body } = await exchange(await ghes.sign(actionsClaims())).expect(200);
    const claims = decodeJwt(body.accessToken);
    expect(claims.sub).toBe(`sso:${configId}:12|octocat`);
    expect(claims.name).toBe('octocat');
    expect(claims.roles).toEqual(['Continuous Integration', 'Analyst']);
    expect((claims.external_user as { attributes: Record<string, string[]> }).attributes).toMatchObject({
      run_number: ['42'],
      ref_protected: ['false'],
      repository_id: ['74'],
    });
  });

  it('matches the immutable subject form repo:owner@id/repo@id', async () => {
    const { body } = await exchange(
      await ghes.sign(
        actionsClaims({ sub: 'repo:octo-org@65/octo-repo@74:environment:prod', job_workflow_ref: 'other' }),
      ),
    ).expect(200);
    expect(decodeJwt(body.accessToken).roles).toEqual(['Continuous Integration', 'Admin']);
  });

  it('refuses a token from another repository', async () => {
    await exchange(
      await ghes.sign(
        actionsClaims({
          repository_id: '75',
          job_workflow_ref: 'x',
          sub: 'repo:evil/octo-repo:ref:refs/heads/main',
          run_number: 'n/a',
        }),
      ),
    )
      .expect(401)
      .expect(errorBody(16, 'no valid role: no mapping of the config matches the ID token'));
  });

  it('refuses a token for another audience', async () => {
    await exchange(await ghes.sign(actionsClaims({ aud: 'https://github.com/evil-org' })))
      .expect(401)
      .expect(
        errorBody(
          16,
          'ID token is invalid: audience mismatch: expected "https://github.com/octo-org", token has ["https://github.com/evil-org"]',
        ),
      );
  });

  it('refuses a token without actor_id', async () => {
    await exchange(await ghes.sign(actionsClaims({ actor_id: undefined })))
      .expect(401)
      .expect(errorBody(16, 'ID token is invalid: the GitHub Actions token has no actor_id or actor'));
  });
});
