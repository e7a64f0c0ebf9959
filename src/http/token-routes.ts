import type { IncomingMessage } from 'node:http';
import express, { Router } from 'express';
import type { Logger } from 'pino';
import { MAX_ID_TOKEN_BYTES, type Decision } from '../domain/exchange.js';
import { isJsonObject } from '../domain/problems.js';
import { invalidArgument, tooManyRequests } from '../errors.js';
import { createOAuthErrorHandler, OAuthError, type TranslateError } from './error-handler.js';
import { EXCHANGE_BODY_LIMIT_BYTES } from './limits.js';
import type { RateLimiter } from './rate-limit.js';
import type { DirectRoute, PlainHandler } from './direct-route.js';
import { isPlainBodyWithin, jsonBody, parseJsonBody, readPlainBody, withJsonFieldNames } from './request-body.js';
import { sendJson } from './json-response.js';

export type Exchange = (idToken: string, req: IncomingMessage) => Promise<Decision>;

/** The client's address as Express's `req.ip` gives it, under TRUST_PROXY. */
export type ClientAddress = (req: IncomingMessage) => string;

/** The route's own parameter: present, a string, not too large; the domain takes it from there. */
function tokenParameter(value: unknown, name: string, fail: (message: string) => Error): string {
  if (typeof value !== 'string' || value === '') throw fail(`${name} is required`);
  if (Buffer.byteLength(value) > MAX_ID_TOKEN_BYTES) throw fail(`${name} is larger than ${MAX_ID_TOKEN_BYTES} bytes`);
  return value;
}

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** RFC 8693 §3: the subject token types an ID token may be presented as. */
const SUBJECT_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:jwt'];

/** One value per parameter (RFC 6749 §3.2: "MUST NOT be included more than once"). */
function formParameters(body: unknown): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const [name, value] of Object.entries(isJsonObject(body) ? body : {})) {
    if (typeof value !== 'string') throw new OAuthError('invalid_request', `parameter ${name} is given more than once`);
    parameters.set(name, value);
  }
  return parameters;
}

/**
 * EXCHANGE_RATE_LIMIT (docs/reference.md §4): one budget per client address for both
 * endpoints, taken before anything else so that refused requests count too.
 * Without a limit (0) nothing runs, not even the client address lookup.
 */
const admitClient = (limiter: RateLimiter | undefined, clientAddress: ClientAddress): PlainHandler[] =>
  limiter
    ? [
        (req, _res, next) => {
          const wait = limiter.take(clientAddress(req));
          if (wait > 0) throw tooManyRequests('too many exchanges from this address', wait);
          next();
        },
      ]
    : [];

const EXCHANGE_PATH = '/v1/auth/m2m/exchange';
const TOKEN_PATH = '/oauth2/token';
/** Both exchange endpoints: their refusals are counted apart from the admin API's. */
export const EXCHANGE_PATHS: ReadonlySet<string> = new Set([EXCHANGE_PATH, TOKEN_PATH]);

/**
 * `POST /v1/auth/m2m/exchange` (StackRox) and `POST /oauth2/token` (RFC 8693),
 * one exchange behind both. `direct` is the first one's way around the router
 * for a plain body: the same handlers, with the body collected rather than
 * passed through express.raw.
 */
export function createTokenRoutes(
  exchange: Exchange,
  logger: Logger,
  limiter: RateLimiter | undefined,
  clientAddress: ClientAddress,
  translate: TranslateError,
): { routes: Router; direct: Omit<DirectRoute, 'onError'> } {
  const admit = admitClient(limiter, clientAddress);
  const answerExchange: PlainHandler = async (req, res) => {
    const request = withJsonFieldNames(req.body) as Record<string, unknown>;
    const { accessToken } = await exchange(tokenParameter(request.idToken, 'idToken', invalidArgument), req);
    sendJson(res, { accessToken });
  };
  const oauth = Router()
    .post(
      TOKEN_PATH,
      ...admit,
      (req, _res, next) => {
        if (!req.is('application/x-www-form-urlencoded')) {
          throw new OAuthError('invalid_request', 'the request must be application/x-www-form-urlencoded');
        }
        next();
      },
      express.urlencoded({ extended: false, limit: EXCHANGE_BODY_LIMIT_BYTES, parameterLimit: 20 }),
      async (req, res) => {
        const parameters = formParameters(req.body);
        const grantType = parameters.get('grant_type');
        if (!grantType) throw new OAuthError('invalid_request', 'grant_type is required');
        if (grantType !== TOKEN_EXCHANGE_GRANT) {
          throw new OAuthError('unsupported_grant_type', `grant_type must be ${TOKEN_EXCHANGE_GRANT}`);
        }
        const subjectToken = tokenParameter(
          parameters.get('subject_token'),
          'subject_token',
          (message) => new OAuthError('invalid_request', message),
        );
        const subjectTokenType = parameters.get('subject_token_type');
        if (!subjectTokenType) throw new OAuthError('invalid_request', 'subject_token_type is required');
        if (!SUBJECT_TOKEN_TYPES.includes(subjectTokenType)) {
          throw new OAuthError(
            'invalid_request',
            `subject_token_type must be one of ${SUBJECT_TOKEN_TYPES.join(', ')}`,
          );
        }
        const requested = parameters.get('requested_token_type');
        if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
          throw new OAuthError('invalid_request', `requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
        }
        // The audience of a gateway token is always its config (docs/reference.md §3.6); no other target can be honoured.
        if (parameters.has('resource') || parameters.has('audience')) {
          throw new OAuthError('invalid_target', 'this server issues tokens only for its own audience');
        }
        const { accessToken, accessClaims: claims } = await exchange(subjectToken, req);
        res.setHeader('Pragma', 'no-cache');
        sendJson(res, {
          access_token: accessToken,
          issued_token_type: ACCESS_TOKEN_TYPE,
          token_type: 'Bearer',
          expires_in: claims!.exp - claims!.iat,
        });
      },
    )
    .use(createOAuthErrorHandler(logger, translate));

  return {
    routes: Router()
      .post(EXCHANGE_PATH, ...admit, ...jsonBody(EXCHANGE_BODY_LIMIT_BYTES), answerExchange)
      .use(oauth),
    direct: {
      method: 'POST',
      path: EXCHANGE_PATH,
      qualifies: isPlainBodyWithin(EXCHANGE_BODY_LIMIT_BYTES),
      handlers: [...admit, readPlainBody, parseJsonBody, answerExchange],
    },
  };
}
