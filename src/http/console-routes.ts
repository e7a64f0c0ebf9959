import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { ADMIN_USERNAME, type Principal } from '../domain/principal.js';
import { grants } from '../domain/roles.js';
import { GatewayError, invalidArgument, tooManyRequests } from '../errors.js';
import { SsoFailed, type ConsoleSso, type SsoTransaction } from '../oidc/console-sso.js';
import type { Authenticate } from './auth.js';
import { ADMIN_BODY_LIMIT_BYTES } from './limits.js';
import type { RateLimiter } from './rate-limit.js';
import { jsonBody } from './request-body.js';
import {
  CSRF_HEADER,
  csrfTokenOf,
  isCsrfTokenOf,
  startedByAnotherSite,
  type SessionCookies,
} from './session-cookie.js';
import type { Exchange } from './token-routes.js';

export interface ConsoleDeps {
  /** The built console (dist/console); undefined when it was not built. */
  readonly directory: string | undefined;
  readonly cookies: SessionCookies;
  readonly authenticate: Authenticate;
  /** A session token for the admin, signed in with the password. */
  readonly mintAdminSession: () => Promise<{ readonly token: string; readonly expiresAt: Date }>;
  /** The gateway's own exchange: a single sign-on's ID token becomes a session through the configs. */
  readonly exchange: Exchange;
  /** Undefined without UI_OIDC_*. */
  readonly sso: ConsoleSso | undefined;
  /** Single sign-on attempts per client address: each costs calls to the identity provider. */
  readonly ssoAttempts: RateLimiter;
  readonly logger: Logger;
}

/**
 * docs/reference.md §6.6: the console's own code only, no inline script or
 * style, no framing, no referrer. `form-action` stays 'self': the single
 * sign-on starts with a navigation, not a form.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const hardened: RequestHandler = (_req, res, next) => {
  res.set({
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
  });
  next();
};

/** Where a finished sign-in goes. */
const CONSOLE_HOME = '/ui/';

/**
 * Why a single sign-on failed, as a code the sign-in page turns into its own
 * words: a link to the real page cannot make it say anything else. The details
 * go to the log with the request id.
 */
export type SignInFailure = 'expired' | 'provider' | 'refused' | 'unavailable' | 'failed';
const signInFailed = (failure: SignInFailure) => `/ui/#/sign-in?error=${failure}`;

function failureOf(error: unknown): SignInFailure {
  if (error instanceof SsoFailed) return 'provider';
  if (!(error instanceof GatewayError) || error.code === 'INTERNAL') return 'failed';
  return error.code === 'UNAVAILABLE' ? 'unavailable' : 'refused';
}

/**
 * A sign-in another site started is refused before it costs anything, so that
 * no other site can spend the admin's budget of guesses or of single sign-on
 * attempts.
 */
const fromThisSite: RequestHandler = (req, _res, next) => {
  if (startedByAnotherSite(req)) throw new GatewayError('PERMISSION_DENIED', 'a sign-in must start on this site');
  next();
};

/** How long a single sign-on may take between start and callback. */
const SSO_TRANSACTION_SECONDS = 600;

/**
 * An error and its causes as names and messages only: openid-client's errors
 * carry the provider's answers and an ID token's claims, which stay out of
 * the log like tokens do.
 */
function describeFailure(error: unknown): string {
  const parts: string[] = [];
  for (let at = error, depth = 0; at instanceof Error && depth < 4; at = at.cause, depth += 1) {
    parts.push(`${at.name}: ${at.message}`);
  }
  return parts.join(' <- ') || String(error);
}

/** A cookie's Max-Age for a token that expires at `exp` (seconds since the epoch). */
const secondsUntil = (exp: number) => Math.max(0, Math.floor(exp) - Math.floor(Date.now() / 1000));

function readTransaction(value: string | undefined): SsoTransaction | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(value ?? '', 'base64url').toString('utf8')) as Partial<SsoTransaction>;
    const { state, nonce, codeVerifier } = parsed;
    return typeof state === 'string' && typeof nonce === 'string' && typeof codeVerifier === 'string'
      ? { state, nonce, codeVerifier }
      : undefined;
  } catch {
    return undefined;
  }
}

function accessOf(principal: Principal) {
  if (grants(principal.roles, 'Access', 'READ_WRITE_ACCESS')) return 'READ_WRITE_ACCESS';
  return grants(principal.roles, 'Access', 'READ_ACCESS') ? 'READ_ACCESS' : 'NO_ACCESS';
}

/**
 * The admin console (docs/reference.md §6.6): its files under `/ui`, and its
 * session. A session is a token minted by this gateway in an HttpOnly
 * cookie — for the admin password a console token, for single sign-on the
 * token the ID token was exchanged for — which the admin API accepts like a
 * Bearer token, with a CSRF token on writes. Signing out removes the cookie;
 * the token itself stays valid until it expires, as every minted token does.
 */
