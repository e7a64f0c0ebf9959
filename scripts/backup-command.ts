/** What the backup and restore commands share: their command line and their exits. */
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig, type AppConfig } from '../src/config.js';
import { BackupRefused } from '../src/db/embedded-backup.js';

export function parseCommandLine(args: readonly string[], command: string, known: readonly string[]) {
  const flags = new Set(args.filter((arg) => arg.startsWith('--')));
  const files = args.filter((arg) => !arg.startsWith('--'));
  const unknown = [...flags].filter((flag) => !known.includes(flag));
  if (files.length !== 1 || unknown.length > 0) {
    throw new UsageError(`usage: npm run ${command} -- FILE ${known.map((flag) => `[${flag}]`).join(' ')}`);
  }
  return { file: files[0]!, flags };
}

class UsageError extends Error {}

/**
 * Runs a command: a refusal (usage, settings, or something the operator must
 * change first) is one line and exit code 2; a failure, exit code 1.
 */
export async function runCommand(run: () => Promise<string | undefined>): Promise<void> {
  try {
    const refusal = await run();
    if (refusal === undefined) process.exit(0);
    process.stderr.write(`${refusal}\n`);
    process.exit(2);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError || error instanceof BackupRefused) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}${cause}\n`);
    process.exit(1);
  }
}

/** What a command on the embedded database works with. */
export interface EmbeddedCommand {
  readonly file: string;
  readonly flags: ReadonlySet<string>;
  readonly settings: AppConfig;
  readonly logger: Logger;
}

/**
 * Runs a command on the embedded database in DATA_DIR: its command line,
 * the settings, and a refusal (`withDatabaseUrl`) when DATABASE_URL names
 * another PostgreSQL, whose own tools are the ones to use.
 */
export function runEmbeddedCommand(
  command: string,
  known: readonly string[],
  withDatabaseUrl: string,
  run: (context: EmbeddedCommand) => Promise<string | undefined>,
): Promise<void> {
  return runCommand(async () => {
    const { file, flags } = parseCommandLine(process.argv.slice(2), command, known);
    const settings = loadConfig();
    if (settings.databaseUrl) return withDatabaseUrl;
    return run({ file: path.resolve(file), flags, settings, logger: pino({ level: 'warn' }, pino.destination(2)) });
  });
}
