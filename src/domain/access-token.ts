import type { FlatClaims } from './claims.js';
import type { Identity } from './identity.js';
import { ADMIN_USERNAME } from './principal.js';
import { ADMIN_ROLE, NONE_ROLE } from './roles.js';

/** The payload of a gateway access token (docs/reference.md §3.6). */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: readonly [string];
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly name: string;
  readonly roles: readonly string[];
  /** The incarnation of the config it was minted under: a later one does not accept it. */
  readonly config_incarnation: string;
  readonly external_user: {
    readonly user_id: string;
    readonly full_name: string;
    readonly attributes: Readonly<Record<string, readonly string[]>>;
  };
}

export interface AccessTokenInput {
  readonly issuer: string;
  readonly configId: string;
  readonly configIncarnation: string;
  readonly identity: Identity;
  readonly claims: FlatClaims;
  readonly roles: readonly string[];
  readonly lifetimeSeconds: number;
  readonly jti: string;
  readonly now: Date;
}

/** Builds the claims of a token minted for an exchange; `None` is left out of `roles`. */
export function buildAccessTokenClaims(input: AccessTokenInput): AccessTokenClaims {
  const iat = Math.floor(input.now.getTime() / 1000);
  return {
    iss: input.issuer,
    sub: `sso:${input.configId}:${input.identity.userId}`,
    aud: [input.configId],
    jti: input.jti,
    iat,
    exp: iat + Math.floor(input.lifetimeSeconds),
    name: input.identity.friendlyName,
    roles: input.roles.filter((role) => role !== NONE_ROLE),
    config_incarnation: input.configIncarnation,
    external_user: {
      user_id: input.identity.userId,
      full_name: input.identity.friendlyName,
      attributes: Object.fromEntries(input.claims),
    },
  };
}

/** The configId a gateway token was minted from: `sso:<configId>:<userId>`. */
export function configIdOfSubject(sub: string): string | undefined {
  const match = /^sso:([0-9a-f-]{36}):/.exec(sub);
  return match?.[1];
}

/** The audience of console sessions signed in with the admin password: no config's id, so no downstream service's. */
export const CONSOLE_AUDIENCE = 'm2m-gateway-console';

/** A console session signed in with the admin password (docs/reference.md §6.6). */
export interface ConsoleSessionClaims {
  readonly iss: string;
  readonly sub: typeof ADMIN_USERNAME;
  readonly aud: readonly [typeof CONSOLE_AUDIENCE];
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly name: string;
  readonly roles: readonly [typeof ADMIN_ROLE];
  /** The admin credential it was signed in with (a digest): a new password does not accept it. */
  readonly admin_credential: string;
}

export function buildConsoleSessionClaims(input: {
  readonly issuer: string;
  readonly credential: string;
  readonly lifetimeSeconds: number;
  readonly jti: string;
  readonly now: Date;
}): ConsoleSessionClaims {
  const iat = Math.floor(input.now.getTime() / 1000);
  return {
    iss: input.issuer,
    sub: ADMIN_USERNAME,
    aud: [CONSOLE_AUDIENCE],
    jti: input.jti,
    iat,
    exp: iat + input.lifetimeSeconds,
    name: ADMIN_USERNAME,
    roles: [ADMIN_ROLE],
    admin_credential: input.credential,
  };
}
