import { PrismaPg } from '@prisma/adapter-pg';
import { GatewayError } from '../errors.js';
import { PrismaClient } from '../generated/prisma/client.js';
import { isDatabaseUnavailable } from './database-errors.js';

export type Database = PrismaClient;

export function createDatabase(databaseUrl: string): Database {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl, max: 10 }) });
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
