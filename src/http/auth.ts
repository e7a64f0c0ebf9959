import type { Request, RequestHandler, Response } from 'express';
import type { AuditContext } from '../domain/audit.js';
import { GatewayError, tooManyRequests } from '../errors.js';
import { ADMIN_ROLE, BUILT_IN_ROLES, grants, type AccessLevel } from '../domain/roles.js';
import type { Principal, VerifyBearerToken } from '../domain/principal.js';
import { ADMIN_USERNAME } from '../keys/admin-password.js';

export type { Principal } from '../domain/principal.js';

/** `priority`: the caller has a clean record, so its check goes ahead of others waiting. */
export type VerifyAdminPassword = (username: string, password: string, priority?: boolean) => Promise<boolean>;

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
 * Turns an Authorization header into a Principal: Basic for the bootstrap
 * admin, Bearer for tokens this gateway minted.
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
  return async function authenticate(
    authorization: string | undefined,
    client: string,
  ): Promise<Principal | undefined> {
    const credentials = credentialsOf(authorization);
    if (credentials?.scheme === 'bearer') return verifyBearer(credentials.token);
    if (credentials?.scheme !== 'basic') return undefined;

    const clean = guesses.isFresh(client);
    const wait = guesses.take(client);
    if (wait > 0) throw slowDown(wait);
    const verified = await verifyAdmin(credentials.username, credentials.password, clean);
    if (verified) guesses.refund(client);
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
