import { describe, expect, it } from '@jest/globals';
import { GatewayError } from '../../src/errors.js';
import {
  GITHUB_ACTIONS_ISSUER,
  parseM2mConfig,
  tokenLifetimeSeconds,
  type IssuerPolicy,
} from '../../src/domain/m2m-config.js';

const policy: IssuerPolicy = {
  githubActionsIssuers: ['https://ghes.example.com/_services/token'],
  kubeServiceAccountIssuer: () => undefined,
};
const inCluster: IssuerPolicy = {
  ...policy,
  kubeServiceAccountIssuer: () => 'https://kubernetes.default.svc.cluster.local',
};
const roleExists = (name: string) => ['Admin', 'Analyst', 'None'].includes(name);

const valid = {
  type: 'GENERIC',
  tokenExpirationDuration: '1h',
  mappings: [{ key: 'sub', valueExpression: 'repo:.*', role: 'Admin' }],
  issuer: 'https://issuer.example.com',
};

const parse = (overrides: Record<string, unknown>, issuerPolicy = policy) =>
  parseM2mConfig({ ...valid, ...overrides }, issuerPolicy, roleExists);

function problemsOf(overrides: Record<string, unknown>, issuerPolicy = policy): string {
  try {
    parse(overrides, issuerPolicy);
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe('INVALID_ARGUMENT');
    return (error as GatewayError).message;
  }
  throw new Error('expected the config to be refused');
}

