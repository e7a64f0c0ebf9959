import { createLocalJWKSet, type CryptoKey, type JSONWebKeySet, type JWTPayload } from 'jose';
import { IdTokenRejected, type IdTokenVerifier, type VerificationCheck } from '../domain/exchange.js';
import { isJsonObject, type JsonObject } from '../domain/problems.js';
import type { M2mConfig, M2mConfigType } from '../domain/m2m-config.js';
import { GatewayError } from '../errors.js';
import {
  jwsKey,
  parseCompactJws,
  verifiedClaims,
  verifyCompactJws,
  type CompactJws,
  type JwsKey,
} from '../keys/jws-node-crypto.js';
import { discoverIssuer, type IssuerMetadata } from './discovery.js';
import { OutboundError, type HttpsJsonClient } from './https-client.js';

/** docs/reference.md §3.2: asymmetric algorithms only; `none` and HS* never. */
export const ASYMMETRIC_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

export interface IdTokenVerifierOptions {
  /** The client for an issuer of this type (Kubernetes issuers may need the gateway's credential). */
  readonly clientFor: (type: M2mConfigType) => HttpsJsonClient;
  readonly clockSkewSeconds: number;
  readonly now: () => Date;
  /** How long after a JWKS fetch (or a failed one) an unknown kid may trigger another. */
  readonly refetchCooldownMs?: number;
  /** How long a discovery document is trusted before it is fetched again with the keys. */
  readonly metadataTtlMs?: number;
  /** The longest a key set is used before it is fetched again (less when the issuer's max-age says so). */
  readonly keySetTtlMs?: number;
  /**
   * How long an exchange waits for an issuer's keys in all: discovery and
   * JWKS, Kubernetes' retries with the bearer included (each call has its own
   * 5 s bound). Keys in the cache are never waited for.
   */
  readonly keyFetchDeadlineMs?: number;
  /** Told about every discovery and JWKS fetch (metrics, issuer health): the key ids fetched, or why it failed. */
  readonly onFetch?: (issuer: string, document: 'discovery' | 'jwks', ok: boolean, detail?: IssuerFetchDetail) => void;
}

export interface IssuerFetchDetail {
  readonly keyIds?: readonly string[];
  /** For admins only: it may name addresses and statuses. */
  readonly reason?: string;
}

interface IssuerState {
  metadata?: IssuerMetadata;
  /** ASYMMETRIC_ALGS ∩ the metadata's `id_token_signing_alg_values_supported`. */
  algorithms: string[];
  metadataAt: number;
  keys?: ReturnType<typeof createLocalJWKSet>;
  /** When `keys` were fetched, and how long they may be used before they must be fetched again. */
  keysFetchedAt: number;
  keysTtl: number;
  /** The key `keys` picked per `alg` and `kid`: jose's choice depends on nothing else. */
  picked: Map<string, Map<string, JwsKey>>;
  lastAttemptAt: number;
  lastError?: GatewayError;
  inflight?: Promise<void>;
}

const invalid = (reason: string, check?: VerificationCheck) => new IdTokenRejected(reason, check);

/** jose's error codes → safe, specific reasons, and the check that refused (the domain adds times and audiences). */
function reasonFor(error: unknown): GatewayError | IdTokenRejected {
  if (error instanceof GatewayError || error instanceof IdTokenRejected) return error;
  const { code, claim, reason } = (error ?? {}) as { code?: string; claim?: string; reason?: string };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return invalid('expired', 'exp');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (reason === 'invalid') return invalid(`the ${claim ?? ''} claim is malformed`);
      switch (claim) {
        case 'aud':
          return invalid('audience mismatch', 'audience');
        case 'iss':
          return invalid('issuer mismatch');
        case 'nbf':
          return invalid('not yet valid', 'nbf');
        case 'iat':
          return invalid('issued in the future', 'iat');
        case 'exp':
          return invalid('no exp');
        default:
          return invalid(`${claim ?? 'a'} claim is invalid`);
      }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('signature');
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return invalid('unknown key');
    case 'ERR_JWK_INVALID':
      return invalid('unusable key');
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return invalid('ambiguous key');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return invalid('algorithm not allowed');
    case 'ERR_JOSE_NOT_SUPPORTED':
      return invalid('unsupported');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JWT_CLAIM_INVALID':
      return invalid('malformed');
    default:
      // WebCrypto refuses a published key whose numbers are not a key: the issuer's fault, the token's refusal.
      if ((error as { name?: string }).name === 'DataError') return invalid('unusable key');
      throw error;
  }
}

function allowedAlgorithms({ idTokenSigningAlgValuesSupported: advertised }: IssuerMetadata): string[] {
  return advertised ? ASYMMETRIC_ALGS.filter((alg) => advertised.includes(alg)) : ASYMMETRIC_ALGS;
}

