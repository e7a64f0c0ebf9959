/**
 * The exchange pipeline through its ports, with fakes: no database, no HTTPS,
 * no keys. What reaches the observers is what was judged.
 */
import { describe, expect, it } from '@jest/globals';
import { activate } from '../../src/domain/config-cache.js';
import {
  IdTokenRejected,
  exchangeToken,
  explainToken,
  type Decision,
  type ExchangeDeps,
} from '../../src/domain/exchange.js';
import type { StoredM2mConfig } from '../../src/domain/m2m-config.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const now = NOW.getTime() / 1000;
const ISSUER = 'https://issuer.example';

const storedConfig = (overrides: Partial<StoredM2mConfig> = {}): StoredM2mConfig => ({
  id: '11111111-1111-4111-8111-111111111111',
  type: 'GENERIC',
  tokenExpirationDuration: '5m',
  issuer: ISSUER,
  audience: '',
  mappings: [{ key: 'repository', valueExpression: 'acme/.*', role: 'Analyst' }],
  conditions: [{ key: 'repository_owner_id', valueExpression: '42' }],
  maxTokenAge: '',
  singleUse: false,
  tests: [],
  incarnation: '22222222-2222-4222-8222-222222222222',
  origin: 'IMPERATIVE',
  ...overrides,
});

/** A compact JWS whose signature the fake verifier never looks at. */
const token = (payload: Record<string, unknown>) =>
  [
    { alg: 'ES256', kid: 'k1' },
    { iss: ISSUER, sub: 'ci', exp: now + 600, iat: now - 10, ...payload },
  ]
    .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
    .join('.') + '.c2ln';

function fakes(config: StoredM2mConfig, verify?: (payload: Record<string, unknown>) => void) {
  const observed: Decision[] = [];
  const claimed = new Set<string>();
  const admitted: string[] = [];
  let signed = 0;
  const active = activate(config);
  const deps: ExchangeDeps = {
    configs: { configsOf: (issuer) => (issuer === ISSUER ? [active] : []) },
    verifier: {
      async verify(idToken) {
        const payload = JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString());
        verify?.(payload);
        return payload;
      },
    },
    signer: {
      async sign() {
        signed += 1;
        return { token: `minted-${signed}`, kid: 'gateway-key', alg: 'ES256' };
      },
    },
    replays: {
      async claimOnce(issuer, jti) {
        if (claimed.has(`${issuer} ${jti}`)) return false;
        claimed.add(`${issuer} ${jti}`);
        return true;
      },
      isClaimed: async (issuer, jti) => claimed.has(`${issuer} ${jti}`),
    },
    gatewayIssuer: 'https://gateway.example',
    clockSkewSeconds: 30,
    now: () => NOW,
    newJti: () => 'jti-1',
    admitConfig: (configId) => {
      admitted.push(configId);
      return 0;
    },
    observe: (decision) => void observed.push(decision),
  };
  return { deps, observed, admitted, signed: () => signed };
}

const context = { requestId: 'r1', startedAt: 0 };
const good = { repository: 'acme/app', repository_owner_id: '42' };

