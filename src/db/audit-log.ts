import type pg from 'pg';
import type { Logger } from 'pino';
import type { AuditEvent, AuditOutcome, AuditTrail } from '../domain/audit.js';
import type { Database } from './prisma.js';

/** Exchange events wait in memory at most this long before they are written, in one insert. */
const FLUSH_INTERVAL_MS = 250;
const MAX_BATCH = 1000;
/** While the database is away, at most this many events wait; older ones are dropped and counted. */
const MAX_QUEUED = 50_000;

export interface AuditQuery {
  readonly configId?: string;
  readonly outcome?: AuditOutcome;
  readonly since?: Date;
  readonly limit: number;
  /** Only events older than this id (the page token). */
  readonly beforeId?: bigint;
}

export interface StoredAuditEvent extends AuditEvent {
  readonly id: bigint;
  readonly occurredAt: Date;
}

/**
 * jsonb refuses `\u0000` and unpaired surrogates, and one such string (a
 * `sub` chosen by whoever sent a refused token) would fail its whole batch.
 */
const STORABLE_ESCAPES = /\\u0000|\\ud[89a-f]/i;
const storableText = (text: string) => text.toWellFormed().replaceAll('\0', '\uFFFD');

/** The value with every string and every member name made storable: claim names are the token's too. */
function storable(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (Array.isArray(value)) return value.map(storable);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([name, member]) => [storableText(name), storable(member)]));
}

/** PostgreSQL's class 22 (data exception): the row itself is at fault, and retrying it cannot help. */
const isDataException = (error: unknown) =>
  typeof (error as { code?: unknown }).code === 'string' && (error as { code: string }).code.startsWith('22');

/**
 * An event as one element of the JSON array that `insertRows` expands, named
 * as its columns; absent members become NULL.
 */
function toJsonRow(event: AuditEvent, occurredAtMs: number): string {
  const row = {
    occurred_at_ms: occurredAtMs,
    request_id: event.requestId,
    action: event.action,
    actor: event.actor,
    config_id: event.configId,
    outcome: event.outcome,
    reason: event.reason,
    details: event.details,
  };
  const json = JSON.stringify(row);
  return STORABLE_ESCAPES.test(json) ? JSON.stringify(storable(row)) : json;
}

/**
 * One INSERT for a whole batch, sent as a single JSON parameter that
 * PostgreSQL expands: the gateway's CPU only joins strings it made at enqueue.
 */
const INSERT_ROWS = `
  INSERT INTO "audit_events" ("occurred_at", "request_id", "action", "actor", "config_id", "outcome", "reason", "details")
  SELECT to_timestamp(occurred_at_ms / 1000.0), request_id, action, actor, config_id, outcome, reason, details
  FROM jsonb_to_recordset($1::jsonb) AS event(
    occurred_at_ms double precision, request_id text, action text, actor text, config_id uuid,
    outcome text, reason text, details jsonb)`;

async function insertRows(pool: pg.Pool, rows: readonly string[]): Promise<void> {
  await pool.query(INSERT_ROWS, [`[${rows.join(',')}]`]);
}

/**
 * The audit trail (docs/reference.md §4): the `audit_events` table plus a JSON log line per
 * event. Admin changes are written before the request answers; exchange
 * events are queued and written in batches off the request path, and flushed
 * on shutdown. A crash loses at most the last FLUSH_INTERVAL_MS of exchange
 * events (their log lines are already out).
 */
