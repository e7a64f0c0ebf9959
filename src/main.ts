import type { Server } from 'node:http';
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { startGateway } from './gateway.js';

/** How long in-flight requests may take to finish after SIGTERM. */
const DRAIN_TIMEOUT_MS = 10_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = pino({ level: config.logLevel, base: { service: 'm2m-gateway' } });
  const gateway = await startGateway(config, logger);
  if (gateway.generatedAdminPassword) {
    // The only time the gateway prints a secret (docs/reference.md §2): only its hash is stored.
    process.stderr.write(
      `\nGenerated admin password (shown once, only its hash is stored):\n\n    ${gateway.generatedAdminPassword}\n\n` +
        'Use it as HTTP Basic credentials for user "admin", or set ADMIN_PASSWORD.\n\n',
    );
  }

  const server: Server = gateway.app.listen(config.port);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ url: `http://localhost:${port}`, issuer: config.gatewayIssuer }, 'm2m-gateway is listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = setTimeout(() => server.closeAllConnections(), DRAIN_TIMEOUT_MS).unref();
    await drained;
    clearTimeout(deadline);
    await gateway.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}

main().catch((error: unknown) => {
  // A wrong setting is the operator's to fix: every problem, one line each, no stack trace, exit 2.
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `m2m-gateway failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
