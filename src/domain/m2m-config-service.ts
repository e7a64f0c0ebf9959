import { GatewayError, invalidArgument, notFound } from '../errors.js';
import type { AuditContext, AuditTrail } from './audit.js';
import { lintConfig, type LintWarning } from './lint.js';
import { failingPolicyTests } from './policy.js';
import { declarativeConfigIsReadOnly, type DeclarativeSource, type Origin } from './origin.js';
import type { Role } from './roles.js';
import { isJsonObject, type JsonObject } from './problems.js';
import {
  KEPT_WHEN_ABSENT,
  parseM2mConfig,
  trustsTheSame,
  type IssuerPolicy,
  type M2mConfig,
  type M2mConfigFields,
  type StoredM2mConfig,
} from './m2m-config.js';

/** The configs as stored. Writes replace a config and its mappings atomically. */
export interface ConfigStore {
  list(): Promise<StoredM2mConfig[]>;
  get(id: string): Promise<StoredM2mConfig | undefined>;
  findByIssuerAndAudience(issuer: string, audience: string): Promise<StoredM2mConfig | undefined>;
  /** @throws GatewayError ALREADY_EXISTS when another config has the issuer and audience */
  save(config: StoredM2mConfig): Promise<void>;
  remove(id: string): Promise<void>;
}

export interface RoleDirectory {
  list(): Promise<Role[]>;
}

/**
 * Fetches and checks the issuer's discovery document (docs/reference.md §1).
 *
 * @throws GatewayError FAILED_PRECONDITION naming the issuer and the cause
 */
export type DiscoverIssuer = (config: M2mConfigFields) => Promise<void>;

export interface M2mConfigServiceDeps {
  readonly store: ConfigStore;
  readonly audit: AuditTrail;
  readonly roles: RoleDirectory;
  readonly discoverIssuer: DiscoverIssuer;
  readonly issuerPolicy: IssuerPolicy;
  readonly newId: () => string;
}

/**
 * Every problem of a config (INVALID_ARGUMENT), then every stored test it
 * fails (FAILED_PRECONDITION): what Add, Update, lint and the declarative
 * files (docs/reference.md §6.5) all accept.
 *
 * @throws GatewayError INVALID_ARGUMENT or FAILED_PRECONDITION listing every problem
 */
