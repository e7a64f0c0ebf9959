/**
 * Backup and restore of the embedded database in DATA_DIR (the `backup` and
 * `restore` commands). A backup is taken from the running gateway's
 * PostgreSQL when there is one, else from a PostgreSQL started for it.
 *
 * The key encryption key never goes into the backup: the signing keys in it
 * are encrypted with that key, so the two together are everything. When the
 * key is DATA_DIR/key-encryption-key, it is copied beside the backup as
 * FILE.key-encryption-key (mode 0600) unless `withoutKey`; with
 * KEY_ENCRYPTION_KEY it stays where the operator keeps it. The backup records
 * the key's SHA-256, and a restore goes ahead only with that key
 * (KEY_ENCRYPTION_KEY, DATA_DIR/key-encryption-key or FILE.key-encryption-key,
 * which it then installs into DATA_DIR).
 */
import { existsSync } from 'node:fs';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { decryptPrivateKey } from '../keys/key-encryption.js';
import {
  isEmptyDatabase,
  keyFingerprint,
  readBackupHeader,
  recreateDatabase,
  restoreBackup,
  writeBackup,
  type BackupSummary,
} from './backup.js';
import {
  clusterDir,
  findRunningEmbeddedPostgres,
  keyEncryptionKeyFile,
  startEmbeddedPostgres,
} from './embedded-postgres.js';
import { defaultMigrationsDir, readMigrations } from './migrate.js';

/** A refusal the operator can act on (exit code 2), as opposed to a failure. */
export class BackupRefused extends Error {
  override readonly name = 'BackupRefused';
}

/** Where the backup command puts the key encryption key of FILE. */
export const keyFileBeside = (file: string) => `${file}.key-encryption-key`;

interface Options {
  readonly dataDir: string;
  /** KEY_ENCRYPTION_KEY, when set: it wins over DATA_DIR/key-encryption-key, as in the gateway. */
  readonly keyEncryptionKey: Buffer | undefined;
  readonly logger: Logger;
}

const decodeKey = (text: string) => Buffer.from(text.trim(), 'base64url');
const readText = async (file: string) => (existsSync(file) ? await readFile(file, 'utf8') : undefined);

async function writeSecret(file: string, text: string): Promise<void> {
  const partial = `${file}.partial`;
  await writeFile(partial, text, { mode: 0o600 });
  await chmod(partial, 0o600);
  await rename(partial, file);
}

/** Refuses a key that does not decrypt the signing keys, so a backup never records the wrong one. */
async function proveKey(url: string, key: Buffer | undefined): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const table = await client.query(`SELECT to_regclass('public.signing_keys') AS found`);
    if (!table.rows[0].found) return;
    const { rows } = await client.query<{ kid: string; encrypted_private_key: string }>(
      'SELECT kid, encrypted_private_key FROM signing_keys ORDER BY created_at DESC LIMIT 1',
    );
    const [row] = rows;
    if (!row) return;
    if (!key) {
      throw new BackupRefused(
        'the database has signing keys but no key encryption key is here: set KEY_ENCRYPTION_KEY as the gateway has it',
      );
    }
    try {
      decryptPrivateKey(key, row.kid, row.encrypted_private_key);
    } catch {
      throw new BackupRefused(
        'the key encryption key here does not decrypt the signing keys: run the backup with the KEY_ENCRYPTION_KEY the gateway uses',
      );
    }
  } finally {
    await client.end();
  }
}

export interface BackupReport {
  readonly summary: BackupSummary;
  /** Whether the gateway's PostgreSQL was running, or one was started for the backup. */
  readonly server: 'running' | 'started';
  readonly address: { host: string; port: number };
  /** Where the key encryption key was written, if it was. */
  readonly keyFile: string | undefined;
  readonly keySource: 'KEY_ENCRYPTION_KEY' | 'DATA_DIR' | 'none';
}

