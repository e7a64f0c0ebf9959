import { GatewayError, tooManyRequests } from '../errors.js';
import { buildAccessTokenClaims, type AccessTokenClaims, type ConsoleSessionClaims } from './access-token.js';
import { InvalidClaimsError, flattenClaims, type FlatClaims } from './claims.js';
import { formatDuration } from './go-duration.js';
import { IdentityError, identify, type Identity } from './identity.js';
import { MalformedJwsError, decodeUnverifiedJws } from './jws.js';
import type { JsonObject } from './problems.js';
import type { M2mConfig, StoredM2mConfig } from './m2m-config.js';
import { explainPolicy, failedCondition, type CompiledPolicy, type PolicyOutcome } from './policy.js';
import { resolveRoles } from './role-mapping.js';

/** A stored config, ready for exchanges: policy compiled, durations parsed. */
export interface ActiveConfig {
  readonly config: StoredM2mConfig;
  readonly policy: CompiledPolicy;
  readonly lifetimeSeconds: number;
  /** maxTokenAge in seconds; undefined when off. */
  readonly maxTokenAgeSeconds: number | undefined;
  /** Set when the stored config could not be compiled: it is refused, never skipped. */
  readonly unusable?: string;
}

export interface ConfigLookup {
  /** Every config of exactly this issuer (one per audience). */
  configsOf(issuer: string): readonly ActiveConfig[];
}

/** The check of verification that refused a token: it names the step of the decision. */
export type VerificationCheck = 'signature' | 'exp' | 'nbf' | 'iat' | 'audience' | 'tokenReview';

/** An ID token the verifier refused, with a reason safe to tell the caller. */
export class IdTokenRejected extends Error {
  override readonly name = 'IdTokenRejected';

  constructor(
    readonly reason: string,
    readonly check: VerificationCheck = 'signature',
  ) {
    super(reason);
  }
}

export interface IdTokenVerifier {
  /**
   * Verifies the token against the config's issuer and audience: signature,
   * `exp`, `nbf`, `iat` (with the clock skew) and `aud`. It decodes the token
   * itself: nothing decoded to pick the config is trusted.
   *
   * @returns the verified payload
   * @throws IdTokenRejected, or GatewayError UNAVAILABLE when the issuer's keys cannot be had
   */
  verify(idToken: string, config: M2mConfig): Promise<Readonly<Record<string, unknown>>>;
}

export interface TokenSigner {
  sign(claims: AccessTokenClaims | ConsoleSessionClaims): Promise<{ token: string; kid: string; alg: string }>;
}

/** Single-use ID tokens (by issuer and `jti`), shared by every replica. */
export interface ReplayGuard {
  /** @returns false when the token was claimed before */
  claimOnce(issuer: string, jti: string, forgetAfter: Date): Promise<boolean>;
  /** Whether the token was claimed, without claiming it (explain). */
  isClaimed(issuer: string, jti: string): Promise<boolean>;
}

export interface ExchangeDeps {
  readonly configs: ConfigLookup;
  readonly verifier: IdTokenVerifier;
  readonly signer: TokenSigner;
  readonly replays: ReplayGuard;
  /** `iss` of the gateway's own tokens, which are never accepted as ID tokens. */
  readonly gatewayIssuer: string;
  readonly clockSkewSeconds: number;
  readonly now: () => Date;
  readonly newJti: () => string;
  /** Per-config admission of granted exchanges: 0 to go ahead, else the seconds to wait. */
  readonly admitConfig?: (configId: string) => number;
  /** Told every decision, granted or refused, with the same facts that were judged (audit, metrics). */
  readonly observe?: (decision: Decision, idToken: string, context: ExchangeContext) => void;
}

/** Who asked, for the observers: the request's id and when it started (performance.now()). */
export interface ExchangeContext {
  readonly requestId: string;
  readonly startedAt: number;
}

export interface DecisionStep {
  readonly name: string;
  readonly ok: boolean;
  /** Filled for every step when explaining; on an exchange only for the step that refused. */
  readonly detail: string;
}

