import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { AppConfig } from './config.js';
import { createAdminCredentialRepository } from './db/admin-credential-repository.js';
import { createConfigRepository } from './db/config-repository.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { applyMigrations, defaultMigrationsDir, readMigrations } from './db/migrate.js';
import { createDatabase } from './db/prisma.js';
import { createRoleRepository } from './db/role-repository.js';
import type { IssuerPolicy } from './domain/m2m-config.js';
import { createM2mConfigService, type DiscoverIssuer } from './domain/m2m-config-service.js';
import { createRoleService } from './domain/role-service.js';
import { failedPrecondition, messageOf } from './errors.js';
import { createAuthenticator } from './http/auth.js';
import { bootstrapAdminPassword, createAdminPasswordVerifier } from './keys/admin-password.js';
import { discoverIssuer } from './oidc/discovery.js';
import { createHttpsJsonClient, type HttpsJsonClient } from './oidc/https-client.js';
import { readOwnServiceAccountIssuer } from './oidc/kube-service-account.js';

export interface Gateway {
  readonly app: Express;
  /** Set only on the very first start without ADMIN_PASSWORD; print it once. */
  readonly generatedAdminPassword: string | undefined;
  /** Closes the database pool and stops an embedded database. */
  close(): Promise<void>;
}

/** Add/Update run discovery first; a failure stores nothing (SPEC §1, Δ: Central answers 500). */
function discoverBeforeWrite(http: HttpsJsonClient): DiscoverIssuer {
  return async (config) => {
    try {
      await discoverIssuer(http, config.issuer);
    } catch (error) {
      throw failedPrecondition(
        `discovery of issuer ${JSON.stringify(config.issuer)} failed: ${messageOf(error)}`,
        error,
      );
    }
  };
}

function readCaBundle(file: string | undefined): string[] {
  return file === undefined ? [] : [readFileSync(file, 'utf8')];
}

/**
 * The composition root's body: database, migrations, stores and services,
 * wired into the HTTP app. main.ts adds the listener and the signals.
 */
export async function startGateway(config: AppConfig, logger: Logger): Promise<Gateway> {
  const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir, logger);
  const databaseUrl = config.databaseUrl ?? embedded!.url;
  try {
    const migrations = await readMigrations(defaultMigrationsDir());
    await applyMigrations(databaseUrl, migrations, logger);
    const db = createDatabase(databaseUrl);

    const roleRepository = createRoleRepository(db);
    const roles = createRoleService(roleRepository);
    await roles.ensureBuiltIns();
    const credentials = createAdminCredentialRepository(db);
    const generatedAdminPassword = await bootstrapAdminPassword(credentials, config.adminPassword);

    const issuerPolicy: IssuerPolicy = {
      githubActionsIssuers: config.githubActionsIssuers,
      kubeServiceAccountIssuer: () => readOwnServiceAccountIssuer(config.kubeSaTokenFile),
    };
    const http = createHttpsJsonClient(readCaBundle(config.issuerCaFile));
    const configs = createM2mConfigService({
      store: createConfigRepository(db),
      roles: roleRepository,
      discoverIssuer: discoverBeforeWrite(http),
      issuerPolicy,
      newId: randomUUID,
    });

    const migrationNames = migrations.map((m) => m.name);
    const checkReadiness = async () => {
      const [row] = await db.$queryRaw<[{ applied: bigint }]>`
        SELECT count(*) AS applied FROM "_prisma_migrations"
        WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL AND migration_name = ANY(${migrationNames})`;
      if (Number(row?.applied) !== migrationNames.length) throw new Error('migrations are not applied');
    };

    const authenticate = createAuthenticator(createAdminPasswordVerifier(credentials), async () => undefined);
    const app = createApp({ logger, configs, roles, authenticate, checkReadiness, trustProxy: config.trustProxy });
    return {
      app,
      generatedAdminPassword,
      async close() {
        await db.$disconnect();
        await embedded?.stop();
      },
    };
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}
