/**
 * `npm run restore -- FILE [--force]`: restores a backup made by
 * `npm run backup` into the embedded database in DATA_DIR, with the gateway
 * stopped. Refuses to replace a database that holds data unless --force.
 * See docs/operator-guide.md, "Backups".
 */
import { restoreEmbeddedDatabase } from '../src/db/embedded-backup.js';
import { runEmbeddedCommand } from './backup-command.js';

await runEmbeddedCommand(
  'restore',
  ['--force'],
  'DATABASE_URL is set: this command restores the embedded database; unset DATABASE_URL to use DATA_DIR',
  async ({ file, flags, settings, logger }) => {
    const report = await restoreEmbeddedDatabase(file, {
      dataDir: settings.dataDir,
      keyEncryptionKey: settings.keyEncryptionKey,
      logger,
      force: flags.has('--force'),
    });
    const { header, tables } = report.summary;
    const rows = Object.values(tables).reduce((sum, count) => sum + count, 0);
    const lines = [
      `Restored ${rows} rows in ${Object.keys(tables).length} tables from ${file}`,
      `  (taken ${header.createdAt} from PostgreSQL ${header.server}, at migration ${header.migrations.at(-1)?.name ?? '(none)'})`,
      `  into ${settings.dataDir}${report.replaced ? ', replacing what was there' : ''}`,
    ];
    if (report.keyInstalled) lines.push(`The key encryption key was installed as ${report.keyInstalled}.`);
    lines.push('Start the gateway: it applies any newer migrations.');
    process.stdout.write(`${lines.join('\n')}\n`);
    return undefined;
  },
);