/** docs/reference.md §3.2 and the hardening rules: a JWKS is refused whole when any of it is suspicious. */
const MAX_JWKS_KEYS = 100;
const MIN_RSA_BITS = 2048;
/** RFC 7518 §6.2.2, §6.3.2, §6.4: members that only a private or symmetric key has. */
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function rsaModulusBits(n: unknown): number {
  if (typeof n !== 'string') return 0;
  const bytes = Buffer.from(n, 'base64url');
  const leadingZeros = bytes.findIndex((byte) => byte !== 0);
  return leadingZeros < 0 ? 0 : (bytes.length - leadingZeros) * 8 - Math.clz32(bytes[leadingZeros]!) + 24;
}

/** RFC 7518 §6.2.1, §6.3.1 and RFC 8037 §2: the members a public key of each type cannot do without. */
const REQUIRED_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  RSA: ['n', 'e'],
  EC: ['crv', 'x', 'y'],
  OKP: ['crv', 'x'],
};

/** A key lacking a required member is left out, so that a token naming it is refused as signed by an unknown key. */
const isComplete = (key: JsonObject): boolean =>
  (REQUIRED_MEMBERS[String(key.kty)] ?? []).every((member) => typeof key[member] === 'string' && key[member] !== '');

function toKeySet(body: unknown): JSONWebKeySet {
  if (!isJsonObject(body) || !Array.isArray(body.keys)) throw new OutboundError('the JWKS has no keys list');
  const keys = body.keys;
  if (keys.length > MAX_JWKS_KEYS) {
    throw new OutboundError(`the JWKS has ${keys.length} keys; at most ${MAX_JWKS_KEYS} are accepted`);
  }
  const kids = new Set<unknown>();
  for (const key of keys) {
    if (!isJsonObject(key)) throw new OutboundError('the JWKS has a key that is not an object');
    if (key.kty === 'oct' || SECRET_MEMBERS.some((member) => member in key)) {
      throw new OutboundError('the JWKS contains private or symmetric key material');
    }
    if (key.kty === 'RSA' && isComplete(key) && rsaModulusBits(key.n) < MIN_RSA_BITS) {
      throw new OutboundError(`the JWKS has an RSA key shorter than ${MIN_RSA_BITS} bits`);
    }
    if (key.kid !== undefined) {
      if (kids.has(key.kid)) throw new OutboundError(`the JWKS has the kid ${JSON.stringify(key.kid)} twice`);
      kids.add(key.kid);
    }
  }
  return { keys: (keys as JsonObject[]).filter(isComplete) as JSONWebKeySet['keys'] };
}

/**
 * Verifies third-party ID tokens (docs/reference.md §3.2). One key cache per issuer shared
 * by all requests: an unknown kid triggers one refetch for everybody, then a
 * cooldown; cached keys keep working while the issuer is down.
 */
