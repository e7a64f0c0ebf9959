import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import proxyaddr from 'proxy-addr';
import { pinoHttp } from 'pino-http';
import type { Logger } from 'pino';
import type { Explain } from './domain/explain.js';
import type { M2mConfigService } from './domain/m2m-config-service.js';
import type { Metrics } from './metrics.js';
import type { RoleService } from './domain/role-service.js';
import { GatewayError } from './errors.js';
import { createAdminGuard, type Authenticate } from './http/auth.js';
import { createRateLimiter } from './http/rate-limit.js';
import type { AuditLog } from './db/audit-log.js';
import { createAuditRoutes } from './http/audit-routes.js';
import type { DeclarativeStatus } from './declarative/declarative-configs.js';
import { createDeclarativeRoutes } from './http/declarative-routes.js';
import { withDirectRoute, type PlainHandler } from './http/direct-route.js';
import { createErrorHandler, type TranslateError } from './http/error-handler.js';
import { createConsoleRoutes, type ConsoleDeps } from './http/console-routes.js';
import { createIssuerRoutes } from './http/issuer-routes.js';
import { createKeyRoutes, type SigningKeyRotation } from './http/key-routes.js';
import type { IssuerHealth } from './oidc/issuer-health.js';
import { createM2mRoutes } from './http/m2m-routes.js';
import { createRoleRoutes } from './http/role-routes.js';
import { createStatusRoutes } from './http/status-routes.js';
import { EXCHANGE_PATHS, createTokenRoutes, type Exchange } from './http/token-routes.js';
import { createWellKnownRoutes, type IssuerPublication } from './http/well-known.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly configs: M2mConfigService;
  readonly roles: RoleService;
  readonly authenticate: Authenticate;
  /** Resolves when the database is reachable and migrated; rejects otherwise. */
  readonly checkReadiness: () => Promise<void>;
  readonly trustProxy: false | number | readonly string[];
  readonly exchange: Exchange;
  readonly explain: Explain;
  readonly audit: AuditLog;
  /** `GET /v1/declarative/status`; undefined when DECLARATIVE_CONFIG_DIR is not set. */
  readonly declarativeStatus?: () => DeclarativeStatus;
  /** `POST /v1/keys/rotate`. */
  readonly keys: SigningKeyRotation;
  readonly translateError: TranslateError;
  readonly metrics: Metrics;
  /** docs/openapi.yaml, served as `/openapi.json`. */
  readonly openApi: unknown;
  /** EXCHANGE_RATE_LIMIT: exchanges per minute and client address; 0 is no limit. */
  readonly exchangeRateLimit: number;
  readonly publication: IssuerPublication;
  /** `GET /v1/issuers`. */
  readonly issuerHealth: () => IssuerHealth[];
  /** The admin console at `/ui` and its session. */
  readonly console: Omit<ConsoleDeps, 'logger'>;
}

/** The path Express routed, also of a request line that names the whole URL (RFC 9112 §3.2.2). */
const pathOf = (url = '/') => new URL(url, 'http://gateway.invalid').pathname;

/** The HTTP application; it never listens, so tests can drive it directly. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', Array.isArray(deps.trustProxy) ? [...deps.trustProxy] : deps.trustProxy);
  /** Express's own compiled TRUST_PROXY rule: what `req.ip` applies, for handlers that run without Express. */
  const trustedProxies = app.get('trust proxy fn') as (address: string, hop: number) => boolean;

  // Our own id, never the caller's, so that the audit trail cannot be forged (docs/reference.md §2). No answer is cached.
  const stamp: PlainHandler = (req, res, next) => {
    req.id = randomUUID();
    res.setHeader('X-Request-Id', req.id);
    res.setHeader('Cache-Control', 'no-store');
    res.once('finish', () => {
      if (res.statusCode !== 429) return;
      deps.metrics.rateLimited(EXCHANGE_PATHS.has(pathOf(req.url)) ? 'exchange' : 'admin');
    });
    next();
  };
  const everyRequest: PlainHandler[] = [stamp];
  // One line per request at `info`; below that, not even the per-request child logger is made.
  if (deps.logger.isLevelEnabled('info')) {
    everyRequest.push(
      pinoHttp({
        logger: deps.logger,
        genReqId: (req) => req.id,
        // Method and path only: headers carry credentials.
        serializers: {
          req: (req: { id: unknown; method: string; url: string }) => ({
            id: req.id,
            method: req.method,
            path: req.url.split('?')[0],
          }),
          res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        },
      }),
    );
  }
  app.use(everyRequest);
  // The exchange endpoints first: they are the hot path, and Express tries routes in order.
  const tokenRoutes = createTokenRoutes(
    deps.exchange,
    deps.logger,
    deps.exchangeRateLimit > 0 ? createRateLimiter(deps.exchangeRateLimit) : undefined,
    (req) => proxyaddr(req, trustedProxies),
    deps.translateError,
  );
  app.use(tokenRoutes.routes);
  app.get('/openapi.json', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').json(deps.openApi);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  const guard = createAdminGuard(deps.authenticate, deps.console.cookies);
  app.use(createStatusRoutes(guard, deps.checkReadiness));
  app.use(createWellKnownRoutes(deps.publication));
  app.use(createM2mRoutes(deps.configs, deps.explain, guard));
  app.use(createRoleRoutes(deps.roles, guard));
  app.use(createAuditRoutes(deps.audit, guard));
  app.use(createDeclarativeRoutes(deps.declarativeStatus, guard));
  app.use(createKeyRoutes(deps.keys, guard));
  app.use(createIssuerRoutes(deps.issuerHealth, guard));
  app.use(createConsoleRoutes({ ...deps.console, logger: deps.logger }));

  app.use(() => {
    throw new GatewayError('NOT_FOUND', 'not found');
  });
  const onError = createErrorHandler(deps.logger, deps.translateError);
  app.use(onError);
  return withDirectRoute(app, {
    ...tokenRoutes.direct,
    handlers: [...everyRequest, ...tokenRoutes.direct.handlers],
    onError,
  });
}
