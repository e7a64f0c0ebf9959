import { describe, expect, it } from '@jest/globals';
import { buildAccessTokenClaims, configIdOfSubject } from '../../src/domain/access-token.js';
import { createConfigCache } from '../../src/domain/config-cache.js';
import { identify } from '../../src/domain/identity.js';
import { decodeUnverifiedJws, hasDuplicateMember } from '../../src/domain/jws.js';
import { compileMappings, resolveRoles } from '../../src/domain/role-mapping.js';

const claimsOf = (entries: Record<string, string[]>) => new Map(Object.entries(entries));

describe('resolveRoles', () => {
  const mappings = compileMappings([
    { key: 'repository', valueExpression: 'sample-repo', role: 'Admin' },
    { key: 'groups', valueExpression: 'dev|ops', role: 'Analyst' },
    { key: 'groups', valueExpression: 'ops', role: 'Analyst' },
  ]);

  it('matches the whole value, never a part of it', () => {
    expect(resolveRoles(mappings, claimsOf({ repository: ['evil-sample-repo'] }))).toEqual([]);
    expect(resolveRoles(mappings, claimsOf({ repository: ['sample-repo-evil'] }))).toEqual([]);
    expect(resolveRoles(mappings, claimsOf({ repository: ['sample-repo'] }))).toEqual(['Admin']);
  });

  it('keeps alternations inside the anchors', () => {
    expect(resolveRoles(mappings, claimsOf({ groups: ['devops'] }))).toEqual([]);
    expect(resolveRoles(mappings, claimsOf({ groups: ['xx', 'ops'] }))).toEqual(['Analyst']);
  });

  it('never matches an absent key', () => {
    expect(
      resolveRoles(compileMappings([{ key: 'missing', valueExpression: '.*', role: 'None' }]), claimsOf({})),
    ).toEqual([]);
  });
});

describe('identify', () => {
  it('GENERIC: sub, plus the first single-valued contact claim', () => {
    expect(identify('GENERIC', claimsOf({ sub: ['s'], preferred_username: ['p'], full_name: ['f'] }))).toEqual({
      userId: 's|p',
      friendlyName: 'p',
    });
    expect(identify('GENERIC', claimsOf({ sub: ['s'], email: ['a', 'b'], full_name: ['f'] }))).toEqual({
      userId: 's|f',
      friendlyName: 'f',
    });
    expect(identify('GENERIC', claimsOf({ sub: ['s'] }))).toEqual({ userId: 's', friendlyName: 's' });
  });

  it('GITHUB_ACTIONS: actor_id|actor', () => {
    expect(
      identify('GITHUB_ACTIONS', claimsOf({ sub: ['repo:o/r:ref:x'], actor_id: ['12'], actor: ['octocat'] })),
    ).toEqual({
      userId: '12|octocat',
      friendlyName: 'octocat',
    });
  });

  it('KUBE_SERVICE_ACCOUNT: the service account uid, named by sub', () => {
    expect(
      identify(
        'KUBE_SERVICE_ACCOUNT',
        claimsOf({ sub: ['system:serviceaccount:ci:builder'], 'kubernetes.io.serviceaccount.uid': ['u-1'] }),
      ),
    ).toEqual({ userId: 'u-1', friendlyName: 'system:serviceaccount:ci:builder' });
    expect(() => identify('KUBE_SERVICE_ACCOUNT', claimsOf({ sub: ['x'] }))).toThrow(
      'no kubernetes.io.serviceaccount.uid',
    );
  });

  it('refuses a token without sub', () => {
    expect(() => identify('GENERIC', claimsOf({}))).toThrow('the ID token has no sub');
  });
});

describe('buildAccessTokenClaims', () => {
  it('builds the docs/reference.md §3.6 claims, leaving None out of roles', () => {
    const configId = '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e01';
    const claims = buildAccessTokenClaims({
      issuer: 'https://gw',
      configId,
      configIncarnation: 'c0ffee00-0000-4000-8000-000000000001',
      identity: { userId: '12|octocat', friendlyName: 'octocat' },
      claims: claimsOf({ sub: ['s'] }),
      roles: ['Admin', 'None'],
      lifetimeSeconds: 900,
      jti: 'j',
      now: new Date('2026-01-01T00:00:00.900Z'),
    });
    expect(claims).toEqual({
      iss: 'https://gw',
      sub: `sso:${configId}:12|octocat`,
      aud: [configId],
      jti: 'j',
      iat: 1767225600,
      exp: 1767226500,
      name: 'octocat',
      roles: ['Admin'],
      config_incarnation: 'c0ffee00-0000-4000-8000-000000000001',
      external_user: { user_id: '12|octocat', full_name: 'octocat', attributes: { sub: ['s'] } },
    });
    expect(configIdOfSubject(claims.sub)).toBe(configId);
  });
});

describe('decodeUnverifiedJws', () => {
  const segment = (json: string) => Buffer.from(json).toString('base64url');

  it('decodes header and payload', () => {
    expect(decodeUnverifiedJws(`${segment('{"alg":"ES256"}')}.${segment('{"iss":"x","n":1.5}')}.sig`)).toEqual({
      header: { alg: 'ES256' },
      payload: { iss: 'x', n: 1.5 },
      payloadText: '{"iss":"x","n":1.5}',
    });
  });

  it.each([
    ['{"iss":"a","iss":"b"}', true],
    ['{"iss":"a","nested":{"iss":"b"}}', false],
    ['{"a":{"x":1,"x":2}}', true],
    ['{"a":[{"x":1},{"x":2}]}', false],
    ['{"a":"{\\"x\\":1,\\"x\\":2}"}', false],
    ['{"\\u0069ss":"a","iss":"b"}', true],
    ['{"a":[1,2],"b":{"c":[{"d":1,"e":{"f":1,"f":2}}]}}', true],
    ['{"a\\"":1,"a":2}', false],
    ['{"a":"x\\\\","a":1}', true],
    ['{"a":"\\"}\\"","b":1}', false],
  ])('finds duplicated member names in %s: %s', (json, expected) => {
    expect(hasDuplicateMember(json)).toBe(expected);
  });
});

describe('createConfigCache', () => {
  const config = {
    id: '3f9c4f57-9a0c-4c5b-8f0e-3c1b2a7d6e01',
    type: 'GENERIC' as const,
    tokenExpirationDuration: '1h',
    issuer: 'https://a',
    audience: '',
    mappings: [{ key: 'sub', valueExpression: 'x', role: 'Admin' }],
    conditions: [],
    maxTokenAge: '',
    singleUse: false,
    tests: [],
    incarnation: 'c0ffee00-0000-4000-8000-000000000002',
    origin: 'IMPERATIVE' as const,
  };

  it('finds configs by issuer and id, and reuses the compiled form of unchanged ones', () => {
    const cache = createConfigCache();
    cache.replace([config]);
    const first = cache.configsOf('https://a')[0];
    expect(first?.lifetimeSeconds).toBe(3600);
    cache.replace([{ ...config }]);
    expect(cache.byId(config.id)).toBe(first);
    cache.replace([{ ...config, issuer: 'https://b' }]);
    expect(cache.configsOf('https://a')).toEqual([]);
    expect(cache.configsOf('https://b')[0]).not.toBe(first);
    cache.replace([]);
    expect(cache.size).toBe(0);
  });
});
