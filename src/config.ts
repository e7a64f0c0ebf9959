import path from 'node:path';
import { issuerUrlProblem } from './domain/m2m-config.js';
import { createNetworkPolicy } from './oidc/network-policy.js';

export const TOKEN_SIGNING_ALGS = ['ES256', 'RS256', 'EdDSA'] as const;
export type TokenSigningAlg = (typeof TOKEN_SIGNING_ALGS)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The gateway's settings (SPEC §4), read once at start. */
export interface AppConfig {
  readonly port: number;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly gatewayIssuer: string;
  readonly adminPassword: string | undefined;
  readonly issuerCaFile: string | undefined;
  readonly githubActionsIssuers: readonly string[];
  readonly kubeSaTokenFile: string;
  readonly kubeTokenReview: boolean;
  readonly kubeApiUrl: string;
  readonly tokenSigningAlg: TokenSigningAlg;
  readonly clockSkewSeconds: number;
  readonly logLevel: LogLevel;
  readonly keyEncryptionKey: Buffer | undefined;
  readonly issuerAllowPrivateNetworks: readonly string[];
  readonly exchangeRateLimit: number;
  readonly trustProxy: boolean | number | string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses the environment into a frozen AppConfig.
 *
 * @throws ConfigError naming every variable that is wrong, not just the first
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): AppConfig {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = allowed.find((candidate) => candidate === raw);
    if (value === undefined) problems.push(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
    return value ?? fallback;
  };
  const list = (name: string): string[] =>
    (read(name) ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  const httpUrl = (name: string, fallback: string): string => {
    const raw = read(name) ?? fallback;
    try {
      const url = new URL(raw);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError();
    } catch {
      problems.push(`${name} must be an http(s) URL, got ${JSON.stringify(raw)}`);
    }
    return raw;
  };
  const bool = (name: string): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined || raw === 'false' || raw === '0') return false;
    if (raw === 'true' || raw === '1') return true;
    problems.push(`${name} must be true or false, got ${JSON.stringify(raw)}`);
    return false;
  };

  const port = integer('PORT', 8080, 0, 65535);
  const githubActionsIssuers = list('GITHUB_ACTIONS_ISSUERS');
  for (const issuer of githubActionsIssuers) {
    const problem = issuerUrlProblem(issuer);
    if (problem) problems.push(`GITHUB_ACTIONS_ISSUERS: ${problem}`);
  }

  const issuerAllowPrivateNetworks = list('ISSUER_ALLOW_PRIVATE_NETWORKS');
  try {
    createNetworkPolicy(issuerAllowPrivateNetworks);
  } catch (error) {
    problems.push(`ISSUER_ALLOW_PRIVATE_NETWORKS: ${(error as Error).message}`);
  }

  const config: AppConfig = {
    port,
    databaseUrl: read('DATABASE_URL'),
    dataDir: path.resolve(cwd, read('DATA_DIR') ?? '.data'),
    gatewayIssuer: httpUrl('GATEWAY_ISSUER', `http://localhost:${port}`),
    adminPassword: env.ADMIN_PASSWORD === '' ? undefined : env.ADMIN_PASSWORD,
    issuerCaFile: read('ISSUER_CA_FILE'),
    githubActionsIssuers,
    kubeSaTokenFile: read('KUBE_SA_TOKEN_FILE') ?? '/var/run/secrets/kubernetes.io/serviceaccount/token',
    kubeTokenReview: bool('KUBE_TOKEN_REVIEW'),
    kubeApiUrl: httpUrl('KUBE_API_URL', 'https://kubernetes.default.svc'),
    tokenSigningAlg: oneOf('TOKEN_SIGNING_ALG', TOKEN_SIGNING_ALGS, 'ES256'),
    clockSkewSeconds: integer('CLOCK_SKEW_SECONDS', 30, 0, 3600),
    logLevel: oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    keyEncryptionKey: readKeyEncryptionKey(read('KEY_ENCRYPTION_KEY'), problems),
    issuerAllowPrivateNetworks,
    exchangeRateLimit: integer('EXCHANGE_RATE_LIMIT', 600, 0, 1_000_000),
    trustProxy: readTrustProxy(read('TRUST_PROXY')),
  };
  if (config.databaseUrl !== undefined && read('KEY_ENCRYPTION_KEY') === undefined) {
    problems.push(
      'KEY_ENCRYPTION_KEY is required with DATABASE_URL (32 random bytes in base64: openssl rand -base64 32)',
    );
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return Object.freeze(config);
}

function readKeyEncryptionKey(raw: string | undefined, problems: string[]): Buffer | undefined {
  if (raw === undefined) return undefined;
  const key = Buffer.from(raw, 'base64');
  if (key.length !== 32) {
    problems.push('KEY_ENCRYPTION_KEY must be 32 random bytes in base64');
    return undefined;
  }
  return key;
}

/** Express's `trust proxy`: off, true, a hop count, or a list of addresses and subnets. */
function readTrustProxy(raw: string | undefined): boolean | number | string {
  if (raw === undefined || raw === 'off' || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw;
}