describe('exchangeToken', () => {
  it('mints once every step passed, and tells the observer the decision it judged', async () => {
    const { deps, observed, admitted } = fakes(storedConfig());
    const decision = await exchangeToken(deps, token(good), context);
    expect(decision.accessToken).toBe('minted-1');
    expect(decision.roles).toEqual(['Analyst']);
    expect(decision.steps.map((step) => `${step.name}:${step.ok}`)).toEqual([
      'token:true',
      'issuer:true',
      'config:true',
      'signature:true',
      'claims:true',
      'conditions:true',
      'mappings:true',
      'identity:true',
    ]);
    expect(observed).toEqual([decision]);
    expect(admitted).toEqual([storedConfig().id]);
    expect(decision.accessClaims).toMatchObject({ config_incarnation: storedConfig().incarnation, roles: ['Analyst'] });
  });

  it('refuses with the policy kept private, and records for admins which condition failed', async () => {
    const { deps, observed, admitted, signed } = fakes(storedConfig());
    await expect(exchangeToken(deps, token({ ...good, repository_owner_id: '7' }), context)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'no valid role: no mapping of the config matches the ID token',
    });
    expect(observed[0]!.reason).toBe('condition repository_owner_id: value ["7"] does not match "42"');
    expect(observed[0]!.steps.at(-1)).toMatchObject({ name: 'conditions', ok: false });
    expect(admitted).toEqual([]);
    expect(signed()).toBe(0);
  });

  it('names expected and actual values when verification refuses a time or an audience', async () => {
    const { deps } = fakes(storedConfig(), (payload) => {
      if ((payload.exp as number) < now) throw new IdTokenRejected('expired', 'exp');
      throw new IdTokenRejected('audience mismatch', 'audience');
    });
    await expect(exchangeToken(deps, token({ ...good, exp: now - 192 }), context)).rejects.toThrow(
      'ID token is invalid: expired 3m12s ago (2026-12-02T11:56:48Z)',
    );
    await expect(
      exchangeToken(
        fakes(storedConfig({ audience: 'gw' }), () => {
          throw new IdTokenRejected('audience mismatch', 'audience');
        }).deps,
        token({ ...good, aud: ['x', 'y'] }),
        context,
      ),
    ).rejects.toThrow('ID token is invalid: audience mismatch: expected "gw", token has ["x", "y"]');
  });

  it('quotes at most ten values of a claim in its reason', async () => {
    const { deps, observed } = fakes(storedConfig());
    const many = Array.from({ length: 990 }, (_, i) => `owner-${i}`);
    await expect(exchangeToken(deps, token({ ...good, repository_owner_id: many }), context)).rejects.toThrow(
      'no valid role',
    );
    expect(observed[0]!.reason).toMatch(
      /^condition repository_owner_id: value \["owner-0", .*"owner-9", … 980 more\] does not match "42"$/,
    );
  });

  it('claims a single-use token once, after every other check passed', async () => {
    const { deps } = fakes(storedConfig({ singleUse: true }));
    await expect(exchangeToken(deps, token({ ...good, repository: 'other/app', jti: 'a' }), context)).rejects.toThrow(
      'no valid role',
    );
    await exchangeToken(deps, token({ ...good, jti: 'a' }), context);
    await expect(exchangeToken(deps, token({ ...good, jti: 'a' }), context)).rejects.toThrow(
      'ID token is invalid: already used',
    );
  });

  it('tells the observer about a decision cut short by a failing port, then fails', async () => {
    const { deps, observed } = fakes(storedConfig());
    const failing: ExchangeDeps = {
      ...deps,
      signer: {
        sign: async () => {
          throw new Error('the key is gone');
        },
      },
    };
    await expect(exchangeToken(failing, token(good), context)).rejects.toThrow('the key is gone');
    // The observers (the audit trail) get no driver message; the error handler logs the error itself.
    expect(observed[0]).toMatchObject({ reason: 'internal error (Error)', refusal: { code: 'INTERNAL' } });
    expect(observed[0]!.steps.at(-1)).toEqual({ name: 'internal', ok: false, detail: 'internal error (Error)' });
  });
});

describe('explainToken', () => {
  it('explains without minting, spending a single use or the budget', async () => {
    const { deps, observed, admitted, signed } = fakes(storedConfig({ singleUse: true }));
    const decision = await explainToken(deps, token({ ...good, jti: 'b' }));
    expect(decision.refusal).toBeUndefined();
    expect(decision.steps.every((step) => step.detail !== '')).toBe(true);
    expect(decision.policy?.conditions).toEqual([
      { key: 'repository_owner_id', valueExpression: '42', matched: true, value: '42' },
    ]);
    expect([signed(), admitted.length, observed.length]).toEqual([0, 0, 0]);
    await exchangeToken(deps, token({ ...good, jti: 'b' }), context);
  });
});
