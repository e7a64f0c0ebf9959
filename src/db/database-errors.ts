/** Prisma's error codes that carry meaning for the gateway. */
const UNIQUE_VIOLATION = 'P2002';
const FOREIGN_KEY_VIOLATION = 'P2003';

const prismaCode = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;

export const isUniqueViolation = (error: unknown): boolean => prismaCode(error) === UNIQUE_VIOLATION;
export const isForeignKeyViolation = (error: unknown): boolean => prismaCode(error) === FOREIGN_KEY_VIOLATION;
