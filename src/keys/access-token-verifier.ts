import { jwtVerify, type JWTPayload } from 'jose';
import { CONSOLE_AUDIENCE, configIdOfSubject } from '../domain/access-token.js';
import type { FlatClaims } from '../domain/claims.js';
import type { ConfigCache, RoleCache } from '../domain/config-cache.js';
import { isJsonObject } from '../domain/problems.js';
import { resolvePolicyRoles } from '../domain/policy.js';
import type { Role } from '../domain/roles.js';
import { ADMIN_USERNAME, adminPrincipal, type Principal, type VerifyBearerToken } from '../domain/principal.js';
import { TOKEN_SIGNING_ALGS } from '../config.js';
import type { KeyRing } from './signing-keys.js';

export interface AccessTokenVerifierDeps {
  readonly keyRing: KeyRing;
  readonly issuer: string;
  readonly configs: ConfigCache;
  readonly roles: RoleCache;
  readonly now: () => Date;
  /** The digest of the admin password a console session must have been signed in with (src/keys/admin-password.ts). */
  readonly adminCredential: () => Promise<string | undefined>;
}

/** `external_user.attributes` back into claims, if it has that shape. */
function attributesOf(payload: JWTPayload): FlatClaims | undefined {
  const external = payload.external_user;
  if (!isJsonObject(external) || !isJsonObject(external.attributes)) return undefined;
  const claims = new Map<string, string[]>();
  for (const [key, values] of Object.entries(external.attributes)) {
    if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) return undefined;
    claims.set(key, values);
  }
  return claims;
}

/**
 * Accepts a token this gateway minted as admin API credentials (docs/reference.md §2,
 * §3.6): valid signature from a published key, not expired, its config still
 * there (deleting a config revokes its tokens at once), and its roles
 * evaluated again against the config's current mappings. A console session
 * signed in with the admin password (§6.6) is the admin for as long as that
 * password stays the same.
 */
export function createAccessTokenVerifier(deps: AccessTokenVerifierDeps): VerifyBearerToken {
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        // A kid not known here may be another replica's key of a moment ago: the ring reads the keys again once.
        async (header) => {
          const key = await deps.keyRing.findVerificationKey(header.kid);
          if (!key) throw new Error('unknown key');
          return key;
        },
        {
          issuer: deps.issuer,
          algorithms: [...TOKEN_SIGNING_ALGS],
          typ: 'JWT',
          requiredClaims: ['exp', 'iat', 'sub', 'aud', 'jti'],
          currentDate: deps.now(),
        },
      ));
    } catch {
      return undefined;
    }

    if (Array.isArray(payload.aud) && payload.aud.length === 1 && payload.aud[0] === CONSOLE_AUDIENCE) {
      const credential = await deps.adminCredential();
      const signedInWithTheCurrentPassword =
        payload.sub === ADMIN_USERNAME && credential !== undefined && payload.admin_credential === credential;
      return signedInWithTheCurrentPassword ? adminPrincipal(new Date(payload.exp! * 1000)) : undefined;
    }
    const configId = typeof payload.sub === 'string' ? configIdOfSubject(payload.sub) : undefined;
    if (!configId || !Array.isArray(payload.aud) || payload.aud[0] !== configId) return undefined;
    const active = deps.configs.byId(configId);
    const attributes = attributesOf(payload);
    // A config deleted, created again or trusting something else since the token was minted revokes it.
    if (!active || active.unusable !== undefined || payload.config_incarnation !== active.config.incarnation) {
      return undefined;
    }
    if (!attributes) return undefined;

    const roles = resolvePolicyRoles(active.policy, attributes)
      .map((name) => deps.roles.get(name))
      .filter((role): role is Role => role !== undefined);
    if (roles.length === 0) return undefined;

    const external = payload.external_user as { user_id?: unknown; full_name?: unknown };
    return {
      userId: payload.sub!,
      friendlyName: typeof external.full_name === 'string' ? external.full_name : payload.sub!,
      roles,
      authProvider: { id: active.config.id, name: active.config.issuer, type: active.config.type },
      expires: new Date(payload.exp! * 1000),
      attributes: Object.fromEntries(attributes),
    } satisfies Principal;
  };
}