export function createAuditLog(
  db: Database,
  pool: pg.Pool,
  logger: Logger,
  onBatchWritten: () => void = () => undefined,
) {
  /** Serialised at once, so that only a string per event waits for the next batch. */
  let queue: string[] = [];
  let dropped = 0;
  let flushing: Promise<void> | undefined;
  const timer = setInterval(() => void flush(), FLUSH_INTERVAL_MS);
  timer.unref();

  const logLine = (event: AuditEvent) => logger.info({ audit: event }, `audit ${event.action} ${event.outcome}`);

  /** Writes what was queued when it started (what arrives meanwhile waits for the next tick): a few inserts a second. */
  async function writeQueued(): Promise<boolean> {
    let pending = queue.length;
    while (pending > 0) {
      const batch = queue.slice(0, Math.min(MAX_BATCH, pending));
      try {
        await insertRows(pool, batch);
        onBatchWritten();
      } catch (error) {
        if (!isDataException(error)) {
          logger.warn({ err: error, queued: queue.length }, 'audit events could not be written; will retry');
          return false;
        }
        // One row the database refuses must not hold up every event after it: write them one by one.
        const handled = await insertOneByOne(batch);
        queue = queue.slice(handled);
        pending -= handled;
        if (handled < batch.length) return false;
        continue;
      }
      queue = queue.slice(batch.length);
      pending -= batch.length;
    }
    return true;
  }

  /** @returns how many rows were written or dropped; fewer than all when the database went away meanwhile */
  async function insertOneByOne(batch: readonly string[]): Promise<number> {
    let handled = 0;
    for (const row of batch) {
      try {
        await insertRows(pool, [row]);
      } catch (error) {
        if (!isDataException(error)) return handled;
        logger.error({ err: error }, 'an audit event the database refuses was dropped');
      }
      handled += 1;
    }
    onBatchWritten();
    return handled;
  }

  function flush(): Promise<void> {
    flushing ??= writeQueued()
      .then(() => undefined)
      .finally(() => (flushing = undefined));
    return flushing;
  }

  return {
    /** Admin changes: stored before the change is answered. */
    async record(event) {
      logLine(event);
      await insertRows(pool, [toJsonRow(event, Date.now())]);
    },

    /** Exchanges: queued, never waited for. */
    enqueue(event: AuditEvent): void {
      logLine(event);
      queue.push(toJsonRow(event, Date.now()));
      if (queue.length > MAX_QUEUED) {
        dropped += queue.length - MAX_QUEUED;
        queue = queue.slice(-MAX_QUEUED);
        logger.error({ dropped }, 'audit queue overflowed while the database was away; oldest events dropped');
      }
      if (queue.length >= MAX_BATCH) void flush();
    },

    flush,

    /** Stops the timer and writes everything still queued, unless the database is away. */
    async close(): Promise<void> {
      clearInterval(timer);
      await flushing;
      while (queue.length > 0 && (await writeQueued()));
    },

    async query(query: AuditQuery): Promise<StoredAuditEvent[]> {
      const rows = await db.auditEvent.findMany({
        where: {
          configId: query.configId,
          outcome: query.outcome,
          occurredAt: query.since ? { gte: query.since } : undefined,
          id: query.beforeId === undefined ? undefined : { lt: query.beforeId },
        },
        orderBy: { id: 'desc' },
        take: query.limit,
      });
      return rows.map(toStoredEvent);
    },

    /** One event by id, once queued events are written. */
    async get(id: bigint): Promise<StoredAuditEvent | undefined> {
      await flush();
      const row = await db.auditEvent.findUnique({ where: { id } });
      return row ? toStoredEvent(row) : undefined;
    },
  } satisfies AuditTrail & Record<string, unknown>;
}

function toStoredEvent(row: {
  id: bigint;
  occurredAt: Date;
  action: string;
  outcome: string;
  requestId: string | null;
  actor: string | null;
  configId: string | null;
  reason: string | null;
  details: unknown;
}): StoredAuditEvent {
  return {
    id: row.id,
    occurredAt: row.occurredAt,
    action: row.action as AuditEvent['action'],
    outcome: row.outcome as AuditOutcome,
    requestId: row.requestId ?? undefined,
    actor: row.actor ?? undefined,
    configId: row.configId ?? undefined,
    reason: row.reason ?? undefined,
    details: row.details as Record<string, unknown>,
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
