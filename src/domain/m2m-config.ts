import { Problems, isJsonObject, type JsonObject } from './problems.js';
import { DurationSyntaxError, NANOS_PER_SECOND, parseGoDuration } from './go-duration.js';
import type { Origin } from './origin.js';
import { MAX_ROLE_NAME_LENGTH } from './roles.js';
import { MappingSetError, compileMappings, valueExpressionProblem } from './role-mapping.js';

export const M2M_CONFIG_TYPES = ['GENERIC', 'GITHUB_ACTIONS', 'KUBE_SERVICE_ACCOUNT'] as const;
export type M2mConfigType = (typeof M2M_CONFIG_TYPES)[number];

export interface RoleMapping {
  readonly key: string;
  readonly valueExpression: string;
  readonly role: string;
}

/** Must hold (all of them) before any mapping is evaluated: same syntax and whole-value matching as mappings. */
export interface Condition {
  readonly key: string;
  readonly valueExpression: string;
}

/** A claim set stored with a config and the exact roles it must resolve to; [] means it must be refused. */
export interface PolicyTest {
  readonly name: string;
  readonly claims: JsonObject;
  readonly roles: readonly string[];
}

/** An AuthMachineToMachineConfig as stored and as sent on the wire (docs/reference.md §1), with the policy extensions. */
export interface M2mConfig {
  readonly id: string;
  readonly type: M2mConfigType;
  readonly tokenExpirationDuration: string;
  readonly mappings: readonly RoleMapping[];
  readonly issuer: string;
  readonly audience: string;
  readonly conditions: readonly Condition[];
  /** A Go duration; '' is off. ID tokens issued longer ago than this are refused. */
  readonly maxTokenAge: string;
  /** Each ID token (issuer and jti) exchanges once across all replicas. */
  readonly singleUse: boolean;
  readonly tests: readonly PolicyTest[];
}

/** A config's own fields and nothing else (no incarnation, origin or row data), in wire order. */
export const configFields = (config: M2mConfig): M2mConfig => ({
  id: config.id,
  type: config.type,
  tokenExpirationDuration: config.tokenExpirationDuration,
  mappings: config.mappings.map(({ key, valueExpression, role }) => ({ key, valueExpression, role })),
  issuer: config.issuer,
  audience: config.audience,
  conditions: config.conditions.map(({ key, valueExpression }) => ({ key, valueExpression })),
  maxTokenAge: config.maxTokenAge,
  singleUse: config.singleUse,
  tests: config.tests.map(({ name, claims, roles }) => ({ name, claims, roles })),
});

/** Optional fields that an update keeps when its body leaves them out, so that an older client cannot widen trust by omission. */
export const KEPT_WHEN_ABSENT = ['audience', 'issuer', 'conditions', 'maxTokenAge', 'singleUse', 'tests'] as const;

export type M2mConfigFields = Omit<M2mConfig, 'id'>;

/**
 * A config as stored: with its incarnation, which changes when the config is
 * created (again) or what it trusts changes. Gateway tokens carry it, so none
 * outlives the incarnation it was minted under. Never on the wire.
 */
export interface StoredM2mConfig extends M2mConfig {
  readonly incarnation: string;
  /** Made through the API, or applied from a file (docs/reference.md §6.5); the API changes only the former. */
  readonly origin: Origin;
}

/** Whether a write keeps what `before` trusted, so that its tokens stay valid (roles are evaluated again). */
export const trustsTheSame = (before: M2mConfig, after: M2mConfig): boolean =>
  before.issuer === after.issuer &&
  before.audience === after.audience &&
  JSON.stringify(before.conditions) === JSON.stringify(after.conditions);

export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/** What a config is checked against beyond itself. */
export interface IssuerPolicy {
  /** GitHub Enterprise Server issuers an operator allows (GITHUB_ACTIONS_ISSUERS). */
  readonly githubActionsIssuers: readonly string[];
  /** `iss` of the gateway's own service-account token; undefined outside a cluster (docs/reference.md §3.3). */
  readonly kubeServiceAccountIssuer: () => string | undefined;
}

export const MIN_TOKEN_LIFETIME_SECONDS = 60;
export const MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;
export const MAX_MAPPINGS = 100;
export const MAX_MAPPING_KEY_LENGTH = 256;
export const MAX_ISSUER_LENGTH = 2048;
export const MAX_AUDIENCE_LENGTH = 1024;
export const MAX_CONDITIONS = 20;
export const MAX_TESTS = 50;
export const MAX_TEST_NAME_LENGTH = 256;
/** The claims of one stored test, as JSON text. */
export const MAX_TEST_CLAIMS_BYTES = 8 * 1024;

