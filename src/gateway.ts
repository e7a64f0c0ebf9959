import { hash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { AppConfig } from './config.js';
import { createAdminCredentialRepository } from './db/admin-credential-repository.js';
import { coalesce, createReloadHealth, listenForChanges } from './db/change-feed.js';
import { createConfigRepository } from './db/config-repository.js';
import {
  keyEncryptionKeyFile,
  readOrCreateSecret,
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from './db/embedded-postgres.js';
import { applyMigrations, defaultMigrationsDir, packageRoot, readMigrations } from './db/migrate.js';
import { createAuditLog, type AuditLog } from './db/audit-log.js';
import { DECLARATIVE_APPLY_LOCK, withAdvisoryLock } from './db/advisory-lock.js';
import { startDeclarativeConfigs } from './declarative/declarative-configs.js';
import { deleteAuditEventsBefore } from './db/audit-retention.js';
import { startBackgroundJob } from './background-job.js';
import { createDatabase, translateDatabaseError } from './db/prisma.js';
import { createRoleRepository } from './db/role-repository.js';
import { createUsedTokenRepository } from './db/used-token-repository.js';
import { createSigningKeyRepository } from './db/signing-key-repository.js';
import { createConfigCache, createRoleCache } from './domain/config-cache.js';
import { exchangeToken, type Decision, type ExchangeDeps } from './domain/exchange.js';
import { createExplainer } from './domain/explain.js';
import type { IssuerPolicy, M2mConfigType } from './domain/m2m-config.js';
import { createM2mConfigService, type ConfigStore, type DiscoverIssuer } from './domain/m2m-config-service.js';
import { createRoleService, type RoleStore } from './domain/role-service.js';
import { failedPrecondition, messageOf } from './errors.js';
import { ADMIN_FAILURES_PER_MINUTE, createAuthenticator } from './http/auth.js';
import { createRateLimiter, createWindowLimiter } from './http/rate-limit.js';
import { createAccessTokenVerifier } from './keys/access-token-verifier.js';
import {
  adminCredentialFingerprint,
  bootstrapAdminPassword,
  createAdminPasswordVerifier,
} from './keys/admin-password.js';
import { buildConsoleSessionClaims } from './domain/access-token.js';
import { consoleDirectory } from './http/console-routes.js';
import { createSessionCookies } from './http/session-cookie.js';
import type { Exchange } from './http/token-routes.js';
import { createConsoleSso } from './oidc/console-sso.js';
import { createIssuerHealth } from './oidc/issuer-health.js';
import { createPasswordHasher } from './keys/password-hasher.js';
import { createKeyRotation } from './keys/key-rotation.js';
import { createKeyRing, newJti, type KeyRing } from './keys/signing-keys.js';
import { discoverIssuer } from './oidc/discovery.js';
import { DEFAULT_OUTBOUND_LIMITS, createHttpsJsonClient, type HttpsJsonClient } from './oidc/https-client.js';
import { createIdTokenVerifier } from './oidc/id-token-verifier.js';
import {
  createKubeIssuerClient,
  createTokenReviewer,
  isClusterHostname,
  readOwnServiceAccountIssuer,
  withTokenReview,
} from './oidc/kube.js';
import { createNetworkPolicy } from './oidc/network-policy.js';
import { createNoProxy } from './oidc/proxy.js';
import { createMetrics, type Metrics } from './metrics.js';

export interface Gateway {
  readonly app: Express;
  /** Set only on the very first start without ADMIN_PASSWORD; print it once. */
  readonly generatedAdminPassword: string | undefined;
  readonly keyRing: KeyRing;
  /** Reloads configs, roles and keys from the database now (replicas do it on every change). */
  refresh(): Promise<void>;
  /** Closes the change feed and the database pool, and stops an embedded database. */
  close(): Promise<void>;
}

/** How long a console session signed in with the password lasts (docs/reference.md §6.6). */
const CONSOLE_SESSION_SECONDS = 3600;
/** Single sign-on attempts per client address and minute: each costs calls to the identity provider. */
const SSO_ATTEMPTS_PER_MINUTE = 30;

/** The per-issuer exchange budget, as a multiple of the per-address one. */
const ISSUER_LIMIT_FACTOR = 20;

/** Knobs for tests and benchmarks; production uses the defaults. */
export interface GatewayOptions {
  readonly now?: () => Date;
  /** How soon an unknown kid may make an issuer's JWKS be fetched again. */
  readonly jwksRefetchCooldownMs?: number;
  /** The bound on each outbound call (docs/reference.md §3.2: 5 s). */
  readonly outboundTimeoutMs?: number;
  /** The bound on waiting for an issuer's keys in all (10 s). */
  readonly keyFetchDeadlineMs?: number;
  /** How often configs, roles and keys are re-read whatever the change feed says (30 s). */
  readonly fullReloadIntervalMs?: number;
  /** How often the change feed's connection must prove it is alive (10 s). */
  readonly feedHealthIntervalMs?: number;
  /** How long without a successful reload before the replica reports not ready (60 s). */
  readonly maxReloadAgeMs?: number;
  /** How often DECLARATIVE_CONFIG_DIR is read for changes (2 s; docs/reference.md §6.5 allows 5 s). */
  readonly declarativePollIntervalMs?: number;
  /** How often the declarative files are applied again although they did not change (60 s). */
  readonly declarativeResyncIntervalMs?: number;
  /** How often each replica checks whether its signing key is SIGNING_KEY_ROTATION old (1 min). */
  readonly keyRotationCheckIntervalMs?: number;
  /** How soon a token with an unknown kid may make the keys be read again (1 s). */
  readonly keyReloadCooldownMs?: number;
  /** How often each replica deletes audit events older than AUDIT_RETENTION (10 min). */
  readonly auditRetentionIntervalMs?: number;
}

/** Add/Update run discovery first; a failure stores nothing (docs/reference.md §1, Δ: Central answers 500). */
function discoverBeforeWrite(clientFor: (type: M2mConfigType) => HttpsJsonClient): DiscoverIssuer {
  return async (config) => {
    try {
      await discoverIssuer(clientFor(config.type), config.issuer);
    } catch (error) {
      throw failedPrecondition(
        `discovery of issuer ${JSON.stringify(config.issuer)} failed: ${messageOf(error)}`,
        error,
      );
    }
  };
}

/** A store whose writes are followed by a reload, so this replica sees its own writes at once. */
function reloadingAfterWrites<T extends ConfigStore | RoleStore>(
  store: T,
  reload: () => Promise<void>,
  writes: (keyof T)[],
): T {
  const wrapped = { ...store };
  for (const name of writes) {
    const write = store[name] as (...args: unknown[]) => Promise<void>;
    (wrapped as Record<keyof T, unknown>)[name] = async (...args: unknown[]) => {
      await write(...args);
      await reload();
    };
  }
  return wrapped;
}

const text = (value: unknown) => (typeof value === 'string' ? value.slice(0, 2048) : undefined);
/** One-shot, on every exchange: no Hash object to build (Node ≥ 20.12). */
const sha256 = (idToken: string) => hash('sha256', idToken, 'hex');

/** Flattened claims kept with a refused exchange, so that it can be explained later; larger sets are left out. */
const MAX_AUDITED_CLAIMS_BYTES = 8 * 1024;

function auditedClaims(decision: Decision): { claims?: Record<string, readonly string[]>; claimsOmitted?: string } {
  if (!decision.claims) return {};
  const claims = Object.fromEntries(decision.claims);
  return Buffer.byteLength(JSON.stringify(claims)) <= MAX_AUDITED_CLAIMS_BYTES
    ? { claims }
    : { claimsOmitted: `larger than ${MAX_AUDITED_CLAIMS_BYTES} bytes` };
}

/**
 * Every exchange leaves an audit record and a metric: config, subject and
 * roles, or the refusal with the step that refused it and why (more than the
 * caller is told), the verified claims of a refused token, and the token only
 * as its SHA-256. They observe the decision the exchange recorded: the same
 * bytes that were judged.
 */
function observeExchanges(audit: AuditLog, metrics: Metrics): NonNullable<ExchangeDeps['observe']> {
  return (decision, idToken, { requestId, startedAt }) => {
    const config = decision.active?.config;
    const outcome = decision.refusal ? 'refused' : 'minted';
    metrics.exchangeFinished(outcome, config?.type ?? 'none', (performance.now() - startedAt) / 1000);
    // Object.assign, not a spread followed by more members: V8 builds that literal slowly (~1.8 µs against 0.1 µs).
    const token = {
      tokenSha256: sha256(idToken),
      issuer: text(decision.issuer),
      subject: text(decision.payload?.sub),
      kid: text(decision.header?.kid),
      alg: text(decision.header?.alg),
    };
    if (decision.refusal) {
      const failed = decision.steps.at(-1);
      audit.enqueue({
        action: 'exchange',
        outcome,
        requestId,
        configId: config?.id,
        reason: decision.reason,
        details: Object.assign(
          token,
          {
            // Whether the issuer signed what `subject` says: a refused stranger's token may say anything.
            verified: decision.steps.some((step) => step.name === 'signature' && step.ok),
            code: decision.refusal.code,
            step: failed?.name ?? '',
          },
          auditedClaims(decision),
        ),
      });
      return;
    }
    const { roles, jti, exp, sub } = decision.accessClaims!;
    audit.enqueue({
      action: 'exchange',
      outcome,
      requestId,
      configId: config?.id,
      details: Object.assign(token, {
        roles,
        jti,
        exp,
        accessTokenSubject: sub,
        accessTokenKid: decision.accessTokenKid,
      }),
    });
  };
}

/**
 * ISSUER_CA_FILE, plus the CAs mounted beside the service-account token when
 * the gateway runs in a pod: the cluster's `ca.crt` and OpenShift's service CA.
 */
function trustedCas(config: AppConfig): string[] {
  const mounted = ['ca.crt', 'service-ca.crt'].map((name) => path.join(path.dirname(config.kubeSaTokenFile), name));
  return [
    ...(config.issuerCaPem === undefined ? [] : [config.issuerCaPem]),
    ...mounted.filter((file) => existsSync(file)).map((file) => readFileSync(file, 'utf8')),
  ];
}

async function openDatabase(config: AppConfig, logger: Logger) {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, keyEncryptionKey: config.keyEncryptionKey!, embedded: undefined };
  }
  const embedded: EmbeddedDatabase = await startEmbeddedPostgres(config.dataDir, logger);
  // docs/reference.md §4: with the embedded database the key encryption key is generated once into DATA_DIR.
  const keyEncryptionKey =
    config.keyEncryptionKey ??
    Buffer.from(await readOrCreateSecret(keyEncryptionKeyFile(config.dataDir), 32), 'base64url');
  return { url: embedded.url, keyEncryptionKey, embedded };
}

