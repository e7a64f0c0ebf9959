import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Logger } from 'pino';
import { GRPC_CODES, GatewayError, type GrpcCodeName } from '../errors.js';

/** docs/reference.md §2: the HTTP status of each gRPC code. The only such table. */
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

/** docs/reference.md §2 error body; `error` repeats `message` as grpc-gateway's v1 body did. */
export function sendError(res: Response, error: GatewayError, status = HTTP_STATUS[error.code]): void {
  setRetryAfter(res, error);
  res.status(status).json({ code: GRPC_CODES[error.code], message: error.message, details: [], error: error.message });
}

/** What the caller got wrong, with the status that says so where the code's own does not fit. */
interface ClientFault {
  error: GatewayError;
  status?: number;
  headers?: Readonly<Record<string, string>>;
}

/** The content codings body-parser decodes (RFC 9110 §8.4.1); zstd only on a Node that has it. */
const DECODED_CODINGS: ReadonlySet<string> = new Set(['gzip', 'deflate', 'br', 'zstd']);

const unreadable = (message = 'request body could not be read'): ClientFault => ({
  error: new GatewayError('INVALID_ARGUMENT', message),
  status: 400,
});

/**
 * Errors of body-parser and the router that are the caller's fault. body-parser
 * gives most a `type`; a decoder's own error (bytes that are not what their
 * Content-Encoding says) it passes on untyped, as an http-errors 400 with zlib's
 * `errno`. The router marks a path segment it cannot percent-decode with status 400.
 * Any other error that http-errors marks as the client's (`expose`, 4xx) is a 400 too.
 */
function fromRequestReading(
  error: { type?: unknown; limit?: unknown; status?: unknown; expose?: unknown; errno?: unknown; name?: unknown },
  req: Request,
): ClientFault | undefined {
  switch (error.type) {
    case 'entity.too.large':
      return {
        error: new GatewayError('INVALID_ARGUMENT', `request body is larger than ${String(error.limit)} bytes`),
        status: 413,
      };
    case 'parameters.too.many':
      // body-parser says 413, but the body is not large: it has more fields than any request of ours.
      return unreadable('request body has too many parameters');
    case 'encoding.unsupported':
      // RFC 9110 §15.5.16 and §12.5.3: 415, naming the codings that would have been accepted.
      return {
        error: new GatewayError('INVALID_ARGUMENT', 'Content-Encoding must be gzip, deflate, br or identity'),
        status: 415,
        headers: { 'Accept-Encoding': 'gzip, deflate, br' },
      };
    case 'request.aborted':
    case 'request.size.invalid':
    case 'charset.unsupported':
    case 'entity.parse.failed':
    case 'querystring.parse.rangeError':
      return unreadable();
    default:
      break;
  }
  if (error.status === 400 && error.name === 'URIError')
    return unreadable('request path is not valid percent-encoding');
  if (error.expose !== true || typeof error.status !== 'number' || error.status < 400 || error.status > 499) {
    return undefined;
  }
  const coding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (typeof error.errno === 'number' && DECODED_CODINGS.has(coding)) {
    return unreadable(`request body is not valid ${coding} data`);
  }
  return unreadable();
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

/** The status and RFC 6749 code of each gRPC code, for the token endpoint (docs/reference.md §3.6). */
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
 * a plain INTERNAL error. `status` is set only where the code's own does not fit (413, 415).
 */
function classify(thrown: unknown, req: Request, logger: Logger, translate: TranslateError): ClientFault {
  const error = translate(thrown) ?? thrown;
  if (error instanceof GatewayError) {
    if (SERVER_SIDE.has(error.code)) logger.warn({ err: error.cause ?? error, reqId: req.id }, error.message);
    return { error };
  }
  const fault = typeof error === 'object' && error !== null ? fromRequestReading(error, req) : undefined;
  if (fault) return fault;
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
    const { error, status, headers = {} } = classify(thrown, req, logger, translate);
    const [codeStatus, code] = OAUTH_ERROR[error.code];
    setRetryAfter(res, error);
    res.set(headers);
    send(status ?? codeStatus, code, error.message);
  };
}

/** Serialises every error of the `/v1` API and the rest with the docs/reference.md §2 body. */
export function createErrorHandler(logger: Logger, translate: TranslateError = () => undefined): ErrorRequestHandler {
  return (thrown: unknown, req, res, next) => {
    if (res.headersSent) return next(thrown);
    const { error, status, headers = {} } = classify(thrown, req, logger, translate);
    res.set(headers);
    sendError(res, error, status);
  };
}