/**
 * The token lifetime of a config, in seconds.
 *
 * @throws DurationSyntaxError for a duration that did not pass parseM2mConfig
 */
export const tokenLifetimeSeconds = (config: Pick<M2mConfig, 'tokenExpirationDuration'>): number =>
  parseGoDuration(config.tokenExpirationDuration) / NANOS_PER_SECOND;

/**
 * Validates a config written by an admin and resolves its defaults (the
 * GitHub and Kubernetes issuers).
 *
 * @param input the `config` object of the request, with lowerCamelCase keys
 * @param roleExists whether a mapping's role names an existing role
 * @throws GatewayError INVALID_ARGUMENT listing every problem at once
 */
export function parseM2mConfig(
  input: unknown,
  policy: IssuerPolicy,
  roleExists: (name: string) => boolean,
): M2mConfigFields {
  const problems = new Problems();
  if (!isJsonObject(input)) {
    problems.add('config must be a JSON object');
    throw problems.toError('machine-to-machine config');
  }

  const type = readType(input.type, problems);
  const tokenExpirationDuration = readString(input, 'tokenExpirationDuration', problems);
  checkDuration(tokenExpirationDuration, problems);
  const invalidExpressions = new Set<RoleMapping>();
  const mappings = readMappings(input.mappings, roleExists, problems, invalidExpressions);
  checkMappingsCompile(
    mappings.filter((mapping) => !invalidExpressions.has(mapping)),
    problems,
  );
  const audience = readString(input, 'audience', problems);
  if (audience.length > MAX_AUDIENCE_LENGTH) {
    problems.add(`audience is longer than ${MAX_AUDIENCE_LENGTH} characters`);
  }
  const issuer = type ? resolveIssuer(type, readString(input, 'issuer', problems), policy, problems) : '';
  const conditions = readConditions(input.conditions, problems);
  const maxTokenAge = readString(input, 'maxTokenAge', problems);
  checkMaxTokenAge(maxTokenAge, problems);
  const singleUse = readBoolean(input, 'singleUse', problems);
  const tests = readTests(input.tests, roleExists, problems);

  problems.throwIfAny('machine-to-machine config');
  return {
    type: type!,
    tokenExpirationDuration,
    mappings,
    issuer,
    audience,
    conditions,
    maxTokenAge,
    singleUse,
    tests,
  };
}

/**
 * The (issuer, audience) a config input would be stored under, with the
 * issuer's defaults resolved as parseM2mConfig resolves them; undefined when
 * its type, issuer or audience is not valid. Declarative configs without an
 * `id` are named after this pair, also while the rest of them is broken.
 */
export function issuerAndAudienceOf(
  input: unknown,
  policy: IssuerPolicy,
): { readonly issuer: string; readonly audience: string } | undefined {
  if (!isJsonObject(input)) return undefined;
  const problems = new Problems();
  const type = readType(input.type, problems);
  const audience = readString(input, 'audience', problems);
  const issuer = type ? resolveIssuer(type, readString(input, 'issuer', problems), policy, problems) : '';
  return problems.isEmpty && type !== undefined && audience.length <= MAX_AUDIENCE_LENGTH
    ? { issuer, audience }
    : undefined;
}

function readBoolean(input: JsonObject, field: string, problems: Problems): boolean {
  const value = input[field] ?? false;
  if (typeof value === 'boolean') return value;
  problems.add(`${field} must be true or false`);
  return false;
}

/** A list field: absent or null is empty; anything but a list of at most `max` items is a problem. */
function readList(value: unknown, field: string, max: number, problems: Problems): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.add(`${field} must be a list`);
    return [];
  }
  if (value.length > max) {
    problems.add(`at most ${max} ${field} are allowed, got ${value.length}`);
    return [];
  }
  return value;
}

function readConditions(value: unknown, problems: Problems): Condition[] {
  return readList(value, 'conditions', MAX_CONDITIONS, problems).map((raw, index) => {
    const where = `conditions[${index}]`;
    if (!isJsonObject(raw)) {
      problems.add(`${where} must be an object with key and valueExpression`);
      return { key: '', valueExpression: '' };
    }
    const key = readString(raw, 'key', problems);
    const valueExpression = readString(raw, 'valueExpression', problems);
    checkClaimKey(key, where, problems);
    const expressionProblem = valueExpressionProblem(valueExpression);
    if (expressionProblem) problems.add(`${where}.valueExpression ${expressionProblem}`);
    return { key, valueExpression };
  });
}

