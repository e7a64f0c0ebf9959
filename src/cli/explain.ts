import { activate } from '../domain/config-cache.js';
import { planDeclarative, type DeclaredConfig, type SourceFile } from '../domain/declarative.js';
import { explainClaims, type ExchangeDeps } from '../domain/exchange.js';
import { toExplanation, type Explanation } from '../domain/explain.js';
import { MalformedJwsError, decodeUnverifiedJws } from '../domain/jws.js';
import type { IssuerPolicy, M2mConfig } from '../domain/m2m-config.js';
import { isJsonObject, type JsonObject } from '../domain/problems.js';
import { OFFLINE_STORE } from './check.js';

/** A mistake in what the CLI was given: reported as such (exit 1), not as a crash. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** Said with every offline explain of a token: nothing about it was verified. */
export const OFFLINE_TOKEN_NOTE =
  'offline: the token was decoded, not verified — its signature, exp, nbf, iat and audience were not checked; ' +
  'only its claims were judged';

export interface ExplainInput {
  /** The files of `--config` (one file, or every file of a directory). */
  readonly files: readonly SourceFile[];
  /** `--claims`: a JSON object. */
  readonly claims?: string;
  /** `--token`: a compact JWS, decoded without any check. */
  readonly token?: string;
  /** `--id`: which config, when the files declare several. */
  readonly id?: string;
  readonly policy: IssuerPolicy;
  readonly gatewayIssuer: string;
  readonly now: Date;
}

export interface OfflineExplanation extends Explanation {
  readonly file: string;
  readonly document: number;
  /** Whether the signature and times of a token were checked: never, offline. */
  readonly verified: false;
  readonly notes: readonly string[];
}

const audiencesOf = (aud: unknown): string[] =>
  typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];

/** The config the claims go to: `--id`, the only one, or the one an exchange would choose by `iss` and `aud`. */
function chooseConfig(configs: readonly DeclaredConfig[], claims: JsonObject, id: string | undefined): DeclaredConfig {
  if (id !== undefined) {
    const chosen = configs.find(({ config }) => config.id === id.toLowerCase());
    if (!chosen) throw new InputError(`no valid config with id ${id} in --config`);
    return chosen;
  }
  if (configs.length === 1) return configs[0]!;
  const ofIssuer = configs.filter(({ config }) => config.issuer === claims.iss);
  const audiences = audiencesOf(claims.aud);
  const named = ofIssuer.filter(({ config }) => config.audience !== '' && audiences.includes(config.audience));
  const chosen =
    named.length === 1
      ? named[0]
      : named.length === 0
        ? ofIssuer.find(({ config }) => config.audience === '')
        : undefined;
  if (!chosen) {
    throw new InputError(
      `--config declares ${configs.length} configs and none is chosen for iss ${JSON.stringify(claims.iss ?? null)} ` +
        `and aud ${JSON.stringify(audiences)}; give --id`,
    );
  }
  return chosen;
}

function readClaims(input: ExplainInput): { claims: JsonObject; notes: string[] } {
  if (input.token !== undefined) {
    try {
      return { claims: decodeUnverifiedJws(input.token.trim()).payload, notes: [OFFLINE_TOKEN_NOTE] };
    } catch (error) {
      if (error instanceof MalformedJwsError) throw new InputError(`--token is not a compact JWS: ${error.message}`);
      throw error;
    }
  }
  let claims: unknown;
  try {
    claims = JSON.parse(input.claims ?? '');
  } catch (error) {
    throw new InputError(`--claims is not JSON: ${(error as Error).message}`);
  }
  if (!isJsonObject(claims)) throw new InputError('--claims must hold a JSON object (an ID token payload)');
  return { claims, notes: [] };
}

/**
 * `m2m-gateway explain`: explain (docs/reference.md §6.4) of claims, or of a token's
 * claims, against a config from files, offline. The steps after verification
 * are the exchange's own (explainClaims); no key is fetched and nothing is
 * minted.
 *
 * @throws InputError when the config files have problems or the input is not usable
 */
