import { Router, type Request } from 'express';
import type { AuditQuery, AuditLog, StoredAuditEvent } from '../db/audit-log.js';
import { AUDIT_OUTCOMES } from '../domain/audit.js';
import { isUuid } from '../domain/m2m-config-service.js';
import { Problems } from '../domain/problems.js';
import type { AdminGuard } from './auth.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

const pageToken = (id: bigint) => Buffer.from(id.toString()).toString('base64url');

/** `GET /v1/audit` query → AuditQuery, every problem at once; a parameter given twice is one. */
function readQuery(req: Request): AuditQuery {
  const problems = new Problems();
  const single = (name: string): string | undefined => {
    const value: unknown = req.query[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      problems.add(`${name} is given more than once`);
      return undefined;
    }
    return value;
  };
  const configId = single('configId');
  if (configId !== undefined && !isUuid(configId)) problems.add('configId must be a UUID');
  const outcome = single('outcome');
  if (outcome !== undefined && !AUDIT_OUTCOMES.some((o) => o === outcome)) {
    problems.add(`outcome must be one of ${AUDIT_OUTCOMES.join(', ')}`);
  }
  const sinceText = single('since');
  const since = sinceText === undefined ? undefined : new Date(sinceText);
  if (since && Number.isNaN(since.getTime())) problems.add('since must be an RFC 3339 time');
  const limitText = single('limit');
  const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    problems.add(`limit must be a whole number from 1 to ${MAX_LIMIT}`);
  const token = single('pageToken');
  const cursor = token === undefined || token === '' ? undefined : Buffer.from(token, 'base64url').toString();
  if (cursor !== undefined && !/^\d{1,19}$/.test(cursor)) problems.add('pageToken is not one this server gave');
  problems.throwIfAny('audit query');
  return {
    configId: configId?.toLowerCase(),
    outcome: outcome as AuditQuery['outcome'],
    since,
    limit,
    beforeId: cursor === undefined ? undefined : BigInt(cursor),
  };
}

const eventToJson = (event: StoredAuditEvent) => ({
  id: event.id.toString(),
  time: event.occurredAt.toISOString(),
  requestId: event.requestId ?? '',
  action: event.action,
  actor: event.actor ?? '',
  configId: event.configId ?? '',
  outcome: event.outcome,
  reason: event.reason ?? '',
  details: event.details,
});

/** `GET /v1/audit` for admins: newest first, paginated with `nextPageToken`. */
export function createAuditRoutes(audit: AuditLog, guard: AdminGuard): Router {
  return Router().get('/v1/audit', ...guard.read, async (req, res) => {
    const query = readQuery(req);
    await audit.flush();
    const events = await audit.query(query);
    const last = events.at(-1);
    res.json({
      events: events.map(eventToJson),
      nextPageToken: events.length === query.limit && last ? pageToken(last.id) : '',
    });
  });
}
