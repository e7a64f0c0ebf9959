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

/**
 * Serialises every error (after node-oidc-provider's err_out): what is safe
 * goes to the caller, the detail only to the log, anything unexpected
 * becomes a plain INTERNAL error.
 */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) return next(error);
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
