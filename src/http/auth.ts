import type { Request, RequestHandler, Response } from 'express';
import type { AuditContext } from '../domain/audit.js';
import { GatewayError, tooManyRequests } from '../errors.js';
import type { RateLimiter } from './rate-limit.js';
import { ADMIN_ROLE, BUILT_IN_ROLES, grants, type AccessLevel } from '../domain/roles.js';
import type { Principal, VerifyBearerToken } from '../domain/principal.js';
import { ADMIN_USERNAME } from '../keys/admin-password.js';

export type { Principal } from '../domain/principal.js';

export type VerifyAdminPassword = (username: string, password: string) => Promise<boolean>;

const adminRole = BUILT_IN_ROLES.find((role) => role.name === ADMIN_ROLE)!;

const ADMIN: Principal = {
  userId: ADMIN_USERNAME,
  friendlyName: ADMIN_USERNAME,
  roles: [adminRole],
  authProvider: { id: 'basic', name: 'Login with username/password', type: 'basic' },
  attributes: { username: [ADMIN_USERNAME], role: [ADMIN_ROLE] },
};

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

/**
 * Turns an Authorization header into a Principal: Basic for the bootstrap
 * admin, Bearer for tokens this gateway minted.
 *
 * Password guessing is slowed per client address, never turned into a
 * lock-out (docs/security.md): only a Basic attempt whose password does not
 * verify is a guess. The guess is taken from the address's budget before the
 * deliberately slow check starts, so a concurrent burst cannot overrun it,
 * and given back when the password verifies or was never checked. Requests
 * with no, malformed or Bearer credentials never touch the budget.
 */
export function createAuthenticator(
  verifyAdmin: VerifyAdminPassword,
  verifyBearer: VerifyBearerToken,
  guesses: RateLimiter,
) {
  return async function authenticate(
    authorization: string | undefined,
    client: string,
  ): Promise<Principal | undefined> {
    const credentials = credentialsOf(authorization);
    if (credentials?.scheme === 'bearer') return verifyBearer(credentials.token);
    if (credentials?.scheme !== 'basic') return undefined;

    const wait = guesses.take(client);
    if (wait > 0) throw slowDown(wait);
    let verified: boolean | undefined;
    try {
      verified = await verifyAdmin(credentials.username, credentials.password);
    } finally {
      if (verified !== false) guesses.refund(client);
    }
    return verified ? ADMIN : undefined;
  };
}

export type Authenticate = ReturnType<typeof createAuthenticator>;

export const principalOf = (res: Response): Principal => res.locals.principal as Principal;

/** Who made an admin change, and in which request, for the audit trail. */
export const auditContext = (req: Request, res: Response): AuditContext => ({
  actor: principalOf(res).userId,
  requestId: String(req.id),
});

const unauthenticated = () => new GatewayError('UNAUTHENTICATED', 'credentials are missing or invalid');

/**
 * The admin API's door: `identity` lets any valid identity in and leaves it in
 * `res.locals`; `access(level)` also demands that level on the `Access`
 * resource.
 */
export function createAdminGuard(authenticate: Authenticate) {
  const identity: RequestHandler = async (req, res, next) => {
    const principal = await authenticate(req.get('authorization'), req.ip ?? '');
    if (!principal) {
      res.set('WWW-Authenticate', 'Basic realm="m2m-gateway", Bearer');
      throw unauthenticated();
    }
    res.locals.principal = principal;
    next();
  };

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
