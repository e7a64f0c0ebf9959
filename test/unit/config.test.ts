import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import express from 'express';
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
  it('applies the docs/reference.md §4 defaults', () => {
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

  it('takes the console single sign-on as all three UI_OIDC_* variables or none', () => {
    expect(loadConfig({}).consoleSso).toBeUndefined();
    const sso = { UI_OIDC_ISSUER: 'https://login.example.com', UI_OIDC_CLIENT_ID: 'gw', UI_OIDC_CLIENT_SECRET: 's3' };
    expect(loadConfig(sso).consoleSso).toEqual({
      issuer: 'https://login.example.com',
      clientId: 'gw',
      clientSecret: 's3',
    });
    expect(problemsOf({ UI_OIDC_ISSUER: 'https://login.example.com' })).toEqual([
      'UI_OIDC_CLIENT_ID, UI_OIDC_CLIENT_SECRET must be set too: single sign-on needs UI_OIDC_ISSUER, ' +
        'UI_OIDC_CLIENT_ID, UI_OIDC_CLIENT_SECRET',
    ]);
    expect(problemsOf({ ...sso, UI_OIDC_ISSUER: 'http://login.example.com' })).toEqual([
      'UI_OIDC_ISSUER: issuer "http://login.example.com" must use https',
    ]);
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
    expect(loadConfig({ TRUST_PROXY: '10.1.2.3, fd00::/16' }).trustProxy).toEqual(['10.1.2.3', 'fd00::/16']);
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

  describe('TRUST_PROXY is refused when it would trust far more than a few proxies, or crash the start', () => {
    const refusal = (raw: string, reason: string) =>
      `TRUST_PROXY must be a hop count or a comma list of proxy addresses or CIDRs, got ${JSON.stringify(raw)}: ${reason}`;

    it.each([
      ['11', 'a hop count is from 1 to 10'],
      ['99999999999999999999', 'a hop count is from 1 to 10'],
      ['010', 'a hop count is from 1 to 10'],
      ['0.0.0.0/0', '"0.0.0.0/0" is too broad: an IPv4 prefix must be from /8 to /32'],
      ['10.0.0.0/7', '"10.0.0.0/7" is too broad: an IPv4 prefix must be from /8 to /32'],
      ['1.2.3.4/00', '"1.2.3.4/00" has a leading zero in its prefix'],
      ['10.0.0.0/08', '"10.0.0.0/08" has a leading zero in its prefix'],
      ['::/0', '"::/0" is too broad: it holds every IPv4 address'],
      ['::1/0', '"::1/0" is too broad: it holds every IPv4 address'],
      ['::/80', '"::/80" is too broad: it holds every IPv4 address'],
      ['::ffff:0:0/96', '"::ffff:0:0/96" is too broad: it holds every IPv4 address'],
      ['::ffff:10.0.0.0/100', '"::ffff:10.0.0.0/100" is too broad: an IPv4-mapped prefix must be from /104 to /128'],
      ['fd00::/15', '"fd00::/15" is too broad: an IPv6 prefix must be from /16 to /128'],
      ['10.0.0.1, 2000::/3', '"2000::/3" is too broad: an IPv6 prefix must be from /16 to /128'],
      ['fe80::1%eth-0', '"fe80::1%eth-0" names a zone; give the address alone'],
      ['::1.2.3.4', '"::1.2.3.4" embeds an IPv4 address; write it as ::ffff:a.b.c.d or in hex'],
      ['64:ff9b::1.2.3.4/120', '"64:ff9b::1.2.3.4/120" embeds an IPv4 address; write it as ::ffff:a.b.c.d or in hex'],
    ])('refuses %j', (raw, reason) => {
      expect(problemsOf({ TRUST_PROXY: raw })).toEqual([refusal(raw, reason)]);
    });

    it('takes hop counts up to 10, and the narrowest prefixes of each kind', () => {
      expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
      expect(loadConfig({ TRUST_PROXY: '10' }).trustProxy).toBe(10);
      expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
      const lists = ['10.0.0.0/8', '1.2.3.4/32', 'fd00::/16', '::1/128', '::ffff:10.0.0.0/104', '::ffff:0:0/104'];
      for (const entry of lists) expect(loadConfig({ TRUST_PROXY: entry }).trustProxy).toEqual([entry]);
    });

    // Every value this file mentions, good or bad: whatever loadConfig accepts, Express must take.
    const candidates = [
      '1',
      '10',
      '99999999999999999999',
      'loopback, linklocal, uniquelocal',
      '10.0.0.0/8, 192.168.1.1, 1.2.3.4/32',
      'fd00::/16, ::1, ::1/128, fe80::1%eth0, fe80::/64',
      '::ffff:10.0.0.0/104, ::ffff:1.2.3.4, ::ffff:1.2.3.4/128',
      '2001:db8::/32, 127.0.0.1',
      '0.0.0.0/0',
      '::/0',
      '::1/0',
      '1.2.3.4/00',
      '::ffff:0:0/96',
      'fe80::1%eth-0',
      'fe80::1%a.b',
      '::1.2.3.4',
      '64:ff9b::1.2.3.4',
      '1:2:3:4:5:6:1.2.3.4',
      '::FFFF:1.2.3.4/104',
    ];
    it.each(candidates)('accepts only what Express takes without throwing: %j', (raw) => {
      if (problemsOf({ TRUST_PROXY: raw }).length > 0) return;
      const { trustProxy } = loadConfig({ TRUST_PROXY: raw });
      expect(() =>
        express().set('trust proxy', Array.isArray(trustProxy) ? [...trustProxy] : trustProxy),
      ).not.toThrow();
    });
  });

  it('reads HTTPS_PROXY and NO_PROXY, upper case winning over lower case', () => {
    expect(loadConfig({})).toMatchObject({ httpsProxy: undefined, noProxy: [] });
    const both = loadConfig({
      HTTPS_PROXY: 'http://upper.corp:3128',
      https_proxy: 'http://lower.corp:3128',
      NO_PROXY: '.svc, 10.0.0.0/8',
      no_proxy: 'lower.example',
    });
    expect(both.httpsProxy).toMatchObject({ host: 'upper.corp', port: 3128 });
    expect(both.noProxy).toEqual(['.svc', '10.0.0.0/8']);
    const lower = loadConfig({ https_proxy: 'lower.corp:8080', no_proxy: 'kubernetes.default.svc' });
    expect(lower.httpsProxy).toMatchObject({ url: 'http://lower.corp:8080', host: 'lower.corp', port: 8080 });
    expect(lower.noProxy).toEqual(['kubernetes.default.svc']);
  });

  it('keeps the proxy password out of the settings as shown and out of every problem line', () => {
    const config = loadConfig({ HTTPS_PROXY: 'http://egress:s3cret@proxy.corp:3128' });
    expect(config.httpsProxy?.authorization).toBe(`Basic ${Buffer.from('egress:s3cret').toString('base64')}`);
    expect(JSON.stringify(config)).not.toMatch(/s3cret|Basic/);
    expect(problemsOf({ HTTPS_PROXY: 'http://egress:s3cret@proxy corp:3128' })).toEqual([
      'HTTPS_PROXY is not a URL such as http://proxy.example.com:3128',
    ]);
    expect(problemsOf({ https_proxy: 'https://egress:s3cret@proxy.corp' })).toEqual([
      'https_proxy must be an http:// proxy URL; https proxies are not supported',
    ]);
    expect(problemsOf({ NO_PROXY: 'example.com, not a host' })).toEqual([
      'NO_PROXY: "not a host" is neither a host, an address nor a CIDR, with an optional port',
    ]);
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

  it('reads SIGNING_KEY_ROTATION and AUDIT_RETENTION as Go durations: 0 turns them off, less than an hour is refused', () => {
    expect(loadConfig({})).toMatchObject({ signingKeyRotationMs: 720 * 3_600_000, auditRetentionMs: 2160 * 3_600_000 });
    expect(loadConfig({ SIGNING_KEY_ROTATION: '0', AUDIT_RETENTION: '0' })).toMatchObject({
      signingKeyRotationMs: 0,
      auditRetentionMs: 0,
    });
    expect(loadConfig({ SIGNING_KEY_ROTATION: '168h', AUDIT_RETENTION: '1h30m' })).toMatchObject({
      signingKeyRotationMs: 168 * 3_600_000,
      auditRetentionMs: 5_400_000,
    });
    expect(problemsOf({ SIGNING_KEY_ROTATION: '30d', AUDIT_RETENTION: '-24h' })).toEqual([
      'SIGNING_KEY_ROTATION must be 0 (never) or a Go duration of at least 1h0m0s, got "30d": unknown unit "d" in duration "30d"',
      'AUDIT_RETENTION must be 0 (keep every event) or a Go duration of at least 1h0m0s, got "-24h": it is negative',
    ]);
    expect(problemsOf({ SIGNING_KEY_ROTATION: '59m', AUDIT_RETENTION: '720' })).toEqual([
      'SIGNING_KEY_ROTATION must be 0 (never) or a Go duration of at least 1h0m0s, got "59m": it is too short',
      'AUDIT_RETENTION must be 0 (keep every event) or a Go duration of at least 1h0m0s, got "720": missing unit in duration "720"',
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

describe('DECLARATIVE_CONFIG_DIR', () => {
  it('is resolved against the working directory, and must be a directory the gateway can read', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'm2m-config-declarative-'));
    await writeFile(path.join(dir, 'a-file.yaml'), '');
    expect(loadConfig({}).declarativeConfigDir).toBeUndefined();
    expect(loadConfig({ DECLARATIVE_CONFIG_DIR: path.basename(dir) }, os.tmpdir()).declarativeConfigDir).toBe(dir);
    expect(problemsOf({ DECLARATIVE_CONFIG_DIR: path.join(dir, 'missing') })).toEqual([
      `DECLARATIVE_CONFIG_DIR ${JSON.stringify(path.join(dir, 'missing'))} cannot be read (no such directory)`,
    ]);
    expect(problemsOf({ DECLARATIVE_CONFIG_DIR: path.join(dir, 'a-file.yaml') })).toEqual([
      `DECLARATIVE_CONFIG_DIR ${JSON.stringify(path.join(dir, 'a-file.yaml'))} is not a directory`,
    ]);
  });
});
