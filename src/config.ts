import { X509Certificate } from 'node:crypto';
import { constants, accessSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { formatDuration, parseGoDuration } from './domain/go-duration.js';
import { issuerUrlProblem } from './domain/m2m-config.js';
import { createNetworkPolicy } from './oidc/network-policy.js';
import { createNoProxy, parseProxyUrl, type ProxyServer } from './oidc/proxy.js';

export const TOKEN_SIGNING_ALGS = ['ES256', 'RS256', 'EdDSA'] as const;
export type TokenSigningAlg = (typeof TOKEN_SIGNING_ALGS)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The gateway's settings (docs/reference.md §4), read once at start. */
export interface AppConfig {
  readonly port: number;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly gatewayIssuer: string;
  readonly adminPassword: string | undefined;
  readonly issuerCaFile: string | undefined;
  /** The certificates of ISSUER_CA_FILE, read and checked at start. */
  readonly issuerCaPem: string | undefined;
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
  /** Express `trust proxy`: false, a hop count, or proxy addresses and subnets; never `true`. */
  readonly trustProxy: false | number | readonly string[];
  /** DECLARATIVE_CONFIG_DIR, absolute: configs and roles applied from files (docs/reference.md §6.5); undefined when unset. */
  readonly declarativeConfigDir: string | undefined;
  /** HTTPS_PROXY (or https_proxy): outbound issuer calls tunnel through it; its credentials are not enumerable. */
  readonly httpsProxy: ProxyServer | undefined;
  /** NO_PROXY (or no_proxy): hosts reached without the proxy (oidc/proxy.ts). */
  readonly noProxy: readonly string[];
  /** SIGNING_KEY_ROTATION in milliseconds: the signing key is rotated once it is this old; 0 never. */
  readonly signingKeyRotationMs: number;
  /** AUDIT_RETENTION in milliseconds: older audit events are deleted; 0 keeps them for ever. */
  readonly auditRetentionMs: number;
  /** UI_OIDC_*: single sign-on for the admin console (docs/reference.md §6.6); undefined for password sign-in only. */
  readonly consoleSso: ConsoleSsoSettings | undefined;
}

/** Every problem with the settings, one line each. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const NANOS_PER_MS = 1e6;
/**
 * The shortest SIGNING_KEY_ROTATION and AUDIT_RETENTION: every retired key
 * stays published for a day, and explain needs the audit record of a refusal.
 */
const HOUR_MS = 3_600_000;

/**
 * Parses the environment into a frozen AppConfig.
 *
 * @throws ConfigError naming every variable that is wrong, not just the first
 */
export interface ConsoleSsoSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

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
  /** A Go duration in milliseconds: 0, or at least `minMs` (a shorter one is a mistake, not a policy). */
  const duration = (name: string, fallback: string, minMs: number, zero: string): number => {
    const raw = read(name) ?? fallback;
    const refuse = (reason: string) => {
      problems.push(
        `${name} must be 0 (${zero}) or a Go duration of at least ${formatDuration(minMs / 1000)}, ` +
          `got ${JSON.stringify(raw)}: ${reason}`,
      );
      return parseGoDuration(fallback) / NANOS_PER_MS;
    };
    let nanos: number;
    try {
      nanos = parseGoDuration(raw);
    } catch (error) {
      return refuse((error as Error).message);
    }
    if (nanos < 0) return refuse('it is negative');
    if (nanos > 0 && nanos < minMs * NANOS_PER_MS) return refuse('it is too short');
    return nanos / NANOS_PER_MS;
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

  // Upper case wins when both are set, as in curl and Go.
  const proxyName = read('HTTPS_PROXY') === undefined ? 'https_proxy' : 'HTTPS_PROXY';
  const rawProxy = read(proxyName);
  let httpsProxy: ProxyServer | undefined;
  try {
    httpsProxy = rawProxy === undefined ? undefined : parseProxyUrl(rawProxy);
  } catch (error) {
    problems.push(`${proxyName} ${(error as Error).message}`);
  }
  const noProxyName = read('NO_PROXY') === undefined ? 'no_proxy' : 'NO_PROXY';
  const noProxy = list(noProxyName);
  try {
    createNoProxy(noProxy);
  } catch (error) {
    problems.push(`${noProxyName}: ${(error as Error).message}`);
  }

  const consoleSso = readConsoleSso(
    {
      issuer: read('UI_OIDC_ISSUER'),
      clientId: read('UI_OIDC_CLIENT_ID'),
      clientSecret: read('UI_OIDC_CLIENT_SECRET'),
    },
    problems,
  );

  const config: AppConfig = {
    port,
    databaseUrl: read('DATABASE_URL'),
    dataDir: path.resolve(cwd, read('DATA_DIR') ?? '.data'),
    gatewayIssuer: httpUrl('GATEWAY_ISSUER', `http://localhost:${port}`),
    adminPassword: env.ADMIN_PASSWORD === '' ? undefined : env.ADMIN_PASSWORD,
    issuerCaFile: read('ISSUER_CA_FILE'),
    issuerCaPem: readCaFile(read('ISSUER_CA_FILE'), problems),
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
    trustProxy: readTrustProxy(read('TRUST_PROXY'), problems),
    declarativeConfigDir: readDirectory('DECLARATIVE_CONFIG_DIR', read('DECLARATIVE_CONFIG_DIR'), cwd, problems),
    httpsProxy,
    noProxy,
    signingKeyRotationMs: duration('SIGNING_KEY_ROTATION', '720h', HOUR_MS, 'never'),
    auditRetentionMs: duration('AUDIT_RETENTION', '2160h', HOUR_MS, 'keep every event'),
    consoleSso,
  };
  if (config.databaseUrl !== undefined && read('KEY_ENCRYPTION_KEY') === undefined) {
    problems.push(
      'KEY_ENCRYPTION_KEY is required with DATABASE_URL (32 random bytes in base64: openssl rand -base64 32)',
    );
  }
  // Replicas on one database must agree on the issuer of their tokens, and a per-port default would differ.
  if (config.databaseUrl !== undefined && read('GATEWAY_ISSUER') === undefined) {
    problems.push(
      'GATEWAY_ISSUER is required with DATABASE_URL, so that every replica mints and accepts the same issuer',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** All three UI_OIDC_* variables or none: half a single sign-on set-up is a mistake, not a choice. */
function readConsoleSso(
  settings: { [field in keyof ConsoleSsoSettings]: string | undefined },
  problems: string[],
): ConsoleSsoSettings | undefined {
  const names: Record<keyof ConsoleSsoSettings, string> = {
    issuer: 'UI_OIDC_ISSUER',
    clientId: 'UI_OIDC_CLIENT_ID',
    clientSecret: 'UI_OIDC_CLIENT_SECRET',
  };
  const fields = Object.keys(names) as (keyof ConsoleSsoSettings)[];
  const missing = fields.filter((field) => settings[field] === undefined);
  if (missing.length === fields.length) return undefined;
  if (missing.length > 0) {
    problems.push(
      `${missing.map((field) => names[field]).join(', ')} must be set too: single sign-on needs ` +
        `${Object.values(names).join(', ')}`,
    );
    return undefined;
  }
  const problem = issuerUrlProblem(settings.issuer!);
  if (problem) {
    problems.push(`UI_OIDC_ISSUER: ${problem}`);
    return undefined;
  }
  return settings as ConsoleSsoSettings;
}

/** A directory that the gateway can list and read, made absolute; undefined when unset. */
function readDirectory(name: string, raw: string | undefined, cwd: string, problems: string[]): string | undefined {
  if (raw === undefined) return undefined;
  const dir = path.resolve(cwd, raw);
  try {
    if (!statSync(dir).isDirectory()) {
      problems.push(`${name} ${JSON.stringify(raw)} is not a directory`);
      return undefined;
    }
    accessSync(dir, constants.R_OK | constants.X_OK);
  } catch (error) {
    const code = (error as { code?: string }).code;
    problems.push(`${name} ${JSON.stringify(raw)} cannot be read (${code === 'ENOENT' ? 'no such directory' : code})`);
    return undefined;
  }
  return dir;
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

/** Express's named subnets, which are as explicit as an address list. */
const TRUST_PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];
/** More hops than any real chain of proxies: a larger count believes addresses the client wrote itself. */
const MAX_TRUST_PROXY_HOPS = 10;

/**
 * TRUST_PROXY: a hop count or a comma list of proxy addresses, subnets or
 * Express's subnet names. `true` is refused: it would believe the leftmost
 * X-Forwarded-For entry, which any client writes itself. So is anything that
 * comes close to it (a huge hop count, a subnet holding a large share of the
 * internet), and anything Express would throw on at start.
 */
function readTrustProxy(raw: string | undefined, problems: string[]): false | number | string[] {
  if (raw === undefined || raw === 'false' || raw === '0') return false;
  const refuse = (reason?: string) => {
    problems.push(
      `TRUST_PROXY must be a hop count or a comma list of proxy addresses or CIDRs, got ${JSON.stringify(raw)}` +
        (reason === undefined ? '' : `: ${reason}`),
    );
    return false as const;
  };
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    return /^[1-9]\d*$/.test(raw) && hops <= MAX_TRUST_PROXY_HOPS
      ? hops
      : refuse(`a hop count is from 1 to ${MAX_TRUST_PROXY_HOPS}`);
  }
  if (raw.toLowerCase() === 'true') {
    problems.push(
      'TRUST_PROXY=true is refused: it lets any client choose its address with X-Forwarded-For; ' +
        "give the number of proxy hops or the proxies' addresses",
    );
    return false;
  }
  const entries = raw.split(',').map((entry) => entry.trim());
  const subnets = entries.filter((entry) => !TRUST_PROXY_NAMES.includes(entry));
  if (!subnets.every(isAddressOrSubnet)) return refuse();
  const problem = subnets.map(subnetProblem).find((found) => found !== undefined);
  return problem === undefined ? entries : refuse(problem);
}

function isAddressOrSubnet(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = net.isIP(address);
  if (version === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
}

/**
 * proxy-addr matches an IPv4 peer against an IPv6 subnet through this range,
 * so an IPv6 subnet inside it trusts IPv4 peers, and one around it trusts them all.
 */
const IPV4_MAPPED = new net.BlockList();
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');
const MIN_IPV4_PREFIX = 8;
const MIN_IPV6_PREFIX = 16;

/** Why an address or CIDR (already well-formed) is refused as a trusted proxy, or undefined when it is fine. */
function subnetProblem(entry: string): string | undefined {
  const [address = '', prefixText] = entry.split('/');
  const quoted = JSON.stringify(entry);
  // proxy-addr reads zones more narrowly than net.isIP and throws at start on the rest.
  if (address.includes('%')) return `${quoted} names a zone; give the address alone`;
  // Likewise for an IPv4 tail anywhere but after ::ffff: (proxy-addr refuses "::1.2.3.4").
  if (net.isIPv6(address) && address.includes('.') && !/^::ffff:[\d.]+$/i.test(address)) {
    return `${quoted} embeds an IPv4 address; write it as ::ffff:a.b.c.d or in hex`;
  }
  if (prefixText === undefined) return undefined;
  // proxy-addr reads "/00" as 0 and throws at start; an exact spelling leaves no doubt what is meant.
  if (prefixText.length > 1 && prefixText.startsWith('0')) return `${quoted} has a leading zero in its prefix`;
  const prefix = Number(prefixText);
  if (net.isIPv4(address)) {
    return prefix < MIN_IPV4_PREFIX
      ? `${quoted} is too broad: an IPv4 prefix must be from /${MIN_IPV4_PREFIX} to /32`
      : undefined;
  }
  const subnet = new net.BlockList();
  subnet.addSubnet(address, prefix, 'ipv6');
  // A prefix of 96 or less either holds the whole mapped range or none of it.
  if (prefix <= 96 && subnet.check('::ffff:0:0', 'ipv6')) return `${quoted} is too broad: it holds every IPv4 address`;
  if (prefix > 96 && IPV4_MAPPED.check(address, 'ipv6')) {
    return prefix - 96 < MIN_IPV4_PREFIX
      ? `${quoted} is too broad: an IPv4-mapped prefix must be from /${96 + MIN_IPV4_PREFIX} to /128`
      : undefined;
  }
  return prefix < MIN_IPV6_PREFIX
    ? `${quoted} is too broad: an IPv6 prefix must be from /${MIN_IPV6_PREFIX} to /128`
    : undefined;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** ISSUER_CA_FILE: readable, and every certificate in it parses; at least one. */
function readCaFile(file: string | undefined, problems: string[]): string | undefined {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    problems.push(
      `ISSUER_CA_FILE ${JSON.stringify(file)} cannot be read (${code === 'ENOENT' ? 'no such file' : code})`,
    );
    return undefined;
  }
  const certificates = text.match(PEM_CERTIFICATE) ?? [];
  const unreadable = certificates.filter((pem) => {
    try {
      new X509Certificate(pem);
      return false;
    } catch {
      return true;
    }
  });
  if (certificates.length === 0 || unreadable.length > 0) {
    problems.push(`ISSUER_CA_FILE ${JSON.stringify(file)} must be a PEM bundle of CA certificates`);
    return undefined;
  }
  return certificates.join('\n');
}
