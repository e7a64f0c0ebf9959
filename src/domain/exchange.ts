import { GatewayError, invalidArgument, tooManyRequests } from '../errors.js';
import { buildAccessTokenClaims, type AccessTokenClaims } from './access-token.js';
import { InvalidClaimsError, flattenClaims } from './claims.js';
import { IdentityError, identify } from './identity.js';
import { MalformedJwsError, decodeUnverifiedJws } from './jws.js';
import type { JsonObject } from './problems.js';
import type { M2mConfig, StoredM2mConfig } from './m2m-config.js';
import { resolveRoles, type CompiledMappings } from './role-mapping.js';

/** A stored config, ready for exchanges: mappings compiled, lifetime parsed. */
export interface ActiveConfig {
  readonly config: StoredM2mConfig;
  readonly mappings: CompiledMappings;
  readonly lifetimeSeconds: number;
  /** Set when the stored config could not be compiled: it is refused, never skipped. */
  readonly unusable?: string;
}

export interface ConfigLookup {
  byIssuer(issuer: string): ActiveConfig | undefined;
}

export interface IdTokenVerifier {
  /**
   * Verifies the token against the config's issuer and audience (SPEC §3.2).
   * `header` is its protected header as decoded to pick the config, which may
   * only help to find the key; verification trusts nothing in it.
   *
   * @returns the verified payload
   * @throws GatewayError UNAUTHENTICATED with a safe reason, or UNAVAILABLE
   */
  verify(idToken: string, config: M2mConfig, header: JsonObject): Promise<Readonly<Record<string, unknown>>>;
}

export interface TokenSigner {
  sign(claims: AccessTokenClaims): Promise<{ token: string; kid: string; alg: string }>;
}

export interface ExchangeDeps {
  readonly configs: ConfigLookup;
  readonly verifier: IdTokenVerifier;
  readonly signer: TokenSigner;
  /** `iss` of the gateway's own tokens, which are never accepted as ID tokens. */
  readonly gatewayIssuer: string;
  readonly now: () => Date;
  readonly newJti: () => string;
  /** Per-issuer admission: 0 to go ahead, else the seconds to wait. */
  readonly admitIssuer?: (issuer: string) => number;
}

export interface ExchangeResult {
  readonly accessToken: string;
  readonly claims: AccessTokenClaims;
  readonly config: M2mConfig;
  readonly kid: string;
  /** The exchanged token's `sub`, `kid` and `alg`, for the audit record. */
  readonly idToken: { readonly subject: unknown; readonly kid: unknown; readonly alg: unknown };
}

/** SPEC §3.1: ID tokens larger than this are refused before any parsing. */
export const MAX_ID_TOKEN_BYTES = 16 * 1024;

const unauthenticated = (message: string) => new GatewayError('UNAUTHENTICATED', message);

/**
 * Trades a third-party ID token for a gateway access token (SPEC §3.1):
 * peek `iss` → find config → verify → flatten claims → resolve roles → mint.
 *
 * @throws GatewayError INVALID_ARGUMENT, UNAUTHENTICATED or UNAVAILABLE
 */
export async function exchangeToken(deps: ExchangeDeps, idToken: unknown): Promise<ExchangeResult> {
  if (typeof idToken !== 'string' || idToken === '') throw invalidArgument('idToken is required');
  if (Buffer.byteLength(idToken) > MAX_ID_TOKEN_BYTES) {
    throw invalidArgument(`idToken is larger than ${MAX_ID_TOKEN_BYTES} bytes`);
  }

  let unverified;
  try {
    unverified = decodeUnverifiedJws(idToken);
  } catch (error) {
    if (!(error instanceof MalformedJwsError)) throw error;
    throw invalidArgument(`idToken is not a compact JWS: ${error.message}`);
  }
  const { header, payload } = unverified;
  if (typeof payload.iss !== 'string' || payload.iss === '') throw invalidArgument('the ID token has no iss');
  const issuer = payload.iss;
  if (
    issuer === deps.gatewayIssuer ||
    (typeof header.typ === 'string' && /^(application\/)?at\+jwt$/i.test(header.typ))
  ) {
    throw unauthenticated('ID token is invalid: access tokens are not ID tokens');
  }

  const active = deps.configs.byIssuer(issuer);
  if (!active) throw unauthenticated(`issuer ${JSON.stringify(issuer)} is not configured`);
  if (active.unusable !== undefined) {
    throw new GatewayError(
      'UNAVAILABLE',
      `the config of issuer ${JSON.stringify(issuer)} cannot be used; see the gateway's log`,
    );
  }
  const { config } = active;

  const verified = await deps.verifier.verify(idToken, config, header);
  // Only tokens the issuer really signed spend its budget: forgeries naming it cannot cut off its clients.
  const wait = deps.admitIssuer?.(issuer) ?? 0;
  if (wait > 0) throw tooManyRequests(`too many exchanges for issuer ${JSON.stringify(issuer)}`, wait);
  let claims;
  try {
    // The payload text decoded above is the segment whose signature was just verified: it tells which numbers
    // JSON.parse rounded.
    ({ claims } = flattenClaims(verified, unverified.payloadText));
  } catch (error) {
    if (!(error instanceof InvalidClaimsError)) throw error;
    throw unauthenticated(`ID token is invalid: ${error.message}`);
  }
  const roles = resolveRoles(active.mappings, claims);
  if (roles.length === 0) throw unauthenticated('no valid role: no mapping of the config matches the ID token');

  let identity;
  try {
    identity = identify(config.type, claims);
  } catch (error) {
    if (!(error instanceof IdentityError)) throw error;
    throw unauthenticated(`ID token is invalid: ${error.message}`);
  }

  const accessClaims = buildAccessTokenClaims({
    issuer: deps.gatewayIssuer,
    configId: config.id,
    configIncarnation: config.incarnation,
    identity,
    claims,
    roles,
    lifetimeSeconds: active.lifetimeSeconds,
    jti: deps.newJti(),
    now: deps.now(),
  });
  const { token, kid } = await deps.signer.sign(accessClaims);
  return {
    accessToken: token,
    claims: accessClaims,
    config,
    kid,
    idToken: { subject: verified.sub, kid: header.kid, alg: header.alg },
  };
}
