import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('applies the SPEC §4 defaults', () => {
    const config = loadConfig({}, '/srv/gateway');
    expect(config).toMatchObject({
      port: 8080,
      databaseUrl: undefined,
      dataDir: '/srv/gateway/.data',
      gatewayIssuer: 'http://localhost:8080',
      tokenSigningAlg: 'ES256',
      clockSkewSeconds: 30,
      logLevel: 'info',
      exchangeRateLimit: 600,
      trustProxy: false,
      kubeTokenReview: false,
      kubeApiUrl: 'https://kubernetes.default.svc',
      kubeSaTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      githubActionsIssuers: [],
      issuerAllowPrivateNetworks: [],
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('derives the default issuer from PORT', () => {
    expect(loadConfig({ PORT: '9000' }).gatewayIssuer).toBe('http://localhost:9000');
  });

  it('reads lists, booleans and the key encryption key', () => {
    const config = loadConfig({
      GITHUB_ACTIONS_ISSUERS: 'https://ghes.example.com/_services/token, https://ghes2.example.com/_services/token',
      KUBE_TOKEN_REVIEW: 'true',
      KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
      TRUST_PROXY: 'loopback',
      ISSUER_ALLOW_PRIVATE_NETWORKS: '127.0.0.1,10.0.0.0/8',
    });
    expect(config.githubActionsIssuers).toEqual([
      'https://ghes.example.com/_services/token',
      'https://ghes2.example.com/_services/token',
    ]);
    expect(config.kubeTokenReview).toBe(true);
    expect(config.keyEncryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(config.trustProxy).toBe('loopback');
    expect(config.issuerAllowPrivateNetworks).toEqual(['127.0.0.1', '10.0.0.0/8']);
  });

  it('requires KEY_ENCRYPTION_KEY with DATABASE_URL, and says only once what is wrong with it', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgresql://db/gateway' })).toThrow(
      new ConfigError(
        'invalid configuration: KEY_ENCRYPTION_KEY is required with DATABASE_URL (32 random bytes in base64: openssl rand -base64 32)',
      ),
    );
    expect(() => loadConfig({ DATABASE_URL: 'postgresql://db/gateway', KEY_ENCRYPTION_KEY: 'c2hvcnQ=' })).toThrow(
      new ConfigError('invalid configuration: KEY_ENCRYPTION_KEY must be 32 random bytes in base64'),
    );
  });

  it('names every wrong variable in one error', () => {
    expect(() =>
      loadConfig({
        PORT: 'eighty',
        TOKEN_SIGNING_ALG: 'HS256',
        CLOCK_SKEW_SECONDS: '-1',
        KEY_ENCRYPTION_KEY: 'c2hvcnQ=',
        GITHUB_ACTIONS_ISSUERS: 'http://ghes.example.com',
        KUBE_TOKEN_REVIEW: 'yes',
      }),
    ).toThrow(
      new ConfigError(
        'invalid configuration: PORT must be a whole number from 0 to 65535, got "eighty"; ' +
          'GITHUB_ACTIONS_ISSUERS: issuer "http://ghes.example.com" must use https; ' +
          'KUBE_TOKEN_REVIEW must be true or false, got "yes"; ' +
          'TOKEN_SIGNING_ALG must be one of ES256, RS256, EdDSA, got "HS256"; ' +
          'CLOCK_SKEW_SECONDS must be a whole number from 0 to 3600, got "-1"; ' +
          'KEY_ENCRYPTION_KEY must be 32 random bytes in base64',
      ),
    );
  });
});