export function validateM2mConfig(
  input: unknown,
  policy: IssuerPolicy,
  roleExists: (name: string) => boolean,
): M2mConfigFields {
  const fields = parseM2mConfig(input, policy, roleExists);
  const failures = failingPolicyTests(fields);
  if (failures.length > 0) {
    throw new GatewayError(
      'FAILED_PRECONDITION',
      `the config fails its tests, so it was not stored: ${failures.join('; ')}`,
      {
        problems: failures,
      },
    );
  }
  return fields;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (id: string): boolean => UUID.test(id);

/** The admin use cases of `/v1/auth/m2m` (StackRox's AuthService M2M RPCs). */
export function createM2mConfigService(deps: M2mConfigServiceDeps) {
  const { store } = deps;

  /** Every problem of a config (INVALID_ARGUMENT), then every stored test it fails (FAILED_PRECONDITION). */
  async function validate(input: unknown): Promise<M2mConfigFields> {
    const roles = new Set((await deps.roles.list()).map((role) => role.name));
    return validateM2mConfig(input, deps.issuerPolicy, (name) => roles.has(name));
  }

  /** Declarative files are checked offline in CI (`m2m-gateway check --discover`): they are written without discovery. */
  async function write(config: M2mConfig, context: AuditContext, origin: Origin, source?: DeclarativeSource) {
    const holder = await store.findByIssuerAndAudience(config.issuer, config.audience);
    if (holder && holder.id !== config.id) throw issuerTaken(config.issuer, config.audience);
    if (origin === 'IMPERATIVE') await deps.discoverIssuer(config);
    const before = await store.get(config.id);
    const incarnation = before && trustsTheSame(before, config) ? before.incarnation : deps.newId();
    await store.save({ ...config, incarnation, origin });
    await deps.audit.record({
      action: before ? 'config.update' : 'config.create',
      outcome: 'applied',
      ...context,
      configId: config.id,
      details: { before: before ?? null, after: config, ...(source ? { source } : {}) },
    });
  }

  return {
    validate,

    /** What Add would refuse (`problems`), and risky policy it would accept (`warnings`). */
    async lint(input: unknown): Promise<{ problems: readonly string[]; warnings: readonly LintWarning[] }> {
      const roles = await deps.roles.list();
      const names = new Set(roles.map((role) => role.name));
      let fields: M2mConfigFields;
      try {
        fields = parseM2mConfig(input, deps.issuerPolicy, (name) => names.has(name));
      } catch (error) {
        if (!(error instanceof GatewayError) || error.code !== 'INVALID_ARGUMENT') throw error;
        return { problems: error.problems, warnings: [] };
      }
      // A config that fails its tests is still one the console edits: its risks are shown beside the failures.
      return { problems: failingPolicyTests(fields), warnings: lintConfig(fields, roles) };
    },
    list: () => store.list(),

    async get(id: string): Promise<StoredM2mConfig> {
      const config = isUuid(id) ? await store.get(id.toLowerCase()) : undefined;
      if (!config) throw notFound(`machine-to-machine config ${JSON.stringify(id)} not found`);
      return config;
    },

    /** Any id in the input is ignored; the new config gets a fresh one. */
    async add(input: unknown, context: AuditContext): Promise<M2mConfig> {
      const config = { ...(await validate(input)), id: deps.newId() };
      await write(config, context, 'IMPERATIVE');
      return config;
    },

    /** Upsert: an unknown id creates the config under that id. */
    async update(id: string, input: unknown, context: AuditContext): Promise<M2mConfig> {
      if (!isUuid(id)) throw invalidArgument(`id ${JSON.stringify(id)} is not a UUID`);
      const bodyId = isJsonObject(input) ? input.id : undefined;
      if (
        bodyId !== undefined &&
        bodyId !== '' &&
        (typeof bodyId !== 'string' || bodyId.toLowerCase() !== id.toLowerCase())
      ) {
        throw invalidArgument(
          `id ${JSON.stringify(bodyId)} in the body differs from ${JSON.stringify(id)} in the path`,
        );
      }
      const before = await store.get(id.toLowerCase());
      if (before?.origin === 'DECLARATIVE') throw declarativeConfigIsReadOnly(before.id);
      const config = { ...(await validate(before ? keepingAbsentFields(input, before) : input)), id: id.toLowerCase() };
      if (before) checkDroppedTests(before, config);
      await write(config, context, 'IMPERATIVE');
      return config;
    },

    /** Deleting an unknown id succeeds, as in StackRox. */
    async remove(id: string, context: AuditContext): Promise<void> {
      const before = isUuid(id) ? await store.get(id.toLowerCase()) : undefined;
      if (!before) return;
      if (before.origin === 'DECLARATIVE') throw declarativeConfigIsReadOnly(before.id);
      await removeStored(before, context);
    },

    /**
     * Stores a config declared in a file (docs/reference.md §6.5), already validated, as
     * DECLARATIVE: the API cannot change it. Audited like an API write.
     *
     * @throws GatewayError ALREADY_EXISTS when another config has its issuer and audience
     */
    applyDeclarative: (config: M2mConfig, context: AuditContext, source: DeclarativeSource) =>
      write(config, context, 'DECLARATIVE', source),

    /** Deletes a declarative config whose document left the files; imperative configs are never touched. */
    async removeDeclarative(id: string, context: AuditContext): Promise<void> {
      const before = await store.get(id);
      if (before?.origin === 'DECLARATIVE') await removeStored(before, context);
    },
  };

  async function removeStored(before: StoredM2mConfig, context: AuditContext): Promise<void> {
    await store.remove(before.id);
    await deps.audit.record({
      action: 'config.delete',
      outcome: 'applied',
      ...context,
      configId: before.id,
      details: { before, after: null },
    });
  }
}

export type M2mConfigService = ReturnType<typeof createM2mConfigService>;

/**
 * Tests guard the policy they were stored with: a write that changes the
 * conditions or mappings must still pass the tests it removes, or a change
 * that breaks a known workload could land by dropping its test in the same
 * breath. Remove a test in a write of its own.
 */
function checkDroppedTests(stored: M2mConfig, next: M2mConfigFields): void {
  const samePolicy =
    JSON.stringify([stored.conditions, stored.mappings]) === JSON.stringify([next.conditions, next.mappings]);
  const kept = new Set(next.tests.map((test) => test.name));
  const dropped = stored.tests.filter((test) => !kept.has(test.name));
  if (samePolicy || dropped.length === 0) return;
  const failures = failingPolicyTests({ ...next, tests: dropped });
  if (failures.length > 0) {
    throw new GatewayError(
      'FAILED_PRECONDITION',
      `the config fails tests this write removes; remove them in a write of their own: ${failures.join('; ')}`,
      { problems: failures },
    );
  }
}

/**
 * An update's input with the stored value of every optional field it leaves
 * out. StackRox clients rebuild a config from the five fields they know
 * before a PUT; without this, an older client would drop an audience or the
 * conditions, and widen trust by omission. A field present with an empty
 * value (`""`, `[]`, `false`) still clears it; `null` is absent.
 */
function keepingAbsentFields(input: unknown, stored: M2mConfig): unknown {
  if (!isJsonObject(input)) return input;
  const kept: JsonObject = { ...input };
  // protojson reads `null` as a field left unset: it keeps the stored value too.
  for (const field of KEPT_WHEN_ABSENT)
    if (input[field] === undefined || input[field] === null) kept[field] = stored[field];
  return kept;
}

export const issuerTaken = (issuer: string, audience: string) =>
  new GatewayError(
    'ALREADY_EXISTS',
    audience === ''
      ? `a machine-to-machine config for issuer ${JSON.stringify(issuer)} already exists`
      : `a machine-to-machine config for issuer ${JSON.stringify(issuer)} and audience ${JSON.stringify(audience)} already exists`,
  );
