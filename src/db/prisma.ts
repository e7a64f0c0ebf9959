import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { GatewayError } from '../errors.js';
import { PrismaClient } from '../generated/prisma/client.js';
import { isDatabaseUnavailable } from './database-errors.js';

export type Database = PrismaClient;

/**
 * Prisma over a pg pool that the gateway may also use directly, for the one
 * statement Prisma only slows down: the audit batch insert, whose single
 * large JSON parameter Prisma's query engine copies. `$disconnect` ends the pool.
 */
export function createDatabase(databaseUrl: string): { db: Database; pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  // A broken idle connection (the database restarting) must not end the process; the next query reconnects.
  pool.on('error', () => undefined);
  return { db: new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) }), pool };
}

/**
 * A database that cannot be reached is UNAVAILABLE (503) wherever it
 * surfaces, never an internal error; anything else is left alone.
 */
export function translateDatabaseError(error: unknown): GatewayError | undefined {
  return !(error instanceof GatewayError) && isDatabaseUnavailable(error)
    ? new GatewayError('UNAVAILABLE', 'the database is unavailable; try again', { cause: error })
    : undefined;
}