export function createIdTokenVerifier(
  options: IdTokenVerifierOptions,
): IdTokenVerifier & { retainOnly(issuers: ReadonlySet<string>): void } {
  const cooldown = options.refetchCooldownMs ?? 10_000;
  const metadataTtl = options.metadataTtlMs ?? 3_600_000;
  const keySetTtl = options.keySetTtlMs ?? 3_600_000;
  const keyFetchDeadline = options.keyFetchDeadlineMs ?? 10_000;
  const states = new Map<string, IssuerState>();
  const nodeKeys = new WeakMap<CryptoKey, JwsKey>();
  const clock = () => options.now().getTime();

  const stateOf = (issuer: string): IssuerState => {
    let state = states.get(issuer);
    if (!state)
      states.set(
        issuer,
        (state = {
          algorithms: ASYMMETRIC_ALGS,
          picked: new Map(),
          metadataAt: 0,
          keysFetchedAt: 0,
          keysTtl: keySetTtl,
          lastAttemptAt: 0,
        }),
      );
    return state;
  };

  async function fetchKeys(state: IssuerState, { issuer, type }: M2mConfig): Promise<void> {
    state.lastAttemptAt = clock();
    const http = options.clientFor(type);
    let document: 'discovery' | 'jwks' = 'discovery';
    try {
      if (!state.metadata || clock() - state.metadataAt > metadataTtl) {
        state.metadata = await discoverIssuer(http, issuer);
        state.algorithms = allowedAlgorithms(state.metadata);
        state.metadataAt = clock();
        options.onFetch?.(issuer, document, true);
      }
      document = 'jwks';
      const { body, maxAgeSeconds } = await http.getJson(state.metadata.jwksUri);
      const keySet = toKeySet(body);
      state.keys = createLocalJWKSet(keySet);
      state.keysFetchedAt = clock();
      // The issuer may ask for less than the hour, but never for more fetches than the cooldown allows.
      state.keysTtl = Math.max(cooldown, Math.min(keySetTtl, (maxAgeSeconds ?? Infinity) * 1000));
      state.picked = new Map();
      state.lastError = undefined;
      options.onFetch?.(issuer, document, true, { keyIds: keySet.keys.map((key) => key.kid ?? '') });
    } catch (error) {
      options.onFetch?.(issuer, document, false, { reason: error instanceof Error ? error.message : String(error) });
      // Strangers see why in general terms; the URL, status or socket code go to the log with the cause.
      const reason = error instanceof OutboundError ? error.publicReason : 'its keys could not be fetched';
      state.lastError = new GatewayError('UNAVAILABLE', `issuer ${JSON.stringify(issuer)} is unavailable: ${reason}`, {
        cause: error,
      });
      throw state.lastError;
    }
  }

  /** Single flight: concurrent callers share one fetch; within the cooldown the last outcome stands. */
  function refresh(state: IssuerState, config: M2mConfig): Promise<void> {
    if (state.inflight) return state.inflight;
    if (clock() - state.lastAttemptAt < cooldown) {
      return state.lastError ? Promise.reject(state.lastError) : Promise.resolve();
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        state.lastError = new GatewayError(
          'UNAVAILABLE',
          `issuer ${JSON.stringify(config.issuer)} is unavailable: its keys took longer than ${keyFetchDeadline / 1000} s`,
        );
        reject(state.lastError);
      }, keyFetchDeadline);
    });
    state.inflight = Promise.race([fetchKeys(state, config), deadline]).finally(() => {
      clearTimeout(timer);
      state.inflight = undefined;
    });
    return state.inflight;
  }

  /**
   * jose's pick from the issuer's keys (it also imports the key for the
   * algorithm, which checks its type and curve); an unknown kid refreshes
   * them once (within the cooldown).
   */
  async function pickKey(state: IssuerState, config: M2mConfig, jws: CompactJws): Promise<JwsKey> {
    const token = { payload: jws.encodedPayload, signature: jws.encodedSignature };
    let keys = state.keys!;
    let cryptoKey: CryptoKey;
    try {
      cryptoKey = await keys(jws.header, token);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw error;
      await refresh(state, config);
      keys = state.keys!;
      cryptoKey = await keys(jws.header, token);
    }
    // jose imports a key once per algorithm (a CryptoKey has one), so its KeyObject is made once too.
    let key = nodeKeys.get(cryptoKey);
    if (key?.alg !== jws.alg) nodeKeys.set(cryptoKey, (key = jwsKey(cryptoKey, jws.alg, 'public')));
    if (keys === state.keys && typeof jws.header.kid === 'string') {
      const byKid = state.picked.get(jws.alg) ?? new Map<string, JwsKey>();
      state.picked.set(jws.alg, byKid.set(jws.header.kid, key));
    }
    return key;
  }

  async function verify(idToken: string, config: M2mConfig): Promise<JWTPayload> {
    const state = stateOf(config.issuer);
    if (!state.keys) await refresh(state, config);
    else if (clock() - state.keysFetchedAt > state.keysTtl) {
      // Expired keys are fetched again before use, so a key the issuer removed stops working; while the
      // issuer is down the cached ones keep working (the failed attempt is remembered for the cooldown).
      await refresh(state, config).catch(() => undefined);
    }
    // A refresh that resolved within the cooldown of an earlier success always left keys; this is a guard.
    if (!state.keys)
      throw (
        state.lastError ?? new GatewayError('UNAVAILABLE', `issuer ${JSON.stringify(config.issuer)} is unavailable`)
      );

    // One instant for jose's time checks and ours.
    const now = options.now();
    try {
      // jose's order: the header and its algorithm, the key, the signature (node:crypto), the claims (jose).
      const jws = parseCompactJws(idToken, state.algorithms);
      const kid = jws.header.kid;
      const key =
        (typeof kid === 'string' ? state.picked.get(jws.alg)?.get(kid) : undefined) ??
        (await pickKey(state, config, jws));
      await verifyCompactJws(jws, key);
      const payload = verifiedClaims(jws, {
        issuer: config.issuer,
        audience: config.audience === '' ? undefined : config.audience,
        clockTolerance: options.clockSkewSeconds,
        requiredClaims: ['exp'],
        currentDate: now,
      });
      if (typeof payload.iat === 'number' && payload.iat > now.getTime() / 1000 + options.clockSkewSeconds) {
        throw invalid('issued in the future', 'iat');
      }
      return payload;
    } catch (error) {
      throw reasonFor(error);
    }
  }

  return {
    verify,
    /** Forgets the keys of every issuer not in `issuers`: a config deleted and created again fetches them anew. */
    retainOnly(issuers: ReadonlySet<string>): void {
      for (const issuer of states.keys()) if (!issuers.has(issuer)) states.delete(issuer);
    },
  };
}