export function createConsoleRoutes(deps: ConsoleDeps): Router {
  const { cookies } = deps;
  const sso = deps.sso !== undefined;
  const signedOut = { signedIn: false, sso };

  const sessionBody = (principal: Principal, token: string) => ({
    signedIn: true,
    sso,
    method: principal.authProvider.type === 'basic' ? 'password' : 'sso',
    user: { id: principal.userId, name: principal.friendlyName },
    roles: principal.roles.map((role) => role.name),
    access: accessOf(principal),
    expiresAt: principal.expires?.toISOString(),
    csrfToken: csrfTokenOf(token),
  });

  const takeSsoAttempt = (req: Request) => {
    const wait = deps.ssoAttempts.take(req.ip ?? '');
    if (wait > 0) throw tooManyRequests('too many single sign-on attempts from this address', wait);
  };
  const admitSso: RequestHandler = (req, _res, next) => {
    takeSsoAttempt(req);
    next();
  };

  const router = Router();
  router.use('/ui', hardened);

  router.get('/ui/session', async (req, res: Response) => {
    const token = cookies.tokenOf(req);
    const principal = token === undefined ? undefined : await deps.authenticate.token(token);
    if (token !== undefined && principal === undefined) cookies.clear(res);
    res.json(principal && token ? sessionBody(principal, token) : signedOut);
  });

  // application/json, unlike the types a form or a no-cors request may send, makes a cross-site request preflight.
  const signInBody: RequestHandler = (req, _res, next) => {
    if (!req.is('application/json')) throw invalidArgument('a sign-in is sent as application/json');
    next();
  };

  router.post(
    '/ui/session',
    fromThisSite,
    signInBody,
    ...jsonBody(ADMIN_BODY_LIMIT_BYTES),
    async (req: Request, res: Response) => {
      const password: unknown = (req.body as { password?: unknown } | undefined)?.password;
      if (typeof password !== 'string' || password === '') throw invalidArgument('password is required');
      const principal = await deps.authenticate.password(ADMIN_USERNAME, password, req.ip ?? '');
      if (!principal) throw new GatewayError('UNAUTHENTICATED', 'the password is wrong');
      const { token, expiresAt } = await deps.mintAdminSession();
      cookies.set(res, token, secondsUntil(expiresAt.getTime() / 1000));
      res.json(sessionBody({ ...principal, expires: expiresAt }, token));
    },
  );

  router.delete('/ui/session', (req, res) => {
    const token = cookies.tokenOf(req);
    // Another page of the same site could otherwise sign the admin out.
    if (token !== undefined && !isCsrfTokenOf(token, req.get(CSRF_HEADER))) {
      throw new GatewayError('PERMISSION_DENIED', `this request needs the session's ${CSRF_HEADER} header`);
    }
    cookies.clear(res);
    res.json(signedOut);
  });

  router.get('/ui/sso/start', fromThisSite, admitSso, async (_req, res) => {
    if (!deps.sso) throw new GatewayError('NOT_FOUND', 'single sign-on is not set up (UI_OIDC_ISSUER)');
    try {
      const { url, transaction } = await deps.sso.start();
      const value = Buffer.from(JSON.stringify(transaction)).toString('base64url');
      cookies.setTransaction(res, value, SSO_TRANSACTION_SECONDS);
      res.redirect(303, url);
    } catch (error) {
      deps.logger.warn({ failure: describeFailure(error) }, 'single sign-on could not start');
      res.redirect(303, signInFailed(failureOf(error)));
    }
  });

  // The provider's redirect back is cross-site by nature; without a transaction it costs nothing and is not counted.
  router.get('/ui/sso/callback', async (req, res) => {
    if (!deps.sso) throw new GatewayError('NOT_FOUND', 'single sign-on is not set up (UI_OIDC_ISSUER)');
    const transaction = readTransaction(cookies.transactionOf(req));
    cookies.clearTransaction(res);
    if (!transaction) {
      res.redirect(303, signInFailed('expired'));
      return;
    }
    takeSsoAttempt(req);
    const queryStart = req.originalUrl.indexOf('?');
    try {
      const idToken = await deps.sso.finish(queryStart < 0 ? '' : req.originalUrl.slice(queryStart), transaction);
      const decision = await deps.exchange(idToken, req);
      cookies.set(res, decision.accessToken!, secondsUntil(decision.accessClaims!.exp));
      res.redirect(303, CONSOLE_HOME);
    } catch (error) {
      deps.logger.warn({ failure: describeFailure(error), requestId: req.id }, 'single sign-on to the console failed');
      res.redirect(303, signInFailed(failureOf(error)));
    }
  });

  if (deps.directory === undefined) {
    deps.logger.warn('the admin console is not built (npm run build); /ui answers 503');
    router.get(['/ui', '/ui/{*rest}'], () => {
      throw new GatewayError('UNAVAILABLE', 'the admin console is not built (npm run build)');
    });
  } else {
    const index = path.join(deps.directory, 'index.html');
    // Relative URLs in the page resolve against /ui/, so /ui itself redirects there.
    router.get('/ui', (req, res) =>
      req.originalUrl.startsWith(CONSOLE_HOME) ? res.sendFile(index) : res.redirect(301, CONSOLE_HOME),
    );
    router.use(
      '/ui/assets',
      express.static(path.join(deps.directory, 'assets'), { index: false, cacheControl: false, dotfiles: 'ignore' }),
    );
  }

  return router;
}

/** The built console next to the compiled code, if the build made it. */
export function consoleDirectory(root: string): string | undefined {
  const directory = path.join(root, 'dist', 'console');
  return existsSync(path.join(directory, 'index.html')) ? directory : undefined;
}