/** Everything one exchange or explain found, in the order it was judged. */
export interface Decision {
  readonly steps: DecisionStep[];
  /** The answer to the caller when refused: a GatewayError whose message is safe to show. */
  refusal?: GatewayError;
  /** What refused it, for admins (audit, explain): more than the caller is told. */
  reason?: string;
  issuer?: string;
  header?: JsonObject;
  /** The payload as decoded to choose the config; the verified one once the signature held. */
  payload?: JsonObject;
  active?: ActiveConfig;
  /** The verified payload, flattened; set once the signature held. */
  claims?: FlatClaims;
  unmatchable: readonly string[];
  roles: readonly string[];
  policy?: PolicyOutcome;
  identity?: Identity;
  accessClaims?: AccessTokenClaims;
  accessToken?: string;
  accessTokenKid?: string;
}

/** ID tokens larger than this are refused before any parsing. */
export const MAX_ID_TOKEN_BYTES = 16 * 1024;

/** The message callers get when no role results, whichever of conditions or mappings refused: the policy stays private. */
export const NO_VALID_ROLE = 'no valid role: no mapping of the config matches the ID token';

const unauthenticated = (message: string) => new GatewayError('UNAUTHENTICATED', message);
const invalidToken = (reason: string) => unauthenticated(`ID token is invalid: ${reason}`);

/** Records the steps of one decision; details are only worked out when they will be read. */
class Judge {
  readonly decision: Decision = { steps: [], unmatchable: [], roles: [] };

  constructor(readonly explaining: boolean) {}

  pass(name: string, detail: () => string): void {
    this.decision.steps.push({ name, ok: true, detail: this.explaining ? detail() : '' });
  }

  /** Records the refusal and returns the decision, so that callers can `return judge.refuse(...)`. */
  refuse(name: string, refusal: GatewayError, reason = refusal.message): Decision {
    this.decision.steps.push({ name, ok: false, detail: reason });
    this.decision.refusal = refusal;
    this.decision.reason = reason;
    return this.decision;
  }
}

/** The latest instant a Date (and PostgreSQL) can hold, in seconds: 275760-09-13. */
const MAX_TIME_SECONDS = 8.64e12;
/** A token time as RFC 3339, or as its number where no date can hold it (1e300 is a valid JSON number). */
const iso = (seconds: number) =>
  Math.abs(seconds) <= MAX_TIME_SECONDS
    ? new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
    : String(seconds);
const span = (seconds: number) => formatDuration(Math.abs(Math.round(seconds)));
/** At most this many values are quoted in a reason: a claim may hold a thousand. */
const QUOTED_VALUES = 10;
const quoteList = (values: readonly string[]) => {
  const quoted = values
    .slice(0, QUOTED_VALUES)
    .map((value) => JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value));
  return `[${quoted.join(', ')}${values.length > QUOTED_VALUES ? `, … ${values.length - QUOTED_VALUES} more` : ''}]`;
};
const audiencesOf = (aud: unknown): string[] =>
  typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];

/**
 * A config's choice among those of one issuer: the one whose audience the
 * token names; else the one without audience; several that match are refused.
 * With a single config of audiences the token lacks, that one is chosen, so
 * that verification names the audience it expected.
 */
function chooseConfig(candidates: readonly ActiveConfig[], aud: unknown): ActiveConfig | ActiveConfig[] | undefined {
  // The common case, one config per issuer, whatever the token's audience: verification judges `aud`.
  if (candidates.length === 1) return candidates[0];
  const audiences = audiencesOf(aud);
  const named = candidates.filter(({ config }) => config.audience !== '' && audiences.includes(config.audience));
  if (named.length > 1) return named;
  return named[0] ?? candidates.find(({ config }) => config.audience === '');
}

/** Why verification refused, with the expected and actual values where they help (they are not secret). */
function verificationReason(
  check: VerificationCheck,
  reason: string,
  payload: JsonObject,
  config: M2mConfig,
  now: number,
): string {
  const { exp, nbf, iat } = payload;
  switch (check) {
    case 'exp':
      return typeof exp === 'number' ? `expired ${span(now - exp)} ago (${iso(exp)})` : reason;
    case 'nbf':
      return typeof nbf === 'number' ? `not yet valid: valid from ${iso(nbf)} (in ${span(nbf - now)})` : reason;
    case 'iat':
      return typeof iat === 'number' ? `issued in the future (${iso(iat)}, ${span(iat - now)} ahead)` : reason;
    case 'audience':
      return `audience mismatch: expected ${JSON.stringify(config.audience)}, token has ${quoteList(audiencesOf(payload.aud))}`;
    default:
      return reason;
  }
}