describe('parseM2mConfig', () => {
  it('accepts a complete GENERIC config and keeps every field', () => {
    expect(parse({ audience: 'gateway' })).toEqual({
      ...valid,
      audience: 'gateway',
      conditions: [],
      maxTokenAge: '',
      singleUse: false,
      tests: [],
    });
  });

  it.each(['1m', '90s', '1h30m', '24h', '1.5h', '60000ms'])('accepts the lifetime %j', (duration) => {
    expect(parse({ tokenExpirationDuration: duration }).tokenExpirationDuration).toBe(duration);
  });

  it.each([
    // StackRox's own cases (central/auth/m2m validation tests).
    ['5', 'missing unit in duration "5"'],
    ['', 'tokenExpirationDuration is required'],
    ['1s', 'must be between 1m and 24h'],
    ['24h1s', 'must be between 1m and 24h'],
    ['59s', 'must be between 1m and 24h'],
    ['-1m', 'must be between 1m and 24h'],
    ['0', 'must be between 1m and 24h'],
    ['1d', 'unknown unit "d"'],
  ])('refuses the lifetime %j', (duration, reason) => {
    expect(problemsOf({ tokenExpirationDuration: duration })).toContain(reason);
  });

  it('computes the lifetime in seconds', () => {
    expect(tokenLifetimeSeconds({ tokenExpirationDuration: '1h30m' })).toBe(5400);
  });

  it.each([
    ['http://issuer.example.com', 'must use https'],
    ['https://something-invalid/%+o', 'is not a valid URL'],
    ['issuer.example.com', 'is not a valid URL'],
    ['https://user:pw@issuer.example.com', 'must not contain userinfo'],
    ['https://issuer.example.com/?tenant=1', 'must not contain a query'],
    ['https://issuer.example.com/#x', 'must not contain a fragment'],
    ['https://issuer.example.com/a b', 'is not a valid URL'],
    [`https://issuer.example.com/${'a'.repeat(2048)}`, 'longer than 2048'],
    ['', 'issuer is required for GENERIC configs'],
  ])('refuses the GENERIC issuer %j', (issuer, reason) => {
    expect(problemsOf({ issuer })).toContain(reason);
  });

  it('keeps the issuer exactly as given, trailing slash included', () => {
    expect(parse({ issuer: 'https://issuer.example.com/' }).issuer).toBe('https://issuer.example.com/');
  });

  it('defaults an empty GitHub Actions issuer to GitHub', () => {
    expect(parse({ type: 'GITHUB_ACTIONS', issuer: '' }).issuer).toBe(GITHUB_ACTIONS_ISSUER);
  });

  it.each([
    GITHUB_ACTIONS_ISSUER,
    `${GITHUB_ACTIONS_ISSUER}/octo-enterprise`,
    'https://ghes.example.com/_services/token',
  ])('accepts the GitHub Actions issuer %j', (issuer) => {
    expect(parse({ type: 'GITHUB_ACTIONS', issuer }).issuer).toBe(issuer);
  });

  it.each([
    'https://issuer.example.com',
    `${GITHUB_ACTIONS_ISSUER}/`,
    `${GITHUB_ACTIONS_ISSUER}/a/b`,
    'http://token.actions.githubusercontent.com',
    'https://ghes.example.com/_services/token/',
  ])('refuses the foreign GitHub Actions issuer %j', (issuer) => {
    expect(problemsOf({ type: 'GITHUB_ACTIONS', issuer })).toContain('is not a GitHub Actions issuer');
  });

  it("takes an empty Kubernetes issuer from the gateway's own service-account token", () => {
    expect(parse({ type: 'KUBE_SERVICE_ACCOUNT', issuer: '' }, inCluster).issuer).toBe(
      'https://kubernetes.default.svc.cluster.local',
    );
  });

  it('refuses an empty Kubernetes issuer outside a cluster', () => {
    expect(problemsOf({ type: 'KUBE_SERVICE_ACCOUNT', issuer: '' })).toContain(
      'when the gateway does not run in a cluster',
    );
  });

  it.each([undefined, '', null])('takes the type %j as GENERIC, the protobuf default', (type) => {
    expect(parse({ type }).type).toBe('GENERIC');
  });

  it.each([
    ['OIDC', 'type "OIDC" is not one of GENERIC, GITHUB_ACTIONS, KUBE_SERVICE_ACCOUNT'],
    ['generic', 'is not one of'],
  ])('refuses the type %j', (type, reason) => {
    expect(problemsOf({ type })).toContain(reason);
  });

  it('accepts the enum number as protojson does', () => {
    expect(parse({ type: 1, issuer: '' }).type).toBe('GITHUB_ACTIONS');
  });

  it.each([
    ['a(b', 'is not a valid RE2 expression: missing ): a(b'],
    ['', 'valueExpression is empty'],
    ['(?=lookahead)', 'is not a valid RE2 expression'],
    ['(?<!behind)x', 'is not a valid RE2 expression'],
    ['(a)\\1', 'is not a valid RE2 expression'],
    ['a)|(b', 'is not a valid RE2 expression'],
    ['x'.repeat(1025), 'longer than 1024'],
  ])('refuses the value expression %j', (valueExpression, reason) => {
    expect(problemsOf({ mappings: [{ key: 'sub', valueExpression, role: 'Admin' }] })).toContain(reason);
  });

  it.each([
    [[], 'at least one mapping is required'],
    [undefined, 'at least one mapping is required'],
    [{}, 'mappings must be a list'],
    [[{ key: '', valueExpression: 'x', role: 'Admin' }], 'mappings[0].key is empty'],
    [[{ key: 'k'.repeat(257), valueExpression: 'x', role: 'Admin' }], 'longer than 256'],
    [[{ key: 'sub', valueExpression: 'x', role: '' }], 'mappings[0].role is empty'],
    [[{ key: 'sub', valueExpression: 'x', role: 'Ghost' }], 'mappings[0].role "Ghost" does not exist'],
    [[{ key: 'sub', valueExpression: 'x', role: 'Admin' }, 'oops'], 'mappings[1] must be an object'],
    [Array.from({ length: 101 }, () => ({ key: 'sub', valueExpression: 'x', role: 'Admin' })), 'at most 100 mappings'],
  ])('refuses the mappings %j', (mappings, reason) => {
    expect(problemsOf({ mappings })).toContain(reason);
  });

  it('accepts 100 mappings', () => {
    const mappings = Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, valueExpression: 'x', role: 'None' }));
    expect(parse({ mappings }).mappings).toHaveLength(100);
  });

  it('reports every problem of a config in one error', () => {
    const message = problemsOf({
      type: 'GENERIC',
      tokenExpirationDuration: '5',
      issuer: 'http://x',
      audience: 7,
      mappings: [
        { key: '', valueExpression: 'a(b', role: 'Ghost' },
        { key: 'sub', valueExpression: '', role: 'Admin' },
      ],
    });
    expect(message).toBe(
      'invalid machine-to-machine config: tokenExpirationDuration: missing unit in duration "5"; ' +
        'mappings[0].key is empty; mappings[0].valueExpression is not a valid RE2 expression: missing ): a(b; ' +
        'mappings[0].role "Ghost" does not exist; mappings[1].valueExpression is empty; ' +
        'audience must be a string; issuer "http://x" must use https',
    );
  });

  it('refuses fields of the wrong JSON type', () => {
    const message = problemsOf({ tokenExpirationDuration: 3600, issuer: ['https://a'] });
    expect(message).toContain('tokenExpirationDuration must be a string');
    expect(message).toContain('issuer must be a string');
  });

  it('refuses a config that is not an object', () => {
    expect(() => parseM2mConfig('GENERIC', policy, roleExists)).toThrow('config must be a JSON object');
    expect(() => parseM2mConfig(undefined, policy, roleExists)).toThrow('config must be a JSON object');
  });
});
