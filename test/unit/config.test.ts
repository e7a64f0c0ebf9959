import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createTestCa } from '../fixtures/test-ca.js';

const problemsOf = (env: Record<string, string>): readonly string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

const DATABASE = {
  DATABASE_URL: 'postgresql://db/gateway',
  KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
  GATEWAY_ISSUER: 'https://gateway.example.com',
};

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
      TRUST_PROXY: 'loopback, 10.0.0.0/8',
      ISSUER_ALLOW_PRIVATE_NETWORKS: '127.0.0.1,10.0.0.0/8',
    });
    expect(config.githubActionsIssuers).toEqual([
      'https://ghes.example.com/_services/token',
      'https://ghes2.example.com/_services/token',
    ]);
    expect(config.kubeTokenReview).toBe(true);
    expect(config.keyEncryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(config.trustProxy).toEqual(['loopback', '10.0.0.0/8']);
    expect(config.issuerAllowPrivateNetworks).toEqual(['127.0.0.1', '10.0.0.0/8']);
  });

  it('requires KEY_ENCRYPTION_KEY with DATABASE_URL, and says only once what is wrong with it', () => {
    const { KEY_ENCRYPTION_KEY: _, ...withoutKey } = DATABASE;
    expect(problemsOf(withoutKey)).toEqual([
      'KEY_ENCRYPTION_KEY is required with DATABASE_URL (32 random bytes in base64: openssl rand -base64 32)',
    ]);
    expect(problemsOf({ ...DATABASE, KEY_ENCRYPTION_KEY: 'c2hvcnQ=' })).toEqual([
      'KEY_ENCRYPTION_KEY must be 32 random bytes in base64',
    ]);
  });

  it('requires GATEWAY_ISSUER with DATABASE_URL, since replicas must agree on it', () => {
    const { GATEWAY_ISSUER: _, ...withoutIssuer } = DATABASE;
    expect(problemsOf(withoutIssuer)).toEqual([
      'GATEWAY_ISSUER is required with DATABASE_URL, so that every replica mints and accepts the same issuer',
    ]);
    expect(loadConfig(DATABASE).gatewayIssuer).toBe('https://gateway.example.com');
  });

  it('takes TRUST_PROXY as a hop count or a list of proxies, and refuses true and anything else', () => {
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '0' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '10.1.2.3, fd00::/8' }).trustProxy).toEqual(['10.1.2.3', 'fd00::/8']);
    expect(problemsOf({ TRUST_PROXY: 'true' })).toEqual([
      'TRUST_PROXY=true is refused: it lets any client choose its address with X-Forwarded-For; ' +
        "give the number of proxy hops or the proxies' addresses",
    ]);
    for (const wrong of ['maybe', '10.0.0.0/33', '10.0.0.1,', 'yes']) {
      expect(problemsOf({ TRUST_PROXY: wrong })).toEqual([
        `TRUST_PROXY must be a hop count or a comma list of proxy addresses or CIDRs, got ${JSON.stringify(wrong)}`,
      ]);
    }
  });

  it('reads ISSUER_CA_FILE at once and refuses a missing or non-PEM file', async () => {
    const ca = await createTestCa();
    expect(loadConfig({ ISSUER_CA_FILE: ca.file }).issuerCaPem).toContain('-----BEGIN CERTIFICATE-----');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-config-'));
    const notPem = path.join(dir, 'ca.txt');
    await writeFile(notPem, 'this is not a certificate\n');
    const brokenPem = path.join(dir, 'broken.pem');
    await writeFile(brokenPem, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const missing = path.join(dir, 'missing.pem');
    expect(problemsOf({ ISSUER_CA_FILE: missing })).toEqual([
      `ISSUER_CA_FILE ${JSON.stringify(missing)} cannot be read (no such file)`,
    ]);
    expect(problemsOf({ ISSUER_CA_FILE: notPem })).toEqual([
      `ISSUER_CA_FILE ${JSON.stringify(notPem)} must be a PEM bundle of CA certificates`,
    ]);
    expect(problemsOf({ ISSUER_CA_FILE: brokenPem })).toEqual([
      `ISSUER_CA_FILE ${JSON.stringify(brokenPem)} must be a PEM bundle of CA certificates`,
    ]);
  });

  it('names every wrong variable in one error, one line each', () => {
    expect(() =>
      loadConfig({
        PORT: 'eighty',
        TOKEN_SIGNING_ALG: 'HS256',
        CLOCK_SKEW_SECONDS: '-1',
        KEY_ENCRYPTION_KEY: 'c2hvcnQ=',
        GITHUB_ACTIONS_ISSUERS: 'http://ghes.example.com',
        KUBE_TOKEN_REVIEW: 'yes',
        TRUST_PROXY: 'maybe',
        ISSUER_CA_FILE: '/nonexistent/ca.pem',
      }),
    ).toThrow(
      new ConfigError([
        'PORT must be a whole number from 0 to 65535, got "eighty"',
        'GITHUB_ACTIONS_ISSUERS: issuer "http://ghes.example.com" must use https',
        'ISSUER_CA_FILE "/nonexistent/ca.pem" cannot be read (no such file)',
        'KUBE_TOKEN_REVIEW must be true or false, got "yes"',
        'TOKEN_SIGNING_ALG must be one of ES256, RS256, EdDSA, got "HS256"',
        'CLOCK_SKEW_SECONDS must be a whole number from 0 to 3600, got "-1"',
        'KEY_ENCRYPTION_KEY must be 32 random bytes in base64',
        'TRUST_PROXY must be a hop count or a comma list of proxy addresses or CIDRs, got "maybe"',
      ]),
    );
  });
});