/**
 * Judges an ID token as an exchange would: peek `iss` → choose the config →
 * verify → flatten claims → conditions → mappings → identity → hygiene,
 * recording each step in `judge`. Never mints; when explaining, spends
 * neither a single-use id nor the config's budget.
 */
async function decide(deps: ExchangeDeps, idToken: string, judge: Judge): Promise<Decision> {
  const { decision } = judge;
  if (Buffer.byteLength(idToken) > MAX_ID_TOKEN_BYTES) {
    return judge.refuse(
      'token',
      new GatewayError('INVALID_ARGUMENT', `the ID token is larger than ${MAX_ID_TOKEN_BYTES} bytes`),
    );
  }
  let unverified;
  try {
    unverified = decodeUnverifiedJws(idToken);
  } catch (error) {
    if (!(error instanceof MalformedJwsError)) throw error;
    return judge.refuse(
      'token',
      new GatewayError('INVALID_ARGUMENT', `the ID token is not a compact JWS: ${error.message}`),
    );
  }
  const { header, payload, payloadText } = unverified;
  decision.header = header;
  decision.payload = payload;
  if (typeof payload.iss !== 'string' || payload.iss === '') {
    return judge.refuse('token', new GatewayError('INVALID_ARGUMENT', 'the ID token has no iss'));
  }
  const issuer = (decision.issuer = payload.iss);
  if (
    issuer === deps.gatewayIssuer ||
    (typeof header.typ === 'string' && /^(application\/)?at\+jwt$/i.test(header.typ))
  ) {
    return judge.refuse('token', invalidToken('access tokens are not ID tokens'));
  }
  judge.pass(
    'token',
    () => `a compact JWS signed with ${String(header.alg)}, key ${JSON.stringify(header.kid ?? null)}`,
  );

  const candidates = deps.configs.configsOf(issuer);
  if (candidates.length === 0)
    return judge.refuse('issuer', unauthenticated(`issuer ${JSON.stringify(issuer)} is not configured`));
  judge.pass('issuer', () => `${candidates.length} config(s) of issuer ${JSON.stringify(issuer)}`);

  const chosen = chooseConfig(candidates, payload.aud);
  if (Array.isArray(chosen)) {
    return judge.refuse(
      'config',
      unauthenticated(`several configs of issuer ${JSON.stringify(issuer)} accept this token`),
      `configs ${chosen.map(({ config }) => config.id).join(', ')} all name an audience the token has`,
    );
  }
  if (!chosen) {
    const expected = candidates.map(({ config }) => config.audience);
    return judge.refuse(
      'config',
      unauthenticated(`issuer ${JSON.stringify(issuer)} is not configured`),
      `no config of issuer ${JSON.stringify(issuer)} takes this token: audiences ${quoteList(expected)}, token has ${quoteList(audiencesOf(payload.aud))}`,
    );
  }
  const active = (decision.active = chosen);
  const { config } = active;
  if (active.unusable !== undefined) {
    return judge.refuse(
      'config',
      new GatewayError(
        'UNAVAILABLE',
        `the config of issuer ${JSON.stringify(issuer)} cannot be used; see the gateway's log`,
      ),
      `config ${config.id} cannot be compiled: ${active.unusable}`,
    );
  }
  judge.pass(
    'config',
    () =>
      `config ${config.id}${config.audience === '' ? ' (no audience)' : ` (audience ${JSON.stringify(config.audience)})`}`,
  );

  const signatureVerified = () => `verified with key ${JSON.stringify(header.kid ?? null)}`;
  let verified;
  try {
    verified = await deps.verifier.verify(idToken, config);
  } catch (error) {
    if (!(error instanceof IdTokenRejected)) {
      if (error instanceof GatewayError) return judge.refuse('signature', error);
      throw error;
    }
    const reason = verificationReason(error.check, error.reason, payload, config, deps.now().getTime() / 1000);
    // jose checks the signature before any claim: a refused claim means the signature held.
    if (error.check !== 'signature' && error.check !== 'tokenReview') judge.pass('signature', signatureVerified);
    return judge.refuse(error.check, invalidToken(reason));
  }
  const now = deps.now().getTime() / 1000;
  judge.pass('signature', signatureVerified);
  if (judge.explaining) {
    const { exp, nbf, iat } = verified;
    judge.pass('exp', () => (typeof exp === 'number' ? `expires in ${span(exp - now)} (${iso(exp)})` : 'absent'));
    judge.pass('nbf', () => (typeof nbf === 'number' ? `valid since ${iso(nbf)}` : 'absent'));
    judge.pass('iat', () => (typeof iat === 'number' ? `issued ${span(now - iat)} ago (${iso(iat)})` : 'absent'));
    judge.pass('audience', () =>
      config.audience === ''
        ? `not checked: the config names no audience; token has ${quoteList(audiencesOf(verified.aud))}`
        : `expected ${JSON.stringify(config.audience)}, token has ${quoteList(audiencesOf(verified.aud))}`,
    );
  }
  // The payload text decoded above is the segment whose signature was just verified: it tells which numbers
  // JSON.parse rounded.
  await judgeClaims(deps, judge, active, verified, payloadText, now);
  return decision;
}

