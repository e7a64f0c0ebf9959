import { Router, type Request } from 'express';
import type { AuditQuery, AuditLog, StoredAuditEvent } from '../db/audit-log.js';
import { AUDIT_OUTCOMES } from '../domain/audit.js';
import { isUuid } from '../domain/m2m-config-service.js';
import { Problems } from '../domain/problems.js';
import type { AdminGuard } from './auth.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const PARAMETERS: readonly string[] = ['configId', 'outcome', 'since', 'limit', 'pageToken'];

/** Audit event ids are PostgreSQL bigints. */
const MAX_EVENT_ID = 2n ** 63n - 1n;

const pageToken = (id: bigint) => Buffer.from(id.toString()).toString('base64url');

/** The event id behind a page token, if this server could have written it: a bigint id, encoded as it encodes one. */
function readPageToken(token: string): bigint | undefined {
  const text = Buffer.from(token, 'base64url').toString();
  if (!/^[1-9]\d{0,18}$/.test(text)) return undefined;
  const id = BigInt(text);
  return id <= MAX_EVENT_ID && pageToken(id) === token ? id : undefined;
}

/** RFC 3339 §5.6 date-time; "T" and "Z" may be lower case (the NOTE there). */
const DATE_TIME =
  /^(?<year>\d{4})-(?<month>\d{2})-(?<day>\d{2})T(?<hour>\d{2}):(?<minute>\d{2}):(?<second>\d{2})(?:\.(?<fraction>\d+))?(?:Z|(?<sign>[+-])(?<offsetHour>\d{2}):(?<offsetMinute>\d{2}))$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);

/**
 * Every stored time lies between these. timestamptz cannot hold much of what
 * a JavaScript Date can, and PostgreSQL has no year 0.
 */
const EARLIEST = Date.parse('0001-01-01T00:00:00.000Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');

/** `since` as an instant, to the millisecond; undefined after adding its problem. */
function readSince(text: string, problems: Problems): Date | undefined {
  const fields = DATE_TIME.exec(text)?.groups;
  const field = (name: string) => Number(fields?.[name] ?? 0);
  const [year, month, day] = [field('year'), field('month'), field('day')];
  const valid =
    fields !== undefined &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= (month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!) &&
    field('hour') <= 23 &&
    field('minute') <= 59 &&
    field('second') <= 60 && // RFC 3339 §5.6 allows a leap second; Date counts it into the next minute
    field('offsetHour') <= 23 &&
    field('offsetMinute') <= 59;
  if (!valid) {
    problems.add('since must be an RFC 3339 time');
    return undefined;
  }
  if (year < 1) {
    problems.add('since must be from year 0001 to 9999');
    return undefined;
  }
  const instant = new Date(0);
  // Not Date.UTC, which reads years 0-99 as 1900-1999.
  instant.setUTCFullYear(year, month - 1, day);
  const milliseconds = Number((fields.fraction ?? '').slice(0, 3).padEnd(3, '0'));
  instant.setUTCHours(field('hour'), field('minute'), field('second'), milliseconds);
  const offsetMinutes = (field('offsetHour') * 60 + field('offsetMinute')) * (fields.sign === '-' ? -1 : 1);
  // An offset can carry year 0001 or 9999 past its end, where no event lies either.
  return new Date(Math.min(Math.max(instant.getTime() - offsetMinutes * 60_000, EARLIEST), LATEST));
}

/**
 * `GET /v1/audit` query → AuditQuery, every problem at once. A parameter given
 * twice is one, and so is one the endpoint does not know: a misspelt filter
 * must not answer with every event.
 */
function readQuery(req: Request): AuditQuery {
  const problems = new Problems();
  const unknown = Object.keys(req.query).filter((name) => !PARAMETERS.includes(name));
  if (unknown.length > 0) {
    const names = unknown.map((name) => JSON.stringify(name)).join(', ');
    problems.add(
      `unknown parameter${unknown.length > 1 ? 's' : ''} ${names} (the parameters are ${PARAMETERS.join(', ')})`,
    );
  }
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
  const since = sinceText === undefined ? undefined : readSince(sinceText, problems);
  const limitText = single('limit');
  const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    problems.add(`limit must be a whole number from 1 to ${MAX_LIMIT}`);
  const token = single('pageToken');
  const beforeId = token === undefined || token === '' ? undefined : readPageToken(token);
  if (token && beforeId === undefined) problems.add('pageToken is not one this server gave');
  problems.throwIfAny('audit query');
  return {
    configId: configId?.toLowerCase(),
    outcome: outcome as AuditQuery['outcome'],
    since,
    limit,
    beforeId,
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
