import type { ErrorRequestHandler, Response } from 'express';
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

/** SPEC §2 error body; `error` repeats `message` as grpc-gateway's v1 body did. */
export function sendError(res: Response, error: GatewayError, status = HTTP_STATUS[error.code]): void {
  if (error.retryAfterSeconds !== undefined) res.set('Retry-After', String(error.retryAfterSeconds));
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

/** The token endpoint's own serialiser: RFC 6749 `{error, error_description}`. */
export function createOAuthErrorHandler(
  logger: Logger,
  translate: TranslateError = () => undefined,
): ErrorRequestHandler {
  return (thrown: unknown, req, res, next) => {
    if (res.headersSent) return next(thrown);
    const error = translate(thrown) ?? thrown;
    const send = (status: number, code: string, description: string) =>
      void res.status(status).json({ error: code, error_description: description });
    if (error instanceof OAuthError) return send(400, error.error, error.message);
    if (error instanceof GatewayError) {
      const [status, code] = OAUTH_ERROR[error.code];
      if (error.retryAfterSeconds !== undefined) res.set('Retry-After', String(error.retryAfterSeconds));
      if (status >= 500) logger.warn({ err: error.cause ?? error, reqId: req.id }, error.message);
      return send(status, code, error.message);
    }
    const parserError = typeof error === 'object' && error !== null ? fromBodyParser(error) : undefined;
    if (parserError) return send(parserError.status, 'invalid_request', parserError.error.message);
    logger.error({ err: error, reqId: req.id }, 'unexpected error');
    send(500, 'server_error', `internal error (request id ${String(req.id)})`);
  };
}

/**
 * Serialises every error (after node-oidc-provider's err_out): what is safe
 * goes to the caller, the detail only to the log, anything unexpected
 * becomes a plain INTERNAL error.
 */
export function createErrorHandler(logger: Logger, translate: TranslateError = () => undefined): ErrorRequestHandler {
  return (thrown: unknown, req, res, next) => {
    if (res.headersSent) return next(thrown);
    const error = translate(thrown) ?? thrown;
    if (error instanceof GatewayError) {
      if (error.code === 'INTERNAL' || error.code === 'UNAVAILABLE') {
        logger.warn({ err: error.cause ?? error, reqId: req.id }, error.message);
      }
      return sendError(res, error);
    }
    const parserError = typeof error === 'object' && error !== null ? fromBodyParser(error) : undefined;
    if (parserError) return sendError(res, parserError.error, parserError.status);
    logger.error({ err: error, reqId: req.id }, 'unexpected error');
    sendError(res, new GatewayError('INTERNAL', `internal error (request id ${String(req.id)})`));
  };
}