function checkClaimKey(key: string, where: string, problems: Problems): void {
  if (key === '') problems.add(`${where}.key is empty`);
  else if (key.length > MAX_MAPPING_KEY_LENGTH) {
    problems.add(`${where}.key is longer than ${MAX_MAPPING_KEY_LENGTH} characters`);
  }
}

function checkMaxTokenAge(text: string, problems: Problems): void {
  if (text === '') return;
  try {
    if (parseGoDuration(text) <= 0) problems.add(`maxTokenAge ${JSON.stringify(text)} must be positive`);
  } catch (error) {
    if (!(error instanceof DurationSyntaxError)) throw error;
    problems.add(`maxTokenAge: ${error.message}`);
  }
}

function readTests(value: unknown, roleExists: (name: string) => boolean, problems: Problems): PolicyTest[] {
  const names = new Set<string>();
  return readList(value, 'tests', MAX_TESTS, problems).map((raw, index) => {
    const where = `tests[${index}]`;
    if (!isJsonObject(raw)) {
      problems.add(`${where} must be an object with name, claims and roles`);
      return { name: '', claims: {}, roles: [] };
    }
    const name = readString(raw, 'name', problems);
    if (name === '') problems.add(`${where}.name is empty`);
    else if (name.length > MAX_TEST_NAME_LENGTH) {
      problems.add(`${where}.name is longer than ${MAX_TEST_NAME_LENGTH} characters`);
    } else if (names.has(name)) problems.add(`${where}.name ${JSON.stringify(name)} is used twice`);
    names.add(name);
    const claims = isJsonObject(raw.claims) ? raw.claims : {};
    if (!isJsonObject(raw.claims)) problems.add(`${where}.claims must be a JSON object`);
    else if (Buffer.byteLength(JSON.stringify(claims)) > MAX_TEST_CLAIMS_BYTES) {
      problems.add(`${where}.claims is larger than ${MAX_TEST_CLAIMS_BYTES} bytes`);
    }
    const roles = readList(raw.roles, `${where}.roles`, MAX_MAPPINGS, problems).flatMap((role) => {
      if (typeof role !== 'string') {
        problems.add(`${where}.roles must be a list of role names`);
        return [];
      }
      if (!roleExists(role)) problems.add(`${where}.roles: role ${JSON.stringify(role)} does not exist`);
      return [role];
    });
    return { name, claims, roles };
  });
}

function readString(input: JsonObject, field: string, problems: Problems): string {
  const value = input[field] ?? '';
  if (typeof value === 'string') return value;
  problems.add(`${field} must be a string`);
  return '';
}

/** The enum name, or as protojson also accepts, its number. */
function readType(value: unknown, problems: Problems): M2mConfigType | undefined {
  // Missing or empty is the protobuf default, GENERIC, as in StackRox.
  if (value === undefined || value === null || value === '') return 'GENERIC';
  const type = typeof value === 'number' ? M2M_CONFIG_TYPES[value] : M2M_CONFIG_TYPES.find((t) => t === value);
  if (type === undefined) problems.add(`type ${JSON.stringify(value)} is not one of ${M2M_CONFIG_TYPES.join(', ')}`);
  return type;
}

function checkDuration(text: string, problems: Problems): void {
  if (text === '') {
    problems.add('tokenExpirationDuration is required (a Go duration such as "1h30m")');
    return;
  }
  let seconds: number;
  try {
    seconds = parseGoDuration(text) / NANOS_PER_SECOND;
  } catch (error) {
    if (!(error instanceof DurationSyntaxError)) throw error;
    problems.add(`tokenExpirationDuration: ${error.message}`);
    return;
  }
  if (seconds < MIN_TOKEN_LIFETIME_SECONDS || seconds > MAX_TOKEN_LIFETIME_SECONDS) {
    problems.add(`tokenExpirationDuration ${JSON.stringify(text)} must be between 1m and 24h`);
  }
}

