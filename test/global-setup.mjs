import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { tsImport } from 'tsx/esm/api';
import { buildConsole } from '../scripts/build-console.mjs';

/**
 * The console built from its sources, and one PostgreSQL for the run: DATABASE_URL when set, else an embedded one in
 * a fresh temporary folder, started by the gateway's own code. Each test file
 * makes its own database in it (test/fixtures/test-database.ts).
 *
 * Plain ESM, because jest loads global setup outside its module system.
 */
export default async function globalSetup() {
  // The gateway serves dist/console; the tests drive the console as the sources stand now.
  await buildConsole();
  if (process.env.DATABASE_URL) {
    process.env.TEST_DATABASE_URL = process.env.DATABASE_URL;
    return;
  }
  const { startEmbeddedPostgres } = await tsImport('../src/db/embedded-postgres.ts', import.meta.url);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-test-'));
  globalThis.testDatabase = await startEmbeddedPostgres(dataDir, pino({ level: 'silent' }));
  process.env.TEST_DATABASE_URL = globalThis.testDatabase.url;
  process.env.TEST_DATA_DIR = dataDir;
}
