/** Prisma's error codes that carry meaning for the gateway. */
const UNIQUE_VIOLATION = 'P2002';
const FOREIGN_KEY_VIOLATION = 'P2003';

const prismaCode = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;

export const isUniqueViolation = (error: unknown): boolean => prismaCode(error) === UNIQUE_VIOLATION;
export const isForeignKeyViolation = (error: unknown): boolean => prismaCode(error) === FOREIGN_KEY_VIOLATION;

/** Prisma's codes for a database that cannot be reached or has gone away. */
const UNREACHABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);
/** Driver adapter error kinds that mean the same. */
const UNREACHABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/** Node's socket errors, and PostgreSQL's SQLSTATE class 08 (connection) and 57P01–57P03 (shutting down). */
const UNREACHABLE_SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND']);

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, meta, cause, message } = error as {
    code?: unknown;
    meta?: unknown;
    cause?: unknown;
    message?: unknown;
  };
  if (
    typeof code === 'string' &&
    (UNREACHABLE_CODES.has(code) || UNREACHABLE_SOCKET.has(code) || /^(08|57P0[1-3])/.test(code))
  ) {
    return true;
  }
  const kind = (meta as { driverAdapterError?: { cause?: { kind?: unknown } } } | undefined)?.driverAdapterError?.cause
    ?.kind;
  if (typeof kind === 'string' && UNREACHABLE_KINDS.has(kind)) return true;
  if (
    typeof message === 'string' &&
    /Connection terminated|connection is closed|Client has encountered a connection error/i.test(message)
  ) {
    return true;
  }
  return cause !== undefined && cause !== error && isDatabaseUnavailable(cause);
}
