import type { Request, RequestHandler, Response } from 'express';
import type { AuditContext } from '../domain/audit.js';
import { GatewayError, tooManyRequests } from '../errors.js';
import { grants, type AccessLevel } from '../domain/roles.js';
import { adminPrincipal, type Principal, type VerifyBearerToken } from '../domain/principal.js';
import { CSRF_HEADER, isCsrfTokenOf, startedByAnotherSite, type SessionCookies } from './session-cookie.js';

export type { Principal } from '../domain/principal.js';

/** `priority`: the caller has a clean record, so its check goes ahead of others waiting. */
export type VerifyAdminPassword = (username: string, password: string, priority?: boolean) => Promise<boolean>;

const ADMIN = adminPrincipal();

type Credentials =
  | { readonly scheme: 'basic'; readonly username: string; readonly password: string }
  | { readonly scheme: 'bearer'; readonly token: string };

/** The credentials of an Authorization header; undefined for none, another scheme or a malformed one. */
function credentialsOf(authorization: string | undefined): Credentials | undefined {
  const [scheme = '', value = ''] = (authorization ?? '').trim().split(/\s+/, 2);
  switch (scheme.toLowerCase()) {
    case 'basic': {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon < 0
        ? undefined
        : { scheme: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    case 'bearer':
      return value === '' ? undefined : { scheme: 'bearer', token: value };
    default:
      return undefined;
  }
}

/** Wrong admin passwords allowed per client address and minute; more are refused before any check. */
export const ADMIN_FAILURES_PER_MINUTE = 10;

const slowDown = (seconds: number) => tooManyRequests('too many failed logins from this address', seconds);

/** Each client address's budget of password attempts. */
export interface GuessBudget {
  /** Takes one attempt: 0 when admitted, else the whole seconds to wait. */
  take(key: string): number;
  /** Gives back the last attempt taken, which turned out not to be a guess. */
  refund(key: string): void;
  /** Whether `key` has made no attempt within the window. */
  isFresh(key: string): boolean;
}

/**
 * Turns credentials into a Principal: the bootstrap admin's password (Basic,
 * or the console's sign-in), or a token this gateway minted (Bearer, or the
 * console's session cookie).
 *
 * Password guessing is slowed per client address, never turned into a
 * lock-out (docs/security.md): only a Basic attempt whose password does not
 * verify is a guess. The attempt is taken from the address's budget before
 * the deliberately slow check starts, so a concurrent burst cannot overrun
 * it, and given back when the password verifies. One refused because every
 * check was busy still counts, so that retrying at once costs an attacker
 * its budget; an address with a clean record is checked ahead of the others,
 * so that a flood of guesses cannot keep the admin out. Requests with no,
 * malformed or Bearer credentials never touch the budget.
 */
export function createAuthenticator(
  verifyAdmin: VerifyAdminPassword,
  verifyBearer: VerifyBearerToken,
  guesses: GuessBudget,
) {
  async function password(username: string, secret: string, client: string): Promise<Principal | undefined> {
    const clean = guesses.isFresh(client);
    const wait = guesses.take(client);
    if (wait > 0) throw slowDown(wait);
    const verified = await verifyAdmin(username, secret, clean);
    if (verified) guesses.refund(client);
    return verified ? ADMIN : undefined;
  }

  return {
    /** The principal of an Authorization header. */
    async header(authorization: string | undefined, client: string): Promise<Principal | undefined> {
      const credentials = credentialsOf(authorization);
      if (credentials?.scheme === 'bearer') return verifyBearer(credentials.token);
      if (credentials?.scheme !== 'basic') return undefined;
      return password(credentials.username, credentials.password, client);
    },
    /** The console's password sign-in, on the same budget of guesses. */
    password,
    /** A token this gateway minted, such as a console session's. */
    token: verifyBearer,
  };
}

export type Authenticate = ReturnType<typeof createAuthenticator>;

export const principalOf = (res: Response): Principal => res.locals.principal as Principal;

/** Who made an admin change, and in which request, for the audit trail. */
export const auditContext = (req: Request, res: Response): AuditContext => ({
  actor: principalOf(res).userId,
  requestId: String(req.id),
});

/** RFC 9110 §9.2.1: the methods that change nothing, so need no CSRF token. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const unauthenticated = () => new GatewayError('UNAUTHENTICATED', 'credentials are missing or invalid');

/**
 * The admin API's door: `identity` lets any valid identity in and leaves it in
 * `res.locals`; `access(level)` also demands that level on the `Access`
 * resource.
 */
export function createAdminGuard(authenticate: Authenticate, sessions: SessionCookies) {
  const identity: RequestHandler = async (req, res, next) => {
    const principal = await principalOfRequest(req);
    if (!principal) {
      res.set('WWW-Authenticate', 'Basic realm="m2m-gateway", Bearer');
      throw unauthenticated();
    }
    res.locals.principal = principal;
    next();
  };

  /**
   * An Authorization header wins; without one, the console's session cookie,
   * which a state-changing request must back with its CSRF token
   * (docs/reference.md §6.6), since the browser adds the cookie by itself.
   */
  async function principalOfRequest(req: Request): Promise<Principal | undefined> {
    const authorization = req.get('authorization');
    const session = authorization === undefined ? sessions.tokenOf(req) : undefined;
    if (session === undefined) {
      // A password another site made the browser send would spend the admin's guesses (docs/security.md).
      if (/^\s*basic\s/i.test(authorization ?? '') && startedByAnotherSite(req)) {
        throw new GatewayError('PERMISSION_DENIED', 'a password must not be sent from another site');
      }
      return authenticate.header(authorization, req.ip ?? '');
    }
    if (!SAFE_METHODS.has(req.method) && !isCsrfTokenOf(session, req.get(CSRF_HEADER))) {
      throw new GatewayError('PERMISSION_DENIED', `this request needs the session's ${CSRF_HEADER} header`);
    }
    return authenticate.token(session);
  }

  const access =
    (level: AccessLevel): RequestHandler =>
    (_req, res, next) => {
      if (!grants(principalOf(res).roles, 'Access', level)) {
        throw new GatewayError('PERMISSION_DENIED', `this needs ${level} to the Access resource`);
      }
      next();
    };

  return {
    identity,
    read: [identity, access('READ_ACCESS')],
    write: [identity, access('READ_WRITE_ACCESS')],
  };
}

export type AdminGuard = ReturnType<typeof createAdminGuard>;
