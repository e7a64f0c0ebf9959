import { messageOf } from '../errors.js';
import { runCli } from './main.js';

// The `m2m-gateway` command (package.json `bin`, through bin/m2m-gateway.mjs).

// A reader that stops early (`| head`) is not an error of ours.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});
try {
  process.exitCode = await runCli(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  });
} catch (error) {
  process.stderr.write(`m2m-gateway: ${messageOf(error)}\n`);
  process.exitCode = 1;
}