/**
 * The steps after verification, shared by exchanges and by explaining
 * claims: flatten, conditions, mappings, identity, hygiene.
 */
async function judgeClaims(
  deps: ExchangeDeps,
  judge: Judge,
  active: ActiveConfig,
  payload: Readonly<Record<string, unknown>>,
  payloadText: string | undefined,
  now: number,
  token = true,
): Promise<void> {
  const { decision } = judge;
  const { config, policy } = active;
  let flattened;
  try {
    flattened = flattenClaims(payload, payloadText);
  } catch (error) {
    if (!(error instanceof InvalidClaimsError)) throw error;
    judge.refuse('claims', invalidToken(error.message));
    return;
  }
  const claims = (decision.claims = flattened.claims);
  decision.unmatchable = flattened.unmatchable;
  judge.pass('claims', () =>
    flattened.unmatchable.length === 0
      ? `${claims.size} claims`
      : `${claims.size} claims; unmatchable: ${flattened.unmatchable.join(', ')}`,
  );

  if (judge.explaining) decision.policy = explainPolicy(config, policy, claims);
  const failed = failedCondition(policy, claims);
  if (failed) {
    const values = claims.get(failed.key);
    judge.refuse(
      'conditions',
      unauthenticated(NO_VALID_ROLE),
      `condition ${failed.key}: ${values ? `value ${quoteList(values)} does not match` : 'claim is absent, so it cannot match'} ${JSON.stringify(failed.valueExpression)}`,
    );
    return;
  }
  judge.pass('conditions', () => (policy.conditions.length === 0 ? 'none' : `all ${policy.conditions.length} hold`));

  const roles = (decision.roles = resolveRoles(policy.mappings, claims));
  if (roles.length === 0) {
    judge.refuse('mappings', unauthenticated(NO_VALID_ROLE), 'no mapping matches the claims');
    return;
  }
  judge.pass('mappings', () => `roles ${quoteList(roles)}`);

  // Only exchanges that would be granted spend the budget: neither forgeries nor genuine tokens of strangers
  // (anyone can have GitHub sign one) can cut off a config's clients. Explaining spends nothing.
  const wait = judge.explaining ? 0 : (deps.admitConfig?.(config.id) ?? 0);
  if (wait > 0) {
    judge.refuse('budget', tooManyRequests(`too many exchanges for issuer ${JSON.stringify(config.issuer)}`, wait));
    return;
  }

  try {
    decision.identity = identify(config.type, claims);
  } catch (error) {
    if (!(error instanceof IdentityError)) throw error;
    judge.refuse('identity', invalidToken(error.message));
    return;
  }
  judge.pass('identity', () => `user ${JSON.stringify(decision.identity!.userId)}`);

  if (!token) {
    // Claims on their own have no age and no single use: those rules judge an ID token when it is exchanged.
    if (active.maxTokenAgeSeconds !== undefined || config.singleUse) {
      judge.pass('hygiene', () => 'not checked: maxTokenAge and singleUse apply to ID tokens, not to claims');
    }
  } else if (active.maxTokenAgeSeconds !== undefined) {
    const { iat } = payload;
    if (typeof iat !== 'number' || now - iat > active.maxTokenAgeSeconds) {
      judge.refuse(
        'maxTokenAge',
        invalidToken('too old'),
        typeof iat === 'number'
          ? `too old: issued ${span(now - iat)} ago (${iso(iat)}), at most ${config.maxTokenAge} allowed`
          : `too old: no iat, and maxTokenAge is ${config.maxTokenAge}`,
      );
      return;
    }
    judge.pass('maxTokenAge', () => `issued ${span(now - iat)} ago, at most ${config.maxTokenAge}`);
  }

  if (token && config.singleUse) {
    const { jti, exp } = payload;
    if (typeof jti !== 'string' || jti === '') {
      judge.refuse('singleUse', invalidToken('no jti'), 'single use: the token has no jti');
      return;
    }
    // Kept until no clock could still accept the token (a token valid for ever: as long as a date can say).
    const forgetAt = Math.min((typeof exp === 'number' ? exp : now) + deps.clockSkewSeconds, MAX_TIME_SECONDS);
    const forgetAfter = new Date(forgetAt * 1000);
    const issuer = config.issuer;
    const fresh = judge.explaining
      ? !(await deps.replays.isClaimed(issuer, jti))
      : await deps.replays.claimOnce(issuer, jti, forgetAfter);
    if (!fresh) {
      judge.refuse(
        'singleUse',
        invalidToken('already used'),
        `single use: jti ${JSON.stringify(jti)} was exchanged before`,
      );
      return;
    }
    judge.pass('singleUse', () => `jti ${JSON.stringify(jti)} not used before`);
  }

  decision.accessClaims = buildAccessTokenClaims({
    issuer: deps.gatewayIssuer,
    configId: config.id,
    configIncarnation: config.incarnation,
    identity: decision.identity!,
    claims,
    roles,
    lifetimeSeconds: active.lifetimeSeconds,
    jti: deps.newJti(),
    now: deps.now(),
  });
}

