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

/** pg keeps its socket private; a connection that answers nothing can only be let go by destroying it. */
function abandon(client: pg.Client): void {
  void client.end().catch(() => undefined);
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/**
 * Calls `onChange` for every change another replica (or this one) commits to
 * configs, mappings, roles or keys (the triggers of the second migration), and
 * after every reconnect, since changes may have been missed meanwhile.
 *
 * A NAT or load balancer may forget an idle connection without closing it, so
 * that notifications silently stop. Every `healthIntervalMs` the connection
 * must answer a query within that time; one that does not is let go and
 * replaced. (The caller's periodic full reload covers the time in between.)
 */
export async function listenForChanges(
  databaseUrl: string,
  onChange: () => void,
  logger: Logger,
  healthIntervalMs = 10_000,
) {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: databaseUrl, keepAlive: true });
    next.on('notification', () => onChange());
    next.on('error', (error) => {
      logger.warn({ err: error }, 'change feed lost its connection');
      abandon(next);
      if (client === next) schedule();
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (error) {
      abandon(next);
      throw error;
    }
    client = next;
  };

  const schedule = () => {
    client = undefined;
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect()
        .then(() => onChange())
        .catch((error: unknown) => {
          logger.warn({ err: error }, 'change feed could not listen again; retrying');
          schedule();
        });
    }, RECONNECT_DELAY_MS);
    retry.unref();
  };

  const probe = async () => {
    const listening = client;
    if (!listening) return;
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${healthIntervalMs} ms`)), healthIntervalMs);
    });
    try {
      await Promise.race([listening.query('SELECT 1'), silent]);
    } catch (error) {
      if (client !== listening || closed) return;
      logger.warn({ err: error }, 'change feed stopped answering; listening again on a new connection');
      abandon(listening);
      schedule();
    } finally {
      clearTimeout(timer);
    }
  };
  const health = setInterval(() => void probe(), healthIntervalMs);
  health.unref();

  await connect();
  return {
    async close(): Promise<void> {
      closed = true;
      clearInterval(health);
      clearTimeout(retry);
      if (client) abandon(client);
    },
  };
}

/**
 * When the replica last reloaded everything: one that could not for too long
 * may be holding revoked configs, and says so on /readyz.
 */
export function createReloadHealth(monotonicMs: () => number) {
  let lastSuccess = monotonicMs();
  return {
    succeeded(): void {
      lastSuccess = monotonicMs();
    },
    /** @throws Error when the last successful reload is older than `maxAgeMs` */
    assertRecent(maxAgeMs: number): void {
      const age = monotonicMs() - lastSuccess;
      if (age > maxAgeMs) throw new Error(`configs were last reloaded ${Math.round(age / 1000)} s ago`);
    },
  };
}
