import pg from 'pg';
import type { Logger } from 'pino';

export const CHANGES_CHANNEL = 'm2m_gateway_changes';
const RECONNECT_DELAY_MS = 1000;

/**
 * Runs `task` when asked, never twice at once: a request that arrives while
 * it runs makes it run once more afterwards, so the last change is never missed.
 */
export function coalesce(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = task().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void run().catch(() => undefined);
      }
    });
    return running;
  };
  return run;
}

/**
 * Calls `onChange` for every change another replica (or this one) commits to
 * configs, mappings, roles or keys (the triggers of the second migration), and
 * after every reconnect, since changes may have been missed meanwhile.
 */
export async function listenForChanges(databaseUrl: string, onChange: () => void, logger: Logger) {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: databaseUrl, keepAlive: true });
    next.on('notification', () => onChange());
    next.on('error', (error) => {
      logger.warn({ err: error }, 'change feed lost its connection');
      void next.end().catch(() => undefined);
      if (client === next) schedule();
    });
    await next.connect();
    await next.query(`LISTEN ${CHANGES_CHANNEL}`);
    client = next;
  };

  const schedule = () => {
    client = undefined;
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect()
        .then(() => onChange())
        .catch(() => schedule());
    }, RECONNECT_DELAY_MS);
    retry.unref();
  };

  await connect();
  return {
    async close(): Promise<void> {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
