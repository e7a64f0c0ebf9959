import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Logger } from 'pino';
import { GRPC_CODES, GatewayError, type GrpcCodeName } from '../errors.js';

/** SPEC §2: the HTTP status of each gRPC code. The only such table. */
const HTTP_STATUS: Readonly<Record<GrpcCodeName, number>> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  INTERNAL: 500,
};

const setRetryAfter = (res: Response, error: GatewayError) => {
  if (error.retryAfterSeconds !== undefined) res.set('Retry-After', String(error.retryAfterSeconds));
};

/** SPEC §2 error body; `error` repeats `message` as grpc-gateway's v1 body did. */
export function sendError(res: Response, error: GatewayError, status = HTTP_STATUS[error.code]): void {
  setRetryAfter(res, error);
  res.status(status).json({ code: GRPC_CODES[error.code], message: error.message, details: [], error: error.message });
}

/** body-parser's errors carry a `type`; these are the caller's fault. */
function fromBodyParser(error: {
  type?: unknown;
  limit?: unknown;
}): { error: GatewayError; status: number } | undefined {
  switch (error.type) {
    case 'entity.too.large':
      return {
        error: new GatewayError('INVALID_ARGUMENT', `request body is larger than ${String(error.limit)} bytes`),
        status: 413,
      };
    case 'request.aborted':
    case 'request.size.invalid':
    case 'encoding.unsupported':
    case 'charset.unsupported':
    case 'entity.parse.failed':
      return { error: new GatewayError('INVALID_ARGUMENT', 'request body could not be read'), status: 400 };
    default:
      return undefined;
  }
}

/** RFC 6749 §5.2 and RFC 8693 §2.2.2 error codes used by `/oauth2/token`. */
export type OAuthErrorCode =
  'invalid_request' | 'unsupported_grant_type' | 'invalid_target' | 'temporarily_unavailable';

export class OAuthError extends Error {
  override readonly name = 'OAuthError';

  constructor(
    readonly error: OAuthErrorCode,
    description: string,
  ) {
    super(description);
  }
}

/** The status and RFC 6749 code of each gRPC code, for the token endpoint (SPEC §3.6). */
const OAUTH_ERROR: Readonly<Record<GrpcCodeName, [number, OAuthErrorCode | 'server_error']>> = {
  INVALID_ARGUMENT: [400, 'invalid_request'],
  FAILED_PRECONDITION: [400, 'invalid_request'],
  NOT_FOUND: [400, 'invalid_request'],
  ALREADY_EXISTS: [400, 'invalid_request'],
  UNAUTHENTICATED: [400, 'invalid_request'],
  PERMISSION_DENIED: [400, 'invalid_request'],
  RESOURCE_EXHAUSTED: [429, 'temporarily_unavailable'],
  UNAVAILABLE: [503, 'temporarily_unavailable'],
  DEADLINE_EXCEEDED: [503, 'temporarily_unavailable'],
  INTERNAL: [500, 'server_error'],
};

/** Turns an infrastructure error (the database away) into a GatewayError; undefined leaves it alone. */
export type TranslateError = (error: unknown) => GatewayError | undefined;

/** Codes that mean the gateway, not the caller, is at fault: logged with their cause. */
const SERVER_SIDE: ReadonlySet<GrpcCodeName> = new Set(['INTERNAL', 'UNAVAILABLE', 'DEADLINE_EXCEEDED']);

/**
 * Anything thrown, as a GatewayError safe to show (after node-oidc-provider's
 * err_out): the detail goes to the log only, and anything unexpected becomes
 * a plain INTERNAL error. `status` is set only where the code's own does not fit (413).
 */
function classify(
  thrown: unknown,
  req: Request,
  logger: Logger,
  translate: TranslateError,
): { error: GatewayError; status?: number } {
  const error = translate(thrown) ?? thrown;
  if (error instanceof GatewayError) {
    if (SERVER_SIDE.has(error.code)) logger.warn({ err: error.cause ?? error, reqId: req.id }, error.message);
    return { error };
  }
  const parserError = typeof error === 'object' && error !== null ? fromBodyParser(error) : undefined;
  if (parserError) return parserError;
  logger.error({ err: error, reqId: req.id }, 'unexpected error');
  return { error: new GatewayError('INTERNAL', `internal error (request id ${String(req.id)})`) };
}

/** The token endpoint's own serialiser: RFC 6749 `{error, error_description}`. */
export function createOAuthErrorHandler(
  logger: Logger,
  translate: TranslateError = () => undefined,
): ErrorRequestHandler {
  return (thrown: unknown, req, res, next) => {
    if (res.headersSent) return next(thrown);
    const send = (status: number, code: string, description: string) =>
      void res.status(status).json({ error: code, error_description: description });
    if (thrown instanceof OAuthError) return send(400, thrown.error, thrown.message);
    const { error, status } = classify(thrown, req, logger, translate);
    const [codeStatus, code] = OAUTH_ERROR[error.code];
    setRetryAfter(res, error);
    send(status ?? codeStatus, code, error.message);
  };
}

/** Serialises every error of the `/v1` API and the rest with the SPEC §2 body. */
export function createErrorHandler(logger: Logger, translate: TranslateError = () => undefined): ErrorRequestHandler {
  return (thrown: unknown, req, res, next) => {
    if (res.headersSent) return next(thrown);
    const { error, status } = classify(thrown, req, logger, translate);
    sendError(res, error, status);
  };
}