/** Writes a consistent backup of the embedded database in `dataDir` to `file`. */
export async function backupEmbeddedDatabase(
  file: string,
  { dataDir, keyEncryptionKey, logger, withoutKey = false }: Options & { withoutKey?: boolean },
): Promise<BackupReport> {
  if (!existsSync(path.join(clusterDir(dataDir), 'PG_VERSION'))) {
    throw new BackupRefused(`there is no embedded database in ${dataDir} (DATA_DIR)`);
  }
  const dataDirKeyText = await readText(keyEncryptionKeyFile(dataDir));
  const key = keyEncryptionKey ?? (dataDirKeyText === undefined ? undefined : decodeKey(dataDirKeyText));
  const running = await findRunningEmbeddedPostgres(dataDir);
  const started = running ? undefined : await startEmbeddedPostgres(dataDir, logger);
  const { url, port } = (running ?? started)!;
  try {
    await proveKey(url, key);
    const summary = await writeBackup(url, file, { keyEncryptionKey: key });
    let keyFile: string | undefined;
    if (!keyEncryptionKey && dataDirKeyText !== undefined && !withoutKey) {
      keyFile = keyFileBeside(file);
      await writeSecret(keyFile, dataDirKeyText);
    }
    return {
      summary,
      server: running ? 'running' : 'started',
      address: { host: '127.0.0.1', port },
      keyFile,
      keySource: keyEncryptionKey ? 'KEY_ENCRYPTION_KEY' : key ? 'DATA_DIR' : 'none',
    };
  } finally {
    await started?.stop();
  }
}

export interface RestoreReport {
  readonly summary: BackupSummary;
  /** The database held data that the restore replaced (`force`). */
  readonly replaced: boolean;
  /** The key file installed into DATA_DIR, if one was. */
  readonly keyInstalled: string | undefined;
}

/** Which key the restore needs, and whether it must be installed into DATA_DIR. */
async function keyForRestore(
  file: string,
  wanted: string | undefined,
  { dataDir, keyEncryptionKey }: Options,
  force: boolean,
): Promise<string | undefined> {
  if (wanted === undefined) return undefined;
  if (keyEncryptionKey) {
    if (keyFingerprint(keyEncryptionKey) === wanted) return undefined;
    throw new BackupRefused("KEY_ENCRYPTION_KEY is not the key the backup's signing keys are encrypted with");
  }
  const present = await readText(keyEncryptionKeyFile(dataDir));
  if (present !== undefined && keyFingerprint(decodeKey(present)) === wanted) return undefined;
  const beside = await readText(keyFileBeside(file));
  if (beside === undefined || keyFingerprint(decodeKey(beside)) !== wanted) {
    throw new BackupRefused(
      "the backup's signing keys are encrypted with a key that is not here: put it in " +
        `${keyFileBeside(file)} (where the backup command writes it) or set KEY_ENCRYPTION_KEY`,
    );
  }
  if (present !== undefined && !force) {
    throw new BackupRefused(
      `${keyEncryptionKeyFile(dataDir)} is another key than the backup's; --force replaces it with ${keyFileBeside(file)}`,
    );
  }
  return beside;
}

/**
 * Restores `file` into the embedded database in `dataDir` (initialised if
 * need be). Refuses while that database is running, and refuses to replace
 * data unless `force`.
 */
export async function restoreEmbeddedDatabase(
  file: string,
  options: Options & { force?: boolean },
): Promise<RestoreReport> {
  const { dataDir, logger, force = false } = options;
  if (!existsSync(file)) throw new BackupRefused(`${file} does not exist`);
  const header = await readBackupHeader(file).catch((error: unknown) => {
    throw new BackupRefused(error instanceof Error ? error.message : String(error));
  });
  const running = await findRunningEmbeddedPostgres(dataDir);
  if (running) {
    throw new BackupRefused(
      `the embedded database in ${dataDir} is running (PostgreSQL pid ${running.pid}): stop the gateway first`,
    );
  }
  const keyToInstall = await keyForRestore(file, header.keyEncryptionKeySha256, options, force);
  const migrations = await readMigrations(defaultMigrationsDir());
  const database = await startEmbeddedPostgres(dataDir, logger);
  try {
    const replaced = !(await isEmptyDatabase(database.url));
    if (replaced) {
      if (!force) {
        throw new BackupRefused(
          `the embedded database in ${dataDir} is not empty; --force replaces everything in it with the backup`,
        );
      }
      await recreateDatabase(database.url);
    }
    const summary = await restoreBackup(database.url, file, migrations, logger);
    let keyInstalled: string | undefined;
    if (keyToInstall !== undefined) {
      keyInstalled = keyEncryptionKeyFile(dataDir);
      await writeSecret(keyInstalled, keyToInstall);
    }
    return { summary, replaced, keyInstalled };
  } finally {
    await database.stop();
  }
}
