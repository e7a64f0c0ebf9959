import { ADMIN_ROLE, BUILT_IN_ROLES, type Role } from './roles.js';

/** Who is calling the admin API, in the shape of `/v1/auth/status` (docs/reference.md §2). */
export interface Principal {
  readonly userId: string;
  readonly friendlyName: string;
  readonly roles: readonly Role[];
  readonly authProvider: { readonly id: string; readonly name: string; readonly type: string };
  readonly expires?: Date;
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

/** Resolves a gateway-minted bearer token; undefined when it is not valid (now). */
export type VerifyBearerToken = (token: string) => Promise<Principal | undefined>;

/** The bootstrap admin's user name (docs/reference.md §2). */
export const ADMIN_USERNAME = 'admin';

const adminRole = BUILT_IN_ROLES.find((role) => role.name === ADMIN_ROLE)!;

/** The bootstrap admin, signed in with the password: on the API (Basic) or in the console (`expires` is the session's end). */
export const adminPrincipal = (expires?: Date): Principal => ({
  userId: ADMIN_USERNAME,
  friendlyName: ADMIN_USERNAME,
  roles: [adminRole],
  authProvider: { id: 'basic', name: 'Login with username/password', type: 'basic' },
  ...(expires ? { expires } : {}),
  attributes: { username: [ADMIN_USERNAME], role: [ADMIN_ROLE] },
});