/**
 * The composition root's body: database, migrations, stores, caches, keys and
 * services, wired into the HTTP app. main.ts adds the listener and the signals.
 */
export async function startGateway(config: AppConfig, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const { url, keyEncryptionKey, embedded } = await openDatabase(config, logger);
  const closers: (() => Promise<void>)[] = [async () => embedded?.stop()];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer();
  };
  try {
    const migrations = await readMigrations(defaultMigrationsDir());
    await applyMigrations(url, migrations, logger);
    const { db, pool } = createDatabase(url);
    closers.push(() => db.$disconnect());
    const now = options.now ?? (() => new Date());
    const configRepository = createConfigRepository(db);
    const roleRepository = createRoleRepository(db);
    const configCache = createConfigCache();
    const roleCache = createRoleCache();
    const signingKeys = createSigningKeyRepository(db);
    const keyRing = createKeyRing({
      store: signingKeys,
      keyEncryptionKey,
      alg: config.tokenSigningAlg,
      now,
      clockSkewSeconds: config.clockSkewSeconds,
      reloadCooldownMs: options.keyReloadCooldownMs,
    });
    const metrics = createMetrics({
      configCount: () => configCache.size,
      publishedKeyCount: () => keyRing.jwks().keys.length,
    });
    const audit = createAuditLog(db, pool, logger, metrics.auditBatchWritten);
    closers.push(() => audit.close());
    const issuerPolicy: IssuerPolicy = {
      githubActionsIssuers: config.githubActionsIssuers,
      kubeServiceAccountIssuer: () => readOwnServiceAccountIssuer(config.kubeSaTokenFile),
    };
    const cas = trustedCas(config);
    const network = createNetworkPolicy(config.issuerAllowPrivateNetworks);
    const kube = { tokenFile: config.kubeSaTokenFile, apiUrl: config.kubeApiUrl };
    const limits = {
      ...DEFAULT_OUTBOUND_LIMITS,
      timeoutMs: options.outboundTimeoutMs ?? DEFAULT_OUTBOUND_LIMITS.timeoutMs,
    };
    const proxy = config.httpsProxy && { server: config.httpsProxy, bypasses: createNoProxy(config.noProxy) };
    const http = createHttpsJsonClient(cas, { limits, allowAddress: network.allows, proxy });
    const clusterHttp = createHttpsJsonClient(cas, {
      limits,
      proxy,
      allowAddress: (hostname, address) => network.allows(hostname, address) || isClusterHostname(hostname, kube),
    });
    const kubeHttp = createKubeIssuerClient(clusterHttp, kube);
    closers.push(async () => [http, clusterHttp].forEach((client) => client.close()));
    const clientFor = (type: M2mConfigType) => (type === 'KUBE_SERVICE_ACCOUNT' ? kubeHttp : http);
    // One config's clients may use many addresses; their sum is bounded too (docs/security.md).
    const issuerLimiter = createRateLimiter(config.exchangeRateLimit * ISSUER_LIMIT_FACTOR);
    const issuerHealth = createIssuerHealth(now);
    const verifier = createIdTokenVerifier({
      clientFor,
      onFetch: (issuer, document, ok, detail) => {
        metrics.issuerFetched(issuer, document, ok);
        issuerHealth.record(issuer, document, ok, detail);
      },
      clockSkewSeconds: config.clockSkewSeconds,
      now,
      refetchCooldownMs: options.jwksRefetchCooldownMs,
      keyFetchDeadlineMs: options.keyFetchDeadlineMs,
    });
    // Each part reloads on its own: a key problem never holds up config changes, nor one config the others.
    const reloads = createReloadHealth(performance.now.bind(performance));
    const refresh = coalesce(async () => {
      const [configsRead, rolesRead, keysRead] = await Promise.allSettled([
        configRepository.list(),
        roleRepository.list(),
        keyRing.reload(),
      ]);
      if (configsRead.status === 'fulfilled') {
        for (const { config: unusable, reason } of configCache.replace(configsRead.value)) {
          logger.error(
            { configId: unusable.id, issuer: unusable.issuer, reason },
            'config cannot be used; its exchanges are refused',
          );
        }
        verifier.retainOnly(configCache.issuers());
      }
      if (rolesRead.status === 'fulfilled') roleCache.replace(rolesRead.value);
      const failed = [configsRead, rolesRead, keysRead].find((read) => read.status === 'rejected');
      if (failed) throw failed.reason;
      reloads.succeeded();
    });
    const reloadInBackground = () =>
      void refresh().catch((error: unknown) => logger.error({ err: error }, 'reload failed'));

    const roles = createRoleService(
      reloadingAfterWrites(roleRepository, refresh, ['create', 'upsert', 'remove']),
      audit,
    );
    await roles.ensureBuiltIns();
    const credentials = createAdminCredentialRepository(db);
    const passwords = createPasswordHasher();
    closers.push(() => passwords.close());
    const generatedAdminPassword = await bootstrapAdminPassword(credentials, passwords, config.adminPassword);
    await keyRing.ensureActiveKey();
    await refresh();
    const feed = await listenForChanges(url, reloadInBackground, logger, options.feedHealthIntervalMs);
    closers.push(() => feed.close());
    // Whatever happens to the feed, every replica re-reads everything this often (a revoked token cannot outlive it).
    const periodicReload = setInterval(reloadInBackground, options.fullReloadIntervalMs ?? 30_000);
    periodicReload.unref();
    closers.push(async () => clearInterval(periodicReload));

    const configs = createM2mConfigService({
      store: reloadingAfterWrites(configRepository, refresh, ['save', 'remove']),
      audit,
      roles: roleRepository,
      discoverIssuer: discoverBeforeWrite(clientFor),
      issuerPolicy,
      newId: randomUUID,
    });

    // docs/reference.md §6.5: configs and roles from files, at start and on every change; the writes are made under a database
    // lock, through services over the plain stores (one reload after an apply, not one per write).
    const declarative =
      config.declarativeConfigDir === undefined
        ? undefined
        : await startDeclarativeConfigs({
            directory: config.declarativeConfigDir,
            logger,
            issuerPolicy,
            readStored: async () => ({ configs: await configRepository.list(), roles: await roleRepository.list() }),
            configs: createM2mConfigService({
              store: configRepository,
              audit,
              roles: roleRepository,
              discoverIssuer: discoverBeforeWrite(clientFor),
              issuerPolicy,
              newId: randomUUID,
            }),
            roles: createRoleService(roleRepository, audit),
            exclusively: (run) => withAdvisoryLock(pool, DECLARATIVE_APPLY_LOCK, 10_000, run),
            afterWrites: refresh,
            onErrors: metrics.declarativeErrors,
            now,
            pollIntervalMs: options.declarativePollIntervalMs ?? 2000,
            resyncIntervalMs: options.declarativeResyncIntervalMs ?? 60_000,
          });
    if (declarative) closers.push(() => declarative.close());

    const usedTokens = createUsedTokenRepository(db);
    const exchangeDeps: ExchangeDeps = {
      configs: configCache,
      verifier: config.kubeTokenReview ? withTokenReview(verifier, createTokenReviewer(clusterHttp, kube)) : verifier,
      signer: keyRing.signer,
      replays: usedTokens,
      gatewayIssuer: config.gatewayIssuer,
      clockSkewSeconds: config.clockSkewSeconds,
      now,
      newJti,
      admitConfig: (configId) => issuerLimiter.take(configId),
      observe: observeExchanges(audit, metrics),
    };
    // Single-use ids are kept only while their token could still be accepted somewhere.
    const forgetUsedTokens = setInterval(
      () =>
        void usedTokens
          .forgetExpired(now())
          .catch((error: unknown) => logger.warn({ err: error }, 'could not forget expired single-use ids')),
      60_000,
    );
    forgetUsedTokens.unref();
    closers.push(async () => clearInterval(forgetUsedTokens));

    // SIGNING_KEY_ROTATION and AUDIT_RETENTION: every replica checks, at start and then regularly; the database lets one act.
    const keyRotation = createKeyRotation({
      keyRing,
      audit,
      maxKeyAgeMs: config.signingKeyRotationMs,
      storedKeys: () => signingKeys.list(),
    });
    if (config.signingKeyRotationMs > 0) {
      const rotation = startBackgroundJob(
        () => keyRotation.rotateIfDue(),
        options.keyRotationCheckIntervalMs ?? 60_000,
        (error) => logger.error({ err: error }, 'automatic signing key rotation failed; will retry'),
      );
      closers.push(() => rotation.stop());
    }
    if (config.auditRetentionMs > 0) {
      const retention = startBackgroundJob(
        async (signal) => {
          const before = new Date(now().getTime() - config.auditRetentionMs);
          const deleted = await deleteAuditEventsBefore(pool, before, { signal });
          if (deleted > 0) logger.info({ deleted, before }, 'deleted audit events older than AUDIT_RETENTION');
        },
        options.auditRetentionIntervalMs ?? 600_000,
        (error) => logger.warn({ err: error }, 'could not delete old audit events; will retry'),
      );
      closers.push(() => retention.stop());
    }

    const migrationNames = migrations.map((m) => m.name);
    const checkReadiness = async () => {
      const [row] = await db.$queryRaw<[{ applied: bigint }]>`
        SELECT count(*) AS applied FROM "_prisma_migrations"
        WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL AND migration_name = ANY(${migrationNames})`;
      if (Number(row?.applied) !== migrationNames.length) throw new Error('migrations are not applied');
      if (!keyRing.hasActiveKey) throw new Error('no signing key is loaded');
      reloads.assertRecent(options.maxReloadAgeMs ?? 60_000);
    };

    const adminCredential = () => adminCredentialFingerprint(credentials);
    const authenticate = createAuthenticator(
      createAdminPasswordVerifier(credentials, passwords),
      createAccessTokenVerifier({
        keyRing,
        issuer: config.gatewayIssuer,
        configs: configCache,
        roles: roleCache,
        now,
        adminCredential,
      }),
      createWindowLimiter(ADMIN_FAILURES_PER_MINUTE),
    );
    const sessionCookies = createSessionCookies(config.gatewayIssuer);
    if (sessionCookies.secure && config.gatewayIssuer.startsWith('http:')) {
      logger.warn(
        { issuer: config.gatewayIssuer },
        'GATEWAY_ISSUER is plain http on a host other than localhost: browsers keep the console session cookie ' +
          'only over https, so serve the gateway behind TLS at the GATEWAY_ISSUER address',
      );
    }
    const exchange: Exchange = (idToken, req) =>
      exchangeToken(exchangeDeps, idToken, { requestId: String(req.id), startedAt: performance.now() });
    const app = createApp({
      logger,
      configs,
      roles,
      authenticate,
      checkReadiness,
      trustProxy: config.trustProxy,
      exchangeRateLimit: config.exchangeRateLimit,
      exchange,
      explain: createExplainer({
        exchange: exchangeDeps,
        configs: configCache,
        validate: (input) => configs.validate(input),
        audit,
      }),
      audit,
      declarativeStatus: declarative?.status,
      keys: keyRotation,
      translateError: translateDatabaseError,
      metrics,
      openApi: parseYaml(readFileSync(path.join(packageRoot(), 'docs', 'openapi.yaml'), 'utf8')),
      publication: {
        issuer: config.gatewayIssuer,
        signingAlgs: () => keyRing.publishedAlgs,
        jwks: () => keyRing.jwks(),
      },
      issuerHealth: () =>
        issuerHealth.report(
          [...configCache.issuers()].flatMap((issuer) =>
            configCache.configsOf(issuer).map(({ config: { id } }) => ({ id, issuer })),
          ),
        ),
      console: {
        directory: consoleDirectory(packageRoot()),
        cookies: sessionCookies,
        authenticate,
        mintAdminSession: async () => {
          const credential = await adminCredential();
          if (credential === undefined) throw new Error('the admin has no password');
          const claims = buildConsoleSessionClaims({
            issuer: config.gatewayIssuer,
            credential,
            lifetimeSeconds: CONSOLE_SESSION_SECONDS,
            jti: newJti(),
            now: now(),
          });
          return { token: (await keyRing.signer.sign(claims)).token, expiresAt: new Date(claims.exp * 1000) };
        },
        exchange,
        sso:
          config.consoleSso &&
          createConsoleSso(config.consoleSso, `${config.gatewayIssuer.replace(/\/$/, '')}/ui/sso/callback`, http.fetch),
        ssoAttempts: createWindowLimiter(SSO_ATTEMPTS_PER_MINUTE),
      },
    });
    return { app, generatedAdminPassword, keyRing, refresh, close };
  } catch (error) {
    await close();
    throw error;
  }
}