export async function explainOffline(input: ExplainInput): Promise<OfflineExplanation> {
  const plan = planDeclarative(input.files, OFFLINE_STORE, input.policy);
  if (plan.errors.length > 0) {
    throw new InputError(
      `--config has problems (run m2m-gateway check):\n${plan.errors
        .flatMap((error) => error.problems.map((problem) => `${error.file}:${problem.line}: ${problem.message}`))
        .join('\n')}`,
    );
  }
  if (plan.configs.length === 0) throw new InputError('--config declares no AuthMachineToMachineConfig');
  const { claims, notes } = readClaims(input);
  const { ref, config } = chooseConfig(plan.configs, claims, input.id);
  notes.push(...exchangeNotes(claims, config, input.now, input.token !== undefined));
  const deps: ExchangeDeps = {
    configs: { configsOf: () => [] },
    verifier: {
      verify: () => Promise.reject(new Error('offline: nothing is verified')),
    },
    signer: { sign: () => Promise.reject(new Error('offline: nothing is minted')) },
    replays: { claimOnce: async () => false, isClaimed: async () => false },
    gatewayIssuer: input.gatewayIssuer,
    clockSkewSeconds: 0,
    now: () => input.now,
    newJti: () => '00000000-0000-4000-8000-000000000000',
  };
  const decision = await explainClaims(deps, activate({ ...config, incarnation: '', origin: 'DECLARATIVE' }), claims);
  return { ...toExplanation(decision), file: ref.file, document: ref.document, verified: false, notes };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/** What an exchange would check first and offline cannot judge for it: said, not decided. */
function exchangeNotes(claims: JsonObject, config: M2mConfig, now: Date, token: boolean): string[] {
  const notes: string[] = [];
  if (claims.iss !== undefined && claims.iss !== config.issuer) {
    notes.push(`note: iss ${JSON.stringify(claims.iss)} is not the config's issuer ${JSON.stringify(config.issuer)}`);
  }
  if (config.audience !== '' && claims.aud !== undefined && !audiencesOf(claims.aud).includes(config.audience)) {
    notes.push(
      `note: aud ${JSON.stringify(claims.aud)} lacks the config's audience ${JSON.stringify(config.audience)}`,
    );
  }
  if (token && typeof claims.exp === 'number' && claims.exp * 1000 < now.getTime()) {
    notes.push(`note: the token expired at ${iso(claims.exp)}; an exchange would refuse it`);
  }
  return notes;
}

const mark = (ok: boolean) => (ok ? 'ok  ' : 'FAIL');

/** The explanation for people: the decision, every step, conditions, mappings and roles. */
export function formatExplanation(explanation: OfflineExplanation): string[] {
  const lines = [
    `config ${explanation.configId} (${explanation.file} document ${explanation.document})`,
    ...explanation.notes,
    `decision: ${explanation.decision}${explanation.reason === '' ? '' : ` (${explanation.reason})`}`,
    'steps:',
    ...explanation.steps.map((step) => `  ${mark(step.ok)} ${step.name}: ${step.detail}`),
  ];
  const outcomes = [
    ['conditions', explanation.conditions],
    ['mappings', explanation.mappings],
  ] as const;
  for (const [name, list] of outcomes) {
    if (list.length === 0) continue;
    lines.push(`${name}:`);
    for (const item of list as {
      key: string;
      valueExpression: string;
      role?: string;
      matched: boolean;
      value: string;
    }[]) {
      const target = item.role === undefined ? '' : ` -> ${item.role}`;
      const matched = item.matched ? ` (matched ${JSON.stringify(item.value)})` : '';
      lines.push(`  ${mark(item.matched)} ${item.key} ~ ${JSON.stringify(item.valueExpression)}${target}${matched}`);
    }
  }
  if (explanation.unmatchable.length > 0) lines.push(`unmatchable claims: ${explanation.unmatchable.join(', ')}`);
  lines.push(`roles: ${explanation.roles.length === 0 ? '(none)' : explanation.roles.join(', ')}`);
  return lines;
}