function readMappings(
  value: unknown,
  roleExists: (name: string) => boolean,
  problems: Problems,
  invalidExpressions: Set<RoleMapping>,
): RoleMapping[] {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) {
    problems.add('at least one mapping is required');
    return [];
  }
  if (!Array.isArray(value)) {
    problems.add('mappings must be a list');
    return [];
  }
  if (value.length > MAX_MAPPINGS) {
    problems.add(`at most ${MAX_MAPPINGS} mappings are allowed, got ${value.length}`);
    return [];
  }
  return value.map((raw: unknown, index) => {
    const where = `mappings[${index}]`;
    if (!isJsonObject(raw)) {
      problems.add(`${where} must be an object with key, valueExpression and role`);
      return { key: '', valueExpression: '', role: '' };
    }
    const key = readString(raw, 'key', problems);
    const valueExpression = readString(raw, 'valueExpression', problems);
    const role = readString(raw, 'role', problems);
    checkClaimKey(key, where, problems);
    const mapping = { key, valueExpression, role };
    const expressionProblem = valueExpressionProblem(valueExpression);
    if (expressionProblem) {
      problems.add(`${where}.valueExpression ${expressionProblem}`);
      invalidExpressions.add(mapping);
    }
    if (role === '') problems.add(`${where}.role is empty`);
    else if (role.length > MAX_ROLE_NAME_LENGTH) {
      problems.add(`${where}.role is longer than ${MAX_ROLE_NAME_LENGTH} characters`);
    } else if (!roleExists(role)) problems.add(`${where}.role ${JSON.stringify(role)} does not exist`);
    return mapping;
  });
}

/** Exchanges compile each claim key's expressions as one set: what passes here always loads. */
function checkMappingsCompile(mappings: readonly RoleMapping[], problems: Problems): void {
  try {
    compileMappings(mappings);
  } catch (error) {
    if (!(error instanceof MappingSetError)) throw error;
    problems.add(error.message);
  }
}

function resolveIssuer(type: M2mConfigType, given: string, policy: IssuerPolicy, problems: Problems): string {
  switch (type) {
    case 'GENERIC':
      if (given === '') problems.add('issuer is required for GENERIC configs');
      else checkIssuerUrl(given, problems);
      return given;
    case 'GITHUB_ACTIONS': {
      const issuer = given === '' ? GITHUB_ACTIONS_ISSUER : given;
      if (!isGitHubActionsIssuer(issuer, policy)) {
        problems.add(
          `issuer ${JSON.stringify(issuer)} is not a GitHub Actions issuer: use ${GITHUB_ACTIONS_ISSUER}, ` +
            `${GITHUB_ACTIONS_ISSUER}/<enterprise-slug>, or one listed in GITHUB_ACTIONS_ISSUERS`,
        );
      }
      return issuer;
    }
    case 'KUBE_SERVICE_ACCOUNT': {
      if (given !== '') {
        checkIssuerUrl(given, problems);
        return given;
      }
      const own = policy.kubeServiceAccountIssuer();
      if (own === undefined) {
        problems.add(
          'issuer is required for KUBE_SERVICE_ACCOUNT configs when the gateway does not run in a cluster ' +
            '(no service-account token to take the issuer from)',
        );
        return '';
      }
      return own;
    }
  }
}

/** GitHub Enterprise Cloud slugs: letters, digits and hyphens. */
const GITHUB_ENTERPRISE_CLOUD_ISSUER =
  /^https:\/\/token\.actions\.githubusercontent\.com\/[A-Za-z0-9][A-Za-z0-9-]{0,99}$/;

function isGitHubActionsIssuer(issuer: string, policy: IssuerPolicy): boolean {
  return (
    issuer === GITHUB_ACTIONS_ISSUER ||
    GITHUB_ENTERPRISE_CLOUD_ISSUER.test(issuer) ||
    policy.githubActionsIssuers.includes(issuer)
  );
}

/** RFC 3986 characters; `%` must start a valid percent-encoding. */
const URI_CHARACTERS = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;

/**
 * Why a string cannot be an issuer (docs/reference.md §1): an absolute https URL with a
 * host and no userinfo, query or fragment. Issuers are compared as exact
 * strings, so nothing here normalises.
 */
export function issuerUrlProblem(issuer: string): string | undefined {
  const quoted = JSON.stringify(issuer);
  if (issuer.length > MAX_ISSUER_LENGTH) return `issuer is longer than ${MAX_ISSUER_LENGTH} characters`;
  if (!URI_CHARACTERS.test(issuer)) return `issuer ${quoted} is not a valid URL`;
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return `issuer ${quoted} is not a valid URL`;
  }
  if (url.protocol !== 'https:' || !issuer.toLowerCase().startsWith('https://')) {
    return `issuer ${quoted} must use https`;
  }
  if (url.hostname === '') return `issuer ${quoted} has no host`;
  if (url.username !== '' || url.password !== '' || issuer.includes('@')) {
    return `issuer ${quoted} must not contain userinfo`;
  }
  if (issuer.includes('?')) return `issuer ${quoted} must not contain a query`;
  if (issuer.includes('#')) return `issuer ${quoted} must not contain a fragment`;
  return undefined;
}

function checkIssuerUrl(issuer: string, problems: Problems): void {
  const problem = issuerUrlProblem(issuer);
  if (problem) problems.add(problem);
}
