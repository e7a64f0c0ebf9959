import type pg from 'pg';

/** The advisory lock held while declarative files are applied: one replica writes them at a time. */
export const DECLARATIVE_APPLY_LOCK = 0x6d326d64;

/**
 * Runs `run` while this session holds a transaction-level advisory lock on
 * `key`: other replicas wait (up to `timeoutMs`, then fail) until it ends. The
 * lock goes with the transaction, also when the connection breaks, so a
 * replica that dies never leaves it held.
 */
export async function withAdvisoryLock<T>(
  pool: pg.Pool,
  key: number,
  timeoutMs: number,
  run: () => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    await client.query("SELECT set_config('lock_timeout', $1, true)", [`${timeoutMs}ms`]);
    await client.query('SELECT pg_advisory_xact_lock($1)', [key]);
    const result = await run();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => (broken = true));
    throw error;
  } finally {
    client.release(broken);
  }
}
