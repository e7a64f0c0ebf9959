// `prisma generate` needs no schema engine, but the CLI insists on finding one
// and would download it; any existing file satisfies the check offline.
import { spawnSync } from 'node:child_process';

const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1' };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;
const result = spawnSync('prisma', ['generate', '--schema', 'prisma/schema.prisma'], {
  env,
  stdio: 'inherit',
  shell: process.platform === 'win32',
});
process.exit(result.status ?? 1);
