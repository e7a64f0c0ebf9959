import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';

/**
 * The setting the audit_events trigger reads (migration
 * 20261202030000_audit_retention): in a transaction that sets it, rows older
 * than it may be deleted, and no other row; without it, none.
 */
const RETENTION_FLOOR_SETTING = 'm2m_gateway.audit_retention_before';
/** One replica deletes at a time (distinct from Prisma's 72707369 and the key lock 72707370). */
const RETENTION_LOCK = 72707371;

export interface RetentionOptions {
  /** Rows per DELETE, each in its own short transaction. */
  readonly batchSize?: number;
  /** The pause between batches, so that a large backlog never holds the database for long. */
  readonly pauseMs?: number;
  /** Stops between batches (shutdown). */
  readonly signal?: AbortSignal;
}

/**
 * One batch: the oldest `limit` events older than `before`, found through
 * the occurred_at index and deleted by id. Row locks only: the exchange
 * audit inserts, which never touch these rows, go on meanwhile.
 *
 * @returns how many were deleted, or undefined when another replica holds the retention lock
 */
async function deleteBatch(pool: pg.Pool, before: Date, limit: number): Promise<number | undefined> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const [lock] = (
        await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [RETENTION_LOCK])
      ).rows;
      if (!lock?.locked) {
        await client.query('ROLLBACK');
        return undefined;
      }
      await client.query('SELECT set_config($1, $2, true)', [RETENTION_FLOOR_SETTING, before.toISOString()]);
      const { rowCount } = await client.query(
        `DELETE FROM "audit_events" WHERE "id" = ANY(ARRAY(
           SELECT "id" FROM "audit_events" WHERE "occurred_at" < $1 ORDER BY "occurred_at" LIMIT $2))`,
        [before, limit],
      );
      await client.query('COMMIT');
      return rowCount ?? 0;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollback: Error) => (broken = rollback));
      throw error;
    }
  } finally {
    client.release(broken);
  }
}

/**
 * Deletes the audit events that occurred before `before` (AUDIT_RETENTION),
 * in batches with a pause between them. Returns early when another replica
 * is deleting: it will finish the work.
 *
 * @returns how many events this call deleted
 */
export async function deleteAuditEventsBefore(
  pool: pg.Pool,
  before: Date,
  { batchSize = 1000, pauseMs = 100, signal }: RetentionOptions = {},
): Promise<number> {
  let total = 0;
  while (!signal?.aborted) {
    const deleted = await deleteBatch(pool, before, batchSize);
    if (deleted === undefined) break;
    total += deleted;
    if (deleted < batchSize) break;
    await sleep(pauseMs, undefined, { ref: false, signal }).catch(() => undefined);
  }
  return total;
}