/**
 * Trades a third-party ID token for a gateway access token. The observer is
 * told every decision — also one cut short by a failing port (the database
 * behind single use, the signer) — before the caller is answered.
 *
 * @returns the granted decision, with `accessToken` and `accessClaims`
 * @throws GatewayError INVALID_ARGUMENT, UNAUTHENTICATED, RESOURCE_EXHAUSTED or UNAVAILABLE for a refusal
 */
export async function exchangeToken(deps: ExchangeDeps, idToken: string, context: ExchangeContext): Promise<Decision> {
  const judge = new Judge(false);
  const { decision } = judge;
  try {
    await decide(deps, idToken, judge);
    if (!decision.refusal) {
      const { token, kid } = await deps.signer.sign(decision.accessClaims!);
      decision.accessToken = token;
      decision.accessTokenKid = kid;
    }
  } catch (error) {
    // A port failed (the database behind single use, the signer): the observers still learn of the attempt,
    // with a reason that quotes no driver message; the error itself goes to the log through the error handler.
    const known = error instanceof GatewayError ? error : undefined;
    decision.refusal = known ?? new GatewayError('INTERNAL', 'internal error');
    decision.reason = known?.message ?? `internal error (${error instanceof Error ? error.name : typeof error})`;
    decision.steps.push({ name: 'internal', ok: false, detail: decision.reason });
    deps.observe?.(decision, idToken, context);
    throw error;
  }
  deps.observe?.(decision, idToken, context);
  if (decision.refusal) throw decision.refusal;
  return decision;
}

/** The whole exchange without minting or spending a single-use id, every step explained. */
export const explainToken = (deps: ExchangeDeps, idToken: string): Promise<Decision> =>
  decide(deps, idToken, new Judge(true));

/** The steps after verification for claims given directly (explain): against a stored or an unsaved config. */
export async function explainClaims(deps: ExchangeDeps, active: ActiveConfig, payload: JsonObject): Promise<Decision> {
  const judge = new Judge(true);
  judge.decision.active = active;
  judge.decision.issuer = active.config.issuer;
  judge.pass('config', () => `config ${active.config.id || '(unsaved)'}`);
  await judgeClaims(deps, judge, active, payload, undefined, deps.now().getTime() / 1000, false);
  return judge.decision;
}
