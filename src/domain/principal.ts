import type { Role } from './roles.js';

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
