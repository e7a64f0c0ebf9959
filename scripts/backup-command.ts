/** What the backup and restore commands share: their command line and their exits. */
import { ConfigError } from '../src/config.js';
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
