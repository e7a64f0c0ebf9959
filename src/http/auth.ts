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

/**
 * Turns an Authorization header into a Principal: Basic for the bootstrap
 * admin, Bearer for tokens this gateway minted (SPEC §2).
 */
export function createAuthenticator(verifyAdmin: VerifyAdminPassword, verifyBearer: VerifyBearerToken) {
  return async function authenticate(authorization: string | undefined): Promise<Principal | undefined> {
    const [scheme = '', credentials = ''] = (authorization ?? '').trim().split(/\s+/, 2);
    switch (scheme.toLowerCase()) {
      case 'basic': {
        const decoded = Buffer.from(credentials, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) return undefined;
        return (await verifyAdmin(decoded.slice(0, colon), decoded.slice(colon + 1))) ? ADMIN : undefined;
      }
      case 'bearer':
        return credentials === '' ? undefined : verifyBearer(credentials);
      default:
        return undefined;
    }
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

/** Failed admin logins allowed per client address and minute before the address must wait. */
export const ADMIN_FAILURES_PER_MINUTE = 10;

const slowDown = (seconds: number) => tooManyRequests('too many failed logins from this address', seconds);

/**
 * The admin API's door: `identity` lets any valid identity in and leaves it in
 * `res.locals`; `access(level)` also demands that level on the `Access`
 * resource (SPEC §2). An address that keeps failing is made to wait,
 * whatever it sends next (brute force).
 */
export function createAdminGuard(authenticate: Authenticate, failures: RateLimiter) {
  const identity: RequestHandler = async (req, res, next) => {
    const client = req.ip ?? '';
    const wait = failures.wait(client);
    if (wait > 0) throw slowDown(wait);
    const principal = await authenticate(req.get('authorization'));
    if (!principal) {
      const penalty = failures.take(client);
      if (penalty > 0) throw slowDown(penalty);
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
