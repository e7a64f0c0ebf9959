/**
 * The gRPC status codes the gateway answers with (docs/reference.md §2). Errors carry the
 * code's name; src/http/error-handler.ts is the one place that turns it into
 * an HTTP status and the wire body.
 */
export const GRPC_CODES = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcCodeName = keyof typeof GRPC_CODES;

/**
 * An error whose message is safe to show to the caller. Anything that is not
 * a GatewayError is answered as a plain INTERNAL error and only logged.
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';

  /** For RESOURCE_EXHAUSTED: when the caller may try again (the Retry-After header). */
  readonly retryAfterSeconds: number | undefined;
  /** For a refused input: each problem on its own, as the message lists them. */
  readonly problems: readonly string[];

  constructor(
    readonly code: GrpcCodeName,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number; problems?: readonly string[] },
  ) {
    super(message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.problems = options?.problems ?? [message];
  }
}

export const invalidArgument = (message: string) => new GatewayError('INVALID_ARGUMENT', message);
export const notFound = (message: string) => new GatewayError('NOT_FOUND', message);
export const failedPrecondition = (message: string, cause?: unknown) =>
  new GatewayError('FAILED_PRECONDITION', message, { cause });

/**
 * The message of anything thrown. Not `instanceof Error`: errors from native
 * addons and other realms (re2, jest's VM) fail that test.
 */
export const messageOf = (error: unknown): string =>
  typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string'
    ? error.message
    : String(error);

export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new GatewayError('RESOURCE_EXHAUSTED', message, { retryAfterSeconds });
