/**
 * `npm run backup -- FILE [--without-key]`: a consistent backup of the
 * embedded database in DATA_DIR, taken from the running gateway's PostgreSQL
 * or from one started for it. The key encryption key is written beside it as
 * FILE.key-encryption-key unless --without-key (or KEY_ENCRYPTION_KEY is set).
 * See docs/operator-guide.md, "Backups".
 */
import { backupEmbeddedDatabase } from '../src/db/embedded-backup.js';
import { runEmbeddedCommand } from './backup-command.js';

await runEmbeddedCommand(
  'backup',
  ['--without-key'],
  'DATABASE_URL is set: this command backs up the embedded database; back up your PostgreSQL with its own tools',
  async ({ file, flags, settings, logger }) => {
    const report = await backupEmbeddedDatabase(file, {
      dataDir: settings.dataDir,
      keyEncryptionKey: settings.keyEncryptionKey,
      logger,
      withoutKey: flags.has('--without-key'),
    });
    const { header, tables } = report.summary;
    const rows = Object.values(tables).reduce((sum, count) => sum + count, 0);
    const from =
      report.server === 'running'
        ? `the running gateway's PostgreSQL ${header.server} (127.0.0.1:${report.address.port})`
        : `PostgreSQL ${header.server}, started for the backup and stopped again`;
    const lines = [
      `Backed up ${rows} rows in ${Object.keys(tables).length} tables from ${from}`,
      `  to ${file}`,
      `  at migration ${header.migrations.at(-1)?.name ?? '(none)'}`,
    ];
    if (report.keyFile) {
      lines.push(
        `The key encryption key is in ${report.keyFile}: a restore needs it. Keep it apart from the backup, as a secret.`,
      );
    } else if (report.keySource === 'KEY_ENCRYPTION_KEY') {
      lines.push('The signing keys are encrypted with KEY_ENCRYPTION_KEY: a restore needs it.');
    } else if (report.keySource === 'DATA_DIR') {
      lines.push(
        `The key encryption key was not written (--without-key): a restore needs ${settings.dataDir}/key-encryption-key.`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return undefined;
  },
);
